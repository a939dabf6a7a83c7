/**
 * CSPRNG bytes for identifiers made on every enrollment (certificate serials, device ids, audit
 * event ids), drawn from a pool that one `randomFillSync` call refills: each call into OpenSSL's
 * DRBG costs ~2.8 µs here whatever its size, and an enrollment needs three small draws (ADR 0031).
 * Node's own `randomUUID` keeps the same kind of cache.
 *
 * Invariants:
 * - Every byte handed out comes from node:crypto's CSPRNG and is handed out exactly once: the
 *   pool is refilled as a whole before it runs out, and a draw never spans two fills.
 * - Callers get their own copy (or fill their own buffer); the pool is never exposed.
 * - Only for values that are public once used (serials, ids); keys and secrets use
 *   `randomBytes` directly.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let next = POOL_BYTES;

/** Writes `length` fresh random bytes into `target` at `offset`. */
export function fillRandom(target: Uint8Array, offset = 0, length = target.length - offset): void {
  if (!(Number.isInteger(length) && length >= 0 && offset >= 0 && offset + length <= target.length)) {
    throw new RangeError('fillRandom: bad range');
  }
  if (length > POOL_BYTES) {
    randomFillSync(target, offset, length);
    return;
  }
  if (next + length > POOL_BYTES) {
    randomFillSync(pool);
    next = 0;
  }
  target.set(pool.subarray(next, next + length), offset);
  pool.fill(0, next, next + length); // a byte handed out is not kept
  next += length;
}

/** `length` fresh random bytes in a new buffer. */
export function randomBytesPooled(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  fillRandom(out);
  return out;
}
