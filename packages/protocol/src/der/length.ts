/**
 * DER length octets and the basic TLV builder (X.690 §8.1.3, §10.1).
 *
 * Invariants:
 * - Lengths are always definite and minimal: short form below 128, long form with the fewest
 *   octets otherwise.
 * - `tlv` copies its input once; callers may reuse their buffers afterwards.
 */
import { DerError } from './tags.js';

const SHORT_LENGTHS: Buffer[] = Array.from({ length: 128 }, (_, n) => Buffer.from([n]));

/** The length octets for a value of `n` bytes. */
export function encodeLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new DerError(`invalid length ${n}`);
  if (n < 128) return SHORT_LENGTHS[n]!;
  const octets: number[] = [];
  for (let rest = n; rest > 0; rest = Math.floor(rest / 256)) octets.unshift(rest & 0xff);
  return Buffer.from([0x80 | octets.length, ...octets]);
}

/** Total size of a TLV with a one-byte tag and `n` value bytes. */
export function tlvSize(n: number): number {
  return 1 + encodeLength(n).length + n;
}

/** A TLV from a one-byte tag and the value bytes (one buffer, or parts concatenated in order). */
export function tlv(tag: number, value: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = value instanceof Uint8Array ? [value] : value;
  let size = 0;
  for (const p of parts) size += p.length;
  const len = encodeLength(size);
  const out = Buffer.allocUnsafe(1 + len.length + size);
  out[0] = tag;
  len.copy(out, 1);
  let at = 1 + len.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
