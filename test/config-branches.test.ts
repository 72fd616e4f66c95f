// Many branches: a limit with a clear error, a plan made as it is scheduled, cancellation that stops
// at once, and a "not run" report that counts instead of listing.
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipelineSpec } from '../src/config/load.js';
import { JsonPipeline } from '../src/config/pipeline.js';
import { buildPlan } from '../src/config/plan.js';
import type { RunEvent } from '../src/config/executor.js';
import { cleanupProjects, cli, cliProcess, makeProject, parseJsonOutput, waitFor } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const ten = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
/** Six fields of ten values: 10^6 branches, two stages in each. */
const million = () => ({
  grid: { type: 'grid_search_parameters', a: ten, b: ten, c: ten, d: ten, e: ten, f: ten },
  params: { type: 'parameters', ms: 5, name: 'g', times: 1 },
  napped: { run: './steps.mjs#nap', inputs: ['grid', 'params'] },
  repeated: { run: './steps.mjs#repeat', inputs: ['napped', 'params'] },
});

describe('the branch limit', () => {
  it('a pipeline over the limit is refused before anything is expanded, naming the grid, its fields and the way to raise it', async () => {
    const p = makeProject(million());
    const err = await JsonPipeline.load(p.file).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_TOO_MANY_BRANCHES', item: 'grid' });
    expect(err.message).toContain("the pipeline has 1,000,000 branches (grid 'grid': a 10 x b 10 x c 10 x d 10 x e 10 x f 10), more than the limit of 10,000");
    expect(err.message).toContain('--max-branches 1000000');
    // the CLI: exit 2 with the same words
    const r = await cli(['validate', p.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('more than the limit of 10,000');
    expect((await cli(['validate', p.file, '--max-branches', '999999'])).code).toBe(2);
  });

  it('two search items multiply; the limit comes from the option, else RINGPIPE_MAX_BRANCHES, else 10,000', async () => {
    const spec = { g: { type: 'grid_search_parameters', x: ten }, r: { type: 'random_search_parameters', count: 20, y: { uniform: [0, 1] } } };
    const err = await loadPipelineSpec(spec, { baseDir: makeProject({}).dir, maxBranches: 199 }).catch((e) => e);
    expect(err.code).toBe('ERR_TOO_MANY_BRANCHES');
    expect(err.message).toContain("200 branches (grid 'g': x 10, times random search 'r': count 20), more than the limit of 199");
    await expect(loadPipelineSpec(spec, { baseDir: makeProject({}).dir, maxBranches: 200 })).resolves.toBeTruthy();
    process.env.RINGPIPE_MAX_BRANCHES = '100';
    try {
      expect((await loadPipelineSpec(spec, { baseDir: makeProject({}).dir }).catch((e) => e)).message).toContain('more than the limit of 100');
    } finally {
      delete process.env.RINGPIPE_MAX_BRANCHES;
    }
    await expect(loadPipelineSpec(spec, { baseDir: makeProject({}).dir, maxBranches: 0 })).rejects.toThrow(/maxBranches must be a positive integer/);
  });
});

describe('a plan made as it is scheduled', () => {
  it('10^6 branches: counted without expanding; the first branch comes first; validate says how many', async () => {
    const p = makeProject(million());
    const pipeline = await JsonPipeline.load(p.file, { maxBranches: 1_000_000 });
    const plan = await pipeline.plan();
    expect([plan.branches, plan.stageRuns]).toEqual([1_000_000, 2_000_000]);
    const it = plan.stagesByBranch();
    const first = [it.next().value!, it.next().value!, it.next().value!];
    expect(first.map((s) => [s.item.name, s.at, s.node().params.grid])).toEqual([
      ['napped', 0, { a: 0, b: 0, c: 0, d: 0, e: 0, f: 0 }],
      ['repeated', 0, { a: 0, b: 0, c: 0, d: 0, e: 0, f: 0 }],
      ['napped', 1, { a: 0, b: 0, c: 0, d: 0, e: 0, f: 1 }],
    ]);
    expect(first[1]!.node().inputs[0]!.key).toBe(first[0]!.node().key);
    expect(first[1]!.inputSlots).toEqual([first[0]!.slot]);
    // the last branch, decoded from its index
    expect(plan.nodeAt('napped', [999_999]).params.grid).toEqual({ a: 9, b: 9, c: 9, d: 9, e: 9, f: 9 });
    const v = await cli(['validate', p.file, '--max-branches', '1000000']);
    expect(v.stdout).toMatch(/valid \(4 items, 2 stages, 2,000,000 stage runs across 1,000,000 branches\)/);
  });

  it('nodes made lazily are the nodes of the expanded plan: ids, keys and inputs; lastUse is the last branch that reads a node', async () => {
    const spec = {
      g1: { type: 'grid_search_parameters', factor: [2, 3] },
      g2: { type: 'grid_search_parameters', factor: [5, 7, 11] },
      p: { type: 'parameters', n: 3 },
      src: { run: './steps.mjs#count', inputs: ['p'] },
      left: { run: './steps.mjs#times', inputs: ['src', 'g1'] },
      right: { run: './steps.mjs#times', inputs: ['src', 'g2'] },
      joined: { run: './steps.mjs#add', inputs: ['left', 'right'] },
    };
    const lazy = await buildPlan(await loadPipelineSpec(spec, { baseDir: makeProject({}).dir }));
    const scheduled = [...lazy.stagesByBranch()].map((s) => ({ ...s, node: s.node() }));
    const expanded = await buildPlan(await loadPipelineSpec(spec, { baseDir: makeProject({}).dir }));
    const byId = new Map(expanded.nodes.map((n) => [n.id, n]));
    expect(scheduled).toHaveLength(1 + 2 + 3 + 6);
    expect(new Set(scheduled.map((s) => s.node.id)).size).toBe(scheduled.length);
    for (const { node } of scheduled) {
      expect(node.key).toBe(byId.get(node.id)!.key);
      expect(node.inputs.map((n) => n.id)).toEqual(byId.get(node.id)!.inputs.map((n) => n.id));
    }
    // every stage run comes after its inputs
    const position = new Map(scheduled.map((s, i) => [s.node.id, i]));
    for (const { node } of scheduled) for (const i of node.inputs) if (position.has(i.id)) expect(position.get(i.id)!).toBeLessThan(position.get(node.id)!);
    // branches are (g1, g2) with g2 fastest: right[g2=j] is handed out at branch j and read until branch 3 + j
    const rights = scheduled.filter((s) => s.item.name === 'right');
    expect(rights.map((s) => [s.at, s.lastUse])).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    const lefts = scheduled.filter((s) => s.item.name === 'left');
    expect(lefts.map((s) => [s.at, s.lastUse])).toEqual([
      [0, 2],
      [3, 5],
    ]);
    expect(scheduled.find((s) => s.item.name === 'src')).toMatchObject({ at: 0, lastUse: 5 });
  });
});

describe('running 10^6 branches', () => {
  it('starts at once; cancelling stops at once; what was not run is counted per stage, not listed', async () => {
    const p = makeProject(million());
    const pipeline = await JsonPipeline.load(p.file, { maxBranches: 1_000_000 });
    const ac = new AbortController();
    const events: RunEvent[] = [];
    let ended = 0;
    const result = await pipeline.run({
      signal: ac.signal,
      keepResults: true,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'stage-end' && ++ended === 5) ac.abort();
      },
    });
    expect(events[0]).toEqual({ type: 'plan', total: 2_000_000 }); // too many to check up front
    expect(result.ok).toBe(false);
    const done = result.stages.length;
    expect(done).toBeGreaterThanOrEqual(5);
    expect(done).toBeLessThan(100);
    const notRun = Object.fromEntries(result.notRun!.map((g) => [g.name, g]));
    expect(Object.keys(notRun).sort()).toEqual(['napped', 'repeated']);
    for (const g of result.notRun!) expect(g).toMatchObject({ code: 'ERR_ABORTED', reason: 'the run was cancelled' });
    const ran = (name: string) => result.stages.filter((s) => s.name === name).length;
    expect(notRun.napped!.count + ran('napped')).toBe(1_000_000);
    expect(notRun.repeated!.count + ran('repeated')).toBe(1_000_000);
    expect(events.filter((e) => e.type === 'not-run')).toHaveLength(2);
  });

  it('the CLI: SIGTERM while running ends the run with exit 1, a short report, and no stack', async () => {
    const p = makeProject(million());
    const run = cliProcess(['run', p.file, '--max-branches', '1000000']);
    let stderr = '';
    run.child.stderr!.on('data', (c) => (stderr += c));
    await waitFor(() => /^computed +napped/m.test(stderr), 30_000, 'the first stage run');
    run.child.kill('SIGTERM');
    const r = await run;
    expect(r.code).toBe(1);
    expect(r.stderr).not.toMatch(/Maximum call stack|RangeError|^\s+at /m);
    expect(r.stderr).toMatch(/^not run +napped: 99\d,\d{3} stage runs \(the run was cancelled\)$/m);
    expect(r.stdout).toMatch(/^not run +repeated: 99\d,\d{3} stage runs \(the run was cancelled\)$/m);
    expect(r.stdout).toMatch(/^2,000,000 stage runs: \d+ computed, 0 cached, 0 failed(, 1 cancelled)?, 1,99\d,\d{3} not run/m);
    expect(r.stdout.split('\n').length).toBeLessThan(100);
  }, 60_000);

  it('a failure above 10^6 branches: every stage run below is counted not run, without being scheduled', async () => {
    const spec = { ...million(), params: { type: 'parameters', n: 4 }, numbers: { run: './steps.mjs#count', inputs: ['params'] }, broken: { run: './steps.mjs#boom', inputs: ['numbers'] } };
    spec.napped = { run: './steps.mjs#nap', inputs: ['grid', 'broken'] } as never;
    const p = makeProject(spec);
    const result = await (await JsonPipeline.load(p.file, { maxBranches: 1_000_000 })).run({ keepResults: true });
    expect(result.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'broken:failed']);
    expect(result.notRun).toEqual([
      { name: 'napped', code: 'ERR_UPSTREAM_FAILED', reason: "its input 'broken' failed", count: 1_000_000 },
      { name: 'repeated', code: 'ERR_UPSTREAM_FAILED', reason: "its input 'napped' was not run", count: 1_000_000 },
    ]);
  });

  it('fail-fast: the first failure stops the scheduling; the rest is counted', async () => {
    const p = makeProject({
      g: { type: 'grid_search_parameters', n: [1, 2, 3, 4] },
      numbers: { run: './steps.mjs#count', inputs: ['g'] },
      broken: { run: './steps.mjs#boom', inputs: ['numbers'] },
    });
    const result = await (await JsonPipeline.load(p.file)).run({ failFast: true });
    // n = 1, 2: boom sees 0..n-1 and passes; n = 3 has record 2: it fails, and n = 4 is not run.
    expect(result.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'broken:computed', 'numbers:computed', 'broken:computed', 'numbers:computed', 'broken:failed']);
    expect(result.notRun).toEqual([
      { name: 'numbers', code: 'ERR_UPSTREAM_FAILED', reason: 'an earlier stage failed (fail-fast)', count: 1 },
      { name: 'broken', code: 'ERR_UPSTREAM_FAILED', reason: 'an earlier stage failed (fail-fast)', count: 1 },
    ]);
  });

  it('more than 50 stage runs: the summary has a row per stage', async () => {
    const p = makeProject({ g: { type: 'grid_search_parameters', x: Array.from({ length: 30 }, (_, i) => i) }, p: { type: 'parameters', ms: 0, name: 'n', times: 1 }, a: { run: './steps.mjs#nap', inputs: ['g', 'p'] }, b: { run: './steps.mjs#repeat', inputs: ['a', 'p'] } });
    const r = await cli(['run', p.file, '-q']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/│ stage +│ runs +│ computed +│ cached +│ failed +│ records +│ time/);
    expect(r.stdout).toMatch(/│ a +│ 30 +│ 30 +│ 0 +│ 0 +│ 30 /);
    expect(r.stdout).toMatch(/60 stage runs: 60 computed, 0 cached, 0 failed/);
  });
});
