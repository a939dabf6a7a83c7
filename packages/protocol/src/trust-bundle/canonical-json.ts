/**
 * Canonical JSON for signed trust bundles (ADR 0020): RFC 8785 (JCS) restricted to the values a
 * bundle needs — objects, arrays, strings, booleans and safe integers.
 *
 * Invariants:
 * - `encodeCanonical` sorts object members by UTF-16 code units (RFC 8785 §3.2.3), emits no
 *   whitespace, escapes strings as ECMAScript JSON.stringify does (RFC 8785 §3.2.2.2) and writes
 *   integers in their shortest decimal form. Floats, NaN, null, undefined and non-plain objects
 *   are refused, so one value has exactly one encoding.
 * - `parseCanonical` accepts bytes only when they are valid UTF-8 and re-encode to exactly the
 *   same bytes: duplicate member names (JSON.parse keeps the last), whitespace, escapes written
 *   differently or reordered members are all refused. What was signed is what was parsed.
 * - Nesting is bounded (MAX_JSON_DEPTH) so a hostile document cannot exhaust the stack.
 */
export type CanonicalValue = string | number | boolean | readonly CanonicalValue[] | { readonly [key: string]: CanonicalValue };

export const MAX_JSON_DEPTH = 8;

export class CanonicalJsonError extends Error {
  override readonly name = 'CanonicalJsonError';
}

function encodeValue(value: unknown, depth: number): string {
  if (depth > MAX_JSON_DEPTH) throw new CanonicalJsonError(`nested deeper than ${MAX_JSON_DEPTH}`);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new CanonicalJsonError('only safe integers are allowed');
    return Object.is(value, -0) ? '0' : String(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => encodeValue(v, depth + 1)).join(',')}]`;
  if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)); // UTF-16 code unit order, RFC 8785 §3.2.3
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${encodeValue(v, depth + 1)}`).join(',')}}`;
  }
  throw new CanonicalJsonError(`a ${value === null ? 'null' : typeof value} is not allowed`);
}

/** The canonical UTF-8 bytes of `value` (members whose value is undefined are left out). */
export function encodeCanonical(value: unknown): Buffer {
  return Buffer.from(encodeValue(value, 0), 'utf8');
}

/** Parses `bytes`, which must be the canonical encoding of what they contain. */
export function parseCanonical(bytes: Uint8Array): CanonicalValue {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new CanonicalJsonError('not valid UTF-8', { cause });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new CanonicalJsonError('not JSON', { cause });
  }
  if (!encodeCanonical(parsed).equals(Buffer.from(bytes))) throw new CanonicalJsonError('not in canonical form');
  return parsed as CanonicalValue;
}
