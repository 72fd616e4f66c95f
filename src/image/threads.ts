/**
 * Sizing sharp's and libuv's thread pools so that pipeline replicas and libvips threads do not
 * oversubscribe the cores.
 *
 * How the threads stack up: each image in flight occupies one libuv thread-pool thread (sharp runs
 * its pipeline there) and that pipeline uses up to `sharp.concurrency()` libvips worker threads.
 * On top of that each replica's JS thread spends time on the normalisation pass. So with `R`
 * replicas each keeping `F` images in flight on `C` cores:
 *
 * - libvips threads per image: `max(m, floor(C / (R * F)))`, `m` = 2 when one process keeps
 *   several images in flight (`R_p * F` > 1, below), else 1. One replica with one image in flight
 *   may use every core for that image; once there are as many images in flight as cores, each
 *   image gets one thread: on 2 cores, 2 replica processes at 1 and 2 threads per image gave the
 *   same images/s (ratio 1.00 on 500x375 JPEGs, 1.02 on 1080p-5K photos, medians of 8 and 6
 *   interleaved pairs). Where several images are in flight in one process (replicas in worker
 *   threads, or `F` > 1), at least 2: they share one libvips, whose locks leave a thread waiting,
 *   and on 2 cores 2 workers in threads gave 1.15-1.2x the images/s at 2 threads per image as at
 *   1, for less CPU per image (bench/suites/image.ts, two sessions).
 * - libuv pool of each process: at least the images that process keeps in flight plus one for file
 *   system work, and never below libuv's default of 4: `max(4, R_p * F + 1)` where `R_p` is the
 *   number of replicas in that process (worker threads of one process share a single pool).
 *
 * Both settings are per process: `sharp.concurrency()` is a libvips global (all worker threads of a
 * process share it), and libuv reads `UV_THREADPOOL_SIZE` once, when the pool first starts. Set
 * it in the environment of child processes (see {@link threadEnv}) or at the very start of the
 * main thread, before any file-system, crypto, zlib or sharp call.
 *
 * On the engine, `ImagePreprocessor` (`./segments.ts`) applies the rule in its `setup`, from its
 * replica count (`ctx.replicas`; one replica per process under isolation 'process'), and
 * `imagePipeline` gives process replicas their `UV_THREADPOOL_SIZE` and warns when replicas in
 * threads would outnumber the main process's libuv pool.
 *
 * `bench/suites/image.ts` measures the rule: 2 workers in threads and 2 replica processes, each at
 * 1, 2 (and 4) libvips threads per image.
 *
 * The fused JPEG path (`./fused.ts`) uses none of these threads: a replica decodes its JPEG on its
 * own thread (with `readFile: 'sync'`, its default; on libuv's pool it took 19 % more CPU).
 */
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import sharp from 'sharp';
import { InvalidArgumentError } from '../errors.js';

/** Inputs of {@link threadPlan}. */
export interface ThreadPlanOptions {
  /** Preprocessing replicas sharing this machine's cores (threads and processes together). */
  replicas: number;
  /** Replicas inside the process being configured (they share its libuv pool). Default: `replicas`. */
  replicasPerProcess?: number;
  /** Images each replica keeps in flight at once. Default 1. */
  inFlight?: number;
  /** Cores to share. Default `os.availableParallelism()`. */
  cores?: number;
}

/** Thread settings for one process. */
export interface ThreadPlan {
  /** Cores shared by all replicas. */
  cores: number;
  /** Replicas on the machine. */
  replicas: number;
  /** Replicas in the process this plan is for. */
  replicasPerProcess: number;
  /** Images each replica keeps in flight. */
  inFlight: number;
  /** Value for `sharp.concurrency()`: libvips threads per image. */
  vipsConcurrency: number;
  /** Value for `UV_THREADPOOL_SIZE`. */
  uvThreadpoolSize: number;
}

const posInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1;

/** Applies the sizing rule described in this module's documentation. */
export function threadPlan(options: ThreadPlanOptions): ThreadPlan {
  const cores = options.cores ?? availableParallelism();
  const replicas = options.replicas;
  const replicasPerProcess = options.replicasPerProcess ?? replicas;
  const inFlight = options.inFlight ?? 1;
  for (const [k, v] of Object.entries({ cores, replicas, replicasPerProcess, inFlight })) {
    if (!posInt(v)) throw new InvalidArgumentError(`threadPlan: ${k} must be a positive integer, got ${String(v)}`);
  }
  if (replicasPerProcess > replicas) throw new InvalidArgumentError(`threadPlan: replicasPerProcess (${replicasPerProcess}) exceeds replicas (${replicas})`);
  return {
    cores,
    replicas,
    replicasPerProcess,
    inFlight,
    // Images in flight in one process share its libvips: at least 2 threads each (see above).
    vipsConcurrency: Math.max(replicasPerProcess * inFlight > 1 ? 2 : 1, Math.floor(cores / (replicas * inFlight))),
    uvThreadpoolSize: Math.min(1024, Math.max(4, replicasPerProcess * inFlight + 1)),
  };
}

/**
 * A function that sets libvips' threads per image to `vipsConcurrency` at its first call, then does
 * nothing: for a replica's first record. Loading sharp (glibc without jemalloc) sets the
 * process-wide count back to 1, and another thread of the process may load it after the replica's
 * setup; by the first record every segment of a run has loaded.
 */
export function vipsThreadsAtFirstRecord(vipsConcurrency: number): () => void {
  let pending = vipsConcurrency;
  return () => {
    if (pending) sharp.concurrency(pending);
    pending = 0;
  };
}

/** How a segment sizes libvips' threads: the rule, a fixed count per image, or sharp's own setting. */
export type ThreadsOption = 'auto' | 'keep' | number;

/** Throws an `InvalidArgumentError` naming `where` unless `v` is a {@link ThreadsOption}. */
export function checkThreadsOption(where: string, v: unknown): asserts v is ThreadsOption {
  if (v !== 'auto' && v !== 'keep' && !posInt(v)) throw new InvalidArgumentError(`${where}: threads must be 'auto', 'keep' or a positive integer, got ${String(v)}`);
}

/** Environment variables to give a child process that will run `plan.replicasPerProcess` replicas. */
export function threadEnv(plan: ThreadPlan): Record<string, string> {
  return { UV_THREADPOOL_SIZE: String(plan.uvThreadpoolSize) };
}

/** What {@link applyThreadPlan} did. */
export interface AppliedThreads {
  /** `sharp.concurrency()` after the call. */
  vipsConcurrency: number;
  /** Whether `UV_THREADPOOL_SIZE` was written to `process.env` (main thread, not already set). */
  uvThreadpoolSizeSet: boolean;
  /** The `UV_THREADPOOL_SIZE` now in `process.env`, if any. */
  uvThreadpoolSize: number | undefined;
}

/**
 * Applies a plan to this process: sets `sharp.concurrency(plan.vipsConcurrency)`; in the main
 * thread, sets `UV_THREADPOOL_SIZE` unless already set (only effective if the libuv pool has not
 * started yet); and turns sharp's operation cache off unless `cache: true` (a stream of distinct
 * images never hits it, and file inputs would keep descriptors open).
 */
export function applyThreadPlan(plan: ThreadPlan, options: { cache?: boolean } = {}): AppliedThreads {
  sharp.concurrency(plan.vipsConcurrency);
  if (!options.cache) sharp.cache(false);
  let set = false;
  if (isMainThread && process.env.UV_THREADPOOL_SIZE === undefined) {
    process.env.UV_THREADPOOL_SIZE = String(plan.uvThreadpoolSize);
    set = true;
  }
  const env = process.env.UV_THREADPOOL_SIZE;
  return { vipsConcurrency: sharp.concurrency(), uvThreadpoolSizeSet: set, uvThreadpoolSize: env === undefined ? undefined : Number(env) };
}
