/**
 * Time-ordered keys (ADR 0003 amendment): device ids, certificate serials and audit event ids keep
 * their random part (unguessable, unique) and sort by time, so inserts append to B-tree leaves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeviceId } from '@fleetkey/protocol';
import { uuidV7 } from '../../src/audit/chain.js';
import { randomSerial } from '../../src/ca/serial.js';
import { sortableId } from '../../src/provisioning/claim-token/token.js';
import { newDeviceId } from '../../src/provisioning/claim-token/index.js';

const T0 = Date.UTC(2026, 11, 1);

test('device ids: dev- + 26 base32 characters, valid identities, sorted by time as text, 10,000 unique', () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => sortableId('dev-', T0 + i));
  for (const id of ids.slice(0, 50)) {
    assert.match(id, /^dev-[a-z2-7]{26}$/);
    assert.ok(isDeviceId(id), id);
  }
  assert.deepEqual([...ids].sort(), ids, 'text order is time order');
  assert.equal(new Set(ids).size, ids.length);
  const sameMs = Array.from({ length: 1000 }, () => sortableId('dev-', T0));
  assert.equal(new Set(sameMs).size, 1000, 'the random part alone keeps ids unique');
  assert.match(newDeviceId(), /^dev-[a-z2-7]{26}$/);
});

test('serials: 16 octets, positive with a non-zero first octet, time-ordered, 80 random bits', () => {
  const serials = Array.from({ length: 10_000 }, (_, i) => randomSerial(T0 + i));
  for (const s of serials) {
    assert.equal(s.length, 16);
    assert.ok(s[0]! >= 0x01 && s[0]! <= 0x7f);
  }
  const hex = serials.map((s) => s.toString('hex'));
  assert.deepEqual([...hex].sort(), hex);
  const sameMs = Array.from({ length: 1000 }, () => randomSerial(T0).toString('hex'));
  assert.equal(new Set(sameMs).size, 1000);
  // The random tail is not constant: every one of its 80 bit positions varies across 1,000 draws.
  let ones = 0n;
  let zeros = 0n;
  for (const h of sameMs) {
    const tail = BigInt(`0x${h.slice(12)}`);
    ones |= tail;
    zeros |= ~tail & ((1n << 80n) - 1n);
  }
  assert.equal(ones, (1n << 80n) - 1n);
  assert.equal(zeros, (1n << 80n) - 1n);
  assert.ok(randomSerial(0)[0]! >= 1, 'a clock before 2004 still gives a valid first octet');
});

test('audit event ids are RFC 9562 UUIDv7: version 7, variant 10, time-ordered, unique', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => uuidV7(T0 + i));
  for (const id of ids.slice(0, 50)) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16), T0, 'the first 48 bits are the milliseconds');
});
