// Robustness: hostile bytes through parseCsr + verifyCsrSignature must only ever produce a
// coded FleetkeyError (or a valid parse), never another exception, a hang or an out-of-bounds read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FleetkeyError, parseCsr, seededRandom, verifyCsrSignature } from '../../src/index.js';
import { csrFixture } from './fixtures.js';

/** mulberry32 (`seededRandom`): a failure is reproducible from its seed. */
const prng = seededRandom;

function mutate(base: Buffer, rand: () => number): Buffer {
  const pick = (n: number): number => Math.floor(rand() * n);
  const out = Buffer.from(base);
  switch (pick(6)) {
    case 0: // flip bits
      for (let i = 0, n = 1 + pick(4); i < n; i++) out[pick(out.length)]! ^= 1 << pick(8);
      return out;
    case 1: // overwrite a byte with a length-ish value
      out[pick(out.length)] = [0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff][pick(7)]!;
      return out;
    case 2: // truncate
      return out.subarray(0, pick(out.length));
    case 3: // insert random bytes
      return Buffer.concat([out.subarray(0, pick(out.length)), Buffer.from([pick(256), pick(256)]), out.subarray(pick(out.length))]);
    case 4: // duplicate a slice
      {
        const at = pick(out.length);
        return Buffer.concat([out.subarray(0, at), out.subarray(pick(at + 1)), out.subarray(at)]);
      }
    default: // random tag bytes at TLV-ish offsets
      out[pick(Math.min(out.length, 40))] = [0x30, 0x31, 0xa0, 0x02, 0x03, 0x05, 0x06][pick(7)]!;
      return out;
  }
}

test('20,000 mutated and truncated CSRs raise only FleetkeyError, in bounded time', async () => {
  const bases = ['p256', 'ed25519', 'rsa2048', 'hostile-p256'].map(csrFixture);
  const rand = prng(0x5eed);
  const started = performance.now();
  const seen = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const input = mutate(bases[i % bases.length]!, rand);
    let outcome = 'accepted';
    try {
      const csr = parseCsr(input);
      if (i % 8 === 0) await verifyCsrSignature(csr); // verification is slow; sample it
    } catch (err) {
      if (!(err instanceof FleetkeyError)) assert.fail(`case ${i}: ${String(err)} for ${input.toString('hex')}`);
      outcome = err.code;
    }
    seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
  }
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 60_000, `took ${elapsed} ms`);
  assert.ok((seen.get('CSR_MALFORMED') ?? 0) > 10_000, JSON.stringify([...seen]));
});
