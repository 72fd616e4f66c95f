/**
 * Search spaces: grid search (cartesian product of value lists) and seeded random search over
 * distributions. Every combination is a trial whose id is a hash of its canonical parameters, so the
 * same parameters get the same id in every run, whatever the key order.
 */
import { createHash } from 'node:crypto';
import { configure } from 'safe-stable-stringify';
import { InvalidArgumentError } from '../errors.js';
import { seededRng, type Uniform } from '../util/random.js';

/** Trial parameters: JSON values. */
export type Params = Record<string, unknown>;

/** One trial of a sweep. */
export interface Trial {
  /** Stable id: first 12 hex digits of sha256 of the canonical JSON of `params`. */
  id: string;
  /** 0-based position in the sweep. */
  index: number;
  params: Params;
}

/** Grid search: every parameter lists its values; one trial per combination. */
export type GridSpace = Record<string, readonly unknown[]>;

/** A distribution to sample a parameter from. */
export type Distribution =
  /** One of the values, equally likely. */
  | { choice: readonly unknown[] }
  /** Uniform in [low, high). */
  | { uniform: readonly [number, number] }
  /** Log-uniform in [low, high) (low > 0), e.g. learning rates. */
  | { loguniform: readonly [number, number] }
  /** Uniform integer in [low, high], inclusive. */
  | { int: readonly [number, number] };

/** Random search space: a distribution, or a fixed value, per parameter. */
export type RandomSpace = Record<string, Distribution | { value: unknown }>;

/** A seeded random search: `trials` parameter sets drawn from `space`. */
export interface RandomSearchOptions {
  space: RandomSpace;
  /** Number of trials (distinct parameter sets). */
  trials: number;
  /** Seed of the sampler. Default 0. */
  seed?: number;
}

const canonical = configure({ deterministic: true, strict: true, bigint: false, circularValue: TypeError });

/** Canonical JSON of parameters (sorted keys; throws on values JSON cannot represent). */
export function canonicalParams(params: Params): string {
  try {
    const s = canonical(params);
    if (typeof s !== 'string') throw new TypeError('not a JSON object');
    return s;
  } catch (e) {
    throw new InvalidArgumentError(`trial parameters must be JSON values (${(e as Error).message})`);
  }
}

/** Stable trial id of `params`. */
export function trialId(params: Params): string {
  return createHash('sha256').update(canonicalParams(params)).digest('hex').slice(0, 12);
}

/** Makes trials from parameter sets, rejecting duplicates. */
export function makeTrials(list: readonly Params[], fixed: Params = {}): Trial[] {
  const seen = new Map<string, number>();
  return list.map((p, index) => {
    if (!p || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgumentError(`trial ${index}: parameters must be an object`);
    const params = { ...fixed, ...p };
    const id = trialId(params);
    const prev = seen.get(id);
    if (prev !== undefined) throw new InvalidArgumentError(`trials ${prev} and ${index} have the same parameters ${canonicalParams(params)}`);
    seen.set(id, index);
    return { id, index, params };
  });
}

/** Cartesian product of a grid, in key order with the last key varying fastest. */
export function gridSearch(grid: GridSpace, fixed: Params = {}): Trial[] {
  if (!grid || typeof grid !== 'object' || Array.isArray(grid)) throw new InvalidArgumentError('grid must be an object of value lists');
  const keys = Object.keys(grid);
  for (const k of keys) {
    const v = grid[k];
    if (!Array.isArray(v)) throw new InvalidArgumentError(`grid.${k} must be an array of values, got ${JSON.stringify(v)}`);
    if (!v.length) throw new InvalidArgumentError(`grid.${k} is empty: a grid with an empty axis has no trials`);
    const dup = v.findIndex((x, i) => v.findIndex((y) => canonicalParams({ x: y }) === canonicalParams({ x })) !== i);
    if (dup >= 0) throw new InvalidArgumentError(`grid.${k} lists ${JSON.stringify(v[dup])} twice`);
    if (k in fixed) throw new InvalidArgumentError(`parameter '${k}' is both fixed and in the grid`);
  }
  let combos: Params[] = [{}];
  for (const k of keys) combos = combos.flatMap((c) => grid[k]!.map((v) => ({ ...c, [k]: v })));
  return makeTrials(combos, fixed);
}

/**
 * Seeded random search: `trials` distinct parameter sets, parameters drawn in sorted key order (so
 * the result depends on the seed and the space, not on key order).
 */
export function randomSearch(options: RandomSearchOptions, fixed: Params = {}): Trial[] {
  const { space, trials } = options;
  if (!Number.isInteger(trials) || trials < 1) throw new InvalidArgumentError(`random.trials must be an integer >= 1, got ${trials}`);
  if (!space || typeof space !== 'object') throw new InvalidArgumentError('random.space must be an object of distributions');
  const keys = Object.keys(space).sort();
  const samplers = keys.map((k) => sampler(k, space[k]!));
  const rng = seededRng(options.seed ?? 0);
  const out: Params[] = [];
  const ids = new Set<string>();
  let attempts = 0;
  while (out.length < trials) {
    if (++attempts > trials * 100) {
      throw new InvalidArgumentError(`random search: could not draw ${trials} distinct parameter sets from this space (got ${out.length})`);
    }
    const p: Params = {};
    keys.forEach((k, i) => (p[k] = samplers[i]!(rng)));
    const id = trialId({ ...fixed, ...p });
    if (ids.has(id)) continue;
    ids.add(id);
    out.push(p);
  }
  return makeTrials(out, fixed);
}

function sampler(key: string, d: Distribution | { value: unknown }): (rng: Uniform) => unknown {
  const bad = (why: string) => new InvalidArgumentError(`random.space.${key}: ${why}`);
  if (!d || typeof d !== 'object') throw bad('expected { choice }, { uniform }, { loguniform }, { int } or { value }');
  const range = (r: unknown): [number, number] => {
    if (!Array.isArray(r) || r.length !== 2 || !r.every((x) => typeof x === 'number' && Number.isFinite(x)) || !(r[0] < r[1])) {
      throw bad(`range must be [low, high] with low < high, got ${JSON.stringify(r)}`);
    }
    return [r[0], r[1]];
  };
  if ('value' in d) return () => d.value;
  if ('choice' in d) {
    const c = d.choice;
    if (!Array.isArray(c) || !c.length) throw bad('choice must be a non-empty array');
    return (rng) => c[Math.floor(rng() * c.length)];
  }
  if ('uniform' in d) {
    const [lo, hi] = range(d.uniform);
    return (rng) => lo + (hi - lo) * rng();
  }
  if ('loguniform' in d) {
    const [lo, hi] = range(d.loguniform);
    if (lo <= 0) throw bad('loguniform needs low > 0');
    const a = Math.log(lo);
    const b = Math.log(hi);
    return (rng) => Math.exp(a + (b - a) * rng());
  }
  if ('int' in d) {
    const [lo, hi] = range(d.int);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) throw bad('int range needs integer bounds');
    return (rng) => lo + Math.floor(rng() * (hi - lo + 1));
  }
  throw bad(`unknown distribution ${JSON.stringify(d)}`);
}

/** Splits trials into waves of at most `concurrency` trials, in order. */
export function waves<T>(trials: readonly T[], concurrency: number): T[][] {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError(`concurrency must be an integer >= 1, got ${concurrency}`);
  const out: T[][] = [];
  for (let i = 0; i < trials.length; i += concurrency) out.push(trials.slice(i, i + concurrency));
  return out;
}
