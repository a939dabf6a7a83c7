/**
 * OrderedAcks (mqtt/sessions.ts, ADR 0023): the PUBACK answers of one connection run in the order
 * the PUBLISHes arrived [MQTT-4.6.0-2], whatever order their durable stores complete in, without a
 * promise chain per message. The broker-level tests ("PUBACKs leave in PUBLISH order" in
 * mqtt-broker.test.ts) pin the same property end to end; these pin the queue itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OrderedAcks } from '../../src/mqtt/sessions.js';
import { mulberry32 } from '../helpers/prng.js';

describe('OrderedAcks', () => {
  test('a later slot settled first waits for the earlier one', () => {
    const acks = new OrderedAcks();
    const ran: number[] = [];
    const first = acks.take();
    const second = acks.take();
    second(() => ran.push(2));
    assert.equal(ran.length, 0, 'nothing runs before slot 1 settled');
    assert.equal(acks.pending, 2);
    first(() => ran.push(1));
    assert.deepEqual(ran, [1, 2]);
    assert.equal(acks.pending, 0);
  });

  test('settling a slot twice runs it once', () => {
    const acks = new OrderedAcks();
    let runs = 0;
    const slot = acks.take();
    slot(() => runs++);
    slot(() => runs++);
    assert.equal(runs, 1);
  });

  test('a run that takes and settles further slots (re-entrancy) keeps the order', () => {
    const acks = new OrderedAcks();
    const ran: string[] = [];
    const a = acks.take();
    const b = acks.take();
    b(() => ran.push('b'));
    a(() => {
      ran.push('a');
      const c = acks.take();
      c(() => ran.push('c'));
    });
    assert.deepEqual(ran, ['a', 'b', 'c']);
  });

  test('random settle order over 20,000 slots (with compaction): runs are exactly 0..n-1 in order', () => {
    const rnd = mulberry32(0xac5);
    const acks = new OrderedAcks();
    const ran: number[] = [];
    const open: Array<{ i: number; settle: (run: () => void) => void }> = [];
    let next = 0;
    while (next < 20_000 || open.length > 0) {
      if (next < 20_000 && (open.length === 0 || rnd() < 0.55)) {
        const i = next++;
        open.push({ i, settle: acks.take() });
      } else {
        const [slot] = open.splice(Math.floor(rnd() * open.length), 1);
        if (slot !== undefined) slot.settle(() => ran.push(slot.i));
      }
    }
    assert.equal(ran.length, 20_000);
    assert.ok(ran.every((v, k) => v === k), 'in arrival order');
    assert.equal(acks.pending, 0);
  });
});
