/**
 * Per-device message rate: one token bucket per device id (not per connection, so reconnecting
 * does not refill it). Pure apart from the injected clock readings passed in.
 *
 * Invariants:
 * - A bucket holds at most `burst` tokens and refills `perSecond` tokens per second; a PUBLISH
 *   costs one token. `take` never lets more than `burst + perSecond × elapsed` messages through.
 * - Memory is bounded by the devices seen recently: `sweep` forgets buckets that are full again
 *   (forgetting a full bucket changes nothing — a new one starts full).
 * - Time going backwards (clock adjustment) never adds tokens.
 */

export interface RateLimit {
  readonly perSecond: number;
  readonly burst: number;
}

export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(readonly limit: RateLimit, now: number) {
    this.#tokens = limit.burst;
    this.#last = now;
  }

  #refill(now: number): void {
    const elapsed = Math.max(0, now - this.#last);
    this.#tokens = Math.min(this.limit.burst, this.#tokens + (elapsed * this.limit.perSecond) / 1000);
    this.#last = Math.max(this.#last, now);
  }

  /** Takes one token; false when the bucket is empty. */
  take(now: number): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  isFull(now: number): boolean {
    this.#refill(now);
    return this.#tokens >= this.limit.burst;
  }
}

export class DeviceRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(readonly limit: RateLimit) {}

  take(deviceId: string, now: number): boolean {
    let bucket = this.#buckets.get(deviceId);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.limit, now);
      this.#buckets.set(deviceId, bucket);
    }
    return bucket.take(now);
  }

  /** Forgets full buckets; returns how many remain. */
  sweep(now: number): number {
    for (const [id, bucket] of this.#buckets) if (bucket.isFull(now)) this.#buckets.delete(id);
    return this.#buckets.size;
  }

  get size(): number {
    return this.#buckets.size;
  }
}
