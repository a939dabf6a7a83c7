/**
 * The non-throwing JSON check of the ingest path (telemetry/json-text.ts, ADR 0023) gives the
 * same answer as the reference it replaced — strict UTF-8 decode + JSON.parse in try/catch, top
 * level object or array — on fixed cases, on generated JSON values, and on byte mutations of
 * them (seeded, so a failure is replayed by its seed and index).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isJsonSyntax, jsonTextOf } from '../../src/telemetry/json-text.js';
import { mulberry32 } from '../helpers/prng.js';

const strict = new TextDecoder('utf-8', { fatal: true });

/** The former implementation, kept as the oracle. */
function reference(payload: Buffer): string | null {
  let i = 0;
  while (i < payload.length && (payload[i] === 0x20 || payload[i] === 0x09 || payload[i] === 0x0a || payload[i] === 0x0d)) i++;
  if (payload[i] !== 0x7b && payload[i] !== 0x5b) return null;
  try {
    const text = strict.decode(payload);
    JSON.parse(text);
    return text;
  } catch {
    return null;
  }
}

const ATOMS = ['0', '-0', '1.5', '-12e+3', '7E-2', '1e5', 'true', 'false', 'null', '""', '"a\\"b"', '"\\u00e9\\ud800"', '"é€😀"', '"\\n\\t\\/\\\\"', '"\u2028"'];
const SPACE = ['', ' ', '\n', '\t', '\r\n  '];

function generate(rnd: () => number, depth: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  if (depth > 4 || rnd() < 0.3) return pick(ATOMS);
  const n = Math.floor(rnd() * 4);
  const items = Array.from({ length: n }, () => generate(rnd, depth + 1));
  if (rnd() < 0.5) return `[${items.map((x) => pick(SPACE) + x + pick(SPACE)).join(',')}]`;
  return `{${items.map((x, k) => `${pick(SPACE)}"k${k}"${pick(SPACE)}:${x}`).join(',')}}`;
}

/** Flips, inserts or deletes a few bytes, including the ones JSON cares about and bad UTF-8. */
function mutate(rnd: () => number, b: Buffer): Buffer {
  const special = [0x22, 0x5c, 0x2c, 0x3a, 0x7b, 0x7d, 0x5b, 0x5d, 0x2e, 0x65, 0x2d, 0x30, 0x31, 0x75, 0x00, 0x1f, 0x80, 0xc3, 0xed, 0xff, 0x20];
  const out = [...b];
  for (let k = 1 + Math.floor(rnd() * 3); k > 0; k--) {
    const at = Math.floor(rnd() * (out.length + 1));
    const byte = special[Math.floor(rnd() * special.length)]!;
    const op = rnd();
    if (op < 0.4 && at < out.length) out[at] = byte;
    else if (op < 0.7) out.splice(at, 0, byte);
    else out.splice(at, 1);
  }
  return Buffer.from(out);
}

describe('jsonTextOf (non-throwing RFC 8259 check)', () => {
  test('fixed cases agree with JSON.parse, including the bench payload and edge numbers', () => {
    const cases = ['{"seq":000000000001,"v":   }', '{}', '[]', ' [ ] ', '{"a":1,}', '[1,]', '[01]', '[-]', '[1.]', '[1e]', '[.5]', '[+1]', '["\t"]', '["\\x"]', '["\\u12G4"]',
      '{"a" 1}', '{1:2}', '[1 2]', '[true false]', '[nul]', '[truex]', '{"a":1}}', '[[[[[]]]]]', '[' .repeat(10_000) + ']'.repeat(10_000), '{"a":[{"b":null}]}x', '21.5', '"text"', ''];
    for (const c of cases) assert.equal(jsonTextOf(Buffer.from(c)), reference(Buffer.from(c)), c.slice(0, 40));
  });

  test('generated JSON and byte mutations of it agree with the reference (seed 0x15a, 20,000 inputs)', () => {
    const rnd = mulberry32(0x15a);
    for (let i = 0; i < 10_000; i++) {
      const valid = Buffer.from(generate(rnd, 0), 'utf8');
      assert.equal(jsonTextOf(valid), reference(valid), `valid #${i}: ${valid.toString('latin1')}`);
      const bad = mutate(rnd, valid);
      assert.equal(jsonTextOf(bad), reference(bad), `mutated #${i}: ${bad.toString('hex')}`);
    }
  });

  test('top-level scalars are JSON syntax but not stored as JSON text', () => {
    for (const s of ['1', '"x"', 'null', ' true ']) {
      assert.equal(isJsonSyntax(Buffer.from(s)), true, s);
      assert.equal(jsonTextOf(Buffer.from(s)), null, s);
    }
  });
});
