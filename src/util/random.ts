/**
 * Seeded, platform-independent randomness, the one home for it: a keyed generator (`Rng`, sfc32
 * seeded through `hashInts`) for datasets and augmentations, and a sequential one (`seededRng`,
 * mulberry32) for searches and shuffle buffers.
 *
 * Everything random in ringpipe derives from integers only (a seed, an epoch, a sample index),
 * never from `Math.random()` or from scheduling, so that a pipeline gives byte-identical output
 * whatever its number of replicas or the order in which they run.
 */
import { InvalidArgumentError } from '../errors.js';

const M32 = 0x1_0000_0000;

/** A 32-bit avalanche hash (lowbias32, Chris Wellons): every input bit affects every output bit. */
export function mix32(x: number): number {
  x >>>= 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Hashes a list of non-negative integers (each below 2^53) into 32 bits. Order matters.
 * Used to derive one independent stream per (seed, purpose, epoch, index).
 */
export function hashInts(...values: number[]): number {
  let h = 0x9e3779b9;
  for (const v of values) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`hashInts: expected a non-negative safe integer, got ${v}`);
    const lo = v % M32;
    const hi = Math.floor(v / M32);
    h = mix32(h ^ mix32(lo + 0x6a09e667));
    h = mix32(h ^ mix32(hi + 0xbb67ae85));
  }
  return h;
}

/**
 * A small, fast PRNG (sfc32, from PractRand) with a 128-bit state. Seeded through
 * {@link hashInts}, so nearby seeds give unrelated streams.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** @param keys integers identifying the stream, e.g. `(seed, STREAM_AUGMENT, epoch, index)` */
  constructor(...keys: number[]) {
    const h = hashInts(...keys);
    this.a = mix32(h ^ 0x243f6a88);
    this.b = mix32(h ^ 0x85a308d3);
    this.c = mix32(h ^ 0x13198a2e);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** A uniform integer in [0, 2^32). */
  nextU32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** A uniform float in [0, 1) with 53 bits of precision. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** A uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** A uniform integer in [lo, hi) (hi exclusive), as Python's `randint(lo, hi - 1)`. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
}

/** Stream tags: independent random streams for independent purposes under one user seed. */
export const STREAM_SHUFFLE = 1;
export const STREAM_AUGMENT = 2;

/**
 * A seeded permutation of `0..n-1` (Fisher-Yates). The same (n, seed, epoch) always gives the same
 * permutation on every platform.
 */
export function permutation(n: number, seed: number, epoch = 0): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rng = new Rng(seed, STREAM_SHUFFLE, epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(0, i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/** A function returning uniform numbers in [0, 1). */
export type Uniform = () => number;

/** A sequential mulberry32 generator for a 32-bit seed: the same seed gives the same sequence everywhere. */
export function seededRng(seed: number): Uniform {
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

/** Shuffles `items` in place (Fisher-Yates) with `next` and returns it. */
export function shuffleInPlace<T>(items: T[] | Uint32Array | Int32Array, next: Uniform): typeof items {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
  return items;
}
