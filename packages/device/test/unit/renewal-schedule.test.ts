/**
 * Renewal timing (renewal/schedule.ts, renewal/scheduler.ts; ADR 0025) with an injected clock,
 * fake timers and seeded jitter: no real waiting, every figure reproducible.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError, ManualClock, encodeRenewCommand } from '@fleetkey/protocol';
import { RenewCommandGate } from '../../src/renewal/agent.js';
import { RENEW_AT_FRACTION, renewalTime, renewalWindow, seededRandom } from '../../src/renewal/schedule.js';
import { MAX_TIMER_MS, RenewalScheduler, type RenewalEvent } from '../../src/renewal/scheduler.js';
import type { Timers } from '../../src/mqtt/backoff.js';

const DAY = 86_400_000;
const validity = { notBefore: Date.UTC(2026, 0, 1), notAfter: Date.UTC(2026, 0, 1) + 90 * DAY };

/** Timers driven by the manual clock: `advance` moves time and runs what fell due, in order. */
class FakeTimers implements Timers {
  readonly #pending = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  constructor(readonly clock: ManualClock) {}
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.#next++;
    this.#pending.set(id, { at: this.clock.now() + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.#pending.delete(handle as number);
  }
  get size(): number {
    return this.#pending.size;
  }
  async advance(ms: number): Promise<void> {
    const target = this.clock.now() + ms;
    for (;;) {
      const due = [...this.#pending.entries()].filter(([, t]) => t.at <= target).sort((a, b) => a[1].at - b[1].at)[0];
      if (due === undefined) break;
      this.#pending.delete(due[0]);
      this.clock.set(Math.max(this.clock.now(), due[1].at));
      due[1].fn();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.clock.set(target);
    for (let i = 0; i < 10; i++) await Promise.resolve();
  }
}

describe('renewal time arithmetic', () => {
  test('the nominal time is two thirds of the lifetime; the window is ± 5 % of it', () => {
    const w = renewalWindow(validity);
    assert.equal(RENEW_AT_FRACTION, 2 / 3);
    assert.equal(w.nominal, validity.notBefore + 60 * DAY);
    assert.equal(w.earliest, w.nominal - 4.5 * DAY);
    assert.equal(w.latest, w.nominal + 4.5 * DAY);
  });

  test('10,000 seeded draws stay inside the window, before notAfter, and spread over it', () => {
    const random = seededRandom(42);
    const w = renewalWindow(validity);
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < 10_000; i++) {
      const at = renewalTime(validity, random);
      assert.ok(at >= w.earliest && at <= w.latest && at < validity.notAfter, String(at));
      min = Math.min(min, at);
      max = Math.max(max, at);
    }
    assert.ok(min < w.earliest + 0.01 * (w.latest - w.earliest), 'reaches the start of the window');
    assert.ok(max > w.latest - 0.01 * (w.latest - w.earliest), 'reaches the end of the window');
  });

  test('the same seed gives the same time; jitter is clamped to 25 % so it never reaches notAfter', () => {
    assert.equal(renewalTime(validity, seededRandom(7)), renewalTime(validity, seededRandom(7)));
    const w = renewalWindow(validity, 0.9);
    assert.ok(w.latest < validity.notAfter);
    assert.equal(w.latest - w.nominal, Math.round(0.25 * 90 * DAY));
  });
});

function scheduler(o: { clock: ManualClock; timers: FakeTimers; renew: () => Promise<typeof validity>; events?: RenewalEvent[] }) {
  return new RenewalScheduler({
    clock: o.clock, timers: o.timers, current: async () => validity, renew: o.renew, random: seededRandom(1),
    retry: { initialMs: 60_000, maxMs: 3_600_000, minMs: 30_000 }, onEvent: (e) => o.events?.push(e),
  });
}

describe('RenewalScheduler', () => {
  test('fires at the jittered due time and not a millisecond before, splitting delays over 2^31-1 ms', async () => {
    const clock = new ManualClock(validity.notBefore);
    const timers = new FakeTimers(clock);
    let calls = 0;
    const next = { notBefore: validity.notAfter - DAY, notAfter: validity.notAfter + 89 * DAY };
    const s = scheduler({ clock, timers, renew: async () => { calls += 1; return next; } });
    await s.start();
    const due = s.dueAt!.getTime();
    assert.equal(due, renewalTime(validity, seededRandom(1)));
    assert.ok(due - clock.now() > MAX_TIMER_MS, 'this delay needs more than one timer');
    await timers.advance(due - clock.now() - 1);
    assert.equal(calls, 0, 'not before the due time');
    await timers.advance(1);
    assert.equal(calls, 1);
    assert.ok(s.dueAt!.getTime() >= renewalWindow(next).earliest, 'the next time comes from the new certificate');
    s.stop();
    assert.equal(timers.size, 0, 'stop leaves no timer');
  });

  test('a healable failure is retried with bounded, growing backoff (never under 30 s, never over 1 h)', async () => {
    const clock = new ManualClock(validity.notBefore + 61 * DAY);
    const timers = new FakeTimers(clock);
    const events: RenewalEvent[] = [];
    let calls = 0;
    const s = scheduler({ clock, timers, events, renew: async () => { calls += 1; throw new FleetkeyError('HUB_UNREACHABLE'); } });
    await s.renewNow('manual');
    for (let i = 0; i < 12; i++) await timers.advance(3_600_000);
    const delays = events.flatMap((e) => (e.type === 'failed' && e.retryInMs !== undefined ? [e.retryInMs] : []));
    assert.ok(calls >= 12, `retried (${calls})`);
    assert.ok(delays.every((d) => d >= 30_000 && d <= 3_600_000), delays.join(','));
    assert.ok(Math.max(...delays.slice(-4)) > Math.max(...delays.slice(0, 1)), 'the ceiling grows');
    s.stop();
  });

  test('a failure that needs a new claim stops the scheduler and is reported once (the old identity stays)', async () => {
    const clock = new ManualClock(validity.notAfter + DAY);
    const timers = new FakeTimers(clock);
    const events: RenewalEvent[] = [];
    let calls = 0;
    const s = scheduler({ clock, timers, events, renew: async () => { calls += 1; throw new FleetkeyError('RENEWAL_NEEDS_CLAIM'); } });
    assert.equal(await s.renewNow('expired'), undefined);
    await timers.advance(10 * DAY);
    assert.equal(calls, 1);
    assert.equal(s.dueAt, undefined);
    assert.deepEqual(events.filter((e) => e.type === 'failed').map((e) => e.type === 'failed' && [e.error.code, e.retryInMs]), [['RENEWAL_NEEDS_CLAIM', undefined]]);
    assert.equal(timers.size, 0);
  });

  test('renewNow while a renewal runs joins it (one renewal, not two)', async () => {
    const clock = new ManualClock(validity.notBefore + DAY);
    const timers = new FakeTimers(clock);
    let calls = 0;
    let release!: () => void;
    const s = scheduler({ clock, timers, renew: () => { calls += 1; return new Promise((r) => { release = () => r(validity); }); } });
    const a = s.renewNow('command');
    const b = s.renewNow('command');
    release();
    assert.deepEqual(await a, validity);
    assert.deepEqual(await b, validity);
    assert.equal(calls, 1);
    s.stop();
  });
});

describe('RenewCommandGate (the early-renew command, ADR 0025)', () => {
  const command = (id: string): Buffer => encodeRenewCommand({ v: 1, id, reason: 'device-ca-rotation', requestedAt: '2026-12-01T00:00:00.000Z' });
  const code = (c: string) => (e: unknown): boolean => e instanceof FleetkeyError && e.code === c;

  test('admits a new command, refuses a replay of its id (CONFLICT) and a second one within the interval (RATE_LIMITED)', () => {
    const clock = new ManualClock(validity.notBefore);
    const gate = new RenewCommandGate(clock, 300_000);
    assert.equal(gate.admit(command('rnw_AAAAAAAAAAAA')), 'rnw_AAAAAAAAAAAA');
    clock.advance(600_000);
    assert.throws(() => gate.admit(command('rnw_AAAAAAAAAAAA')), code('CONFLICT'), 'a replayed id, even after the interval');
    clock.advance(1);
    assert.equal(gate.admit(command('rnw_BBBBBBBBBBBB')), 'rnw_BBBBBBBBBBBB');
    clock.advance(299_999);
    assert.throws(() => gate.admit(command('rnw_CCCCCCCCCCCC')), code('RATE_LIMITED'));
    clock.advance(1);
    assert.equal(gate.admit(command('rnw_CCCCCCCCCCCC')), 'rnw_CCCCCCCCCCCC', 'a refused command was not remembered');
  });

  test('a malformed command is VALIDATION_FAILED and does not count against the interval', () => {
    const clock = new ManualClock(validity.notBefore);
    const gate = new RenewCommandGate(clock, 300_000);
    assert.throws(() => gate.admit(Buffer.from('{"v":1}')), code('VALIDATION_FAILED'));
    assert.equal(gate.admit(command('rnw_DDDDDDDDDDDD')), 'rnw_DDDDDDDDDDDD');
  });
});
