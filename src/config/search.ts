// Search spaces: the combinations of grid-search and random-search items.
import { createHash } from 'node:crypto';
import { canonicalJson } from '../cache/hash.js';

/** Fields of an item that are not parameters. */
const META = new Set(['type', '$comment']);
const RANDOM_META = new Set(['type', '$comment', 'count', 'seed']);

/** The parameter fields of an item of type `parameters`: every field but `type` and `$comment`. */
export function parameterValues(def: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(def)) if (!META.has(k)) out[k] = v;
  return out;
}

/** The combinations of a search item, by index, without holding them all. */
export interface SearchSpace {
  /** Number of combinations. */
  readonly size: number;
  /** The combination at `index` (0 <= index < size). */
  at(index: number): Record<string, unknown>;
}

/** The fields of a grid item with their lists, in the order of the file. */
function gridFields(def: Record<string, unknown>): [string, unknown[]][] {
  return Object.entries(def).filter(([k]) => !META.has(k)) as [string, unknown[]][];
}

/** Number of combinations of a grid item: the product of its lists' lengths. */
export function gridSize(def: Record<string, unknown>): number {
  return gridFields(def).reduce((n, [, values]) => n * values.length, 1);
}

/**
 * A grid item's combinations in the order of {@link gridCombinations}, decoded from their index
 * (mixed radix, last field fastest): a grid of 10^6 combinations costs nothing until one is asked for.
 */
export function gridSpace(def: Record<string, unknown>): SearchSpace {
  const fields = gridFields(def);
  return {
    size: gridSize(def),
    at(index: number) {
      const picked: unknown[] = new Array(fields.length);
      let rest = index;
      for (let f = fields.length - 1; f >= 0; f--) {
        const values = fields[f]![1];
        picked[f] = values[rest % values.length];
        rest = Math.floor(rest / values.length);
      }
      const combo: Record<string, unknown> = {};
      fields.forEach(([name], f) => (combo[name] = picked[f]));
      return combo;
    },
  };
}

/** A random-search item's combinations (sampled on first use: identical samples are dropped, so their number is known only then). */
export function randomSpace(def: Record<string, unknown>): SearchSpace {
  let combos: Record<string, unknown>[] | undefined;
  const all = () => (combos ??= randomCombinations(def));
  return {
    get size() {
      return all().length;
    },
    at: (index: number) => all()[index]!,
  };
}

/**
 * The cartesian product of a grid item's lists, in the order of the file (last field varies
 * fastest). A grid with fields a: [1, 2] and b: ["x", "y"] gives 4 combinations.
 */
export function gridCombinations(def: Record<string, unknown>): Record<string, unknown>[] {
  const space = gridSpace(def);
  return Array.from({ length: space.size }, (_, i) => space.at(i));
}

/**
 * `count` combinations of a random-search item, sampled deterministically from `seed`. Each value
 * is drawn from a hash of (seed, field, index), so samples depend neither on the order of the fields
 * nor on `count` (raising `count` keeps the earlier samples). Identical combinations are dropped.
 */
export function randomCombinations(def: Record<string, unknown>): Record<string, unknown>[] {
  const count = Number(def.count);
  const seed = def.seed === undefined ? 0 : Number(def.seed);
  const fields = Object.keys(def)
    .filter((k) => !RANDOM_META.has(k))
    .sort();
  const out: Record<string, unknown>[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const combo: Record<string, unknown> = {};
    for (const f of fields) combo[f] = sample(def[f], uniform01(seed, f, i));
    const id = canonicalJson(combo);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(combo);
  }
  return out;
}

/** A number in [0, 1) from the hash of (seed, field, index). */
function uniform01(seed: number, field: string, index: number): number {
  const h = createHash('sha256').update(`${seed}\0${field}\0${index}`).digest();
  // 53 random bits
  return (h.readUInt32BE(0) * 2 ** 21 + (h.readUInt32BE(4) >>> 11)) / 2 ** 53;
}

function sample(dist: unknown, u: number): unknown {
  if (Array.isArray(dist)) return dist[Math.floor(u * dist.length)];
  const d = dist as Record<string, unknown>;
  if ('choice' in d) {
    const c = d.choice as unknown[];
    return c[Math.floor(u * c.length)];
  }
  if ('uniform' in d) {
    const [lo, hi] = d.uniform as [number, number];
    return lo + u * (hi - lo);
  }
  if ('log_uniform' in d) {
    const [lo, hi] = d.log_uniform as [number, number];
    return Math.exp(Math.log(lo) + u * (Math.log(hi) - Math.log(lo)));
  }
  if ('int' in d) {
    const [lo, hi] = d.int as [number, number];
    return lo + Math.floor(u * (hi - lo + 1));
  }
  throw new TypeError(`not a distribution: ${JSON.stringify(dist)}`);
}
