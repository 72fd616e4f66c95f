// Image preprocessing throughput: decode + random-resized-crop to 224x224 + flip + normalise to
// float32 (ImageNet mean/std), in images per second.
//
// Every runner does exactly the same work through src/image's `preprocess` (same spec, same
// per-sample keys, so the same crops): a serial loop, one thread with 2 images in flight, and a
// piscina pool of 2 workers. Runners are measured in interleaved rounds and the median round is
// kept, because this machine is shared and its load varies from second to second.
//
// The ringpipe end-to-end figure is not measured yet: the engine has not landed. Adding it is one
// more `Runner` in `runners` (run(files, start) pushing the chunk through a Pipeline) and one
// `ctx.report`.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import type { BenchContext } from '../harness.js';
import { imagenetLike, originals, type Corpus } from '../image/corpus.js';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { applyThreadPlan, threadPlan } from '../../src/image/threads.js';

const SPEC: PreprocessSpec = { size: 224, crop: 'random', flip: true, mean: IMAGENET_MEAN, std: IMAGENET_STD, seed: 1 };

interface Runner {
  name: string;
  /** libvips threads per image while this runner runs (a process-wide setting). */
  concurrency: number;
  /** Processes `count` images: files[(start + k) % n] with sample index start + k. */
  run(files: string[], start: number, count: number): Promise<void>;
}

function serial(name: string, concurrency: number, spec: PreprocessSpec = SPEC): Runner {
  const out = new Float32Array(224 * 224 * 3);
  return {
    name,
    concurrency,
    async run(files, start, count) {
      for (let k = 0; k < count; k++) await preprocess(files[(start + k) % files.length], spec, out, { index: start + k });
    },
  };
}

function inFlight(name: string, concurrency: number, depth: number): Runner {
  const outs = Array.from({ length: depth }, () => new Float32Array(224 * 224 * 3));
  return {
    name,
    concurrency,
    async run(files, start, count) {
      let next = 0;
      await Promise.all(
        outs.map(async (out) => {
          for (let k = next++; k < count; k = next++) await preprocess(files[(start + k) % files.length], SPEC, out, { index: start + k });
        }),
      );
    },
  };
}

function piscinaRunner(name: string, concurrency: number, pool: Piscina, spec: PreprocessSpec = SPEC): Runner {
  return {
    name,
    concurrency,
    async run(files, start, count) {
      const tasks: Promise<Float32Array>[] = [];
      for (let k = 0; k < count; k++) tasks.push(pool.run({ file: files[(start + k) % files.length], index: start + k, spec }));
      const results = await Promise.all(tasks);
      if (results.some((r) => !(r instanceof Float32Array) || r.length !== 224 * 224 * 3)) throw new Error('piscina worker returned a bad tensor');
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
async function measure(runners: Runner[], files: string[], rounds: number, count: number): Promise<Map<string, Rate>> {
  const rates = new Map<string, number[]>(runners.map((r) => [r.name, []]));
  const cpu = new Map<string, number>(runners.map((r) => [r.name, 0]));
  for (const r of runners) {
    sharp.concurrency(r.concurrency);
    await r.run(files, 1_000_000, Math.min(count, 8)); // warm-up (worker start, code caches)
  }
  for (let round = 0; round < rounds; round++) {
    for (const r of runners) {
      sharp.concurrency(r.concurrency);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await r.run(files, round * count, count);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      rates.get(r.name)!.push(count / (dt / 1000));
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
    ctx.log(`  ${corpus} | ${k}: best ${v.best.toFixed(1)}, median ${v.median.toFixed(1)} images/s, ${v.cpuMsPerImage.toFixed(2)} CPU ms/image`);
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

const describeCorpus = (c: Corpus) => `${c.name}: ${c.files.length} files, ${(c.totalBytes / c.files.length / 1024).toFixed(0)} KiB average`;

export default async function image(ctx: BenchContext): Promise<void> {
  const cores = availableParallelism();
  const workers = 2;
  const plan = threadPlan({ cores, replicas: workers });
  const rule1 = threadPlan({ cores, replicas: 1 });
  const defaultConcurrency = sharp.concurrency();
  applyThreadPlan(plan); // sharp cache off; UV_THREADPOOL_SIZE is only a default here (pool already started)
  ctx.log(`${cores} cores; sharp default concurrency ${defaultConcurrency}; rule: ${workers} replicas -> vips ${plan.vipsConcurrency}, 1 replica -> vips ${rule1.vipsConcurrency}`);

  const corpus = await imagenetLike(ctx.quick ? 160 : 600, ctx.log);
  if (corpus.synthetic) ctx.log('NOTE: ../shared/data/photos is absent; the corpus is SYNTHETIC (generated colour fields), not derived from photographs');
  ctx.log(describeCorpus(corpus));

  const pool = new Piscina({ filename: fileURLToPath(new URL('./image.worker.ts', import.meta.url)), minThreads: workers, maxThreads: workers, idleTimeout: 60_000 });
  try {
    sharp.concurrency(plan.vipsConcurrency);
    const probe = (await pool.run({ probe: true })) as { concurrency: number };
    if (probe.concurrency !== plan.vipsConcurrency) throw new Error(`worker sees sharp.concurrency ${probe.concurrency}, expected ${plan.vipsConcurrency}: the setting is not process-wide`);

    const rounds = ctx.quick ? 3 : 5;
    const count = ctx.quick ? 48 : 96;
    const runners: Runner[] = [
      serial('serial, vips 1', 1),
      serial(`serial, vips ${rule1.vipsConcurrency} (rule)`, rule1.vipsConcurrency),
      serial('serial extract-resize, vips 1', 1, { ...SPEC, strategy: 'extract-resize' }),
      serial('serial readFile:false, vips 1', 1, { ...SPEC, readFile: false }),
      inFlight('1 thread, 2 in flight, vips 1', 1, 2),
      piscinaRunner(`piscina ${workers}w, vips ${plan.vipsConcurrency} (rule)`, plan.vipsConcurrency, pool),
      piscinaRunner(`piscina ${workers}w, vips 2`, 2, pool),
      piscinaRunner(`piscina ${workers}w, vips 4`, 4, pool),
    ];
    const r = await measure(runners, corpus.files, rounds, count);
    logRates(ctx, corpus.name, r);
    const notes = { corpus: describeCorpus(corpus), synthetic: corpus.synthetic, rounds, imagesPerRound: count, spec: SPEC_TEXT };
    const cmp = compare(ctx, r, notes);
    const rule = `piscina ${workers}w, vips ${plan.vipsConcurrency} (rule)`;
    const pis = r.get(rule)!;
    cmp(`${corpus.name}: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop', { perCore: pis.best / cores });
    cmp(`${corpus.name}: 1 thread with 2 images in flight vs serial`, '1 thread, 2 in flight, vips 1', 'serial, vips 1', 'serial sharp loop');
    cmp(`${corpus.name}: thread rule, ${workers} workers x vips ${plan.vipsConcurrency} vs vips 2`, rule, `piscina ${workers}w, vips 2`, `${workers} workers x vips 2`);
    cmp(`${corpus.name}: thread rule, ${workers} workers x vips ${plan.vipsConcurrency} vs vips 4`, rule, `piscina ${workers}w, vips 4`, `${workers} workers x vips 4`);
    cmp(`${corpus.name}: thread rule, serial x vips ${rule1.vipsConcurrency} vs vips 1`, `serial, vips ${rule1.vipsConcurrency} (rule)`, 'serial, vips 1', 'serial x vips 1');
    cmp(`${corpus.name}: crop resize-extract vs extract-resize (serial)`, 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
    cmp(`${corpus.name}: read file + JPEG header in JS vs libvips opens the path (serial)`, 'serial, vips 1', 'serial readFile:false, vips 1', 'readFile: false');

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
      ];
      const o = await measure(oRunners, orig.files, oRounds, orig.files.length);
      logRates(ctx, 'originals', o);
      const ocmp = compare(ctx, o, { corpus: describeCorpus(orig), rounds: oRounds, spec: SPEC_TEXT });
      ocmp(`originals 1080p-5K: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop');
      ocmp('originals 1080p-5K: crop resize-extract vs extract-resize (serial)', 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
    }
  } finally {
    await pool.destroy();
    sharp.concurrency(defaultConcurrency);
  }
}
