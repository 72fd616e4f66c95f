// Image preprocessing throughput: decode + random-resized-crop to 224x224 + flip + normalise to
// float32 (ImageNet mean/std), in images per second.
//
// Every runner does exactly the same work through src/image's `preprocess` (same spec, same
// per-sample keys, so the same crops): a serial loop, a piscina pool of 2 workers, the serial loop
// in 1 and in 2 child processes, and ringpipe end to end. Runners are measured in interleaved
// rounds and the best and median rounds are kept, because this machine is shared and its load
// varies from second to second.
//
// ringpipe end to end: `imagePipeline` = image source (`imageSource` over the round's files) ->
// `preprocess` (ImagePreprocessor, 1 or 2 replicas in worker threads or processes, libvips threads
// by the rule, each tensor decoded straight into the ring) -> a counting sink. One run per round;
// the round's images follow `warm` warm-up images and precede TAIL more, and the sink times from
// the arrival of the last warm-up image to that of the last timed one (records arrive in order, so
// every replica is running by then, and still is at the end): worker start-up and module loading
// are left out, as the peers' (pool start, warm-up) are.
// The wall time of each run, start-up included, is logged too.
//
// Allocator: ringpipe's processes preload jemalloc when it is installed (src/image/allocator.ts);
// the suite installs it when it can, and the child-process peers get the same allocator. The
// in-process peers (serial, piscina) keep the system's, as a plain script would.
//
// Sample keys: the k-th image of the round starting at `start` is files[(start + k) % n] with key
// { index: warm + k, epoch: start } in every runner (ringpipe's source numbers its inputs
// 0..warm + count + TAIL - 1, the warm-up images first).
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { Sink } from '../../src/index.js';
import type { BenchContext } from '../harness.js';
import { imagenetLike, originals, type Corpus } from '../image/corpus.js';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { applyThreadPlan, threadPlan } from '../../src/image/threads.js';
import { allocatorEnv, findJemalloc } from '../../src/image/allocator.js';
import { ensureJemalloc } from '../../scripts/jemalloc.mjs';
import { imagePipeline } from '../../src/image/pipeline.js';
import { TimedCount } from './image.segments.js';
import { firstMessage, tsProcess } from '../lib/spawn.js';

// readFile 'sync' (what ringpipe's replicas default to) for every runner: the same work.
const SPEC: PreprocessSpec = { size: 224, crop: 'random', flip: true, mean: IMAGENET_MEAN, std: IMAGENET_STD, seed: 1, readFile: 'sync' };
/**
 * Warm-up images ahead of each ringpipe round (and the offset of every runner's sample indices):
 * enough for the new processes' JIT and libvips to warm up, as the peers' long-lived ones are.
 */
const WARMUP = { small: 48, originals: 18 };
const key = (start: number, k: number, warm: number) => ({ index: warm + k, epoch: start });
/**
 * Images after the timed ones in each ringpipe run: the clock stops at the last timed image while
 * the replicas are still busy, as it started (images finished ahead of the sink, waiting in the
 * rings, are then as many at both ends of the span, and none is counted without its work).
 */
const TAIL = 16;  // more than the images ring holds (8 MiB: 13 tensors of 224x224x3 f32)
/** `start` of the warm-up run of every runner in `measure`. */
const WARM_START = 1_000_000;
const SEGMENTS = new URL('./image.segments.ts', import.meta.url).href;
const CHILD = new URL('./image.child.ts', import.meta.url);

interface Runner {
  name: string;
  /** libvips threads per image while this runner runs (a process-wide setting). */
  concurrency: number;
  /**
   * Processes `count` images: files[(start + k) % n] with key `key(start, k, warm)`. Resolves with the
   * runner's own images/s when it measures itself (ringpipe: steady state at the sink), else
   * with nothing (the round's wall time is used).
   */
  run(files: string[], start: number, count: number, warm: number): Promise<number | void>;
}

function serial(name: string, concurrency: number, spec: PreprocessSpec = SPEC): Runner {
  const out = new Float32Array(224 * 224 * 3);
  return {
    name,
    concurrency,
    async run(files, start, count, warm) {
      for (let k = 0; k < count; k++) await preprocess(files[(start + k) % files.length], spec, out, key(start, k, warm));
    },
  };
}

function piscinaRunner(name: string, concurrency: number, pool: Piscina, spec: PreprocessSpec = SPEC): Runner {
  return {
    name,
    concurrency,
    async run(files, start, count, warm) {
      const tasks: Promise<Float32Array>[] = [];
      for (let k = 0; k < count; k++) tasks.push(pool.run({ file: files[(start + k) % files.length], ...key(start, k, warm), spec }));
      const results = await Promise.all(tasks);
      if (results.some((r) => !(r instanceof Float32Array) || r.length !== 224 * 224 * 3)) throw new Error('piscina worker returned a bad tensor');
    },
  };
}

/**
 * `n` child processes, each running the serial loop over its share of the round, sent in one
 * message: the shares are balanced by file size (largest first, to the least loaded child), so the
 * two finish together even on the originals, whose sizes vary 10-fold. Nothing shared but the
 * cores, no message per image, results left in the children (no hand-off, no order): what separate
 * processes get on this machine at best. `env` gives them the allocator ringpipe's processes get,
 * so that the two compare like for like.
 */
function processPool(name: string, n: number, children: ChildProcess[], env: Record<string, string>): Runner {
  const mine: ChildProcess[] = [];
  return {
    name,
    concurrency: 1,
    async run(files, start, count, warm) {
      if (mine.length === 0) {
        for (let i = 0; i < n; i++) mine.push(tsProcess(CHILD, null, env));
        children.push(...mine);
        await Promise.all(mine.map((c) => firstMessage(c)));
      }
      const shares = mine.map(() => ({ bytes: 0, tasks: [] as { file: string; index: number; epoch: number }[] }));
      const ks = Array.from({ length: count }, (_, k) => k).sort((a, b) => sizeOf(files[(start + b) % files.length]!) - sizeOf(files[(start + a) % files.length]!));
      for (const k of ks) {
        const file = files[(start + k) % files.length]!;
        const share = shares.reduce((x, y) => (y.bytes < x.bytes ? y : x));
        share.bytes += sizeOf(file);
        share.tasks.push({ file, ...key(start, k, warm) });
      }
      await Promise.all(
        mine.map((c, i) => {
          const done = firstMessage(c);
          c.send({ spec: SPEC, tasks: shares[i]!.tasks });
          return done;
        }),
      );
    },
  };
}

const sizes = new Map<string, number>();
const sizeOf = (file: string) => sizes.get(file) ?? (sizes.set(file, statSync(file).size), sizes.get(file)!);

/**
 * ringpipe end to end with `workers` preprocessing replicas: one pipeline run per round (see the
 * top of this file). `concurrency` is what the replicas' setup applies by the rule (a process-wide
 * libvips setting, which they share with this thread).
 */
function ringpipeRunner(name: string, workers: number, cores: number, walls: number[], isolation: 'thread' | 'process' = 'thread', threads: 'auto' | number = 'auto'): Runner {
  return {
    name,
    concurrency: threads === 'auto' ? threadPlan({ cores, replicas: workers }).vipsConcurrency : threads,
    async run(files, start, count, warm) {
      const n = files.length;
      const inputs = Array.from({ length: warm + count + TAIL }, (_, j) => files[(((start - warm + j) % n) + n) % n]);
      const t0 = performance.now();
      const r = await imagePipeline({
        inputs,
        epoch: start,
        spec: SPEC,
        workers,
        cores,
        // Replicas where asked (processes: imagePipeline's default), source and sink in threads.
        preprocessIsolation: isolation,
        isolation: 'thread',
        threads,
        meta: false,
        // module/export given: without them ringpipe would look for TimedCount by importing this
        // module's imports, harness.ts among them, which is still evaluating (its top-level await
        // is what runs this suite): that import never settles and node exits with code 13.
        sink: new Sink(TimedCount, { options: { warmup: warm, timed: count, length: 224 * 224 * 3 }, module: SEGMENTS, export: 'TimedCount' }),
      }).run({ handleSigint: false });
      if (start !== WARM_START) walls.push(count / ((performance.now() - t0) / 1000));
      const c = r.results.TimedCount![0] as { count: number; timed: number; seconds: number };
      if (c.count !== warm + count + TAIL || c.timed !== count) throw new Error(`ringpipe runner: the sink got ${c.count} images of ${warm + count + TAIL}`);
      return c.timed / c.seconds;
    },
  };
}

interface Rate {
  /** Best round, images/s: the least disturbed by other load on a shared machine. */
  best: number;
  /** Median round, images/s. */
  median: number;
  /** CPU time of this process (all threads) per image, in ms: the cost, whatever the load. */
  cpuMsPerImage: number;
}

/** Images/s and CPU cost of each runner over `rounds` interleaved rounds of `count` images. */
async function measure(runners: Runner[], files: string[], rounds: number, count: number, warm: number): Promise<Map<string, Rate>> {
  const rates = new Map<string, number[]>(runners.map((r) => [r.name, []]));
  const cpu = new Map<string, number>(runners.map((r) => [r.name, 0]));
  for (const r of runners) {
    sharp.concurrency(r.concurrency);
    await r.run(files, WARM_START, Math.min(count, 8), warm); // warm-up (worker start, code caches)
  }
  for (let round = 0; round < rounds; round++) {
    // Each round starts one runner later, so that no runner always follows the same one.
    for (let j = 0; j < runners.length; j++) {
      const r = runners[(round + j) % runners.length]!;
      sharp.concurrency(r.concurrency);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const own = await r.run(files, round * count, count, warm);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      rates.get(r.name)!.push(typeof own === 'number' ? own : count / (dt / 1000));
      cpu.set(r.name, cpu.get(r.name)! + (c.user + c.system) / 1000);
    }
  }
  return new Map(
    [...rates].map(([k, v]) => {
      v.sort((a, b) => a - b);
      return [k, { best: v[v.length - 1], median: v[v.length >> 1], cpuMsPerImage: cpu.get(k)! / (rounds * count) }];
    }),
  );
}

const SPEC_TEXT = 'random-resized-crop 224, flip p=0.5, float32 HWC ImageNet-normalised';

function logRates(ctx: BenchContext, corpus: string, rates: Map<string, Rate>) {
  for (const [k, v] of rates) {
    ctx.log(`  ${corpus} | ${k}: best ${v.best.toFixed(1)}, median ${v.median.toFixed(1)} images/s, ${v.cpuMsPerImage.toFixed(2)} CPU ms/image in this process`);
  }
}

/** Reports runner `a` against runner `b` (best rounds), with medians and CPU costs in the notes. */
function compare(ctx: BenchContext, rates: Map<string, Rate>, notes: Record<string, unknown>) {
  return (name: string, a: string, b: string, baselineName: string, extra: Record<string, unknown> = {}) => {
    const ra = rates.get(a)!;
    const rb = rates.get(b)!;
    ctx.report({
      name,
      unit: 'images/s',
      value: ra.best,
      baseline: { name: baselineName, value: rb.best },
      notes: { ...notes, ...extra, runner: a, baselineRunner: b, median: ra.median, baselineMedian: rb.median, cpuMsPerImage: ra.cpuMsPerImage, baselineCpuMsPerImage: rb.cpuMsPerImage },
    });
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1] ?? NaN;

function logWalls(ctx: BenchContext, corpus: string, one: number[], two: number[], procs: number[]) {
  ctx.log(`  ${corpus} | ringpipe wall time per run, start-up included (median images/s): 1 replica ${median(one).toFixed(1)}, 2 replicas ${median(two).toFixed(1)}, 2 in processes ${median(procs).toFixed(1)}`);
}

/**
 * The ringpipe rows: the better of 1 and 2 replicas (by best round) against the serial loop and
 * against piscina; which replica count won, and the other's figure, go in the notes.
 */
function reportRingpipe(ctx: BenchContext, corpus: string, rates: Map<string, Rate>, cmp: ReturnType<typeof compare>, cores: number, workers: number, piscinaRule: string, serialProc: string, warm: number) {
  const names = ['ringpipe, 1 replica', `ringpipe, ${workers} replicas`, `ringpipe, ${workers} replicas, processes`];
  const best = names.reduce((a, b) => (rates.get(b)!.best > rates.get(a)!.best ? b : a));
  const extra = {
    bestReplicas: best === names[0] ? 1 : workers,
    isolation: best === names[2] ? 'process' : 'thread',
    others: names.filter((n) => n !== best).map((n) => ({ runner: n, best: rates.get(n)!.best, median: rates.get(n)!.median })),
    perCore: rates.get(best)!.best / cores,
    measured: `steady state at the sink: ${warm} warm-up images per run, start-up excluded; CPU ms/image includes worker start-up`,
  };
  ctx.log(`  ${corpus} | ringpipe best: ${best}`);
  const what = `${corpus}: ringpipe end to end (source -> preprocess x${extra.bestReplicas}${extra.isolation === 'process' ? ' in processes' : ''} -> sink)`;
  cmp(`${what} vs serial`, best, 'serial, vips 1', 'serial sharp loop', extra);
  cmp(`${what} vs the ${serialProc}`, best, serialProc, serialProc, extra);
  cmp(`${what} vs piscina`, best, piscinaRule, `piscina ${workers} workers`, extra);
  cmp(`${what} vs ${workers} processes running the serial loop`, best, `${workers} processes, serial loops`, `${workers} processes, serial loops`, extra);
}

const describeCorpus = (c: Corpus) => `${c.name}: ${c.files.length} files, ${(c.totalBytes / c.files.length / 1024).toFixed(0)} KiB average`;

export default async function image(ctx: BenchContext): Promise<void> {
  const cores = availableParallelism();
  const workers = 2;
  const plan = threadPlan({ cores, replicas: workers });  // replicas in threads of this process
  const procPlan = threadPlan({ cores, replicas: workers, replicasPerProcess: 1 });  // a process each
  const procOther = procPlan.vipsConcurrency === 1 ? 2 : 1;
  const rule1 = threadPlan({ cores, replicas: 1 });
  /** libvips threads per image the piscina runners try (the rule's among them). */
  const VIPS = [...new Set([1, 2, 4, plan.vipsConcurrency])].sort((a, b) => a - b);
  const pisc = (v: number) => `piscina ${workers}w, vips ${v}${v === plan.vipsConcurrency ? ' (rule)' : ''}`;
  const rule = pisc(plan.vipsConcurrency);
  const defaultConcurrency = sharp.concurrency();
  applyThreadPlan(plan); // sharp cache off; UV_THREADPOOL_SIZE is only a default here (pool already started)
  ctx.log(`${cores} cores; sharp default concurrency ${defaultConcurrency}; rule: ${workers} replicas in threads -> vips ${plan.vipsConcurrency}, in processes -> vips ${procPlan.vipsConcurrency}, 1 replica -> vips ${rule1.vipsConcurrency}`);

  // ringpipe's processes preload jemalloc when it is installed (src/image/allocator.ts): install it
  // when possible, and give the peers in child processes the same allocator.
  const jem = ensureJemalloc(() => findJemalloc(), { log: ctx.log });
  const procEnv = allocatorEnv('auto');
  const alloc = jem.path ? 'jemalloc' : 'system allocator';
  ctx.log(jem.path ? `jemalloc: ${jem.path}${jem.installed ? ' (installed now)' : ''}` : `NOTE: jemalloc is not available (${jem.reason}): processes keep the system allocator`);
  const serialProc = `serial loop in 1 process, ${alloc}`;

  const corpus = await imagenetLike(ctx.quick ? 160 : 600, ctx.log);
  if (corpus.synthetic) ctx.log('NOTE: ../shared/data/photos is absent; the corpus is SYNTHETIC (generated colour fields), not derived from photographs');
  ctx.log(describeCorpus(corpus));

  const walls1: number[] = [], walls2: number[] = [], wallsP: number[] = [], oWalls1: number[] = [], oWalls2: number[] = [], oWallsP: number[] = [];
  const children: ChildProcess[] = [];
  const pool = new Piscina({ filename: fileURLToPath(new URL('./image.worker.ts', import.meta.url)), minThreads: workers, maxThreads: workers, idleTimeout: 60_000 });
  try {
    // Each worker's loading of sharp (glibc, no jemalloc) resets the process-wide setting to 1: set
    // it once the workers have loaded (a first probe), then check that they see it.
    await Promise.all(Array.from({ length: workers }, () => pool.run({ probe: true, holdMs: 300 })));
    sharp.concurrency(plan.vipsConcurrency);
    const probe = (await pool.run({ probe: true })) as { concurrency: number };
    if (probe.concurrency !== plan.vipsConcurrency) throw new Error(`worker sees sharp.concurrency ${probe.concurrency}, expected ${plan.vipsConcurrency}: the setting is not process-wide`);

    const rounds = ctx.quick ? 3 : 5;
    const count = ctx.quick ? 48 : 192;
    const runners: Runner[] = [
      serial('serial, vips 1', 1),
      serial(`serial, vips ${rule1.vipsConcurrency} (rule)`, rule1.vipsConcurrency),
      serial('serial extract-resize, vips 1', 1, { ...SPEC, strategy: 'extract-resize' }),
      serial("serial readFile:'async', vips 1", 1, { ...SPEC, readFile: 'async' }),
      serial('serial readFile:false, vips 1', 1, { ...SPEC, readFile: false }),
      ...VIPS.map((v) => piscinaRunner(pisc(v), v, pool)),
      ringpipeRunner('ringpipe, 1 replica', 1, cores, walls1),
      ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores, walls2),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, wallsP, 'process'),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes, vips ${procOther}`, workers, cores, [], 'process', procOther),
      processPool(serialProc, 1, children, procEnv),
      processPool(`${workers} processes, serial loops`, workers, children, procEnv),
    ];
    const r = await measure(runners, corpus.files, rounds, count, WARMUP.small);
    logRates(ctx, corpus.name, r);
    logWalls(ctx, corpus.name, walls1, walls2, wallsP);
    const notes = { corpus: describeCorpus(corpus), synthetic: corpus.synthetic, rounds, imagesPerRound: count, spec: SPEC_TEXT };
    const cmp = compare(ctx, r, notes);
    const pis = r.get(rule)!;
    cmp(`${corpus.name}: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop', { perCore: pis.best / cores });
    for (const v of VIPS.filter((x) => x !== plan.vipsConcurrency)) {
      cmp(`${corpus.name}: thread rule, ${workers} workers in threads x vips ${plan.vipsConcurrency} vs vips ${v}`, rule, pisc(v), `${workers} workers x vips ${v}`);
    }
    cmp(`${corpus.name}: thread rule, ringpipe ${workers} replica processes x vips ${procPlan.vipsConcurrency} vs vips ${procOther}`, `ringpipe, ${workers} replicas, processes`, `ringpipe, ${workers} replicas, processes, vips ${procOther}`, `${workers} replica processes x vips ${procOther}`);
    cmp(`${corpus.name}: thread rule, serial x vips ${rule1.vipsConcurrency} vs vips 1`, `serial, vips ${rule1.vipsConcurrency} (rule)`, 'serial, vips 1', 'serial x vips 1');
    cmp(`${corpus.name}: crop resize-extract vs extract-resize (serial)`, 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
    cmp(`${corpus.name}: read file + JPEG header in JS vs libvips opens the path (serial)`, 'serial, vips 1', 'serial readFile:false, vips 1', 'readFile: false');
    cmp(`${corpus.name}: file read on the thread vs through libuv's pool (serial)`, 'serial, vips 1', "serial readFile:'async', vips 1", "readFile: 'async'");
    cmp(`${corpus.name}: serial loop in a child process, ${alloc} vs in this process`, serialProc, 'serial, vips 1', 'serial sharp loop');
    reportRingpipe(ctx, corpus.name, r, cmp, cores, workers, rule, serialProc, WARMUP.small);

    const orig = originals();
    if (!orig) {
      ctx.log('NOTE: ../shared/data/photos is absent; the 1080p-5K originals corpus is skipped');
    } else {
      ctx.log(describeCorpus(orig));
      const oRounds = ctx.quick ? 1 : 3;
      const oRunners: Runner[] = [
        serial('serial, vips 1', 1),
        serial('serial extract-resize, vips 1', 1, { ...SPEC, strategy: 'extract-resize' }),
        piscinaRunner(rule, plan.vipsConcurrency, pool),
        piscinaRunner(`piscina ${workers}w extract-resize, vips ${plan.vipsConcurrency}`, plan.vipsConcurrency, pool, { ...SPEC, strategy: 'extract-resize' }),
        ringpipeRunner('ringpipe, 1 replica', 1, cores, oWalls1),
        ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores, oWalls2),
        ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, oWallsP, 'process'),
        processPool(serialProc, 1, children, procEnv),
        processPool(`${workers} processes, serial loops`, workers, children, procEnv),
      ];
      // Two passes per round: the ordered hand-off's lead at the two ends of a short span varies with the
      // images' sizes (10-fold here), and a longer span dilutes it.
      const o = await measure(oRunners, orig.files, oRounds, 2 * orig.files.length, WARMUP.originals);
      logRates(ctx, 'originals', o);
      logWalls(ctx, 'originals', oWalls1, oWalls2, oWallsP);
      const ocmp = compare(ctx, o, { corpus: describeCorpus(orig), rounds: oRounds, spec: SPEC_TEXT });
      ocmp(`originals 1080p-5K: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop');
      ocmp('originals 1080p-5K: crop resize-extract vs extract-resize (serial)', 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
      reportRingpipe(ctx, 'originals 1080p-5K', o, ocmp, cores, workers, rule, serialProc, WARMUP.originals);
    }
  } finally {
    await pool.destroy();
    for (const c of children) if (c.connected) c.send('stop');
    sharp.concurrency(defaultConcurrency);
  }
}
