// Image preprocessing throughput: decode + random-resized-crop to 224x224 + flip + normalise to
// float32 (ImageNet mean/std), in images per second, through sharp and through the fused JPEG
// path (src/image/fused.ts), on two corpora: ImageNet-like 500x375 JPEGs and the 1080p-5K photos.
//
// Every runner does the same work through src/image's `preprocess` (same per-sample keys, so the
// same crops; the sharp runners with `decoder: 'sharp'`, the fused ones with the default): a serial
// loop, a piscina pool of 2 workers, the serial loop in 1 and in 2 child processes, and ringpipe end
// to end. The runners and how they are timed are in bench/image/runners.ts, the fused ones and
// their rows in bench/image/fused.ts; bench/image/quality.ts says how close the fused tensors are to
// sharp's on each corpus (mean absolute error, PSNR) and how many images took the fused path.
//
// ringpipe end to end: `imagePipeline` = a source of rounds (`roundSource`, items as `imageSource`
// makes them) -> `preprocess` (ImagePreprocessor, 1 or 2 replicas in worker threads or processes,
// libvips threads by the rule, each tensor decoded straight into the ring) -> a counting sink. One
// pipeline per runner, kept up across rounds as the peers keep their pools and child processes (a
// fresh process takes 2-3 s, 1500-3000 images, to reach its steady rate, plain or ringpipe replica
// alike: a pipeline started per round measured young processes against old ones). Every runner is
// timed alike: a round's wall time, from asking for its `count` images to the last one done. The
// fused runners' rounds are 3 times as long on the 500x375 corpus (they are that much faster).
//
// Allocator: ringpipe's processes preload jemalloc when it is installed (src/image/allocator.ts);
// the suite installs it when it can, and the child-process peers get the same allocator. The
// in-process peers (serial, piscina) keep the system's, as a plain script would.
import type { ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import sharp from 'sharp';
import type { BenchContext } from '../harness.js';
import { imagenetLike, originals, type Corpus } from '../image/corpus.js';
import { fusedRunners, reportFused, type FusedSetup } from '../image/fused.js';
import { fusedQuality } from '../image/quality.js';
import { compare, logRates, measure, piscinaRunner, processPool, ringpipeRunner, serial, type Rate, type Runner } from '../image/runners.js';
import type { PreprocessSpec } from '../../src/image/decode.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { applyThreadPlan, threadPlan } from '../../src/image/threads.js';
import { allocatorEnv, findJemalloc } from '../../src/image/allocator.js';
import { ensureJemalloc } from '../../scripts/jemalloc.mjs';

// readFile 'sync' (what ringpipe's replicas default to) for every runner: the same work.
const SPEC: PreprocessSpec = { size: 224, crop: 'random', flip: true, mean: IMAGENET_MEAN, std: IMAGENET_STD, seed: 1, readFile: 'sync', decoder: 'sharp' };
const FUSED: PreprocessSpec = { ...SPEC, decoder: 'auto' };
/** Sample index of each round's first image (the crops are those of earlier runs of this suite). */
const INDEX_BASE = { small: 48, originals: 18 };
/** The targets: ringpipe's fused path per core against the serial sharp loop. */
const TARGET = { small: 2, originals: 1.5 };

const SPEC_TEXT = 'random-resized-crop 224, flip p=0.5, float32 HWC ImageNet-normalised';

/**
 * The ringpipe rows (sharp): the best of 1 replica, 2 in threads and 2 in processes (by best round) against the serial loop and
 * against piscina; which replica count won, and the other's figure, go in the notes. Returns the best's name.
 */
function reportRingpipe(ctx: BenchContext, corpus: string, rates: Map<string, Rate>, cmp: ReturnType<typeof compare>, cores: number, workers: number, piscinaRule: string, serialProc: string): string {
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
  return best;
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
  const children: ChildProcess[] = [];
  const fused: FusedSetup = { spec: FUSED, cores, workers, children, procEnv, alloc, jemalloc: Boolean(jem.path), perRound: 1 };

  const corpus = await imagenetLike(ctx.quick ? 160 : 600, ctx.log);
  if (corpus.synthetic) ctx.log('NOTE: ../shared/data/photos is absent; the corpus is SYNTHETIC (generated colour fields), not derived from photographs');
  ctx.log(describeCorpus(corpus));

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
      serial('serial, vips 1', 1, SPEC),
      serial(`serial, vips ${rule1.vipsConcurrency} (rule)`, rule1.vipsConcurrency, SPEC),
      serial('serial extract-resize, vips 1', 1, { ...SPEC, strategy: 'extract-resize' }),
      serial("serial readFile:'async', vips 1", 1, { ...SPEC, readFile: 'async' }),
      serial('serial readFile:false, vips 1', 1, { ...SPEC, readFile: false }),
      ...VIPS.map((v) => piscinaRunner(pisc(v), v, pool, SPEC)),
      ringpipeRunner('ringpipe, 1 replica', 1, cores, { spec: SPEC }),
      ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores, { spec: SPEC }),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, { spec: SPEC, isolation: 'process' }),
      ringpipeRunner(`ringpipe, ${workers} replicas, processes, vips ${procOther}`, workers, cores, { spec: SPEC, isolation: 'process', threads: procOther }),
      processPool(serialProc, 1, children, procEnv, SPEC),
      processPool(`${workers} processes, serial loops`, workers, children, procEnv, SPEC),
      ...fusedRunners({ ...fused, perRound: 3 }, true),
    ];
    const quality = await fusedQuality(corpus.files, FUSED, ctx.quick ? 48 : 300, INDEX_BASE.small);
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
    const sharpBest = reportRingpipe(ctx, corpus.name, r, cmp, cores, workers, rule, serialProc);
    reportFused(ctx, corpus.name, r, cmp, { ...fused, perRound: 3 }, sharpBest, quality, TARGET.small, true);

    const orig = originals();
    if (!orig) {
      ctx.log('NOTE: ../shared/data/photos is absent; the 1080p-5K originals corpus is skipped');
    } else {
      ctx.log(describeCorpus(orig));
      const oRounds = ctx.quick ? 1 : 3;
      const oRunners: Runner[] = [
        serial('serial, vips 1', 1, SPEC),
        serial('serial extract-resize, vips 1', 1, { ...SPEC, strategy: 'extract-resize' }),
        piscinaRunner(rule, plan.vipsConcurrency, pool, SPEC),
        piscinaRunner(`piscina ${workers}w extract-resize, vips ${plan.vipsConcurrency}`, plan.vipsConcurrency, pool, { ...SPEC, strategy: 'extract-resize' }),
        ringpipeRunner('ringpipe, 1 replica', 1, cores, { spec: SPEC }),
        ringpipeRunner(`ringpipe, ${workers} replicas`, workers, cores, { spec: SPEC }),
        ringpipeRunner(`ringpipe, ${workers} replicas, processes`, workers, cores, { spec: SPEC, isolation: 'process' }),
        processPool(serialProc, 1, children, procEnv, SPEC),
        processPool(`${workers} processes, serial loops`, workers, children, procEnv, SPEC),
        ...fusedRunners(fused, false),
      ];
      const oQuality = await fusedQuality(orig.files, FUSED, 2 * orig.files.length, INDEX_BASE.originals);
      // Two passes per round: the ordered hand-off's lead at the two ends of a short span varies with the
      // images' sizes (10-fold here), and a longer span dilutes it.
      const o = await measure(oRunners, orig.files, oRounds, 2 * orig.files.length, INDEX_BASE.originals);
      logRates(ctx, 'originals', o);
      const ocmp = compare(ctx, o, { corpus: describeCorpus(orig), rounds: oRounds, spec: SPEC_TEXT });
      ocmp(`originals 1080p-5K: piscina ${workers} workers vs serial`, rule, 'serial, vips 1', 'serial sharp loop');
      ocmp('originals 1080p-5K: crop resize-extract vs extract-resize (serial)', 'serial, vips 1', 'serial extract-resize, vips 1', 'extract-resize');
      const oSharpBest = reportRingpipe(ctx, 'originals 1080p-5K', o, ocmp, cores, workers, rule, serialProc);
      reportFused(ctx, 'originals 1080p-5K', o, ocmp, fused, oSharpBest, oQuality, TARGET.originals, false);
    }
  } finally {
    await pool.destroy();
    for (const c of children) if (c.connected) c.send('stop');
    sharp.concurrency(defaultConcurrency);
  }
}
