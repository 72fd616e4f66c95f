/**
 * GPU binding for trainer processes. tfjs has no per-op device placement, so each trainer runs in its
 * own process with `CUDA_VISIBLE_DEVICES` set before tfjs (libtensorflow) loads; inside that process
 * the chosen GPU is device 0.
 */
import { spawnSync } from 'node:child_process';
import { InvalidArgumentError } from '../errors.js';
import { GpuError } from './errors.js';

/** GPUs to train on: CUDA device indexes, `'all'` (detected with nvidia-smi), or `[]` for the CPU only. */
export type GpuSpec = readonly number[] | 'all';

/**
 * What to do with more concurrent trainers than GPU slots: `'share'` puts several trainers on a GPU
 * (round-robin), `'wait'` runs at most `trainersPerGpu` trainers per GPU and queues the rest.
 */
export type GpuSharing = 'share' | 'wait';

/** Outcome of resolving a {@link GpuSpec}. */
export interface GpuResolution {
  /** CUDA indexes to use; empty means the CPU. */
  gpus: number[];
  /** Where the list came from. */
  source: 'explicit' | 'nvidia-smi' | 'none';
  /** Human-readable note, e.g. why no GPU is used. */
  note: string;
}

/** How {@link detectGpus} runs nvidia-smi. */
export interface DetectGpusOptions {
  /** nvidia-smi executable. Default `'nvidia-smi'` (looked up on PATH). */
  nvidiaSmi?: string;
  /** Give up on nvidia-smi after this many ms. Default 10,000. */
  timeoutMs?: number;
}

/**
 * Lists CUDA device indexes with `nvidia-smi --query-gpu=index --format=csv,noheader`.
 * Returns `gpus: []` with the reason when nvidia-smi is absent or fails (no GPU is not an error).
 */
export function detectGpus(options: DetectGpusOptions = {}): GpuResolution {
  const exe = options.nvidiaSmi ?? 'nvidia-smi';
  const r = spawnSync(exe, ['--query-gpu=index', '--format=csv,noheader'], {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 10_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `${exe} not found` : `${exe} failed: ${r.error.message}`;
    return { gpus: [], source: 'none', note: `no GPU (${why}); trainers run on the CPU` };
  }
  if (r.status !== 0) {
    const msg = (r.stderr || r.stdout || '').trim().split('\n')[0] || `exit status ${r.status ?? r.signal}`;
    return { gpus: [], source: 'none', note: `no GPU (${exe}: ${msg}); trainers run on the CPU` };
  }
  const gpus: number[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    const n = Number(t);
    if (!Number.isInteger(n) || n < 0) {
      throw new GpuError('ERR_GPU', `unexpected output from ${exe} --query-gpu=index: '${t}'`);
    }
    gpus.push(n);
  }
  if (!gpus.length) return { gpus, source: 'none', note: `no GPU (${exe} lists none); trainers run on the CPU` };
  return { gpus, source: 'nvidia-smi', note: `${gpus.length} GPU(s) detected by ${exe}: ${gpus.join(', ')}` };
}

/** Resolves a {@link GpuSpec}: validates an explicit list, detects for `'all'`. */
export function resolveGpus(spec: GpuSpec | undefined, options: DetectGpusOptions = {}): GpuResolution {
  if (spec === undefined) return { gpus: [], source: 'none', note: 'no GPU requested; trainers run on the CPU' };
  if (spec === 'all') return detectGpus(options);
  if (!Array.isArray(spec)) throw new InvalidArgumentError(`gpus must be an array of device indexes or 'all', got ${JSON.stringify(spec)}`);
  const seen = new Set<number>();
  for (const g of spec) {
    if (!Number.isInteger(g) || g < 0) throw new InvalidArgumentError(`gpus: ${JSON.stringify(g)} is not a device index (integer >= 0)`);
    if (seen.has(g)) throw new InvalidArgumentError(`gpus: device ${g} listed twice`);
    seen.add(g);
  }
  if (!spec.length) return { gpus: [], source: 'explicit', note: 'gpus: [] given; trainers run on the CPU' };
  return { gpus: [...spec], source: 'explicit', note: `GPU(s) ${spec.join(', ')}` };
}

/** One trainer slot: a place a trial can run, bound to a GPU or to the CPU. */
export interface TrainerSlot {
  /** 0-based slot number. */
  index: number;
  /** CUDA device index, or null for the CPU. */
  gpu: number | null;
}

/** Options of {@link planSlots}. */
export interface SlotPlanOptions {
  /** Trainers wanted at the same time (>= 1). */
  concurrency: number;
  /** Resolved GPU list (empty for the CPU). */
  gpus: readonly number[];
  /** More trainers than GPUs: share GPUs or wait. Default `'share'`. */
  sharing?: GpuSharing;
  /** With `'wait'`: trainers allowed per GPU at a time. Default 1. */
  trainersPerGpu?: number;
}

/** The slots a sweep runs its trials in. */
export interface SlotPlan {
  /** Effective number of trainers at a time (may be below the concurrency asked for with `'wait'`). */
  concurrency: number;
  slots: TrainerSlot[];
  /** What the plan means, for the log. */
  note: string;
}

/**
 * Assigns trainer slots to GPUs. Without GPUs every slot runs on the CPU. With `'share'` slot i gets
 * GPU `gpus[i % gpus.length]`; with `'wait'` only `gpus.length * trainersPerGpu` slots exist and
 * further trials wait for a free one.
 */
export function planSlots(options: SlotPlanOptions): SlotPlan {
  const { concurrency, gpus } = options;
  const sharing = options.sharing ?? 'share';
  const perGpu = options.trainersPerGpu ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidArgumentError(`concurrency must be an integer >= 1, got ${concurrency}`);
  if (sharing !== 'share' && sharing !== 'wait') throw new InvalidArgumentError(`sharing must be 'share' or 'wait', got '${String(sharing)}'`);
  if (!Number.isInteger(perGpu) || perGpu < 1) throw new InvalidArgumentError(`trainersPerGpu must be an integer >= 1, got ${perGpu}`);
  if (!gpus.length) {
    return {
      concurrency,
      slots: Array.from({ length: concurrency }, (_, index) => ({ index, gpu: null })),
      note: `${concurrency} trainer(s) on the CPU`,
    };
  }
  const n = sharing === 'wait' ? Math.min(concurrency, gpus.length * perGpu) : concurrency;
  const slots = Array.from({ length: n }, (_, index) => ({ index, gpu: gpus[index % gpus.length]! }));
  const perDevice = new Map<number, number>();
  for (const s of slots) perDevice.set(s.gpu!, (perDevice.get(s.gpu!) ?? 0) + 1);
  const spread = [...perDevice].map(([g, k]) => `GPU ${g}: ${k}`).join(', ');
  const waited = n < concurrency ? ` (${concurrency} asked; sharing 'wait' allows ${perGpu} per GPU)` : '';
  return { concurrency: n, slots, note: `${n} trainer(s) at a time${waited}; ${spread}` };
}

/**
 * Environment variables to add to a trainer process bound to `gpu` (null: the CPU):
 * `CUDA_VISIBLE_DEVICES` (`-1` hides every GPU), and `TF_CPP_MIN_LOG_LEVEL=2` to quiet
 * libtensorflow's C++ logging unless `base` already sets it. Merge the result over the parent's
 * environment.
 */
export function trainerEnv(gpu: number | null, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { CUDA_VISIBLE_DEVICES: gpu === null ? '-1' : String(gpu) };
  if (base.TF_CPP_MIN_LOG_LEVEL === undefined) env.TF_CPP_MIN_LOG_LEVEL = '2';
  return env;
}
