/**
 * Is a telemetry payload a JSON text (RFC 8259) whose top level is an object or array? A syntax
 * check over the bytes that never throws and builds nothing, on the QoS 1 ingest path
 * (ADR 0023). It replaces `JSON.parse` inside try/catch: for a payload that is *not* JSON, V8's
 * SyntaxError (message with a source excerpt, stack trace) cost ~40 µs per message, 40 % of the
 * hub's CPU per message in bench:mqtt, whose payloads are not JSON.
 *
 * Invariants:
 * - `jsonTextOf(p)` is the payload as a string exactly when `isUtf8(p)` and
 *   `JSON.parse(p.toString('utf8'))` succeeds and the first non-whitespace byte is `{` or `[`;
 *   otherwise null. Same answers as the former implementation (property test
 *   telemetry-json-text.test.ts compares them on generated and mutated inputs).
 * - Grammar (RFC 8259 §2–§7): ws = SP / HTAB / LF / CR; literals true, false, null; numbers
 *   `-? (0 | [1-9][0-9]*) (.[0-9]+)? ([eE][+-]?[0-9]+)?`; strings hold no byte < 0x20 and only the
 *   escapes `\" \\ \/ \b \f \n \r \t \uXXXX` (lone-surrogate escapes are legal, as in JSON.parse).
 *   Bytes ≥ 0x80 inside strings are checked by `isUtf8` over the whole payload (§8.1).
 * - No recursion: nesting is an explicit stack, so depth is bounded only by the payload size.
 */
import { isUtf8 } from 'node:buffer';

const OBJECT = 1;
const ARRAY = 2;

const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;
const isHex = (c: number | undefined): boolean => c !== undefined && (isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));

function ws(b: Uint8Array, i: number): number {
  while (isWs(b[i])) i++;
  return i;
}

/** `i` at the opening quote; returns the index after the closing quote, or -1. */
function string(b: Uint8Array, i: number): number {
  for (i++; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c !== 0x5c) continue;
    const e = b[++i];
    if (e === 0x75) {
      if (!(isHex(b[i + 1]) && isHex(b[i + 2]) && isHex(b[i + 3]) && isHex(b[i + 4]))) return -1;
      i += 4;
    } else if (!(e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74)) {
      return -1;
    }
  }
  return -1;
}

function digits(b: Uint8Array, i: number): number {
  if (!isDigit(b[i])) return -1;
  while (isDigit(b[i])) i++;
  return i;
}

function number(b: Uint8Array, i: number): number {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if ((i = digits(b, i)) < 0) return -1;
  if (b[i] === 0x2e && (i = digits(b, i + 1)) < 0) return -1;
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    i = digits(b, i);
  }
  return i;
}

function literal(b: Uint8Array, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word.charCodeAt(k)) return -1;
  return i + word.length;
}

function scalar(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c === 0x22) return string(b, i);
  if (c === 0x74) return literal(b, i, 'true');
  if (c === 0x66) return literal(b, i, 'false');
  if (c === 0x6e) return literal(b, i, 'null');
  return c === 0x2d || isDigit(c) ? number(b, i) : -1;
}

/** `i` at a member's key; returns the index of its value (after `:` and whitespace), or -1. */
function member(b: Uint8Array, i: number): number {
  if (b[i] !== 0x22 || (i = string(b, i)) < 0) return -1;
  i = ws(b, i);
  return b[i] === 0x3a ? ws(b, i + 1) : -1;
}

/** After a value: closes containers and passes a comma; the index of the next value, -1, or -2 at the end. */
function afterValue(b: Uint8Array, i: number, stack: number[]): number {
  for (;;) {
    i = ws(b, i);
    const top = stack[stack.length - 1];
    if (top === undefined) return i === b.length ? -2 : -1;
    const c = b[i];
    if (c === 0x2c) return top === OBJECT ? member(b, ws(b, i + 1)) : ws(b, i + 1);
    if ((top === OBJECT && c === 0x7d) || (top === ARRAY && c === 0x5d)) {
      stack.pop();
      i++;
    } else {
      return -1;
    }
  }
}

/** RFC 8259 JSON-text syntax over bytes (UTF-8 not checked here); top level any value. */
export function isJsonSyntax(b: Uint8Array): boolean {
  const stack: number[] = [];
  let i = ws(b, 0);
  for (;;) {
    const c = b[i];
    if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      i = ws(b, i + 1);
      if (b[i] === close) {
        i++;
      } else {
        stack.push(c === 0x7b ? OBJECT : ARRAY);
        if (c === 0x7b && (i = member(b, i)) < 0) return false;
        continue;
      }
    } else if ((i = scalar(b, i)) < 0) {
      return false;
    }
    i = afterValue(b, i, stack);
    if (i < 0) return i === -2;
  }
}

/** The payload as JSON text when it is valid UTF-8 JSON whose top level is an object or array. */
export function jsonTextOf(payload: Buffer): string | null {
  const first = payload[ws(payload, 0)];
  if (first !== 0x7b && first !== 0x5b) return null; // '{' or '['
  return isJsonSyntax(payload) && isUtf8(payload) ? payload.toString('utf8') : null;
}
