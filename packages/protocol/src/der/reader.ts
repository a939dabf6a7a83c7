/**
 * Strict DER reader.
 *
 * Invariants (each violation is a DerError, thrown before any byte outside the input is touched):
 * - Every length is definite, minimal (X.690 §10.1) and fits inside the enclosing element.
 * - Indefinite lengths (0x80) and high-tag-number form are refused.
 * - Nesting deeper than MAX_DEPTH is refused, so hostile input cannot exhaust the stack.
 * - Slices share memory with the input; nothing is copied and nothing loops on input size
 *   beyond one pass, so parse time is linear in the input.
 */
import { CONSTRUCTED, DerError, Tag, tagName } from './tags.js';
import { decodeOid } from './oid.js';
import { decodeTime } from './time.js';

export const MAX_DEPTH = 32;

export interface DerElement {
  /** The identifier octet (class, constructed bit and tag number). */
  readonly tag: number;
  readonly constructed: boolean;
  /** Bytes of tag + length octets. */
  readonly headerLength: number;
  /** The content octets. */
  readonly value: Buffer;
  /** The complete TLV, header included. */
  readonly raw: Buffer;
  readonly depth: number;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function readLength(buf: Buffer, at: number): { length: number; octets: number } {
  const first = buf[at];
  if (first === undefined) throw new DerError('truncated length');
  if (first < 0x80) return { length: first, octets: 1 };
  if (first === 0x80) throw new DerError('indefinite length');
  const count = first & 0x7f;
  if (count > 4) throw new DerError('length too large');
  if (at + 1 + count > buf.length) throw new DerError('truncated length');
  let length = 0;
  for (let i = 1; i <= count; i++) length = length * 256 + buf[at + i]!;
  if (buf[at + 1] === 0 || length < 0x80) throw new DerError('non-minimal length');
  return { length, octets: 1 + count };
}

/** A cursor over consecutive TLVs of one level. */
export class DerReader {
  readonly #buf: Buffer;
  readonly #depth: number;
  #at = 0;

  constructor(data: Uint8Array, depth = 0) {
    if (depth > MAX_DEPTH) throw new DerError('nesting too deep');
    this.#buf = asBuffer(data);
    this.#depth = depth;
  }

  get done(): boolean {
    return this.#at >= this.#buf.length;
  }

  /** The tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.#buf[this.#at];
  }

  next(): DerElement {
    const buf = this.#buf;
    const start = this.#at;
    const tag = buf[start];
    if (tag === undefined) throw new DerError('unexpected end of input');
    if ((tag & 0x1f) === 0x1f) throw new DerError('high tag number form not supported');
    const { length, octets } = readLength(buf, start + 1);
    const headerLength = 1 + octets;
    const end = start + headerLength + length;
    if (end > buf.length) throw new DerError('length past end of input');
    this.#at = end;
    return {
      tag,
      constructed: (tag & CONSTRUCTED) !== 0,
      headerLength,
      value: buf.subarray(start + headerLength, end),
      raw: buf.subarray(start, end),
      depth: this.#depth,
    };
  }

  /** The next element, which must carry `tag`. */
  expect(tag: number): DerElement {
    const el = this.next();
    if (el.tag !== tag) throw new DerError(`expected tag ${tagName(tag)}, got ${tagName(el.tag)}`);
    return el;
  }

  /** The next element if it carries `tag`, else undefined (for OPTIONAL and DEFAULT fields). */
  optional(tag: number): DerElement | undefined {
    return this.peekTag() === tag ? this.next() : undefined;
  }

  /** A reader over the content of a constructed element. */
  static of(el: DerElement): DerReader {
    if (!el.constructed) throw new DerError(`element ${tagName(el.tag)} is not constructed`);
    return new DerReader(el.value, el.depth + 1);
  }

  /** Reads `tag` and returns a reader over its content. */
  enter(tag: number): DerReader {
    return DerReader.of(this.expect(tag));
  }

  /** Asserts that nothing follows (no trailing data). */
  end(): void {
    if (!this.done) throw new DerError('trailing data');
  }
}

/** Parses `data` as exactly one element with `tag` and nothing after it. */
export function readSingle(data: Uint8Array, tag: number): DerElement {
  const reader = new DerReader(data);
  const el = reader.expect(tag);
  reader.end();
  return el;
}

/** A non-negative or negative INTEGER as unsigned bytes; rejects non-minimal encodings. */
export function readIntegerBytes(el: DerElement): { negative: boolean; bytes: Buffer } {
  if (el.tag !== Tag.INTEGER) throw new DerError('expected INTEGER');
  const v = el.value;
  if (v.length === 0) throw new DerError('empty INTEGER');
  if (v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) {
    throw new DerError('non-minimal INTEGER'); // X.690 §8.3.2
  }
  const negative = (v[0]! & 0x80) !== 0;
  return { negative, bytes: v[0] === 0 && v.length > 1 ? v.subarray(1) : v };
}

/** A non-negative INTEGER as a bigint. */
export function readUnsigned(el: DerElement): bigint {
  const { negative, bytes } = readIntegerBytes(el);
  if (negative) throw new DerError('negative INTEGER');
  return bytes.length === 0 ? 0n : BigInt('0x' + bytes.toString('hex'));
}

/** A small non-negative INTEGER (versions, path lengths). */
export function readSmallInteger(el: DerElement): number {
  const value = readUnsigned(el);
  if (value > 0x7fffffffn) throw new DerError('INTEGER too large');
  return Number(value);
}

export function readOid(el: DerElement): string {
  if (el.tag !== Tag.OID) throw new DerError('expected OBJECT IDENTIFIER');
  return decodeOid(el.value);
}

export function readBoolean(el: DerElement): boolean {
  if (el.tag !== Tag.BOOLEAN || el.value.length !== 1) throw new DerError('expected BOOLEAN');
  const b = el.value[0];
  if (b !== 0x00 && b !== 0xff) throw new DerError('non-DER BOOLEAN'); // X.690 §11.1
  return b === 0xff;
}

export function readNull(el: DerElement): void {
  if (el.tag !== Tag.NULL || el.value.length !== 0) throw new DerError('expected NULL');
}

/** BIT STRING content: the unused-bit count and the bytes (X.690 §8.6, §11.2). */
export function readBitString(el: DerElement): { unusedBits: number; bytes: Buffer } {
  if (el.tag !== Tag.BIT_STRING || el.value.length === 0) throw new DerError('expected BIT STRING');
  const unusedBits = el.value[0]!;
  const bytes = el.value.subarray(1);
  if (unusedBits > 7 || (bytes.length === 0 && unusedBits !== 0)) throw new DerError('bad unused bits');
  const last = bytes[bytes.length - 1] ?? 0;
  if ((last & ((1 << unusedBits) - 1)) !== 0) throw new DerError('non-zero unused bits');
  return { unusedBits, bytes };
}

/** A BIT STRING that must hold whole bytes (keys, signatures). */
export function readOctetAlignedBits(el: DerElement): Buffer {
  const { unusedBits, bytes } = readBitString(el);
  if (unusedBits !== 0) throw new DerError('BIT STRING is not octet-aligned');
  return bytes;
}

export function readTime(el: DerElement): Date {
  return decodeTime(el.tag, el.value);
}

