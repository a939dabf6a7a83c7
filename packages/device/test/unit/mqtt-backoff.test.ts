/** Backoff schedule (injected randomness) and the classification of connection failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError } from '@fleetkey/protocol';
import { Backoff } from '../../src/mqtt/backoff.js';
import { classifyFailure } from '../../src/mqtt/refusal.js';
import { checkPublishTopic, commandFrom } from '../../src/mqtt/topics.js';

test('ceilings double from initialMs up to maxMs; random 1 gives the ceiling, random 0 gives minMs', () => {
  const top = new Backoff({ initialMs: 1000, maxMs: 10_000, minMs: 100, random: () => 1 });
  assert.deepEqual(Array.from({ length: 6 }, () => top.next()), [1000, 2000, 4000, 8000, 10_000, 10_000]);
  const bottom = new Backoff({ initialMs: 1000, maxMs: 10_000, minMs: 100, random: () => 0 });
  assert.deepEqual(Array.from({ length: 4 }, () => bottom.next()), [100, 100, 100, 100], 'never below minMs: no hot loop');
});

test('full jitter: delay = minMs + r × (ceiling − minMs), and reset starts over', () => {
  const values = [0.5, 0.25, 0.75];
  const b = new Backoff({ initialMs: 1000, maxMs: 60_000, minMs: 0, random: () => values.shift() ?? 0 });
  assert.equal(b.next(), 500);
  assert.equal(b.next(), 500); // 0.25 × 2000
  assert.equal(b.attempt, 2);
  b.reset();
  assert.equal(b.next(), 750);
});

test('after a thousand failures the delay is still finite and capped', () => {
  const b = new Backoff({ initialMs: 1000, maxMs: 30_000, random: () => 0.999999 });
  let last = 0;
  for (let i = 0; i < 1000; i++) last = b.next();
  assert.ok(Number.isFinite(last) && last <= 30_000);
});

test('certificate refusals and CONNACK 2/4/5 are DEVICE_REVOKED and stop; transient errors retry', () => {
  const alert = Object.assign(new Error('tlsv1 alert certificate revoked'), { code: 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED' });
  const wrapped = new FleetkeyError('HUB_UNREACHABLE', { cause: alert });
  for (const err of [alert, wrapped, Object.assign(new Error('Connection refused: Not authorized'), { code: 5 }), Object.assign(new Error('x'), { code: 2 })]) {
    const f = classifyFailure(err);
    assert.equal(f.error.code, 'DEVICE_REVOKED');
    assert.equal(f.retry, false);
  }
  assert.deepEqual(classifyFailure(Object.assign(new Error('x'), { code: 1 })).retry, false);
  assert.equal(classifyFailure(Object.assign(new Error('x'), { code: 3 })).retry, true, 'server unavailable is transient');
  assert.equal(classifyFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })).error.code, 'HUB_UNREACHABLE');
  assert.equal(classifyFailure(new FleetkeyError('PIN_MISMATCH')).retry, true);
});

test('a device may publish only under its own prefix, never into commands, wildcards or $ topics', () => {
  checkPublishTopic('dev-1', 'devices/dev-1/telemetry');
  checkPublishTopic('dev-1', 'devices/dev-1/events/door');
  for (const bad of ['devices/dev-2/telemetry', 'devices/dev-1/commands', 'devices/dev-1/commands/x', 'devices/dev-1/', 'devices/dev-1/+', 'devices/dev-1/#', '$fleetkey/trust', 'devices/dev-1/a\u0000b', 'devices/dev-10/x']) {
    assert.throws(() => checkPublishTopic('dev-1', bad), (e: unknown) => e instanceof FleetkeyError && e.code === 'VALIDATION_FAILED', bad);
  }
  assert.equal(commandFrom('dev-1', 'devices/dev-1/commands/config/set', Buffer.from('x'))?.name, 'config/set');
  assert.equal(commandFrom('dev-1', 'devices/dev-2/commands/reboot', Buffer.from('x')), undefined);
});
