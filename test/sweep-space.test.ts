import { describe, expect, it } from 'vitest';
import { permutation, seededRng } from '../src/util/random.js';
import { canonicalParams, gridSearch, makeTrials, randomSearch, trialId, waves } from '../src/sweep/space.js';

describe('search spaces', () => {
  it('grid: cartesian product, last key fastest, stable ids independent of key order', () => {
    const t = gridSearch({ units: [64, 128], lr: [0.1, 0.01, 0.001] });
    expect(t.map((x) => x.params)).toEqual([
      { units: 64, lr: 0.1 },
      { units: 64, lr: 0.01 },
      { units: 64, lr: 0.001 },
      { units: 128, lr: 0.1 },
      { units: 128, lr: 0.01 },
      { units: 128, lr: 0.001 },
    ]);
    expect(t.map((x) => x.index)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(new Set(t.map((x) => x.id)).size).toBe(6);
    const swapped = gridSearch({ lr: [0.1, 0.01, 0.001], units: [64, 128] });
    expect(new Set(swapped.map((x) => x.id))).toEqual(new Set(t.map((x) => x.id)));
    expect(t[0]!.id).toMatch(/^[0-9a-f]{12}$/);
  });

  it('trial id = sha256 of the canonical JSON of the parameters', async () => {
    const { createHash } = await import('node:crypto');
    const p = { b: [1, { y: 2, x: 1 }], a: 'relu', c: 1e-3 };
    expect(canonicalParams(p)).toBe('{"a":"relu","b":[1,{"x":1,"y":2}],"c":0.001}');
    expect(trialId(p)).toBe(createHash('sha256').update('{"a":"relu","b":[1,{"x":1,"y":2}],"c":0.001}').digest('hex').slice(0, 12));
    expect(trialId({ c: 0.001, a: 'relu', b: [1, { x: 1, y: 2 }] })).toBe(trialId(p));
    expect(() => trialId({ a: NaN })).toThrow(/JSON values/);
    expect(() => trialId({ f: () => 1 })).toThrow(/JSON values/);
  });

  it('fixed parameters join every trial and change the ids', () => {
    const t = gridSearch({ lr: [0.1, 0.2] }, { epochs: 5 });
    expect(t[0]!.params).toEqual({ epochs: 5, lr: 0.1 });
    expect(t[0]!.id).not.toBe(gridSearch({ lr: [0.1, 0.2] })[0]!.id);
    expect(() => gridSearch({ lr: [0.1] }, { lr: 1 })).toThrow(/both fixed and in the grid/);
  });

  it('grid errors are explicit', () => {
    expect(() => gridSearch({ lr: 0.1 as unknown as number[] })).toThrow(/grid.lr must be an array/);
    expect(() => gridSearch({ lr: [] })).toThrow(/grid.lr is empty/);
    expect(() => gridSearch({ lr: [0.1, 0.1] })).toThrow(/grid.lr lists 0.1 twice/);
    expect(() => makeTrials([{ a: 1 }, { a: 1 }])).toThrow(/trials 0 and 1 have the same parameters/);
  });

  it('random search: seeded, reproducible, within ranges, distinct', () => {
    const space = {
      lr: { loguniform: [1e-4, 1e-1] as [number, number] },
      dropout: { uniform: [0, 0.5] as [number, number] },
      layers: { int: [1, 3] as [number, number] },
      act: { choice: ['relu', 'tanh'] },
      epochs: { value: 4 },
    };
    const a = randomSearch({ space, trials: 20, seed: 7 });
    const b = randomSearch({ space: { epochs: space.epochs, act: space.act, layers: space.layers, dropout: space.dropout, lr: space.lr }, trials: 20, seed: 7 });
    expect(b).toEqual(a);
    expect(randomSearch({ space, trials: 20, seed: 8 })).not.toEqual(a);
    expect(new Set(a.map((t) => t.id)).size).toBe(20);
    for (const { params: p } of a) {
      expect(p.lr).toBeGreaterThanOrEqual(1e-4);
      expect(p.lr).toBeLessThan(1e-1);
      expect(p.dropout).toBeGreaterThanOrEqual(0);
      expect(p.dropout).toBeLessThan(0.5);
      expect([1, 2, 3]).toContain(p.layers);
      expect(['relu', 'tanh']).toContain(p.act);
      expect(p.epochs).toBe(4);
    }
    // Log-uniform: about a third of the draws per decade.
    const decades = [0, 0, 0];
    for (const t of randomSearch({ space: { lr: space.lr }, trials: 300, seed: 1 })) decades[Math.floor(Math.log10(t.params.lr as number) + 4)]!++;
    for (const d of decades) expect(d).toBeGreaterThan(70);
    // All three integers are drawn.
    expect(new Set(a.map((t) => t.params.layers))).toEqual(new Set([1, 2, 3]));
  });

  it('random search refuses what it cannot draw', () => {
    expect(() => randomSearch({ space: { a: { choice: [1, 2] } }, trials: 3 })).toThrow(/could not draw 3 distinct/);
    expect(() => randomSearch({ space: { a: { uniform: [1, 1] } }, trials: 1 })).toThrow(/low < high/);
    expect(() => randomSearch({ space: { a: { loguniform: [0, 1] } }, trials: 1 })).toThrow(/low > 0/);
    expect(() => randomSearch({ space: { a: { int: [0.5, 2] } }, trials: 1 })).toThrow(/integer bounds/);
    expect(() => randomSearch({ space: { a: { normal: 1 } as never }, trials: 1 })).toThrow(/unknown distribution/);
    expect(() => randomSearch({ space: {}, trials: 0 })).toThrow(/trials must be an integer >= 1/);
  });

  it('waves of at most `concurrency` trials, in order', () => {
    expect(waves([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(waves([1, 2], 4)).toEqual([[1, 2]]);
    expect(() => waves([1], 0)).toThrow(/concurrency/);
  });

  it('seeded numbers and permutations repeat', () => {
    const a = seededRng(42);
    const b = seededRng(42);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
    const p = permutation(100, 3);
    expect(Array.from(p).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(permutation(100, 3)).toEqual(p);
    expect(permutation(100, 4)).not.toEqual(p);
  });
});
