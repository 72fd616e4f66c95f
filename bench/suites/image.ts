// Image preprocessing throughput: decode + random-resized-crop to 224x224 + flip + normalise to
// float32 (ImageNet mean/std), in images per second.
//
// Every runner does exactly the same work through src/image's `preprocess` (same spec, same
// per-sample keys, so the same crops): a serial loop, a piscina pool of 2 workers, the serial loop
// in 1 and in 2 child processes, and ringpipe end to end. Runners are measured in interleaved
// rounds and the best and median rounds are kept, because this machine is shared and its load
// varies from second to second.
//
// ringpipe end to end: `imagePipeline` = a source of rounds (`roundSource`, items as `imageSource`
// makes them) -> `preprocess` (ImagePreprocessor, 1 or 2 replicas in worker threads or processes,
// libvips threads by the rule, each tensor decoded straight into the ring) -> a counting sink. One
// pipeline per runner, kept up across rounds as the peers keep their pools and child processes (a
// fresh process takes 2-3 s, 1500-3000 images, to reach its steady rate, plain or ringpipe replica
// alike: a pipeline started per round measured young processes against old ones). Every runner is
// timed alike: a round's wall time, from asking for its `count` images to the last one done.
//
// Allocator: ringpipe's processes preload jemalloc when it is installed (src/image/allocator.ts);
// the suite installs it when it can, and the child-process peers get the same allocator. The
// in-process peers (serial, piscina) keep the system's, as a plain script would.
//
// Sample keys: the k-th image of the round starting at `start` is files[(start + k) % n] with key
// { index: base + k, epoch: start } in every runner.
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import { Sink, Source } from '../../src/index.js';
import type { BenchContext } from '../harness.js';
import { imagenetLike, originals, type Corpus } from '../image/corpus.js';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { applyThreadPlan, threadPlan } from '../../src/image/threads.js';
import { allocatorEnv, findJemalloc } from '../../src/image/allocator.js';
import { ensureJemalloc } from '../../scripts/jemalloc.mjs';
import { imagePipeline } from '../../src/image/pipeline.js';
import { ROUND, ROUND_BYTES, RoundCount, roundSource } from './image.segments.js';
import { firstMessage, tsProcess } from '../lib/spawn.js';

// readFile 'sync' (what ringpipe's replicas default to) for every runner: the same work.
const SPEC: PreprocessSpec = { size: 224, crop: 'random', flip: true, mean: IMAGENET_MEAN, std: IMAGENET_STD, seed: 1, readFile: 'sync' };
/** Sample index of each round's first image (the crops are those of earlier runs of this suite). */
const INDEX_BASE = { small: 48, originals: 18 };
const key = (start: number, k: number, base: number) => ({ index: base + k, epoch: start });
/** Pause between the runners' warm-up runs and the first round. */
const SETTLE_MS = 10_000;
/** `start` of the warm-up run of every runner in `measure`. */
const WARM_START = 1_000_000;
const SEGMENTS = new URL('./image.segments.ts', import.meta.url).href;
const CHILD = new URL('./image.child.ts', import.meta.url);

interface Runner {
  name: string;
  /** libvips threads per image while this runner runs (a process-wide setting). */
  concurrency: number;
  /**
   * Processes `count` images: files[(start + k) % n] with key `key(start, k, base)`.
   */
  run(files: string[], start: number, count: number, base: number): Promise<void>;
  /** Stops what the runner keeps up between rounds. */
  close?(): Promise<void>;
}

function serial(name: string, concurrency: number, spec: PreprocessSpec = SPEC): Runner {
  const out = new Float32Array(224 * 224 * 3);
  return {
    name,
    concurrency,
    async run(files, start, count, base) {
      for (let k = 0; k < count; k++) await preprocess(files[(start + k) % files.length], spec, out, key(start, k, base));
    },
  };
}

function piscinaRunner(name: string, concurrency: number, pool: Piscina, spec: PreprocessSpec = SPEC): Runner {
  return {
    name,
    concurrency,
    async run(files, start, count, base) {
      const tasks: Promise<Float32Array>[] = [];
      for (let k = 0; k < count; k++) tasks.push(pool.run({ file: files[(start + k) % files.length], ...key(start, k, base), spec }));
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
    async run(files, start, count, base) {
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
        share.tasks.push({ file, ...key(start, k, base) });
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
 * ringpipe end to end with `workers` preprocessing replicas: one pipeline, started by the first
 * (warm-up) run and kept up across rounds; each round is asked of its source, and its sink answers
 * once the round's last image is in (see the top of this file). `concurrency` is what the
 * replicas' setup applies by the rule (a process-wide libvips setting, shared with this thread).
 */
function ringpipeRunner(name: string, workers: number, cores: number, isolation: 'thread' | 'process' = 'thread', threads: 'auto' | number = 'auto'): Runner {
  let control: Int32Array | undefined;
  let running: Promise<unknown>;
  let failed: unknown;
  let list: string[];
  return {
    name,
    concurrency: threads === 'auto' ? threadPlan({ cores, replicas: workers }).vipsConcurrency : threads,
    async close() {
      if (!control) return;
      Atomics.store(control, ROUND.stop, 1);
      Atomics.add(control, ROUND.request, 1);
      Atomics.notify(control, ROUND.request);
      await running;
      control = undefined;
      if (failed) throw failed;
    },
    async run(files, start, count, base) {
      if (!control) {
        list = files;
        control = new Int32Array(new SharedArrayBuffer(ROUND_BYTES));
        const options = { control: control.buffer as SharedArrayBuffer, files };
        running = imagePipeline({
          // module/export given: without them ringpipe would look for the code by importing this
          // module's imports, harness.ts among them, which is still evaluating (its top-level await
          // is what runs this suite): that import never settles and node exits with code 13.
          source: new Source(roundSource, { name: 'images', options, module: SEGMENTS, export: 'roundSource' }),
          spec: SPEC,
          workers,
          cores,
          // Replicas where asked (processes: imagePipeline's default), source and sink in threads.
          preprocessIsolation: isolation,
          isolation: 'thread',
          threads,
          meta: false,
          sink: new Sink(RoundCount, { options: { ...options, length: 224 * 224 * 3 }, module: SEGMENTS, export: 'RoundCount' }),
        }).run({ handleSigint: false }).catch((e: unknown) => {
          failed = e;
        });
      }
      if (failed) throw failed;
      if (files !== list) throw new Error('ringpipe runner: its source was given another file list');
      const c = control, done = Atomics.load(c, ROUND.done);
      c[ROUND.start] = start;
      c[ROUND.count] = count;
      c[ROUND.base] = base;
      Atomics.add(c, ROUND.request, 1);
      Atomics.notify(c, ROUND.request);
      // Wakes on the sink's answer, or on the pipeline failing.
      while (Atomics.load(c, ROUND.done) === done) {
        const w = Atomics.waitAsync(c, ROUND.done, done, 200);
        if (w.async) await Promise.race([w.value, running]);
        if (failed) throw failed;
      }
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
async function measure(runners: Runner[], files: string[], rounds: number, count: number, base: number): Promise<Map<string, Rate>> {
  const rates = new Map<string, number[]>(runners.map((r) => [r.name, []]));
  const cpu = new Map<string, number>(runners.map((r) => [r.name, 0]));
  try {
    await runRounds(runners, files, rounds, count, base, rates, cpu);
  } finally {
    for (const r of runners) await r.close?.();
  }
  return new Map(
    [...rates].map(([k, v]) => {
      v.sort((a, b) => a - b);
      return [k, { best: v[v.length - 1], median: v[v.length >> 1], cpuMsPerImage: cpu.get(k)! / (rounds * count) }];
    }),
  );
}

async function runRounds(runners: Runner[], files: string[], rounds: number, count: number, base: number, rates: Map<string, number[]>, cpu: Map<string, number>): Promise<void> {
  for (const r of runners) {
    sharp.concurrency(r.concurrency);
    await r.run(files, WARM_START, Math.min(count, 8), base); // warm-up (worker start, code caches)
  }
  // Freshly started workers and processes keep a core partly busy for seconds after (V8's tiering
  // and its idle-time GCs): let that pass before the first round, whoever it disturbs.
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  for (let round = 0; round < rounds; round++) {
    // Each round starts one runner later, so that no runner always follows the same one.
    for (let j = 0; j < runners.length; j++) {
      const r = runners[(round + j) % runners.length]!;
      sharp.concurrency(r.concurrency);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await r.run(files, round * count, count, base);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      rates.get(r.name)!.push(count / (dt / 1000));
      cpu.set(r.name, cpu.get(r.name)! + (c.user + c.system) / 1000);
    }
  }
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

/**
 * The ringpipe rows: the best of 1 replica, 2 in threads and 2 in processes (by best round) against the serial loop and
 * against piscina; which replica count won, and the other's figure, go in the notes.
 */
function reportRingpipe(ctx: BenchContext, corpus: string, rates: Map<string, Rate>, cmp: ReturnType<typeof compare>, cores: number, workers: number, piscinaRule: string, serialProc: string) {
  const names = ['ringpipe, 1 replica', `ringpipe, ${workers} replicas`, `ringpipe, ${workers} replicas, processes`];
  const best = names.reduce((a, b) => (rates.get(b)!.best > rates.get(a)!.best ? b : a));
  const extra = {
    bestReplicas: best === names[0] ? 1 : workers,
    isolation: best === names[2] ? 'process' : 'thread',
    others: names.filter((n) => n !== best).map((n) => ({ runner: n, best: rates.get(n)!.best, median: rates.get(n)!.median })),
    perCore: rates.get(best)!.best / cores,
    measured: 'wall time per round, as every runner: one pipeline kept up across rounds',
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
  ctx.log('reason' in jem ? `NOTE: jemalloc is not available (${jem.reason}): processes keep the system allocator` : `jemalloc: ${jem.path}${jem.installed ? ' (installed now)' : ''}`);
  const serialProc = `serial loop in 1 process, ${alloc}`;

  const corpus = await imagenetLike(ctx.quick ? 160 : 600, ctx.log);
  if (corpus.synthetic) ctx.log('NOTE: ../shared/data/photos is absent; the corpus is SYNTHETIC (generated colour fields), not derived from photographs');
  ctx.log(describeCorpus(corpus));

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
      ringpipeRunner('ringpipe, 1 replica', 1, cores),
      ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, 'process'),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes, vips ${procOther}`, workers, cores, 'process', procOther),
      processPool(serialProc, 1, children, procEnv),
      processPool(`${workers} processes, serial loops`, workers, children, procEnv),
    ];
    const r = await measure(runners, corpus.files, rounds, count, INDEX_BASE.small);
    logRates(ctx, corpus.name, r);
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
    reportRingpipe(ctx, corpus.name, r, cmp, cores, workers, rule, serialProc);

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
        ringpipeRunner('ringpipe, 1 replica', 1, cores),
        ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores),
        ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, 'process'),
        processPool(serialProc, 1, children, procEnv),
        processPool(`${workers} processes, serial loops`, workers, children, procEnv),
      ];
      // Two passes per round: the ordered hand-off's lead at the two ends of a short span varies with the
      // images' sizes (10-fold here), and a longer span dilutes it.
      const o = await measure(oRunners, orig.files, oRounds, 2 * orig.files.length, INDEX_BASE.originals);
      logRates(ctx, 'originals', o);
      const ocmp = compare(ctx, o, { corpus: describeCorpus(orig), rounds: oRounds, spec: SPEC_TEXT });
      ocmp(`originals 1080p-5K: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop');
      ocmp('originals 1080p-5K: crop resize-extract vs extract-resize (serial)', 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
      reportRingpipe(ctx, 'originals 1080p-5K', o, ocmp, cores, workers, rule, serialProc);
    }
  } finally {
    await pool.destroy();
    for (const c of children) if (c.connected) c.send('stop');
    sharp.concurrency(defaultConcurrency);
  }
}
