// The runners of the image suite (bench/suites/image.ts) and how they are timed. Every runner does
// the same work through src/image's `preprocess` (the spec it is given, the same per-sample keys,
// so the same crops): a serial loop, a piscina pool, the serial loop in child processes, and
// ringpipe end to end (see the suite's top for each). Runners are measured in interleaved rounds
// and the best and median rounds are kept, because this machine is shared and its load varies
// from second to second.
//
// Sample keys: the k-th image of the round starting at `start` is files[(start + k) % n] with key
// { index: base + k, epoch: start } in every runner.
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import type { Piscina } from 'piscina';
import sharp from 'sharp';
import { Sink, Source } from '../../src/index.js';
import type { BenchContext } from '../harness.js';
import { preprocess, type PreprocessSpec } from '../../src/image/decode.js';
import type { Allocator } from '../../src/image/allocator.js';
import { threadPlan } from '../../src/image/threads.js';
import { imagePipeline } from '../../src/image/pipeline.js';
import { ROUND, ROUND_BYTES, RoundCount, roundSource } from '../suites/image.segments.js';
import { firstMessage, tsProcess } from '../lib/spawn.js';

export const key = (start: number, k: number, base: number) => ({ index: base + k, epoch: start });
/** Pause between the runners' warm-up runs and the first round. */
const SETTLE_MS = 10_000;
/** `start` of the warm-up run of every runner in `measure`. */
const WARM_START = 1_000_000;
const SEGMENTS = new URL('../suites/image.segments.ts', import.meta.url).href;
const CHILD = new URL('../suites/image.child.ts', import.meta.url);

export interface Runner {
  name: string;
  /** libvips threads per image while this runner runs (a process-wide setting). */
  concurrency: number;
  /** Rounds of this runner are this many times the round size (fast runners: rounds long enough to time). Default 1. */
  perRound?: number;
  /**
   * Processes `count` images: files[(start + k) % n] with key `key(start, k, base)`.
   */
  run(files: string[], start: number, count: number, base: number): Promise<void>;
  /** Stops what the runner keeps up between rounds. */
  close?(): Promise<void>;
}

export function serial(name: string, concurrency: number, spec: PreprocessSpec, perRound = 1): Runner {
  const out = new Float32Array(224 * 224 * 3);
  return {
    name,
    concurrency,
    perRound,
    async run(files, start, count, base) {
      for (let k = 0; k < count; k++) await preprocess(files[(start + k) % files.length], spec, out, key(start, k, base));
    },
  };
}

export function piscinaRunner(name: string, concurrency: number, pool: Piscina, spec: PreprocessSpec): Runner {
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
export function processPool(name: string, n: number, children: ChildProcess[], env: Record<string, string>, spec: PreprocessSpec, perRound = 1): Runner {
  const mine: ChildProcess[] = [];
  return {
    name,
    concurrency: 1,
    perRound,
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
          c.send({ spec, tasks: shares[i]!.tasks });
          return done;
        }),
      );
    },
  };
}

const sizes = new Map<string, number>();
const sizeOf = (file: string) => sizes.get(file) ?? (sizes.set(file, statSync(file).size), sizes.get(file)!);

/** How a ringpipe runner runs its replicas. */
export interface RingpipeOptions {
  spec: PreprocessSpec;
  isolation?: 'thread' | 'process';
  threads?: 'auto' | number;
  allocator?: Allocator;
  perRound?: number;
}

/**
 * ringpipe end to end with `workers` preprocessing replicas: one pipeline, started by the first
 * (warm-up) run and kept up across rounds; each round is asked of its source, and its sink answers
 * once the round's last image is in (see the suite's top). `concurrency` is what the replicas'
 * setup applies by the rule (a process-wide libvips setting, shared with this thread).
 */
export function ringpipeRunner(name: string, workers: number, cores: number, o: RingpipeOptions): Runner {
  const { spec, isolation = 'thread', threads = 'auto', allocator = 'auto' } = o;
  let control: Int32Array | undefined;
  let running: Promise<unknown>;
  let failed: unknown;
  let list: string[];
  return {
    name,
    concurrency: threads === 'auto' ? threadPlan({ cores, replicas: workers }).vipsConcurrency : threads,
    perRound: o.perRound ?? 1,
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
          spec,
          workers,
          cores,
          // Replicas where asked (processes: imagePipeline's default), source and sink in threads.
          preprocessIsolation: isolation,
          isolation: 'thread',
          threads,
          allocator,
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

export interface Rate {
  /** Best round, images/s: the least disturbed by other load on a shared machine. */
  best: number;
  /** Median round, images/s. */
  median: number;
  /** CPU time of this process (all threads) per image, in ms: the cost, whatever the load. */
  cpuMsPerImage: number;
}

/** Images/s and CPU cost of each runner over `rounds` interleaved rounds of `count` images (times its `perRound`). */
export async function measure(runners: Runner[], files: string[], rounds: number, count: number, base: number): Promise<Map<string, Rate>> {
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
      const per = runners.find((r) => r.name === k)!.perRound ?? 1;
      return [k, { best: v[v.length - 1], median: v[v.length >> 1], cpuMsPerImage: cpu.get(k)! / (rounds * count * per) }];
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
      const n = count * (r.perRound ?? 1);
      await r.run(files, round * count, n, base);
      const dt = performance.now() - t0;
      const c = process.cpuUsage(c0);
      rates.get(r.name)!.push(n / (dt / 1000));
      cpu.set(r.name, cpu.get(r.name)! + (c.user + c.system) / 1000);
    }
  }
}

export function logRates(ctx: BenchContext, corpus: string, rates: Map<string, Rate>) {
  for (const [k, v] of rates) {
    ctx.log(`  ${corpus} | ${k}: best ${v.best.toFixed(1)}, median ${v.median.toFixed(1)} images/s, ${v.cpuMsPerImage.toFixed(2)} CPU ms/image in this process`);
  }
}

/** Reports runner `a` against runner `b` (best rounds), with medians and CPU costs in the notes. */
export function compare(ctx: BenchContext, rates: Map<string, Rate>, notes: Record<string, unknown>) {
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

