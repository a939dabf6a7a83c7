/**
 * mulberry32: a small, well-mixed, seeded 32-bit PRNG returning [0, 1), so a failing randomised
 * test can be replayed from its seed. Shared by the hub's fuzz generator and randomised unit tests.
 */
export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
