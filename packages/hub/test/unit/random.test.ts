// The pooled CSPRNG draws (src/random.ts, ADR 0031): every draw fresh, across refills, and a bad
// range refused without writing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fillRandom, randomBytesPooled } from '../../src/random.js';

test('pooled draws never repeat and never hand out the zeroed, already-used bytes, across many refills', () => {
  const seen = new Set<string>();
  let zeros = 0;
  let total = 0;
  for (let i = 0; i < 5000; i++) { // 5000 × 10 bytes = 12 refills of the 4 KiB pool
    const b = randomBytesPooled(10);
    assert.equal(b.length, 10);
    const hex = b.toString('hex');
    assert.ok(!seen.has(hex), `draw ${i} repeated an earlier draw`);
    seen.add(hex);
    for (const x of b) if (x === 0) zeros++;
    total += b.length;
  }
  // Uniform bytes are 0 with p = 1/256 (≈ 195 of 50,000); used pool bytes are zeroed, so handing
  // them out again would show up here as far more zeros.
  assert.ok(zeros < total / 100, `${zeros} zero bytes in ${total}`);
});

test('fillRandom fills exactly the given range, and large draws bypass the pool', () => {
  const target = Buffer.alloc(64, 0xaa);
  fillRandom(target, 8, 16);
  assert.deepEqual(target.subarray(0, 8), Buffer.alloc(8, 0xaa));
  assert.deepEqual(target.subarray(24), Buffer.alloc(40, 0xaa));
  assert.notDeepEqual(target.subarray(8, 24), Buffer.alloc(16, 0xaa));
  const big = randomBytesPooled(10_000);
  assert.ok(big.subarray(0, 5000).compare(big.subarray(5000)) !== 0);
});

test('a range outside the target is refused and nothing is written', () => {
  const target = Buffer.alloc(8, 0x11);
  for (const [offset, length] of [[-1, 4], [4, 5], [0, 9], [0, 1.5]] as const) {
    assert.throws(() => fillRandom(target, offset, length), RangeError);
    assert.deepEqual(target, Buffer.alloc(8, 0x11));
  }
});
