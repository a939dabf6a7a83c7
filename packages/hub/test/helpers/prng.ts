/**
 * mulberry32: a small, well-mixed, seeded 32-bit PRNG returning [0, 1), so a failing randomised
 * test can be replayed from its seed (`seededRandom` of @fleetkey/protocol). Shared by the hub's fuzz
 * generator and randomised unit tests.
 */
import { seededRandom } from '@fleetkey/protocol';

export type Rng = () => number;

export const mulberry32: (seed: number) => Rng = seededRandom;
