// Running JSON pipelines through the TypeScript API: call semantics, caching, failures.
import { cpSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JsonPipeline } from '../src/config/pipeline.js';
import type { RunEvent, JsonRunResult } from '../src/config/executor.js';
import type { Isolation } from '../src/config/types.js';
import type { StageInvocation } from '../src/config/runner.js';
import { LIBRARY_STAGE_TYPES } from '../src/config/library.js';
import { calls, cleanupProjects, makeProject } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const statuses = (r: JsonRunResult) => r.stages.map((s) => `${s.name}${s.branch ? `[${JSON.stringify(s.params)}]` : ''}:${s.status}`);
async function dataOf(p: JsonPipeline, stage: string, branch: string | null = null) {
  const out: unknown[] = [];
  for await (const r of p.records(stage, branch)) out.push(r.data);
  return out;
}

/** Runs `spec` in a fresh project; returns the pipeline, the result and the calls made. */
async function run(spec: Record<string, unknown>, opts: { set?: string[]; cache?: boolean; project?: ReturnType<typeof makeProject> } = {}) {
  const project = opts.project ?? makeProject(spec);
  if (opts.project) project.write(spec);
  const log = project.path(`calls-${Date.now()}-${Math.random()}.log`);
  process.env.RINGPIPE_TEST_CALLS = log;
  try {
    const p = await JsonPipeline.load(project.file, { set: opts.set });
    const events: RunEvent[] = [];
    const result = await p.run({ cache: opts.cache, onEvent: (e) => events.push(e) });
    return { p, result, events, calls: calls(log), project };
  } finally {
    delete process.env.RINGPIPE_TEST_CALLS;
  }
}

const chain = () => ({
  params: { type: 'parameters', n: 4 },
  numbers: { run: './steps.mjs#count', inputs: ['params'] },
  squares: { run: './steps.mjs#square', inputs: ['numbers'] },
  total: { run: './steps.mjs#sum', inputs: [{ from: 'squares', as: 'all' }] },
  report: { run: './steps.mjs#describe', inputs: ['total'] },
});

describe('call semantics', () => {
  it('a generator yields a stream; a streaming input calls the function once per record; "all" passes the whole stream', async () => {
    const { p, result, calls: c } = await run(chain());
    expect(result.ok).toBe(true);
    expect(await dataOf(p, 'numbers')).toEqual([0, 1, 2, 3]);
    expect(await dataOf(p, 'squares')).toEqual([0, 1, 4, 9]);
    expect(await dataOf(p, 'total')).toEqual([14]);
    expect(c.filter((l) => l.startsWith('square'))).toHaveLength(4);
    expect(c.filter((l) => l.startsWith('sum'))).toEqual(['sum 4']);
    expect(result.stages.map((s) => [s.name, s.records])).toEqual([
      ['numbers', 4],
      ['squares', 4],
      ['total', 1],
      ['report', 1],
    ]);
  });

  it('a returned { data, metadata } keeps its metadata with the artifact; the context names the stage', async () => {
    const { p, result } = await run(chain());
    const report = result.stages.find((s) => s.name === 'report')!;
    expect(report.metadata).toEqual({ total: 14, stage: 'report' });
    const recs = [];
    for await (const r of p.records('report')) recs.push(r);
    expect(recs).toEqual([{ data: { total: 14 }, metadata: { total: 14, stage: 'report' } }]);
    const [res] = await p.results();
    expect(res).toMatchObject({ stage: 'report', status: 'cached', records: 1, metadata: { total: 14, stage: 'report' } });
  });

  it('two streaming inputs are zipped: one record of each per call', async () => {
    const { p, result } = await run({
      params: { type: 'parameters', n: 3 },
      a: { run: './steps.mjs#count', inputs: ['params'] },
      b: { run: './steps.mjs#square', inputs: ['a'] },
      c: { run: './steps.mjs#add', inputs: ['a', 'b'] },
    });
    expect(result.ok).toBe(true);
    expect(await dataOf(p, 'c')).toEqual([0, 2, 6]);
  });

  it('streams of different lengths are an error naming the stage', async () => {
    const { result } = await run({
      p3: { type: 'parameters', n: 3 },
      p4: { type: 'parameters', n: 4 },
      a: { run: './steps.mjs#count', inputs: ['p3'] },
      b: { run: './steps.mjs#count', inputs: ['p4'] },
      c: { run: './steps.mjs#add', inputs: ['a', 'b'] },
    });
    const c = result.stages.find((s) => s.name === 'c')!;
    expect(c.status).toBe('failed');
    expect(c.error).toMatchObject({ code: 'ERR_STREAM_MISMATCH', stage: 'c' });
    expect(c.error!.message).toMatch(/different lengths \(input 1: 3, input 2: 4\)/);
  });

  it('file_folder streams files (sorted, filtered); file gives one record; "read" chooses what a stage gets', async () => {
    const { p, result } = await run({
      docs: { type: 'file_folder', path: './data', extensions: ['.TXT'], read: 'text' },
      counts: { run: './steps.mjs#words', inputs: ['docs'] },
      one: { type: 'file', path: './data/a.txt', read: 'text' },
      one_count: { run: './steps.mjs#words', inputs: ['one'] },
    });
    expect(result.ok).toBe(true);
    expect(await dataOf(p, 'counts')).toEqual([3, 2, 1]);
    const recs = [];
    for await (const r of p.records('counts')) recs.push(r.metadata);
    expect(recs).toEqual([{ path: 'data/a.txt' }, { path: 'data/b.txt' }, { path: 'data/c.txt' }]);
    expect(await dataOf(p, 'one_count')).toEqual([3]);
  });

  it('"iterable" can be iterated once per epoch; grid branches each get their parameters', async () => {
    const { p, result } = await run({
      params: { type: 'parameters', n: 3 },
      model: { type: 'parameters', epochs: 3 },
      grid: { type: 'grid_search_parameters', lr: [1, 10] },
      data: { run: './steps.mjs#count', inputs: ['params'] },
      trained: { run: './steps.mjs#train', inputs: [{ from: 'data', as: 'iterable' }, 'model', 'grid'] },
    });
    expect(result.ok).toBe(true);
    const trained = result.stages.filter((s) => s.name === 'trained');
    expect(trained).toHaveLength(2);
    for (const t of trained) {
      const lr = t.params.grid!.lr as number;
      expect(t.records).toBe(3);
      expect(t.metadata).toEqual({ epoch: 2, loss: (3 * lr) / 3, branch: t.branch });
      const weights = await dataOf(p, 'trained', t.branch);
      expect(weights.map((w) => Array.from(w as Float64Array))).toEqual([0, 1, 2].map((e) => [3 * lr, e]));
    }
  });

  it('a binary payload per record', async () => {
    const { p, result } = await run({ params: { type: 'parameters', n: 3 }, n: { run: './steps.mjs#count', inputs: ['params'] }, v: { run: './steps.mjs#vector', inputs: ['n'] } });
    expect(result.ok).toBe(true);
    const vs = (await dataOf(p, 'v')) as Float32Array[];
    expect(vs.map((v) => [v.constructor.name, v.length, v[999]])).toEqual([
      ['Float32Array', 1000, 0],
      ['Float32Array', 1000, 1],
      ['Float32Array', 1000, 2],
    ]);
  });
});

describe('cache', () => {
  it('first run computes every stage, the second loads every stage from the cache', async () => {
    const first = await run(chain());
    expect(first.result.stages.every((s) => s.status === 'computed')).toBe(true);
    const second = await run(chain(), { project: first.project });
    expect(second.result.stages.every((s) => s.status === 'cached')).toBe(true);
    expect(second.calls).toEqual([]);
    expect(second.result.stages.map((s) => s.records)).toEqual(first.result.stages.map((s) => s.records));
    const plan = second.events.find((e) => e.type === 'plan')!;
    expect(plan.type === 'plan' && plan.stages.every((s) => s.cached)).toBe(true);
  });

  it('a changed parameter re-runs exactly the stages that depend on it', async () => {
    const spec = () => ({
      params: { type: 'parameters', n: 3 },
      factor: { type: 'parameters', factor: 2 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      squares: { run: './steps.mjs#square', inputs: ['numbers'] },
      scaled: { run: './steps.mjs#times', inputs: ['numbers', 'factor'] },
      total: { run: './steps.mjs#sum', inputs: [{ from: 'scaled', as: 'all' }] },
    });
    const first = await run(spec());
    const second = await run(spec(), { project: first.project, set: ['factor.factor=5'] });
    expect(statuses(second.result)).toEqual(['numbers:cached', 'squares:cached', 'scaled:computed', 'total:computed']);
    expect(second.calls.filter((c) => c.startsWith('count') || c.startsWith('square'))).toEqual([]);
    expect(await dataOf(second.p, 'total')).toEqual([(0 + 1 + 2) * 5]);
    // back to the first value: everything cached again
    const third = await run(spec(), { project: first.project });
    expect(third.result.stages.every((s) => s.status === 'cached')).toBe(true);
  });

  it('a changed grid: only new branches run', async () => {
    const spec = {
      params: { type: 'parameters', n: 2 },
      model: { type: 'parameters', epochs: 1 },
      grid: { type: 'grid_search_parameters', lr: [1, 2] },
      data: { run: './steps.mjs#count', inputs: ['params'] },
      trained: { run: './steps.mjs#train', inputs: [{ from: 'data', as: 'iterable' }, 'model', 'grid'] },
    };
    const first = await run(spec);
    const second = await run(spec, { project: first.project, set: ['grid.lr=[2,3]'] });
    expect(statuses(second.result)).toEqual(['data:cached', 'trained[{"grid":{"lr":2}}]:cached', 'trained[{"grid":{"lr":3}}]:computed']);
  });

  it('only: the named stage runs and the stages they read run, nothing else; an unknown one is refused', async () => {
    const spec = {
      params: { type: 'parameters', n: 2 },
      grid: { type: 'grid_search_parameters', factor: [2, 3] },
      data: { run: './steps.mjs#count', inputs: ['params'] },
      scaled: { run: './steps.mjs#times', inputs: ['data', 'grid'] },
    };
    const project = makeProject(spec);
    const p = await JsonPipeline.load(project.file);
    const branch = (await p.plan()).byItem.get('scaled')![1]!.branch;
    const r = await p.run({ only: [`scaled[${branch}]`] });
    expect(r.stages.map((s) => `${s.name}${s.branch ? `[${s.branch}]` : ''}:${s.status}`)).toEqual(['data:computed', `scaled[${branch}]:computed`]);
    expect(await p.run({ only: ['nothing'] }).catch((e) => e.code)).toBe('ERR_CONFIG');
  });

  it('a diamond: both sides and the join run once each; the join reads both', async () => {
    const spec = {
      params: { type: 'parameters', n: 3 },
      f2: { type: 'parameters', factor: 2 },
      f3: { type: 'parameters', factor: 3 },
      src: { run: './steps.mjs#count', inputs: ['params'] },
      left: { run: './steps.mjs#times', inputs: ['src', 'f2'] },
      right: { run: './steps.mjs#times', inputs: ['src', 'f3'] },
      joined: { run: './steps.mjs#add', inputs: ['left', 'right'] },
    };
    const { p, result, calls: c } = await run(spec);
    expect(result.ok).toBe(true);
    expect(await dataOf(p, 'joined')).toEqual([0, 5, 10]);
    expect(c.filter((l) => l.startsWith('count'))).toHaveLength(1);
    expect(c.filter((l) => l.startsWith('add'))).toHaveLength(3);
    const again = await run(spec, { project: makeProject(spec), set: ['f3.factor=4'] });
    expect(statuses(again.result)).toEqual(['src:computed', 'left:computed', 'right:computed', 'joined:computed']);
  });

  it('a diamond below a grid', async () => {
    const { p, result } = await run({
      params: { type: 'parameters', n: 3 },
      grid: { type: 'grid_search_parameters', factor: [2, 10] },
      src: { run: './steps.mjs#count', inputs: ['params'] },
      left: { run: './steps.mjs#times', inputs: ['src', 'grid'] },
      right: { run: './steps.mjs#square', inputs: ['left'] },
      joined: { run: './steps.mjs#add', inputs: ['left', 'right'] },
    });
    expect(result.ok).toBe(true);
    for (const j of result.stages.filter((s) => s.name === 'joined')) {
      const f = j.params.grid!.factor as number;
      expect(await dataOf(p, 'joined', j.branch)).toEqual([0, 1, 2].map((x) => x * f + (x * f) ** 2));
    }
  });

  it('cache: false reads and writes nothing; a stage with "cache": false runs every time', async () => {
    const first = await run(chain(), { cache: false });
    expect(first.result.ok).toBe(true);
    expect(first.result.cacheLocation).toBeUndefined();
    expect(existsSync(join(first.project.dir, '.ringpipe'))).toBe(false);
    const spec = { ...chain(), squares: { run: './steps.mjs#square', inputs: ['numbers'], cache: false } };
    const a = await run(spec);
    const b = await run(spec, { project: a.project });
    expect(statuses(b.result)).toEqual(['numbers:cached', 'squares:computed', 'total:cached', 'report:cached']);
    // no temporary directory is left behind
    expect(readdirSync(join(a.project.dir, '.ringpipe', 'cache', 'tmp')).filter((n) => !n.endsWith('.file'))).toEqual([]);
  });
});

/** A new project with the images of `from` (so the cache starts empty). */
function copyImages(from: ReturnType<typeof makeProject>) {
  const p = makeProject({});
  cpSync(from.path('images'), p.path('images'), { recursive: true });
  return p;
}

describe('library stages', () => {
  it('image_preprocess: a folder of images to tensors (src/image through the adapter)', async () => {
    const sharp = (await import('sharp')).default;
    const project = makeProject({});
    const { mkdirSync } = await import('node:fs');
    mkdirSync(project.path('images'));
    const colours = [
      { r: 255, g: 0, b: 0 },
      { r: 0, g: 0, b: 255 },
    ];
    for (const [i, c] of colours.entries()) {
      await sharp({ create: { width: 32, height: 24, channels: 3, background: c } }).png().toFile(project.path(`images/${i}.png`));
    }
    writeFileSync(project.path('images/broken.png'), 'not an image');
    const spec = {
      images: { type: 'file_folder', path: './images', extensions: ['.png'] },
      tensors: { type: 'image_preprocess', inputs: ['images'], size: 8, crop: 'resize', dtype: 'uint8', on_error: 'skip' },
    };
    const { p, result } = await run(spec, { project });
    expect(result.ok).toBe(true);
    const t = result.stages[0]!;
    expect(t.records).toBe(2);
    expect(t.skipped).toHaveLength(1);
    expect(t.skipped![0]).toMatchObject({ index: 2, message: expect.stringMatching(/broken\.png/) }); // sorted: 0.png, 1.png, broken.png
    const tensors = (await dataOf(p, 'tensors')) as { data: Uint8Array; shape: number[]; dtype: string }[];
    expect(tensors.map((x) => [x.shape, x.dtype, x.data.constructor.name, x.data.length])).toEqual([
      [[8, 8, 3], 'uint8', 'Uint8Array', 192],
      [[8, 8, 3], 'uint8', 'Uint8Array', 192],
    ]);
    expect(Array.from(tensors[0]!.data.subarray(0, 3))).toEqual([255, 0, 0]);
    expect(Array.from(tensors[1]!.data.subarray(0, 3))).toEqual([0, 0, 255]);
    // the same stage with two replicas in worker threads, and in processes (the default for this
    // stage type's replicas, with its allocator environment): the same artifact
    const { EngineRunner } = await import('../src/config/engine-runner.js');
    const { InProcessRunner } = await import('../src/config/runner.js');
    const { imagePreprocess } = await import('../src/config/image-stage.js');
    const { allocatorEnv } = await import('../src/image/allocator.js');
    expect(imagePreprocess.processEnv!()).toEqual(allocatorEnv('auto'));
    for (const isolation of ['thread', undefined] as const) {
      // Every stage goes through this runner: the image stage to the engine, noting where it ran.
      const seen: string[] = [];
      const engine = new EngineRunner();
      const local = new InProcessRunner();
      const runner = {
        name: 'spy',
        capacity: (w: number, i: Isolation) => engine.capacity(w, i),
        run: (inv: StageInvocation) => (inv.stage === 'tensors' ? (seen.push(inv.isolation), engine.run(inv)) : local.run(inv)),
      };
      const copy = copyImages(project);
      copy.write({ ...spec, tensors: { ...spec.tensors, workers: 2, ...(isolation ? { isolation } : {}) } });
      const p2 = await JsonPipeline.load(copy.file);
      const r2 = await p2.run({ runner });
      expect(r2.ok).toBe(true);
      expect(seen).toEqual([isolation ?? 'process']);
      expect(r2.stages[0]!.key).toBe(t.key);
      const again = (await dataOf(p2, 'tensors')) as typeof tensors;
      expect(again.map((x, i) => Buffer.from(x.data).equals(Buffer.from(tensors[i]!.data)))).toEqual([true, true]);
    }
  });

  it("image_preprocess: a replica on the engine sizes libvips' threads by the rule, again at its first call", async () => {
    const sharp = (await import('sharp')).default;
    const { imagePreprocess } = await import('../src/config/image-stage.js');
    const { threadPlan } = await import('../src/image/threads.js');
    const image = await sharp({ create: { width: 16, height: 12, channels: 3, background: { r: 9, g: 8, b: 7 } } }).png().toBuffer();
    const ctx = { stage: 'tensors', branch: null, params: {}, index: 0, metadata: [], options: { size: 4, crop: 'resize', dtype: 'uint8' }, signal: new AbortController().signal };
    const before = { vips: sharp.concurrency(), uv: process.env.UV_THREADPOOL_SIZE };
    try {
      for (const ownProcess of [false, true]) {
        const want = threadPlan({ replicas: 2, replicasPerProcess: ownProcess ? 1 : 2 }).vipsConcurrency;
        sharp.concurrency(7);
        imagePreprocess.setup!({ replicas: 2, ownProcess });
        expect(sharp.concurrency()).toBe(want);
        sharp.concurrency(1); // as another thread's loading of sharp does (glibc, no jemalloc)
        await imagePreprocess.run(image, ctx);
        expect(sharp.concurrency()).toBe(want);
      }
      expect(threadPlan({ replicas: 2 }).vipsConcurrency).toBeGreaterThanOrEqual(2); // threads of one process: at least 2
    } finally {
      sharp.concurrency(before.vips);
      sharp.cache(true);
      if (before.uv === undefined) delete process.env.UV_THREADPOOL_SIZE;
      else process.env.UV_THREADPOOL_SIZE = before.uv;
    }
  });

  it('image_preprocess: options are checked against the implementation schema', async () => {
    const project = makeProject({});
    project.write({ images: { type: 'file_folder', path: './data' }, t: { type: 'image_preprocess', inputs: ['images'], sise: 8 } });
    const err = await JsonPipeline.load(project.file).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONFIG', item: 't', field: 'sise' });
    expect(err.message).toMatch(/unknown option 'sise'/);
  });
});

describe('failures', () => {
  it('a failing stage leaves its dependents not run (counted, not listed); independent stages go on; nothing partial is cached', async () => {
    const spec = {
      params: { type: 'parameters', n: 4 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      broken: { run: './steps.mjs#boom', inputs: ['numbers'] },
      after: { run: './steps.mjs#square', inputs: ['broken'] },
      fine: { run: './steps.mjs#square', inputs: ['numbers'] },
    };
    const { result, project } = await run(spec);
    expect(result.ok).toBe(false);
    expect(statuses(result)).toEqual(['numbers:computed', 'broken:failed', 'fine:computed']);
    expect(result.notRun).toEqual([{ name: 'after', code: 'ERR_UPSTREAM_FAILED', reason: "its input 'broken' failed", count: 1 }]);
    const broken = result.stages.find((s) => s.name === 'broken')!;
    expect(broken.error).toMatchObject({ code: 'ERR_STAGE_FAILED', stage: 'broken', record: 2 });
    expect(broken.error!.message).toBe("stage 'broken': 'boom' failed on record 2: boom on 2");
    expect((broken.error as Error & { cause?: Error }).cause!.message).toBe('boom on 2');
    const again = await run(spec, { project });
    expect(statuses(again.result)).toEqual(['numbers:cached', 'broken:failed', 'fine:cached']);
    expect(again.events.filter((e) => e.type === 'not-run').map((e) => e.type === 'not-run' && e.group)).toEqual(again.result.notRun);
  });

  it('on_error "skip" drops failing records and reports them', async () => {
    const { p, result } = await run({
      params: { type: 'parameters', n: 4 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      broken: { run: './steps.mjs#boom', inputs: ['numbers'], on_error: 'skip' },
    });
    expect(result.ok).toBe(true);
    expect(await dataOf(p, 'broken')).toEqual([0, 1, 3]);
    expect(result.stages.find((s) => s.name === 'broken')!.skipped).toEqual([{ index: 2, message: 'boom on 2' }]);
  });

  it('an export that is not a function; a library stage type that is not available', async () => {
    const { result } = await run({ nf: { run: './steps.mjs#notAFunction', inputs: [] } });
    expect(result.stages[0]!.error).toMatchObject({ code: 'ERR_CONFIG', item: 'nf', field: 'run', message: expect.stringMatching(/not a function/) });
    // Every library type ships now: make one's module go missing, as in a build without it.
    const type = LIBRARY_STAGE_TYPES.image_preprocess as { module: string };
    const module = type.module;
    type.module = './not-built.js';
    try {
      const lib = await run({ images: { type: 'file_folder', path: './data' }, t: { type: 'image_preprocess', inputs: ['images'] } });
      expect(lib.p.loaded.warnings[0]).toMatchObject({ item: 't', field: 'type', message: expect.stringMatching(/is not part of this build/) });
      expect(lib.result.stages[0]).toMatchObject({ name: 't', status: 'failed' });
      expect(lib.result.stages[0]!.error).toMatchObject({ code: 'ERR_NOT_AVAILABLE', message: expect.stringMatching(/stage type 'image_preprocess' is not available/) });
    } finally {
      type.module = module;
    }
  });

  it('refuses to run a module that changed after this process imported it', async () => {
    const project = makeProject({});
    writeFileSync(project.path('mod.mjs'), 'export const f = () => 1;\n');
    const spec = { s: { run: './mod.mjs#f', inputs: [] } };
    const first = await run(spec, { project });
    expect(first.result.ok).toBe(true);
    writeFileSync(project.path('mod.mjs'), 'export const f = () => 2;\n');
    const second = await run(spec, { project });
    expect(second.result.stages[0]!.error).toMatchObject({ code: 'ERR_STALE_MODULE' });
  });

  it('cancellation: the running stage fails with ERR_ABORTED, the rest is counted not run; nothing partial is cached', async () => {
    const project = makeProject({
      params: { type: 'parameters', n: 50, ms: 20, markAt: -1 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      slowed: { run: './steps.mjs#slow', inputs: ['numbers', 'params'] },
      after: { run: './steps.mjs#square', inputs: ['slowed'] },
    });
    const p = await JsonPipeline.load(project.file);
    const ac = new AbortController();
    const result = await p.run({
      signal: ac.signal,
      onEvent: (e) => {
        if (e.type === 'stage-progress' && e.name === 'slowed' && e.consumed >= 3) ac.abort();
      },
    });
    expect(statuses(result)).toEqual(['numbers:computed', 'slowed:failed']);
    expect(result.stages[1]!.error).toMatchObject({ code: 'ERR_ABORTED' });
    expect(result.notRun).toEqual([{ name: 'after', code: 'ERR_ABORTED', reason: 'the run was cancelled', count: 1 }]);
    expect((await p.status()).map((s) => !!s.manifest)).toEqual([true, false, false]);
  });
});

describe('workers and isolation on the engine', () => {
  const engineSpec = (extra: Record<string, unknown>) => ({
    params: { type: 'parameters', n: 12, times: 2 },
    numbers: { run: './steps.mjs#count', inputs: ['params'] },
    placed: { run: './steps.mjs#where', inputs: ['numbers'], ...extra },
  });

  it('workers: 2 in threads: two replicas share the records, order kept, same artifact as in-process', async () => {
    const { p, result } = await run(engineSpec({ workers: 2 }));
    expect(result.ok).toBe(true);
    const out = (await dataOf(p, 'placed')) as { x: number; pid: number; thread: number }[];
    expect(out.map((o) => o.x)).toEqual([...Array(12).keys()]);
    // Replicas claim records as they become free, so one replica may take all of a short stream;
    // sharing itself is shown in test/graph.test.ts.
    expect(new Set(out.map((o) => o.thread)).size).toBeGreaterThanOrEqual(1);
    expect(new Set(out.map((o) => o.thread)).size).toBeLessThanOrEqual(2);
    expect(out.every((o) => o.thread !== 0 && o.pid === process.pid)).toBe(true);
    // the same stage in this process gives the same records (but for where they ran) under the same key
    const local = await run(engineSpec({}));
    expect(local.result.stages[1]!.key).toBe(result.stages[1]!.key);
    expect(((await dataOf(local.p, 'placed')) as { thread: number }[]).every((o) => o.thread === 0)).toBe(true);
  });

  it('workers: 2 in child processes', async () => {
    const { p, result } = await run(engineSpec({ workers: 2, isolation: 'process' }));
    expect(result.ok).toBe(true);
    const out = (await dataOf(p, 'placed')) as { x: number; pid: number }[];
    expect(out.map((o) => o.x)).toEqual([...Array(12).keys()]);
    const pids = new Set(out.map((o) => o.pid));
    expect(pids.size).toBeGreaterThanOrEqual(1);  // see above: replicas claim records dynamically
    expect(pids.size).toBeLessThanOrEqual(2);
    expect(pids.has(process.pid)).toBe(false);
  });

  it('a generator per record, an iterable input and a single call, in a worker', async () => {
    const { p, result } = await run({
      params: { type: 'parameters', n: 3, times: 2 },
      model: { type: 'parameters', epochs: 2 },
      grid: { type: 'grid_search_parameters', lr: [1] },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      copies: { run: './steps.mjs#repeat', inputs: ['numbers', 'params'], workers: 2 },
      trained: { run: './steps.mjs#train', inputs: [{ from: 'copies', as: 'iterable' }, 'model', 'grid'], isolation: 'process' },
      total: { run: './steps.mjs#sum', inputs: [{ from: 'copies', as: 'all' }], isolation: 'thread' },
      report: { run: './steps.mjs#describe', inputs: ['total'], isolation: 'thread' },
    });
    expect(result.ok).toBe(true);
    const recs = [];
    for await (const r of p.records('copies')) recs.push([r.data, r.metadata?.copy]);
    expect(recs).toEqual([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
      [2, 0],
      [2, 1],
    ]);
    const trained = result.stages.find((s) => s.name === 'trained')!;
    expect(trained.metadata).toMatchObject({ epoch: 1, loss: 6 / 2 });
    expect(await dataOf(p, 'total')).toEqual([6]);
    expect(result.stages.find((s) => s.name === 'report')).toMatchObject({ records: 1, metadata: { total: 6, stage: 'report' } });
  });

  it('errors in a worker: fail names the stage and record; skip drops the record', async () => {
    const spec = (onError: string) => ({
      params: { type: 'parameters', n: 6 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      broken: { run: './steps.mjs#boom', inputs: ['numbers'], workers: 2, on_error: onError },
    });
    const failed = await run(spec('fail'));
    const b = failed.result.stages.find((s) => s.name === 'broken')!;
    expect(b.status).toBe('failed');
    expect(b.error).toMatchObject({ code: 'ERR_STAGE_FAILED', stage: 'broken', record: 2 });
    expect(b.error!.message).toMatch(/'boom' failed on record 2 \(replica \d\): boom on 2/);
    expect((await failed.p.status()).find((s) => s.name === 'broken')!.manifest).toBeUndefined();
    const skipped = await run(spec('skip'));
    expect(skipped.result.ok).toBe(true);
    expect(await dataOf(skipped.p, 'broken')).toEqual([0, 1, 3, 4, 5]);
    expect(skipped.result.stages.find((s) => s.name === 'broken')!.skipped).toEqual([{ index: 2, message: 'boom on 2' }]);
  });

  it('warns about workers that cannot help', async () => {
    const { events } = await run({
      params: { type: 'parameters', n: 2 },
      numbers: { run: './steps.mjs#count', inputs: ['params'], workers: 3 },
      local: { run: './steps.mjs#square', inputs: ['numbers'], workers: 2, isolation: 'local' },
    });
    const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
    expect(warnings).toEqual([
      "stage 'numbers' asks for workers: 3, but no input streams into it: it is one call, made by one worker",
      "stage 'local' asks for workers: 2; the in-process runner runs 1 (isolation \"local\" runs in this process)",
    ]);
  });
});

describe('the TypeScript API', () => {
  it('a pipeline written in code; independent branches run concurrently with `concurrency`', async () => {
    const project = makeProject({});
    const p = await JsonPipeline.fromSpec(
      {
        params: { type: 'parameters', n: 3 },
        grid: { type: 'grid_search_parameters', name: ['a', 'b'], ms: [40] },
        numbers: { run: './steps.mjs#count', inputs: ['params'] },
        napped: { run: './steps.mjs#nap', inputs: ['numbers', 'grid'] },
      },
      { baseDir: project.dir },
    );
    const log = project.path('calls.log');
    process.env.RINGPIPE_TEST_CALLS = log;
    try {
      const result = await p.run({ concurrency: 2 });
      expect(result.ok).toBe(true);
    } finally {
      delete process.env.RINGPIPE_TEST_CALLS;
    }
    const naps = calls(log).filter((l) => l.startsWith('nap-start'));
    expect(naps).toHaveLength(6);
    // both branches were running at the same time: their calls interleave
    const firstB = naps.findIndex((l) => l.includes('"b'));
    const lastA = naps.map((l) => l.includes('"a')).lastIndexOf(true);
    expect(firstB).toBeLessThan(lastA);
    expect(existsSync(join(project.dir, '.ringpipe', 'cache'))).toBe(true);
  });
});

describe('spools of runs without a cache', () => {
  it('a spool left by a process that is gone is removed; a live process keeps its own', async () => {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { removeStaleSpools } = await import('../src/config/executor.js');
    const parent = mkdtempSync(join(tmpdir(), 'rp-spools-'));
    try {
      // pid 2^22 + 1 is above Linux's pid_max: never a live process.
      const dead = mkdtempSync(join(parent, `ringpipe-spool-p${2 ** 22 + 1}-`));
      const live = mkdtempSync(join(parent, `ringpipe-spool-p${process.pid}-`));
      await removeStaleSpools(parent);
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(live)).toBe(true);
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
