import { Rng } from '../../src/util/rng.js';

/** Attribute names of the conditional test specs (CelebA's names; any K would do). */
export const TEST_ATTRIBUTES = ['Smiling', 'Eyeglasses', 'Blond_Hair'] as const;

/** n label rows of K attributes, each +1 or -1, from `stream` of `seed` (each test its own stream). */
export function fakeLabels(n: number, k: number, seed: number, stream: string): Float32Array {
  const rng = new Rng(seed, stream);
  return Float32Array.from({ length: n * k }, () => (rng.uniform() < 0.5 ? 1 : -1));
}
