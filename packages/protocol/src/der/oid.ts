/**
 * OBJECT IDENTIFIER encoding (X.690 §8.19).
 *
 * Invariants:
 * - Encodings are cached by dotted string: OIDs are a small closed set on the hot path.
 * - Decoding rejects non-minimal sub-identifiers (a leading 0x80 octet, X.690 §8.19.2) and
 *   sub-identifiers that do not fit in a safe integer; it never returns a partial OID.
 */
import { DerError, Tag } from './tags.js';
import { tlv } from './length.js';

const encodedOids = new Map<string, Buffer>();
const MAX_CACHED_OIDS = 1024;

function base128(value: number): number[] {
  const out = [value & 0x7f];
  let rest = Math.floor(value / 128);
  while (rest > 0) {
    out.unshift((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  return out;
}

function parseArcs(dotted: string): number[] {
  if (!/^[0-2](\.(0|[1-9][0-9]*))+$/.test(dotted)) throw new DerError(`invalid OID string: ${dotted}`);
  const arcs = dotted.split('.').map(Number);
  if (arcs.some((a) => !Number.isSafeInteger(a))) throw new DerError('OID arc too large');
  const [first, second] = arcs as [number, number];
  if (first < 2 && second > 39) throw new DerError('OID second arc out of range'); // X.690 §8.19.4
  return arcs;
}

/** The OID's content octets, without tag and length. */
export function oidContent(dotted: string): Buffer {
  const arcs = parseArcs(dotted);
  const bytes = base128(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) bytes.push(...base128(arc));
  return Buffer.from(bytes);
}

/** A full OBJECT IDENTIFIER TLV, cached. */
export function oid(dotted: string): Buffer {
  const cached = encodedOids.get(dotted);
  if (cached !== undefined) return cached;
  const encoded = tlv(Tag.OID, oidContent(dotted));
  if (encodedOids.size < MAX_CACHED_OIDS) encodedOids.set(dotted, encoded);
  return encoded;
}

/** Decodes OID content octets to the dotted form. */
export function decodeOid(content: Uint8Array): string {
  if (content.length === 0) throw new DerError('empty OID');
  const values: number[] = [];
  let current = 0;
  let started = false;
  for (const byte of content) {
    if (!started && byte === 0x80) throw new DerError('non-minimal OID sub-identifier');
    started = true;
    current = current * 128 + (byte & 0x7f);
    if (!Number.isSafeInteger(current)) throw new DerError('OID sub-identifier too large');
    if ((byte & 0x80) === 0) {
      values.push(current);
      current = 0;
      started = false;
    }
  }
  if (started) throw new DerError('truncated OID sub-identifier');
  const head = values[0]!;
  const first = head < 80 ? Math.floor(head / 40) : 2;
  return [first, head - first * 40, ...values.slice(1)].join('.');
}
