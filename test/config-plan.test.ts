// Grid expansion, branches, stable ids and cache keys (known before anything runs).
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipelineSpec } from '../src/config/load.js';
import { buildPlan, type Plan } from '../src/config/plan.js';
import { gridCombinations, randomCombinations } from '../src/config/search.js';
import { describeItems, describePlan } from '../src/config/describe.js';
import { cleanupProjects, makeProject } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);
const project = makeProject({});

async function plan(spec: Record<string, unknown>, set?: string[]): Promise<Plan> {
  return buildPlan(await loadPipelineSpec(spec, { baseDir: project.dir, set }));
}
const nodesOf = (p: Plan, item: string) => p.byItem.get(item)!;
const keyOf = (p: Plan, item: string, i = 0) => nodesOf(p, item)[i]!.key;

const gridPipeline = () => ({
  params: { type: 'parameters', n: 4 },
  source: { run: './steps.mjs#count', inputs: ['params'] },
  grid: { type: 'grid_search_parameters', a: [1, 2], b: ['x', 'y'] },
  model: { type: 'parameters', epochs: 2 },
  trained: { run: './steps.mjs#train', inputs: [{ from: 'source', as: 'iterable' }, 'model', 'grid'] },
  scored: { run: './steps.mjs#sum', inputs: [{ from: 'trained', as: 'all' }] },
});

describe('grid search', () => {
  it('{a: [1, 2], b: ["x", "y"]} gives 4 combinations, last field fastest', () => {
    expect(gridCombinations({ type: 'grid_search_parameters', a: [1, 2], b: ['x', 'y'] })).toEqual([
      { a: 1, b: 'x' },
      { a: 1, b: 'y' },
      { a: 2, b: 'x' },
      { a: 2, b: 'y' },
    ]);
  });

  it('fans out downstream stages: 4 branches with distinct stable ids; stages upstream run once', async () => {
    const p = await plan(gridPipeline());
    expect(nodesOf(p, 'source')).toHaveLength(1);
    expect(nodesOf(p, 'source')[0]!.branch).toBeNull();
    const trained = nodesOf(p, 'trained');
    expect(trained).toHaveLength(4);
    const ids = trained.map((n) => n.branch);
    expect(new Set(ids).size).toBe(4);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(trained.map((n) => n.params.grid)).toEqual(gridCombinations({ a: [1, 2], b: ['x', 'y'] }));
    // every branch reads the one source node
    for (const n of trained) expect(n.inputs[0]).toBe(nodesOf(p, 'source')[0]);
    // downstream of the grid: matching branches
    const scored = nodesOf(p, 'scored');
    expect(scored.map((n) => n.branch)).toEqual(ids);
    scored.forEach((n, i) => expect(n.inputs[0]).toBe(trained[i]));
    // keys differ per branch
    expect(new Set(trained.map((n) => n.key)).size).toBe(4);
  });

  it('branch ids and keys are stable across runs and do not depend on key order', async () => {
    const p1 = await plan(gridPipeline());
    const reordered = {
      scored: { inputs: [{ as: 'all', from: 'trained' }], run: './steps.mjs#sum' },
      grid: { b: ['x', 'y'], a: [1, 2], type: 'grid_search_parameters' },
      trained: { inputs: [{ from: 'source', as: 'iterable' }, 'model', 'grid'], run: './steps.mjs#train' },
      model: { epochs: 2, type: 'parameters' },
      source: { inputs: ['params'], run: './steps.mjs#count' },
      params: { n: 4, type: 'parameters' },
    };
    const p2 = await plan(reordered);
    const byParams = (p: Plan, item: string) => Object.fromEntries(nodesOf(p, item).map((n) => [JSON.stringify(n.params.grid, Object.keys(n.params.grid!).sort()), [n.branch, n.key]]));
    expect(byParams(p2, 'trained')).toEqual(byParams(p1, 'trained'));
    expect(byParams(p2, 'scored')).toEqual(byParams(p1, 'scored'));
    expect(keyOf(p2, 'source')).toBe(keyOf(p1, 'source'));
    const p3 = await plan(gridPipeline());
    expect(nodesOf(p3, 'trained').map((n) => n.key)).toEqual(nodesOf(p1, 'trained').map((n) => n.key));
  });

  it('a changed parameter changes the keys of exactly the stages that depend on it', async () => {
    const base = await plan(gridPipeline());
    const changedModel = await plan(gridPipeline(), ['model.epochs=3']);
    expect(keyOf(changedModel, 'source')).toBe(keyOf(base, 'source'));
    for (let i = 0; i < 4; i++) {
      expect(keyOf(changedModel, 'trained', i)).not.toBe(keyOf(base, 'trained', i));
      expect(keyOf(changedModel, 'scored', i)).not.toBe(keyOf(base, 'scored', i));
    }
    const changedParams = await plan(gridPipeline(), ['params.n=5']);
    expect(keyOf(changedParams, 'source')).not.toBe(keyOf(base, 'source'));
    // one more grid value: old branches keep their ids and keys
    const wider = await plan(gridPipeline(), ['grid.a=[1,2,3]']);
    expect(nodesOf(wider, 'trained')).toHaveLength(6);
    const oldKeys = new Set(nodesOf(base, 'trained').map((n) => n.key));
    expect(nodesOf(wider, 'trained').filter((n) => oldKeys.has(n.key))).toHaveLength(4);
  });

  it('operational fields (workers, isolation, $comment) do not change keys; on_error does', async () => {
    const base = await plan(gridPipeline());
    const spec = gridPipeline() as Record<string, Record<string, unknown>>;
    spec.source = { ...spec.source, workers: 4, isolation: 'process', $comment: 'more workers' };
    expect(keyOf(await plan(spec), 'source')).toBe(keyOf(base, 'source'));
    spec.source = { ...spec.source, on_error: 'skip' };
    expect(keyOf(await plan(spec), 'source')).not.toBe(keyOf(base, 'source'));
  });

  it('a diamond below a grid joins matching branches', async () => {
    const p = await plan({
      params: { type: 'parameters', n: 3 },
      grid: { type: 'grid_search_parameters', factor: [2, 3] },
      src: { run: './steps.mjs#count', inputs: ['params'] },
      left: { run: './steps.mjs#times', inputs: ['src', 'grid'] },
      right: { run: './steps.mjs#times', inputs: ['src', 'grid'] },
      joined: { run: './steps.mjs#add', inputs: ['left', 'right'] },
    });
    const joined = nodesOf(p, 'joined');
    expect(joined).toHaveLength(2);
    for (const j of joined) {
      expect(j.inputs[0]!.branch).toBe(j.branch);
      expect(j.inputs[1]!.branch).toBe(j.branch);
      expect(j.inputs[0]!.params).toEqual(j.params);
    }
  });

  it('two grids on two paths multiply; a stage reading one grid only has its branches', async () => {
    const p = await plan({
      p: { type: 'parameters', n: 3 },
      g1: { type: 'grid_search_parameters', factor: [2, 3] },
      g2: { type: 'grid_search_parameters', factor: [5, 7, 11] },
      src: { run: './steps.mjs#count', inputs: ['p'] },
      left: { run: './steps.mjs#times', inputs: ['src', 'g1'] },
      right: { run: './steps.mjs#times', inputs: ['src', 'g2'] },
      joined: { run: './steps.mjs#add', inputs: ['left', 'right'] },
    });
    expect(nodesOf(p, 'left')).toHaveLength(2);
    expect(nodesOf(p, 'right')).toHaveLength(3);
    const joined = nodesOf(p, 'joined');
    expect(joined).toHaveLength(6);
    expect(new Set(joined.map((n) => n.branch)).size).toBe(6);
    for (const j of joined) {
      expect(j.inputs[0]!.params).toEqual({ g1: j.params.g1 });
      expect(j.inputs[1]!.params).toEqual({ g2: j.params.g2 });
    }
    expect(p.nodes.indexOf(joined[0]!)).toBeGreaterThan(p.nodes.indexOf(nodesOf(p, 'right')[2]!));
  });
});

describe('random search', () => {
  const def = { type: 'random_search_parameters', count: 6, seed: 3, lr: { log_uniform: [1e-4, 1e-1] }, hidden: [32, 64, 128], drop: { uniform: [0, 0.5] }, layers: { int: [1, 3] } };

  it('samples deterministically, within the distributions', () => {
    const a = randomCombinations(def);
    expect(a).toHaveLength(6);
    expect(randomCombinations(def)).toEqual(a);
    for (const c of a) {
      expect(c.lr).toBeGreaterThanOrEqual(1e-4);
      expect(c.lr).toBeLessThan(1e-1);
      expect([32, 64, 128]).toContain(c.hidden);
      expect(c.drop).toBeGreaterThanOrEqual(0);
      expect(c.drop).toBeLessThan(0.5);
      expect([1, 2, 3]).toContain(c.layers);
    }
    expect(randomCombinations({ ...def, seed: 4 })).not.toEqual(a);
  });

  it('does not depend on field order; a larger count keeps the earlier samples', () => {
    const reordered = { layers: def.layers, drop: def.drop, hidden: def.hidden, lr: def.lr, seed: 3, count: 6, type: def.type };
    expect(randomCombinations(reordered)).toEqual(randomCombinations(def));
    expect(randomCombinations({ ...def, count: 10 }).slice(0, 6)).toEqual(randomCombinations(def));
  });

  it('drops identical samples', () => {
    const c = randomCombinations({ type: 'random_search_parameters', count: 50, a: [1, 2] });
    expect(c.sort((x, y) => Number(x.a) - Number(y.a))).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('fans out like a grid', async () => {
    const p = await plan({ r: def, p: { type: 'parameters', n: 2 }, s: { run: './steps.mjs#count', inputs: ['p'] }, t: { run: './steps.mjs#train', inputs: [{ from: 's', as: 'iterable' }, 'p', 'r'] } });
    expect(nodesOf(p, 't')).toHaveLength(6);
    expect(new Set(nodesOf(p, 't').map((n) => n.branch)).size).toBe(6);
  });
});

describe('keys of sources and code', () => {
  it('a folder key follows its contents; a file key its content', async () => {
    const spec = { docs: { type: 'file_folder', path: './data', extensions: ['.txt'], read: 'text' }, n: { run: './steps.mjs#words', inputs: ['docs'] } };
    const p1 = await plan(spec);
    expect(nodesOf(p1, 'docs')[0]!.files!.map((f) => f.rel)).toEqual(['data/a.txt', 'data/b.txt', 'data/c.txt']);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(project.path('data/d.md'), 'changed, but filtered out');
    expect(keyOf(await plan(spec), 'n')).toBe(keyOf(p1, 'n'));
    writeFileSync(project.path('data/b.txt'), 'four five six seven\n');
    const p2 = await plan(spec);
    expect(keyOf(p2, 'docs')).not.toBe(keyOf(p1, 'docs'));
    expect(keyOf(p2, 'n')).not.toBe(keyOf(p1, 'n'));
  });

  it('a stage key follows its module and the project modules it imports', async () => {
    const { readFileSync, writeFileSync } = await import('node:fs');
    const spec = { p: { type: 'parameters', n: 3, factor: 2 }, src: { run: './steps.mjs#count', inputs: ['p'] }, t: { run: './steps.mjs#times', inputs: ['src', 'p'] } };
    const p1 = await plan(spec);
    const helper = project.path('lib/scale.mjs');
    const original = readFileSync(helper, 'utf8');
    writeFileSync(helper, original + '\n// a comment changes the bytes\n');
    const p2 = await plan(spec);
    expect(keyOf(p2, 't')).not.toBe(keyOf(p1, 't'));
    expect(keyOf(p2, 'src')).not.toBe(keyOf(p1, 'src')); // same module steps.mjs, which imports lib/scale.mjs
    writeFileSync(helper, original);
    expect(keyOf(await plan(spec), 't')).toBe(keyOf(p1, 't'));
  });
});

describe('describe', () => {
  it('Mermaid and DOT, per item and per branch', async () => {
    const p = await plan(gridPipeline());
    const g = describeItems(p.pipeline.items);
    expect(g.mermaid).toMatch(/^flowchart LR\n/);
    expect(g.mermaid).toContain('grid{{"grid<br/>grid: 4 branches"}}');
    expect(g.mermaid).toContain('source -->|iterable| trained');
    expect(g.dot).toMatch(/^digraph pipeline \{/);
    expect(g.dot).toContain('"trained" -> "scored" [label="all"];');
    const b = describePlan(p);
    expect(b.mermaid.match(/^ {2}trained_[0-9a-f]{12}\[/gm)).toHaveLength(4);
    expect(b.dot).toContain('a=1 b=\\"x\\"');
  });
});
