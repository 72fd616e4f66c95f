/**
 * Hyperparameter sweeps: trials from a grid, a random search or a list; `concurrency` trainers at a
 * time (a wave), each fed the same preprocessed stream; early stopping at epoch boundaries; a live
 * console table; results as JSON, CSV and an HTML page of learning curves; the best model kept.
 *
 * How records reach the trainers of a wave is the {@link DataPath}: the engine's data path runs one
 * source + preprocessing stream broadcast to one trainer process per trial (each bound to its GPU);
 * {@link inProcessDataPath} runs the trainers in this process, for debugging and tests.
 */
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { resolveGpus, planSlots, trainerEnv, type GpuSharing, type GpuSpec, type TrainerSlot, type DetectGpusOptions } from '../train/gpu.js';
import type { TrainerCheckpoint } from '../train/checkpoint.js';
import { isBetter, resolveMode, type MonitorMode } from '../train/monitor.js';
import {
  Trainer,
  errorInfo,
  type EpochDecision,
  type EpochReport,
  type TrainerContext,
  type TrainerOptions,
  type TrainerReady,
  type TrainerResult,
} from '../train/trainer.js';
import { renderLearningCurves } from './chart.js';
import { createStoppingRule, type EarlyStoppingRuleOptions, type StoppingRule } from './early-stopping.js';
import { serializeTrials, writeResultFiles, type BestTrial, type ResultFiles, type SweepResultsFile } from './results.js';
import { gridSearch, makeTrials, randomSearch, waves, type GridSpace, type Params, type RandomSearchOptions, type Trial } from './space.js';
import { LiveTable, type ConsoleMode } from './table.js';
import type { TrialRecord } from './types.js';
import type { SweepClusterOptions } from '../cluster/remote-sweep.js';

/** One trial of a wave, as the data path must run it. */
export interface WaveTrial {
  trial: Trial;
  /** Options for the trial's {@link Trainer} (structured-cloneable; `onError: 'report'`). */
  trainer: TrainerOptions;
  /** Variables to add to the trainer process's environment (`CUDA_VISIBLE_DEVICES`, ...). */
  env: Record<string, string>;
  slot: TrainerSlot;
}

/** Trials that run at the same time, reading one stream. */
export interface Wave {
  /** 0-based. */
  index: number;
  trials: WaveTrial[];
}

/** What a data path relays from each trainer to the sweep (see {@link trainerContext}). */
export interface WaveEvents {
  /** A trainer has loaded its backend and built its model. */
  ready(trialId: string, info: TrainerReady): void;
  /** Returns the early-stopping decision to hand back to the trainer. */
  epoch(trialId: string, report: EpochReport): EpochDecision | Promise<EpochDecision>;
  /**
   * A trainer's epoch-end checkpoint (when its options ask for `checkpoint`), e.g. to store it away;
   * the trainer waits until it returns.
   */
  checkpoint?(trialId: string, checkpoint: TrainerCheckpoint): void | Promise<void>;
  /** A line for the sweep's log. */
  log(message: string): void;
}

/**
 * How the records reach the trainers of a wave. `runWave` runs one {@link Trainer} per trial, all fed
 * the same stream (one pass of the source per wave, all epochs), and resolves with each trial's result
 * in the order of `wave.trials`. A trial whose trainer could not run at all comes back as a failed
 * result; a rejection means the data path itself failed (the sweep then fails the wave's trials and
 * goes on with the next wave).
 */
export interface DataPath {
  /** Name for logs. */
  name: string;
  /** `'process'`: each trainer in its own process with `env` applied (required for GPU binding). */
  isolation: 'process' | 'thread' | 'in-process';
  /** Trains every trial of `wave` on one stream; resolves with each trial's result, in order. */
  runWave(wave: Wave, events: WaveEvents): Promise<TrainerResult[]>;
  /** How agents rebuild this data path when the sweep runs on a cluster (engineDataPath sets it). */
  remote?: RemoteDataPath;
}

/** What `sweep({ cluster })` ships of a {@link DataPath} to the agents. */
export interface RemoteDataPath {
  /** The function adding a wave's source and preprocessing to a graph, found by its export; or `module#export`. */
  build: string | ((...args: any[]) => unknown);
  /** The file that made the data path (where `build`'s export is looked for). */
  declaredIn?: string;
  /** Argument handed to `build`. */
  args?: unknown;
  /** Where trainers run. */
  isolation: 'process' | 'thread';
}

/** The {@link TrainerContext} that forwards a trainer's events to the sweep. */
export function trainerContext(trialId: string, events: WaveEvents): TrainerContext {
  return {
    onReady: (info) => events.ready(trialId, info),
    onEpoch: (report) => events.epoch(trialId, report),
    ...(events.checkpoint ? { onCheckpoint: (ck: TrainerCheckpoint) => events.checkpoint!(trialId, ck) } : {}),
    log: (m) => events.log(m),
  };
}

/** Options of {@link inProcessDataPath}. */
export interface InProcessDataPathOptions {
  /** The stream for one wave: batches and `{ epochEnd: n }` markers for all epochs. Called once per wave. */
  stream(wave: Wave): Iterable<unknown> | AsyncIterable<unknown>;
}

/**
 * Runs every trainer of a wave in this process, handing each record to each trainer in turn. For
 * debugging and tests: no parallelism, no GPU binding (`env` cannot apply), and tfjs memory stays in
 * this process across trials.
 */
export function inProcessDataPath(options: InProcessDataPathOptions): DataPath {
  return {
    name: 'in-process',
    isolation: 'in-process',
    async runWave(wave, events) {
      const trainers = wave.trials.map(() => new Trainer());
      for (let i = 0; i < trainers.length; i++) {
        const wt = wave.trials[i]!;
        await trainers[i]!.setup(wt.trainer, trainerContext(wt.trial.id, events));
      }
      try {
        for await (const record of options.stream(wave)) {
          for (const t of trainers) await t.run(record);
        }
      } catch (e) {
        // The source failed: close the trainers (freeing tfjs memory) before reporting it.
        await Promise.allSettled(trainers.map((t) => t.teardown()));
        throw e;
      }
      const results: TrainerResult[] = [];
      for (const t of trainers) results.push(await t.teardown());
      return results;
    },
  };
}

/** Options of {@link sweep}. */
export interface SweepOptions {
  /** Grid search: one trial per combination of the listed values. */
  grid?: GridSpace;
  /** Random search: `trials` parameter sets drawn from `space` with `seed`. */
  random?: RandomSearchOptions;
  /** Explicit parameter sets, one trial each. */
  trials?: Params[];
  /** Parameters every trial gets (merged under the searched ones). */
  params?: Params;
  /** Trainer settings shared by all trials (module, compile, validation, test, backend, ...). */
  trainer: Omit<TrainerOptions, 'params' | 'trialId' | 'onError' | 'checkpoint' | 'resume'>;
  /** How the stream reaches the trainers. Required, unless `cluster.build` names the data builder. */
  data?: DataPath;
  /**
   * Runs the trials on a cluster's agents instead of this machine: a server URL
   * (`nats://host:4222`) or connection options (credentials, TLS, project, GPUs per item, ...).
   * Agents rebuild the data path from `data`'s exported `build` function (or `cluster.build`,
   * `module#export`); the live table and the files written stay the same. See docs/cluster.md.
   */
  cluster?: string | SweepClusterOptions;
  /** Metric that ranks trials and drives early stopping. Default `'val_loss'` with a validation set, else `'loss'`. */
  metric?: string;
  /** Default `'auto'` (min for losses, max otherwise). */
  mode?: MonitorMode;
  /** Trainers at a time. Default: one per GPU, or 1 on the CPU; with `cluster`, every trial at once. */
  concurrency?: number;
  /** GPUs to bind trainers to (`'all'` detects them). Default none: the CPU. */
  gpus?: GpuSpec;
  /** More trainers than GPUs: `'share'` (default) or `'wait'`. */
  sharing?: GpuSharing;
  /** With `sharing: 'wait'`, trainers per GPU. Default 1. */
  trainersPerGpu?: number;
  /** For `gpus: 'all'`: how to run nvidia-smi. */
  detect?: DetectGpusOptions;
  /** End weak trials early. */
  earlyStopping?: EarlyStoppingRuleOptions;
  /** Directory for results.json, results.csv, history.csv, learning-curves.html and models. No files when unset. */
  out?: string;
  /** Models to keep under `out`: `'best'` (default, as OUT/best-model), `'all'` (also OUT/trials/ID/model), `'none'`. */
  saveModels?: 'best' | 'all' | 'none';
  /** Console output. Default `'auto'`. */
  console?: ConsoleMode;
  /** Stream for the console view. Default `process.stderr`. */
  consoleStream?: {
    /** Writes console text. */
    write(s: string): unknown;
    /** A terminal: with `console: 'auto'` the live table is drawn, else plain lines. */
    isTTY?: boolean;
  };
}

/** What {@link sweep} returns. */
export interface SweepResult {
  trials: TrialRecord[];
  best: BestTrial | null;
  metric: string;
  mode: 'min' | 'max';
  /** How trainers were placed. */
  placement: string;
  seconds: number;
  /** Files written (when `out` was given). */
  files?: ResultFiles & { chart: string };
}

/** Runs a sweep; see the module comment. A failing trial is recorded with its error and does not stop the others. */
export async function sweep(options: SweepOptions): Promise<SweepResult> {
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const trials = buildTrials(options);
  // Loaded only for cluster runs: local sweeps need no NATS client.
  const data = options.cluster ? await (await import('../cluster/remote-sweep.js')).sweepClusterPath(options.cluster, options) : options.data;
  if (!data || typeof data.runWave !== 'function') throw new InvalidArgumentError('sweep: a data path (options.data) is required');
  if (!options.trainer?.module) throw new InvalidArgumentError('sweep: trainer.module (the model module) is required');
  const metric = options.metric ?? (options.trainer.validation ? 'val_loss' : 'loss');
  const mode = resolveMode(metric, options.mode);
  const saveModels = options.saveModels ?? 'best';
  if (!['best', 'all', 'none'].includes(saveModels)) throw new InvalidArgumentError(`saveModels must be 'best', 'all' or 'none', got '${saveModels}'`);
  const rule: StoppingRule | undefined = options.earlyStopping ? createStoppingRule(options.earlyStopping, { metric, mode }) : undefined;

  const gpus = resolveGpus(options.gpus, options.detect);
  if (gpus.gpus.length && data.isolation !== 'process') {
    throw new InvalidArgumentError(`GPU binding needs trainer processes; the '${data.name}' data path runs trainers in this process`);
  }
  const plan = planSlots({
    concurrency: options.concurrency ?? (options.cluster ? trials.length : Math.max(1, gpus.gpus.length)),
    gpus: gpus.gpus,
    sharing: options.sharing,
    trainersPerGpu: options.trainersPerGpu,
  });
  const placement = `${gpus.note}; ${plan.note}`;
  const out = options.out === undefined ? undefined : resolve(options.out);
  if (out) await mkdir(out, { recursive: true });

  const records: TrialRecord[] = trials.map((t) => ({ id: t.id, index: t.index, params: t.params, state: 'pending', history: [], testAccuracy: null }));
  const byId = new Map(records.map((r) => [r.id, r]));
  const table = new LiveTable({ metric, mode: options.console, stream: options.consoleStream });
  const groups = waves(trials, plan.concurrency);
  table.start(records, `sweep: ${trials.length} trial(s) in ${groups.length} wave(s) via ${data.name}; ${placement}; metric ${metric} (${mode})`);

  const events: WaveEvents = {
    ready(id, info) {
      const r = byId.get(id);
      if (!r) return;
      Object.assign(r, {
        backend: info.backend.name,
        backendDetail: info.backend.description,
        device: info.backend.device,
        cudaVisibleDevices: info.backend.cudaVisibleDevices,
        pid: info.pid,
      });
      table.update(r, 'start');
    },
    epoch(id, report) {
      const r = byId.get(id);
      if (!r) return;
      const { trialId: _t, ...entry } = report;
      r.history.push(entry);
      score(r, metric, mode);
      table.update(r, 'epoch');
      if (!rule) return;
      return rule.report(id, report.epoch, report.metrics[metric] ?? NaN);
    },
    log(m) {
      table.note(m);
    },
  };

  for (const [w, group] of groups.entries()) {
    const wave: Wave = {
      index: w,
      trials: group.map((trial, i) => {
        const slot = plan.slots[i]!;
        const r = byId.get(trial.id)!;
        Object.assign(r, { state: 'running', wave: w, slot: slot.index, gpu: slot.gpu });
        return {
          trial,
          slot,
          env: trainerEnv(slot.gpu),
          trainer: {
            ...options.trainer,
            params: trial.params,
            trialId: trial.id,
            onError: 'report',
            restoreBest: options.trainer.restoreBest ?? { monitor: metric, mode },
            ...(out && saveModels !== 'none' ? { save: join(out, 'trials', trial.id, 'model') } : {}),
          },
        };
      }),
    };
    let results: TrainerResult[] | undefined;
    let failure: unknown;
    try {
      results = await data.runWave(wave, events);
      if (!Array.isArray(results) || results.length !== group.length) {
        throw new InvalidArgumentError(`data path '${data.name}' returned ${Array.isArray(results) ? results.length : typeof results} result(s) for ${group.length} trial(s)`);
      }
    } catch (e) {
      failure = e;
    }
    group.forEach((trial, i) => {
      const r = byId.get(trial.id)!;
      if (failure !== undefined) {
        r.state = 'failed';
        const info = errorInfo(failure);
        r.error = { ...info, message: `data path '${data.name}' failed: ${info.message}` };
      } else {
        absorb(r, results![i]!, metric, mode);
      }
      table.update(r, 'end');
    });
  }

  const best = pickBest(records, metric, mode);
  table.finish();
  const seconds = (Date.now() - started) / 1000;
  let files: SweepResult['files'];
  if (out) {
    if (best) {
      const bestRec = byId.get(best.id)!;
      if (bestRec.modelDir) {
        const dest = join(out, 'best-model');
        await rm(dest, { recursive: true, force: true });
        if (saveModels === 'all') await cp(bestRec.modelDir, dest, { recursive: true });
        else await rename(bestRec.modelDir, dest);
        best.modelDir = dest;
      }
    }
    if (saveModels === 'best') {
      await rm(join(out, 'trials'), { recursive: true, force: true });
      for (const r of records) delete r.modelDir;
    }
    const file: SweepResultsFile = { metric, mode, startedAt, seconds, placement, trials: serializeTrials(records), best };
    const written = await writeResultFiles(out, file);
    const chart = join(out, 'learning-curves.html');
    await writeFile(chart, renderLearningCurves(file));
    files = { ...written, chart };
  }
  return { trials: records, best, metric, mode, placement, seconds, files };
}

function buildTrials(o: SweepOptions): Trial[] {
  const given = [o.grid, o.random, o.trials].filter((x) => x !== undefined).length;
  if (given !== 1) throw new InvalidArgumentError('sweep: give exactly one of grid, random or trials');
  const trials = o.grid ? gridSearch(o.grid, o.params) : o.random ? randomSearch(o.random, o.params) : makeTrials(o.trials!, o.params);
  if (!trials.length) throw new InvalidArgumentError('sweep: no trials');
  return trials;
}

function score(r: TrialRecord, metric: string, mode: 'min' | 'max'): void {
  let best = NaN;
  let epoch = 0;
  for (const h of r.history) {
    const v = h.metrics[metric];
    if (v !== undefined && (epoch === 0 ? Number.isFinite(v) : isBetter(v, best, mode))) {
      best = v;
      epoch = h.epoch;
    }
  }
  if (epoch) {
    r.score = best;
    r.bestEpoch = epoch;
  }
}

function absorb(r: TrialRecord, res: TrainerResult, metric: string, mode: 'min' | 'max'): void {
  r.state = res.status;
  // The trainer's own history is authoritative (events may be lost if the data path drops them).
  r.history = res.history.map(({ trialId: _t, ...e }) => e);
  score(r, metric, mode);
  if (res.backend) {
    Object.assign(r, {
      backend: res.backend.name,
      backendDetail: res.backend.description,
      device: res.backend.device,
      cudaVisibleDevices: res.backend.cudaVisibleDevices,
    });
  }
  r.pid = res.pid;
  r.seconds = res.seconds;
  if (res.test) {
    r.test = res.test;
    r.testAccuracy = res.test.test_acc ?? res.test.test_accuracy ?? null;
  }
  if (res.stopReason) r.stopReason = res.stopReason;
  if (res.error) r.error = res.error;
  if (res.model) r.modelDir = res.model.dir;
}

function pickBest(records: TrialRecord[], metric: string, mode: 'min' | 'max'): BestTrial | null {
  let best: TrialRecord | undefined;
  for (const r of records) {
    if (r.state === 'failed' || r.score === undefined) continue;
    if (!best || isBetter(r.score, best.score!, mode)) best = r;
  }
  if (!best) return null;
  return { id: best.id, params: best.params, metric, score: best.score!, epoch: best.bestEpoch!, testAccuracy: best.testAccuracy };
}
