/**
 * Reconnect delays: exponential backoff with full jitter (ADR 0013).
 *
 * Invariants:
 * - Attempt n (0-based) waits a uniformly random time in [minMs, min(maxMs, initialMs × 2^n)]
 *   ("full jitter"), so a fleet that lost its hub at the same moment spreads its reconnects
 *   instead of arriving in waves; never less than minMs, so no failure can cause a hot loop.
 * - The ceiling stops growing at maxMs; `reset()` (after a connection that stayed up for
 *   `stableAfterMs`) starts again at initialMs. A connection that is accepted and dropped at
 *   once does not reset it, so a hub that closes every session still sees growing delays.
 * - Randomness and timers are injected: tests run the schedule without sleeping.
 */

export interface BackoffOptions {
  /** Ceiling of the first retry; default 1 s. */
  readonly initialMs?: number;
  /** Largest ceiling; default 60 s. */
  readonly maxMs?: number;
  /** Smallest delay; default 100 ms. */
  readonly minMs?: number;
  /** A connection up this long resets the backoff; default 30 s. */
  readonly stableAfterMs?: number;
  /** Uniform in [0, 1); default Math.random. */
  readonly random?: () => number;
}

/** Timer functions, injectable for tests (defaults: the global ones). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * @example
 * const backoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
 * const wait = backoff.next(); // 100..500 ms, then 100..1000 ms, …
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly minMs: number;
  readonly stableAfterMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 1000;
    this.maxMs = Math.max(options.maxMs ?? 60_000, this.initialMs);
    this.minMs = Math.min(options.minMs ?? 100, this.initialMs);
    this.stableAfterMs = options.stableAfterMs ?? 30_000;
    this.#random = options.random ?? Math.random;
  }

  /** The ceiling of the next delay (without jitter). */
  ceiling(): number {
    // 2^attempt overflows to Infinity long after it passed maxMs; min() keeps it finite.
    return Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.#attempt, 52));
  }

  /** The next delay in ms; advances the attempt counter. */
  next(): number {
    const ceiling = this.ceiling();
    this.#attempt += 1;
    const r = Math.min(Math.max(this.#random(), 0), 1);
    return Math.round(this.minMs + r * (ceiling - this.minMs));
  }

  get attempt(): number {
    return this.#attempt;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
