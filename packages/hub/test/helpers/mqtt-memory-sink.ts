/**
 * A TelemetrySink for broker tests only (never production): keeps messages in memory and lets a
 * test decide when (and whether) each `accept` resolves, to prove where the PUBACK waits.
 */
import type { InboundTelemetry, TelemetrySink } from '../../src/telemetry/types.js';

interface Pending {
  readonly message: InboundTelemetry;
  resolve(): void;
  reject(err: Error): void;
}

export class MemorySink implements TelemetrySink {
  readonly stored: InboundTelemetry[] = [];
  readonly pending: Pending[] = [];
  /** When true, `accept` waits for `release`/`fail`; else it resolves at once. */
  hold = false;
  #waiters: Array<() => void> = [];

  accept(message: InboundTelemetry): Promise<{ readonly seq: number; readonly duplicate: boolean }> {
    if (!this.hold) {
      this.stored.push(message);
      this.#wake();
      return Promise.resolve({ seq: this.stored.length, duplicate: false });
    }
    return new Promise((resolve, reject) => {
      this.pending.push({
        message,
        resolve: () => {
          this.stored.push(message);
          resolve({ seq: this.stored.length, duplicate: false });
        },
        reject,
      });
      this.#wake();
    });
  }

  /** Resolves the held `accept` number `index` (0 = oldest still held). */
  release(index = 0): void {
    const [p] = this.pending.splice(index, 1);
    p?.resolve();
  }

  fail(index = 0): void {
    const [p] = this.pending.splice(index, 1);
    p?.reject(new Error('disk full (test)'));
  }

  /** Messages seen so far (stored or held). */
  get seen(): number {
    return this.stored.length + this.pending.length;
  }

  /** Resolves once `seen >= n`, or rejects after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.stored.length + this.pending.length < n) {
      if (Date.now() > deadline) throw new Error(`sink saw ${this.stored.length + this.pending.length} of ${n} messages`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50).unref();
      });
    }
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }
}
