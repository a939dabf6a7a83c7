/**
 * The renewal scheduler (ADR 0025): renews at the jittered two-thirds point, retries failures with
 * bounded backoff, and runs one renewal at a time.
 *
 * Invariants:
 * - Time comes from the injected Clock; the timer only wakes the scheduler, which compares the
 *   clock with the due time (a timer that fires early, or a clock that jumped, is handled by
 *   re-arming; one timer never exceeds MAX_TIMER_MS, setTimeout's 32-bit limit).
 * - At most one renewal runs; `renewNow` while one runs returns that same run (idempotent).
 * - A failure that can heal (hub unreachable, proof failed, rate limited …) is retried after
 *   `Backoff.next()` (full jitter, between minMs and maxMs), never in a hot loop; one that cannot
 *   (RENEWAL_NEEDS_CLAIM, DEVICE_REVOKED, CERT_INVALID, KEYSTORE_ERROR) stops the scheduler and
 *   is reported once through `onEvent` — the old identity stays in use.
 * - After a success the next due time is computed from the new certificate's validity.
 */
import { FleetkeyError, type Clock, type ErrorCode } from '@fleetkey/protocol';
import { Backoff, type BackoffOptions, type Timers } from '../mqtt/backoff.js';
import { DEFAULT_JITTER_FRACTION, renewalTime, type Validity } from './schedule.js';

export const MAX_TIMER_MS = 2_147_483_647;
const FATAL: ReadonlySet<ErrorCode> = new Set(['RENEWAL_NEEDS_CLAIM', 'DEVICE_REVOKED', 'CERT_INVALID', 'KEYSTORE_ERROR', 'DEVICE_NOT_ENROLLED']);

export type RenewalTrigger = 'schedule' | 'command' | 'expired' | 'manual';

export type RenewalEvent =
  | { readonly type: 'scheduled'; readonly dueAt: Date }
  | { readonly type: 'renewing'; readonly trigger: RenewalTrigger }
  | { readonly type: 'renewed'; readonly trigger: RenewalTrigger; readonly validity: Validity }
  | { readonly type: 'failed'; readonly trigger: RenewalTrigger; readonly error: FleetkeyError; readonly retryInMs?: number };

export interface RenewalSchedulerOptions {
  readonly clock: Clock;
  readonly timers: Timers;
  /** The validity of the certificate in use now. */
  readonly current: () => Promise<Validity>;
  /** Performs one renewal (renew() + switching the live session); resolves with the new validity. */
  readonly renew: (trigger: RenewalTrigger) => Promise<Validity>;
  /** Uniform in [0, 1); default Math.random (seed it in tests: schedule.ts `seededRandom`). */
  readonly random?: () => number;
  readonly jitterFraction?: number;
  /** Retry delays; defaults: first ceiling 1 min, at most 1 h, at least 30 s. */
  readonly retry?: Omit<BackoffOptions, 'random' | 'stableAfterMs'>;
  readonly onEvent?: (event: RenewalEvent) => void;
}

export class RenewalScheduler {
  readonly #o: RenewalSchedulerOptions;
  readonly #random: () => number;
  readonly #backoff: Backoff;
  #dueAt: number | undefined;
  #timer: unknown;
  #running: Promise<Validity | undefined> | undefined;
  #stopped = false;

  constructor(options: RenewalSchedulerOptions) {
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.#backoff = new Backoff({ initialMs: 60_000, maxMs: 3_600_000, minMs: 30_000, ...options.retry, random: this.#random });
  }

  /** When the next renewal is due (undefined before start and after a fatal failure). */
  get dueAt(): Date | undefined {
    return this.#dueAt === undefined ? undefined : new Date(this.#dueAt);
  }

  async start(): Promise<void> {
    this.#arm(renewalTime(await this.#o.current(), this.#random, this.#o.jitterFraction ?? DEFAULT_JITTER_FRACTION));
  }

  stop(): void {
    this.#stopped = true;
    this.#clearTimer();
    this.#dueAt = undefined;
  }

  /** Renews now (or joins the renewal already running); resolves with the new validity, or undefined on failure. */
  renewNow(trigger: RenewalTrigger): Promise<Validity | undefined> {
    if (this.#running !== undefined) return this.#running;
    this.#clearTimer();
    this.#running = this.#runOnce(trigger).finally(() => { this.#running = undefined; });
    return this.#running;
  }

  async #runOnce(trigger: RenewalTrigger): Promise<Validity | undefined> {
    this.#o.onEvent?.({ type: 'renewing', trigger });
    try {
      const validity = await this.#o.renew(trigger);
      this.#backoff.reset();
      this.#o.onEvent?.({ type: 'renewed', trigger, validity });
      if (!this.#stopped) this.#arm(renewalTime(validity, this.#random, this.#o.jitterFraction ?? DEFAULT_JITTER_FRACTION));
      return validity;
    } catch (raw) {
      const error = raw instanceof FleetkeyError ? raw : new FleetkeyError('INTERNAL', { cause: raw });
      if (FATAL.has(error.code) || this.#stopped) {
        this.#o.onEvent?.({ type: 'failed', trigger, error });
        this.stop();
        return undefined;
      }
      const retryInMs = this.#backoff.next();
      this.#o.onEvent?.({ type: 'failed', trigger, error, retryInMs });
      this.#arm(this.#o.clock.now() + retryInMs);
      return undefined;
    }
  }

  #arm(dueAt: number): void {
    if (this.#stopped) return;
    this.#clearTimer();
    this.#dueAt = dueAt;
    this.#o.onEvent?.({ type: 'scheduled', dueAt: new Date(dueAt) });
    this.#wait();
  }

  #wait(): void {
    const due = this.#dueAt;
    if (due === undefined || this.#stopped) return;
    const delay = Math.min(Math.max(0, due - this.#o.clock.now()), MAX_TIMER_MS);
    this.#timer = this.#o.timers.setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped || this.#dueAt !== due) return;
      if (this.#o.clock.now() >= due) void this.renewNow('schedule');
      else this.#wait(); // woke early (long delay split, or the clock moved back): wait again
    }, delay);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#o.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
