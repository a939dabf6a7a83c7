import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { computePin } from '@fleetkey/protocol';
import { MAX_PINS, PinSet } from '../../src/trust/pin-set.js';
import { fleetkeyError } from '../helpers/pins.js';

const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' });

test('a pin set matches the SHA-256 of the pinned SPKI and nothing else', () => {
  const pins = PinSet.parse(computePin(spki));
  assert.ok(pins.hasSpki(spki));
  assert.ok(!pins.hasSpki(Buffer.concat([spki, Buffer.from([0])])));
  assert.equal(computePin(spki), `sha256//${createHash('sha256').update(spki).digest('base64')}`, 'curl --pinnedpubkey form');
});

test('malformed pins are VALIDATION_FAILED (wrong prefix, hash length, non-canonical base64, empty set, too many)', () => {
  const good = computePin(spki);
  for (const bad of [[], ['sha1//' + good.slice(8)], [good.slice(0, -2) + '='], [good.replace('sha256', 'SHA256')], [' ' + good], ['sha256//' + 'A'.repeat(42) + 'B=']]) {
    assert.throws(() => PinSet.parse(bad), fleetkeyError('VALIDATION_FAILED'), JSON.stringify(bad));
  }
  assert.throws(() => PinSet.parse(Array.from({ length: MAX_PINS + 1 }, () => good)), fleetkeyError('VALIDATION_FAILED'));
});

test('a pin set is frozen and deduplicated', () => {
  const pin = computePin(spki);
  const pins = PinSet.parse([pin, pin]);
  assert.equal(pins.size, 1);
  assert.deepEqual(pins.toArray(), [pin]);
  assert.ok(Object.isFrozen(pins));
});
