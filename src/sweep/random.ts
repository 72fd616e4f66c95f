/** Seeded pseudo-random numbers (mulberry32): the same seed gives the same sequence everywhere. */
import { InvalidArgumentError } from '../errors.js';

/** A function returning uniform numbers in [0, 1). */
export type Rng = () => number;

/** mulberry32 generator for a 32-bit seed. */
export function seededRng(seed: number): Rng {
  if (!Number.isInteger(seed)) throw new InvalidArgumentError(`seed must be an integer, got ${seed}`);
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Shuffles `items` in place (Fisher-Yates) and returns it. */
export function shuffleInPlace<T>(items: T[] | Uint32Array | Int32Array, rng: Rng): typeof items {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}

/** A permutation of 0..n-1 for `seed`. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return shuffleInPlace(p, seededRng(seed)) as Uint32Array;
}
