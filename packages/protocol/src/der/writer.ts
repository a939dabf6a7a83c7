/**
 * DER writer: each function returns one complete TLV as a Buffer (X.690 §10 distinguished rules).
 *
 * Invariants:
 * - INTEGERs are minimal two's complement; this writer only produces non-negative integers,
 *   which is all X.509 needs (serials, versions, path lengths, RSA numbers).
 * - SET OF values are sorted by their encodings (X.690 §11.6).
 * - BOOLEAN TRUE is 0xFF (X.690 §11.1). Restricted strings are checked against their alphabets.
 */
import { DerError, Tag, contextTag, CONSTRUCTED } from './tags.js';
import { tlv } from './length.js';

export { oid } from './oid.js';
export { utcTime, generalizedTime, x509Time } from './time.js';
export { tlv, encodeLength } from './length.js';

export function sequence(...items: readonly Uint8Array[]): Buffer {
  return tlv(Tag.SEQUENCE, items);
}

/** SET OF: elements are sorted by their DER encodings (X.690 §11.6). */
export function setOf(items: readonly Uint8Array[]): Buffer {
  const sorted = [...items].sort((a, b) => Buffer.compare(a, b));
  return tlv(Tag.SET, sorted);
}

/** Alias of `setOf`: every SET fleetkey writes is a SET OF. */
export const set = setOf;

function bigintBytes(value: bigint): Buffer {
  if (value < 0n) throw new DerError('negative INTEGER not supported');
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  return Buffer.from(hex, 'hex');
}

/** Minimal content octets of a non-negative integer given as unsigned big-endian bytes. */
export function unsignedIntegerContent(magnitude: Uint8Array): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const body = Buffer.from(magnitude.subarray(start));
  if (body.length === 0) return Buffer.from([0]);
  return (body[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), body]) : body;
}

/** A non-negative INTEGER from a number, a bigint, or unsigned big-endian bytes. */
export function integer(value: number | bigint | Uint8Array): Buffer {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new DerError('INTEGER is not a safe integer');
    value = BigInt(value);
  }
  const magnitude = typeof value === 'bigint' ? bigintBytes(value) : value;
  return tlv(Tag.INTEGER, unsignedIntegerContent(magnitude));
}

export function boolean(value: boolean): Buffer {
  return Buffer.from([Tag.BOOLEAN, 1, value ? 0xff : 0x00]);
}

const NULL_TLV = Buffer.from([Tag.NULL, 0]);
export function derNull(): Buffer {
  return NULL_TLV;
}

export function octetString(value: Uint8Array): Buffer {
  return tlv(Tag.OCTET_STRING, value);
}

/** BIT STRING from whole bytes; `unusedBits` of the last byte must be zero (X.690 §11.2.1). */
export function bitString(bytes: Uint8Array, unusedBits = 0): Buffer {
  if (!Number.isInteger(unusedBits) || unusedBits < 0 || unusedBits > 7) throw new DerError('bad unused bits');
  if (bytes.length === 0 && unusedBits !== 0) throw new DerError('unused bits in empty BIT STRING');
  const last = bytes[bytes.length - 1] ?? 0;
  if ((last & ((1 << unusedBits) - 1)) !== 0) throw new DerError('unused bits must be zero');
  return tlv(Tag.BIT_STRING, [Buffer.from([unusedBits]), bytes]);
}

const LONE_SURROGATE_RE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function utf8String(value: string): Buffer {
  if (LONE_SURROGATE_RE.test(value)) throw new DerError('lone surrogate in UTF8String');
  return tlv(Tag.UTF8_STRING, Buffer.from(value, 'utf8'));
}

/** PrintableString alphabet (X.680 §41.4). */
export const PRINTABLE_RE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

export function printableString(value: string): Buffer {
  if (!PRINTABLE_RE.test(value)) throw new DerError('character outside PrintableString');
  return tlv(Tag.PRINTABLE_STRING, Buffer.from(value, 'latin1'));
}

export function ia5String(value: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(value)) throw new DerError('character outside IA5String');
  return tlv(Tag.IA5_STRING, Buffer.from(value, 'latin1'));
}

/** `[n] EXPLICIT inner`: a constructed context tag wrapping one complete TLV. */
export function explicit(tagNumber: number, inner: Uint8Array): Buffer {
  return tlv(contextTag(tagNumber, true), inner);
}

/** `[n] IMPLICIT`: the content octets of the underlying type under a context tag. */
export function implicit(tagNumber: number, content: Uint8Array | readonly Uint8Array[], constructed: boolean): Buffer {
  return tlv(contextTag(tagNumber, constructed), content);
}

/** Re-tags a complete TLV as `[n] IMPLICIT`, keeping its constructed bit and content. */
export function retag(tagNumber: number, element: Uint8Array): Buffer {
  const out = Buffer.from(element);
  if (out.length < 2) throw new DerError('element too short to re-tag');
  out[0] = contextTag(tagNumber, (out[0]! & CONSTRUCTED) !== 0);
  return out;
}
