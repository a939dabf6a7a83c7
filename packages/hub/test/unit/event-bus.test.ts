import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InProcessEventBus } from '../../src/events/bus.js';

test('every subscriber of an event gets it; unsubscribed ones do not', async () => {
  const bus = new InProcessEventBus();
  const seen: string[] = [];
  const off = bus.subscribe('device.revoked', (e) => void seen.push(`a:${e.deviceId}`));
  bus.subscribe('device.revoked', (e) => void seen.push(`b:${e.deviceId}`));
  await bus.publish('device.revoked', { tenantId: 't', deviceId: 'd1', serials: [] });
  off();
  await bus.publish('device.revoked', { tenantId: 't', deviceId: 'd2', serials: [] });
  assert.deepEqual(seen.sort(), ['a:d1', 'b:d1', 'b:d2']);
});

test('a failing handler is isolated: other handlers run and the publisher does not fail', async () => {
  const errors: unknown[] = [];
  const bus = new InProcessEventBus((err) => errors.push(err));
  let ran = false;
  bus.subscribe('device.revoked', () => {
    throw new Error('boom');
  });
  bus.subscribe('device.revoked', () => {
    ran = true;
  });
  await bus.publish('device.revoked', { tenantId: 't', deviceId: 'd', serials: [] });
  assert.equal(ran, true);
  assert.equal(errors.length, 1);
});
