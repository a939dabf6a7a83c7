/**
 * Attestation challenges: what the hub remembers between "challenge" and "enroll".
 *
 * Invariants:
 * - Single use: `take` removes the challenge whether the evidence that follows is good or not,
 *   so a replayed (or a second, corrected) answer to one challenge always fails.
 * - Short-lived: a challenge older than `ttlMs` (by the injected Clock) is gone.
 * - Bounded: at most `maxPending` live challenges; when full, expired ones are dropped first, and
 *   a request beyond the bound is RATE_LIMITED (nothing is evicted that someone may still answer).
 * - Ids are 128-bit random (base64url); challenges live in this process's memory only, so a hub
 *   restart (or another hub node) invalidates them — the device asks again.
 */
import { randomBytes } from 'node:crypto';
import { FleetkeyError, type Clock } from '@fleetkey/protocol';

export class ChallengeStore<T> {
  readonly #pending = new Map<string, { value: T; expiresAt: number }>();

  constructor(private readonly o: { clock: Clock; ttlMs: number; maxPending: number }) {}

  /** Remembers `value`; returns its id. RATE_LIMITED when `maxPending` live challenges exist. */
  put(value: T): string {
    const now = this.o.clock.now();
    if (this.#pending.size >= this.o.maxPending) this.#sweep(now);
    if (this.#pending.size >= this.o.maxPending) throw new FleetkeyError('RATE_LIMITED', { cause: new Error('too many pending attestation challenges') });
    const id = randomBytes(16).toString('base64url');
    this.#pending.set(id, { value, expiresAt: now + this.o.ttlMs });
    return id;
  }

  /** The challenge, removed; undefined when unknown, already taken or expired. */
  take(id: string): T | undefined {
    const entry = this.#pending.get(id);
    if (entry === undefined) return undefined;
    this.#pending.delete(id);
    return entry.expiresAt > this.o.clock.now() ? entry.value : undefined;
  }

  get size(): number {
    return this.#pending.size;
  }

  #sweep(now: number): void {
    for (const [id, entry] of this.#pending) if (entry.expiresAt <= now) this.#pending.delete(id);
  }
}
