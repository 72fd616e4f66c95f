// The image suite's fused-path runners and rows (bench/suites/image.ts): the fused JPEG path
// (src/image/fused.ts) in a serial loop, in child processes, and on ringpipe's engine, against the
// sharp runners of the same run; and the defaults re-measured for it: replicas in processes or
// threads, jemalloc or the system's allocator, the decode on the replica's thread or libuv's pool.
import type { ChildProcess } from 'node:child_process';
import type { PreprocessSpec } from '../../src/image/decode.js';
import type { BenchContext } from '../harness.js';
import type { FusedQuality } from './quality.js';
import { processPool, ringpipeRunner, serial, type compare, type Rate, type Runner } from './runners.js';

export interface FusedSetup {
  spec: PreprocessSpec;
  cores: number;
  workers: number;
  children: ChildProcess[];
  /** The environment (allocator) of child processes, and its name. */
  procEnv: Record<string, string>;
  alloc: string;
  /** Whether jemalloc is there to compare against the system's allocator. */
  jemalloc: boolean;
  /** Rounds of the fused runners are this many times the sharp runners'. */
  perRound: number;
}

const names = (w: number) => ({
  serial: 'fused serial',
  ringpipe: ['ringpipe fused, 1 replica', `ringpipe fused, ${w} replicas`, `ringpipe fused, ${w} replicas, processes`],
  systemAlloc: `ringpipe fused, ${w} replicas, processes, system allocator`,
  onPool: `ringpipe fused, ${w} replicas, processes, decode on libuv's pool`,
  processes: `${w} processes, fused serial loops`,
  child: (alloc: string) => `fused serial loop in 1 process, ${alloc}`,
});

/** The fused runners; `full` adds the ones that re-measure the allocator and where the decode runs. */
export function fusedRunners(s: FusedSetup, full: boolean): Runner[] {
  const n = names(s.workers);
  const o = { spec: s.spec, perRound: s.perRound };
  const runners = [
    serial(n.serial, 1, s.spec, s.perRound),
    ringpipeRunner(n.ringpipe[0]!, 1, s.cores, o),
    ringpipeRunner(n.ringpipe[1]!, s.workers, s.cores, o),
    ringpipeRunner(n.ringpipe[2]!, s.workers, s.cores, { ...o, isolation: 'process' }),
    processPool(n.processes, s.workers, s.children, s.procEnv, s.spec, s.perRound),
  ];
  if (!full) return runners;
  runners.push(ringpipeRunner(n.onPool, s.workers, s.cores, { ...o, isolation: 'process', spec: { ...s.spec, readFile: 'async' } }));
  if (s.jemalloc) {
    runners.push(
      ringpipeRunner(n.systemAlloc, s.workers, s.cores, { ...o, isolation: 'process', allocator: 'system' }),
      processPool(n.child(s.alloc), 1, s.children, s.procEnv, s.spec, s.perRound),
      processPool(n.child('system allocator'), 1, s.children, {}, s.spec, s.perRound),
    );
  }
  return runners;
}

/**
 * The fused rows: the serial loops one core each; ringpipe's fused path (best of 1 replica, 2 in
 * threads, 2 in processes) per core against the serial sharp loop (the target; also as
 * images per CPU-second, which other load on the machine does not change), against 2
 * processes running the sharp loop, against ringpipe's sharp path (`sharpBest`) and against 2
 * processes running the fused loop; then the defaults re-measured where `full`.
 */
export function reportFused(ctx: BenchContext, corpus: string, rates: Map<string, Rate>, cmp: ReturnType<typeof compare>, s: FusedSetup, sharpBest: string, quality: FusedQuality, target: number, full: boolean): void {
  const n = names(s.workers);
  const best = n.ringpipe.reduce((a, b) => (rates.get(b)!.best > rates.get(a)!.best ? b : a));
  const q = { quality: { fusedImages: quality.fusedImages, images: quality.images, all: quality.all, fullScale: quality.fullScale, dctScaled: quality.dctScaled, enlarged: quality.enlarged } };
  const serialSharp = rates.get('serial, vips 1')!;
  ctx.log(`  ${corpus} | fused: ${quality.text}`);
  ctx.log(`  ${corpus} | ringpipe fused best: ${best}`);
  cmp(`${corpus}: fused serial loop vs the serial sharp loop (one core each)`, n.serial, 'serial, vips 1', 'serial sharp loop', q);
  const bestRate = rates.get(best)!;
  ctx.report({
    name: `${corpus}: ringpipe fused end to end, per core, vs the serial sharp loop (target ${target}x)`,
    unit: 'images/s per core',
    value: bestRate.best / s.cores,
    baseline: { name: 'serial sharp loop (one core)', value: serialSharp.best },
    notes: { runner: best, cores: s.cores, images: bestRate.best, median: bestRate.median / s.cores, baselineMedian: serialSharp.median, target, ...q },
  });
  // The same target by CPU: images per CPU-second of all ringpipe's threads (replicas in threads,
  // so all in this process) against the serial sharp loop's. Other load on a shared machine takes
  // cores from the 2-replica runners, not CPU time from an image.
  const threads = rates.get(n.ringpipe[1]!)!;
  ctx.report({
    name: `${corpus}: ringpipe fused end to end (${s.workers} replicas in threads), images per CPU-second, vs the serial sharp loop (target ${target}x)`,
    unit: 'images per CPU s',
    value: 1000 / threads.cpuMsPerImage,
    baseline: { name: 'serial sharp loop', value: 1000 / serialSharp.cpuMsPerImage },
    notes: { runner: n.ringpipe[1], cpuMsPerImage: threads.cpuMsPerImage, baselineCpuMsPerImage: serialSharp.cpuMsPerImage, target },
  });
  const what = `${corpus}: ringpipe fused end to end (${best.replace('ringpipe fused, ', '')})`;
  cmp(`${what} vs ${s.workers} processes running the sharp loop`, best, `${s.workers} processes, serial loops`, `${s.workers} processes, sharp serial loops`);
  cmp(`${what} vs ringpipe's sharp path (${sharpBest.replace('ringpipe, ', '')})`, best, sharpBest, "ringpipe's sharp path");
  cmp(`${what} vs ${s.workers} processes running the fused loop`, best, n.processes, `${s.workers} processes, fused serial loops`);
  cmp(`${corpus}: fused, ringpipe ${s.workers} replicas in processes vs in threads`, n.ringpipe[2]!, n.ringpipe[1]!, `${s.workers} replicas in threads`);
  if (!full) return;
  cmp(`${corpus}: fused, ringpipe ${s.workers} replica processes, decode on the replica's thread vs on libuv's pool`, n.ringpipe[2]!, n.onPool, "readFile 'async': libuv's pool");
  if (s.jemalloc) {
    cmp(`${corpus}: fused, ringpipe ${s.workers} replica processes, jemalloc vs the system allocator`, n.ringpipe[2]!, n.systemAlloc, 'system allocator');
    cmp(`${corpus}: fused serial loop in a child process, jemalloc vs the system allocator`, n.child(s.alloc), n.child('system allocator'), 'system allocator');
  }
}
