/**
 * mulberry32: a small, well-mixed, seeded 32-bit PRNG returning numbers in [0, 1), so that jitter
 * in simulations and a failing randomised test can be replayed from a seed. Not for secrets: use
 * node:crypto's randomBytes/randomInt for anything an attacker must not predict.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
