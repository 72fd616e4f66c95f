/**
 * The trainer sink: trains a TensorFlow.js model on the mini-batches that reach it.
 *
 * Engine-agnostic class with the segment life cycle `setup(options, ctx)` / `run(record)` /
 * `teardown()`: the engine calls it inside a trainer process, tests call it directly. tfjs is imported
 * in `setup()` (never at module load) so the process's `CUDA_VISIBLE_DEVICES` is in place first.
 *
 * Stream protocol: `{ xs, ys }` batches (see {@link Batch}); `{ epochEnd: n }` after the last batch of
 * epoch n. Validation runs at each epoch end on `options.validation` and/or on the `split: 'validation'`
 * batches of that epoch. A stream that ends without a final marker closes its last epoch at teardown.
 *
 * Checkpoints and resuming (options `checkpoint`, `resume`; files in checkpoint.ts): a resumed trainer
 * reads the whole stream again and passes over the epochs its checkpoint had done.
 */
import { performance } from 'node:perf_hooks';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TF from '@tensorflow/tfjs';
import { InvalidArgumentError, RingpipeError } from '../errors.js';
import { loadTf, type BackendPreference, type ResolvedBackend, type Tf } from './backend.js';
import { applyResume, checkpointDir, pruneCheckpoints, writeCheckpoint, type TrainerCheckpoint, type TrainerResume } from './checkpoint.js';
import { TrainerError } from './errors.js';
import { saveModel, type SavedModelInfo } from './model-io.js';
import { MetricMonitor, type MonitorMode } from './monitor.js';
import {
  disposeTensors,
  groupSize,
  isBatch,
  isEpochEnd,
  toTensors,
  type Batch,
  type TensorGroup,
  type TensorPair,
} from './records.js';

/** Trial parameters: plain JSON values. */
export type Params = Record<string, unknown>;

/** Passed to the user's model factory. */
export interface ModelFactoryContext {
  tf: Tf;
  backend: ResolvedBackend;
}

/** The user's model factory: builds (and may compile) a model for one trial's parameters. */
export type ModelFactory = (params: Params, ctx: ModelFactoryContext) => TF.LayersModel | Promise<TF.LayersModel>;

/** Passed to a custom train step. Tensors are disposed by the trainer after the step. */
export interface TrainStepContext {
  tf: Tf;
  model: TF.LayersModel;
  xs: TF.Tensor | TF.Tensor[] | TF.NamedTensorMap;
  ys: TF.Tensor | TF.Tensor[] | TF.NamedTensorMap;
  params: Params;
  /** 1-based epoch the batch belongs to. */
  epoch: number;
  /** 0-based step count over the whole run. */
  step: number;
}

/** A custom train step: returns the batch loss, or named metrics (which should include `loss`). */
export type TrainStep = (ctx: TrainStepContext) => number | Record<string, number> | Promise<number | Record<string, number>>;

/** Called after each epoch's metrics are known, e.g. to decay the learning rate. */
export type EpochEndHook = (ctx: { tf: Tf; model: TF.LayersModel; params: Params; epoch: number; metrics: Readonly<Record<string, number>> }) => void | Promise<void>;

/**
 * What a trainer module may export. `createModel` (or the export named by `options.factory`, or the
 * default export) is required.
 */
export interface TrainerModule {
  createModel?: ModelFactory;
  default?: ModelFactory;
  trainStep?: TrainStep;
  onEpochEnd?: EpochEndHook;
}

/** Reference to a function in a module that returns a {@link TensorPair} (loaded inside the trainer process). */
export interface DataLoaderRef {
  /** Absolute path, file URL or package specifier of the module. */
  module: string;
  /** Export name. Default `'default'`. */
  export?: string;
  /** Argument passed to the function (structured-cloneable). */
  args?: unknown;
}

/** In-memory examples, or a loader to call inside the trainer. */
export type DataSource = TensorPair | DataLoaderRef;

/** How to compile a model the factory returns uncompiled. */
export interface CompileOptions {
  /** tfjs optimizer name (`'adam'`, `'sgd'`, `'rmsprop'`, `'adagrad'`, `'adadelta'`, `'adamax'`, `'momentum'`). Default `'adam'`. */
  optimizer?: string;
  /** Learning rate given to the optimizer. Default: tfjs's default for that optimizer (momentum: 0.01). */
  learningRate?: number;
  /** Loss name, e.g. `'categoricalCrossentropy'`, `'sparseCategoricalCrossentropy'`, `'meanSquaredError'`. Default `'categoricalCrossentropy'`. */
  loss?: string;
  /** Metrics, e.g. `['accuracy']`. Default `['accuracy']`. */
  metrics?: string[];
}

/** Local early stopping, Keras style: stop after `patience` epochs without improvement. */
export interface EarlyStoppingOptions {
  /** Metric to watch. Default `'val_loss'` when there is validation, else `'loss'`. */
  monitor?: string;
  /** Default `'auto'` (min for losses, max otherwise). */
  mode?: MonitorMode;
  /** Epochs without improvement before stopping. Default 2. */
  patience?: number;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
}

/** Keep the weights of the best epoch and restore them before testing and saving. */
export interface RestoreBestOptions {
  /** Metric that decides which epoch is best. Default as for {@link EarlyStoppingOptions.monitor}. */
  monitor?: string;
  /** Default `'auto'`. */
  mode?: MonitorMode;
}

/** Options of a {@link Trainer}; structured-cloneable, so they can cross into a trainer process. */
export interface TrainerOptions {
  /** The user's module (absolute path, file URL or package specifier; relative paths resolve against the process's cwd). */
  module: string;
  /** Name of the factory export. Default `'createModel'`, falling back to the default export. */
  factory?: string;
  /** The trial's parameters, passed to the factory. Default `{}`. */
  params?: Params;
  /** Trial id, copied into reports. */
  trialId?: string;
  /** Backend to load. Default `'auto'` (see backend.ts). */
  backend?: BackendPreference;
  /** Compile settings for a model the factory returns uncompiled. */
  compile?: CompileOptions;
  /** Set evaluated at every epoch end (metrics prefixed `val_`). */
  validation?: DataSource;
  /** Set evaluated once at teardown, after restoring the best weights (metrics prefixed `test_`). */
  test?: DataSource;
  /** Batch size for evaluating validation and test sets. Default 1024. */
  evalBatchSize?: number;
  /** Stop training after this many epochs; on the engine the trainer then lets go of its stream (called directly, later records are counted as drained). */
  maxEpochs?: number;
  /** Stop when a metric stops improving. */
  earlyStopping?: EarlyStoppingOptions;
  /** Restore the best epoch's weights at the end. */
  restoreBest?: RestoreBestOptions;
  /** Directory to save the final model to (tfjs layers format: model.json + weights.bin). */
  save?: string;
  /**
   * Directory for epoch-end checkpoints: after each epoch (and its early-stopping decision) the trainer
   * writes `epoch-N/` there (weights, optimizer state, best weights, history; see checkpoint.ts), hands
   * it to {@link TrainerContext.onCheckpoint}, then removes the previous one.
   */
  checkpoint?: string;
  /**
   * Start from a checkpoint (or saved weights) instead of the factory's fresh weights: the weights
   * (and optimizer state) are loaded into the factory's model, epoch reports go on with
   * `resume.epoch + 1`, `resume.history` leads the result's history, counts toward `maxEpochs` and
   * is replayed into the earlyStopping / restoreBest monitors. The stream is the whole run's again:
   * its records up to the marker `{ epochEnd: resume.epoch }` are passed over, not trained on.
   * A {@link TrainerCheckpoint} can be passed as it is.
   */
  resume?: TrainerResume;
  /**
   * `'throw'` (default): an error in setup/run/teardown propagates (and stops a pipeline).
   * `'report'`: the trainer records the error, drains the rest of the stream and returns a
   * `status: 'failed'` result, so one failing trial does not stop the others sharing the stream.
   */
  onError?: 'throw' | 'report';
}

/** Metrics and throughput of one epoch. */
export interface EpochReport {
  trialId?: string;
  /** 1-based epoch number. */
  epoch: number;
  /** `loss`, training metrics (e.g. `acc`), `val_loss`, `val_acc`, ... */
  metrics: Record<string, number>;
  /** Training examples in this epoch. */
  samples: number;
  /** Training steps in this epoch. */
  steps: number;
  /** Wall time from the end of the previous epoch to this epoch's end marker. */
  seconds: number;
  /** Training examples per second of wall time. */
  samplesPerSec: number;
  /** Share of the epoch's wall time spent waiting for records (between run() calls), in percent. */
  dataWaitPct: number;
  /** Time spent in validation after the marker. */
  evalSeconds: number;
}

/** What a trainer says once set up. */
export interface TrainerReady {
  trialId?: string;
  pid: number;
  backend: BackendInfo;
}

/** Serializable description of the backend a trial ran on. */
export type BackendInfo = Omit<ResolvedBackend, 'tf'>;

/**
 * Decision returned by {@link TrainerContext.onEpoch}: `'stop'` (or `{ stop: true, reason }`) ends
 * training at this epoch boundary.
 */
export type EpochDecision = void | 'continue' | 'stop' | { stop: boolean; reason?: string };

/** Hooks given by whoever drives the trainer (a sweep, a test). Not cloneable: built on the trainer's side. */
export interface TrainerContext {
  /** Called once the backend is loaded and the model built. */
  onReady?(info: TrainerReady): void;
  /** Called after each epoch; may stop the trial (early-stopping schedulers). */
  onEpoch?(report: EpochReport): EpochDecision | Promise<EpochDecision>;
  /**
   * With `options.checkpoint`: called with each epoch's complete checkpoint, after `onEpoch`. The
   * trainer waits for it (so the files stay put while, e.g., they are uploaded); the directory is
   * removed when the next checkpoint is complete.
   */
  onCheckpoint?(checkpoint: TrainerCheckpoint): void | Promise<void>;
  /** Lines for the driver's log. */
  log?(message: string): void;
}

/** How a trial ended: it trained to the end, was stopped early, or failed. */
export type TrialStatus = 'completed' | 'stopped' | 'failed';

/** Serializable error. */
export interface ErrorInfo {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** The trainer's result (teardown's return value). */
export interface TrainerResult {
  trialId?: string;
  params: Params;
  status: TrialStatus;
  /** Why training stopped before the stream ended (`status: 'stopped'`). */
  stopReason?: string;
  error?: ErrorInfo;
  /** Absent when setup failed before a backend was loaded. */
  backend?: BackendInfo;
  pid: number;
  history: EpochReport[];
  /** Best epoch by the restoreBest (or earlyStopping) monitor. */
  best?: { epoch: number; metric: string; value: number };
  /** Test-set metrics (`test_loss`, `test_acc`, ...). */
  test?: Record<string, number>;
  model?: SavedModelInfo;
  /** Training examples seen (all epochs). */
  samples: number;
  steps: number;
  /** Records that arrived after training ended and were discarded. */
  drained: number;
  /** Started from `options.resume`: its epoch, and the records of earlier epochs passed over. */
  resumed?: { epoch: number; skipped: number };
  /** Wall time from setup to the end of teardown. */
  seconds: number;
}

/** Where a trainer is in its life. */
type State = 'new' | 'training' | 'stopped' | 'failed' | 'done';

/** What an epoch has added up so far. */
interface EpochAcc {
  start: number;
  wait: number;
  samples: number;
  steps: number;
  sums: Record<string, number>;
  valSamples: number;
  valSums: Record<string, number>;
}

const now = () => performance.now();

/**
 * Trains a TensorFlow.js model on a stream of batches and epoch markers: `setup(options)` loads
 * the backend and builds the model, `run(record)` trains on a batch (a marker ends an epoch:
 * validation, report, early stopping, checkpoint), `teardown()` tests, saves and returns the result.
 * A sweep runs one as a sink in each trainer process; it can be driven directly.
 */
export class Trainer {
  private state: State = 'new';
  private opts!: TrainerOptions;
  private ctx: TrainerContext = {};
  private tf!: Tf;
  private backend?: ResolvedBackend;
  private model?: TF.LayersModel;
  private mod: TrainerModule = {};
  private params: Params = {};
  private validation?: { xs: ReturnType<typeof toTensors>; ys: ReturnType<typeof toTensors> };
  private history: EpochReport[] = [];
  private acc!: EpochAcc;
  private lastReturn = 0;
  private startedAt = 0;
  private epoch = 1;
  /** Epochs completed, including those before a resume (what maxEpochs counts). */
  private epochsDone = 0;
  /** While resuming: records are passed over up to the marker of this epoch. */
  private skipThrough = 0;
  private skipped = 0;
  private totalSamples = 0;
  private totalSteps = 0;
  private drained = 0;
  private stopReason?: string;
  private error?: ErrorInfo;
  private early?: { monitor: MetricMonitor; patience: number };
  private keep?: { monitor: MetricMonitor; weights?: TF.Tensor[] };

  /** Loads tfjs, the user's module and model, and the validation set. */
  async setup(options: TrainerOptions, ctx: TrainerContext = {}): Promise<void> {
    if (this.state !== 'new') throw new TrainerError('ERR_TRAINER_STATE', 'setup() called twice');
    this.startedAt = now();
    this.ctx = ctx;
    try {
      this.opts = checkOptions(options);
      this.params = options.params ?? {};
      this.backend = await loadTf({ backend: options.backend });
      this.tf = this.backend.tf;
      this.mod = (await importModule(options.module)) as TrainerModule;
      const factory = pickFactory(this.mod, options);
      const model = await factory(this.params, { tf: this.tf, backend: this.backend });
      if (!model || typeof (model as TF.LayersModel).trainOnBatch !== 'function') {
        throw new TrainerError('ERR_TRAINER_MODULE', `${options.module}: the model factory must return a tf.LayersModel (got ${describe(model)})`);
      }
      this.model = model;
      if (!this.model.optimizer) this.compile(options.compile ?? {});
      if (options.validation) this.validation = await this.loadSet(options.validation, 'validation');
      const defaultMonitor = options.validation ? 'val_loss' : 'loss';
      if (options.earlyStopping) {
        const es = options.earlyStopping;
        this.early = {
          monitor: new MetricMonitor({ monitor: es.monitor ?? defaultMonitor, mode: es.mode, minDelta: es.minDelta }),
          patience: es.patience ?? 2,
        };
      }
      if (options.restoreBest) {
        this.keep = { monitor: new MetricMonitor({ monitor: options.restoreBest.monitor ?? defaultMonitor, mode: options.restoreBest.mode }) };
      }
      this.state = 'training';
      if (options.resume) await this.resume(options.resume);
      this.ctx.onReady?.({ trialId: options.trialId, pid: process.pid, backend: backendInfo(this.backend) });
    } catch (e) {
      this.fail(e);
    } finally {
      this.resetEpoch();
    }
  }

  /**
   * False once training has ended before the stream (early stopping, maxEpochs, a scheduler's
   * decision, an error with `onError: 'report'`): later records are only counted as drained, so a
   * caller that controls the stream may stop sending them.
   */
  get training(): boolean {
    return this.state === 'training';
  }

  /** Trains on a batch, evaluates a validation batch, or closes an epoch at a marker. */
  async run(record: Batch | { epochEnd: number } | unknown, ctx?: { stop?: () => void }): Promise<void> {
    if (this.state === 'new' || this.state === 'done') {
      throw new TrainerError('ERR_TRAINER_STATE', this.state === 'new' ? 'run() before setup()' : 'run() after teardown()');
    }
    this.acc.wait += now() - this.lastReturn;
    try {
      if (this.state !== 'training') {
        this.drained++;
        return;
      }
      if (this.skipThrough) {
        this.skipped++;
        if (isEpochEnd(record) && record.epochEnd >= this.skipThrough) {
          this.skipThrough = 0;
          this.resetEpoch(); // the first resumed epoch starts here
        }
        return;
      }
      if (isEpochEnd(record)) await this.endEpoch(record.epochEnd);
      else if (isBatch(record)) {
        if (record.split === 'validation') await this.validateBatch(record);
        else if (record.split === undefined || record.split === 'train') await this.trainBatch(record);
        else throw new TrainerError('ERR_TRAINER_RECORD', `unknown split '${String(record.split)}' (expected 'train' or 'validation')`);
      } else {
        throw new TrainerError('ERR_TRAINER_RECORD', `expected a batch { xs, ys } or an epoch marker { epochEnd: n }, got ${describe(record)}`);
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.lastReturn = now();
      // Stopped or failed: on the engine, let go of the stream (other trainers of a broadcast
      // stream go on, the writer no longer waits for this one) rather than reading it to the end.
      if (this.state !== 'training') ctx?.stop?.();
    }
  }

  /** Closes an unterminated epoch, restores the best weights, tests, saves, frees memory; returns the result. */
  async teardown(): Promise<TrainerResult> {
    let test: Record<string, number> | undefined;
    let saved: SavedModelInfo | undefined;
    try {
      if (this.state === 'new') throw new TrainerError('ERR_TRAINER_STATE', 'teardown() before setup()');
      if (this.state === 'done') throw new TrainerError('ERR_TRAINER_STATE', 'teardown() called twice');
      if (this.state === 'training' && (this.acc.samples > 0 || this.acc.valSamples > 0)) await this.endEpoch(this.epoch);
      if (this.state !== 'failed' && this.model) {
        if (this.keep?.weights) this.model.setWeights(this.keep.weights);
        if (this.opts.test) {
          const set = await this.loadSet(this.opts.test, 'test');
          try {
            test = prefixed('test_', await this.evaluate(set.xs, set.ys));
          } finally {
            disposeTensors(set.xs);
            disposeTensors(set.ys);
          }
        }
        if (this.opts.save) saved = await saveModel(this.tf, this.model, this.opts.save);
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.release();
    }
    const status: TrialStatus = this.error ? 'failed' : this.stopReason ? 'stopped' : 'completed';
    this.state = 'done';
    const bestMon = this.keep?.monitor ?? this.early?.monitor;
    return {
      trialId: this.opts?.trialId,
      params: this.params,
      status,
      ...(this.stopReason && status === 'stopped' ? { stopReason: this.stopReason } : {}),
      ...(this.error ? { error: this.error } : {}),
      ...(this.backend ? { backend: backendInfo(this.backend) } : {}),
      pid: process.pid,
      history: this.history,
      ...(bestMon && bestMon.bestEpoch ? { best: { epoch: bestMon.bestEpoch, metric: bestMon.metric, value: bestMon.best } } : {}),
      ...(test ? { test } : {}),
      ...(saved ? { model: saved } : {}),
      samples: this.totalSamples,
      steps: this.totalSteps,
      drained: this.drained,
      ...(this.opts?.resume ? { resumed: { epoch: this.opts.resume.epoch, skipped: this.skipped } } : {}),
      seconds: (now() - this.startedAt) / 1000,
    };
  }

  /** Loads the weights and state of `r` (see {@link TrainerOptions.resume}). */
  private async resume(r: TrainerResume): Promise<void> {
    const best = await applyResume(this.tf, this.model!, r);
    this.history = [...(r.history ?? [])];
    this.epoch = r.epoch + 1;
    this.epochsDone = r.epoch;
    this.skipThrough = r.epoch;
    this.totalSamples = r.samples ?? this.history.reduce((n, h) => n + h.samples, 0);
    this.totalSteps = r.steps ?? this.history.reduce((n, h) => n + h.steps, 0);
    for (const h of this.history) {
      this.early?.monitor.update(h.epoch, h.metrics);
      this.keep?.monitor.update(h.epoch, h.metrics);
    }
    if (this.keep) {
      if (best && r.best?.epoch === this.keep.monitor.bestEpoch) this.keep.weights = best;
      else {
        if (best) this.tf.dispose(best);
        // No separate best weights: the checkpoint's own are the best when its epoch is.
        if (this.keep.monitor.bestEpoch && this.keep.monitor.bestEpoch === r.epoch) this.keep.weights = this.model!.getWeights().map((w) => w.clone());
        else if (this.keep.monitor.bestEpoch) this.ctx.log?.(`trial ${this.opts.trialId ?? ''}: the checkpoint has no weights of the best epoch ${this.keep.monitor.bestEpoch}; only a later better epoch will be restored`);
      }
    } else if (best) this.tf.dispose(best);
    if (r.stopReason) this.stop(r.stopReason);
    else if (this.opts.maxEpochs !== undefined && this.epochsDone >= this.opts.maxEpochs) this.stop(`maxEpochs ${this.opts.maxEpochs} reached`);
  }

  /** Writes this epoch's checkpoint, hands it to the caller, then drops the previous one. */
  private async checkpoint(epoch: number): Promise<void> {
    const root = this.opts.checkpoint!;
    const keep = this.keep?.weights && this.keep.monitor.bestEpoch !== epoch ? { epoch: this.keep.monitor.bestEpoch, weights: this.keep.weights } : undefined;
    const ck = await writeCheckpoint(
      this.tf,
      this.model!,
      checkpointDir(root, epoch),
      {
        ...(this.opts.trialId ? { trialId: this.opts.trialId } : {}),
        epoch,
        history: [...this.history],
        samples: this.totalSamples,
        steps: this.totalSteps,
        ...(this.state === 'stopped' && this.stopReason ? { stopReason: this.stopReason } : {}),
      },
      keep,
    );
    await this.ctx.onCheckpoint?.(ck);
    await pruneCheckpoints(root, ck.model);
  }

  private compile(c: CompileOptions): void {
    const tf = this.tf;
    const name = c.optimizer ?? 'adam';
    const lr = c.learningRate;
    const makers: Record<string, () => TF.Optimizer> = {
      adam: () => tf.train.adam(lr),
      sgd: () => tf.train.sgd(lr ?? 0.01),
      rmsprop: () => tf.train.rmsprop(lr ?? 0.001),
      adagrad: () => tf.train.adagrad(lr ?? 0.01),
      adadelta: () => tf.train.adadelta(lr),
      adamax: () => tf.train.adamax(lr),
      momentum: () => tf.train.momentum(lr ?? 0.01, 0.9),
    };
    const make = makers[name];
    if (!make) throw new InvalidArgumentError(`compile.optimizer '${name}' is not one of ${Object.keys(makers).join(', ')}`);
    this.model!.compile({ optimizer: make(), loss: c.loss ?? 'categoricalCrossentropy', metrics: c.metrics ?? ['accuracy'] });
  }

  private async trainBatch(b: Batch): Promise<void> {
    const n = groupSize(b.xs);
    const xs = toTensors(this.tf, b.xs, 'xs');
    let ys: ReturnType<typeof toTensors> | undefined;
    let out: number | number[] | Record<string, number>;
    try {
      ys = toTensors(this.tf, b.ys, 'ys');
      if (this.mod.trainStep) {
        out = await this.mod.trainStep({ tf: this.tf, model: this.model!, xs, ys, params: this.params, epoch: this.epoch, step: this.totalSteps });
      } else {
        out = await this.model!.trainOnBatch(xs as TF.Tensor, ys as TF.Tensor);
      }
    } finally {
      disposeTensors(xs);
      disposeTensors(ys);
    }
    const named = this.name(out, 'trainStep');
    for (const [k, v] of Object.entries(named)) this.acc.sums[k] = (this.acc.sums[k] ?? 0) + v * n;
    this.acc.samples += n;
    this.acc.steps++;
    this.totalSamples += n;
    this.totalSteps++;
  }

  private async validateBatch(b: Batch): Promise<void> {
    const n = groupSize(b.xs);
    const xs = toTensors(this.tf, b.xs, 'xs');
    let ys: ReturnType<typeof toTensors> | undefined;
    try {
      ys = toTensors(this.tf, b.ys, 'ys');
      const m = await this.evaluate(xs, ys);
      for (const [k, v] of Object.entries(m)) this.acc.valSums[k] = (this.acc.valSums[k] ?? 0) + v * n;
      this.acc.valSamples += n;
    } finally {
      disposeTensors(xs);
      disposeTensors(ys);
    }
  }

  private async endEpoch(marked: number): Promise<void> {
    const markerAt = now();
    const a = this.acc;
    if (a.samples === 0 && a.valSamples === 0) {
      // A marker with nothing before it (e.g. a repeated marker): nothing to report.
      this.epoch = Math.max(this.epoch, marked + 1);
      return;
    }
    const epoch = marked;
    const metrics: Record<string, number> = {};
    for (const [k, v] of Object.entries(a.sums)) metrics[k] = v / a.samples;
    if (a.valSamples) for (const [k, v] of Object.entries(a.valSums)) metrics[`val_${k}`] = v / a.valSamples;
    if (this.validation) Object.assign(metrics, prefixed('val_', await this.evaluate(this.validation.xs, this.validation.ys)));
    if (this.mod.onEpochEnd) await this.mod.onEpochEnd({ tf: this.tf, model: this.model!, params: this.params, epoch, metrics });
    const seconds = (markerAt - a.start) / 1000;
    const report: EpochReport = {
      ...(this.opts.trialId ? { trialId: this.opts.trialId } : {}),
      epoch,
      metrics,
      samples: a.samples,
      steps: a.steps,
      seconds,
      samplesPerSec: seconds > 0 ? a.samples / seconds : 0,
      dataWaitPct: markerAt > a.start ? Math.min(100, (100 * a.wait) / (markerAt - a.start)) : 0,
      evalSeconds: (now() - markerAt) / 1000,
    };
    this.history.push(report);
    this.epoch = epoch + 1;
    this.epochsDone++;
    if (this.keep && this.keep.monitor.update(epoch, metrics)) {
      for (const w of this.keep.weights ?? []) w.dispose();
      this.keep.weights = this.model!.getWeights().map((w) => w.clone());
    }
    if (this.early) {
      this.early.monitor.update(epoch, metrics);
      if (this.early.monitor.sinceBest >= this.early.patience) {
        this.stop(`early stopping: ${this.early.monitor.metric} did not improve for ${this.early.patience} epoch(s) (best ${fmt(this.early.monitor.best)} at epoch ${this.early.monitor.bestEpoch})`);
      }
    }
    if (this.opts.maxEpochs !== undefined && this.epochsDone >= this.opts.maxEpochs && this.state === 'training') {
      this.stop(`maxEpochs ${this.opts.maxEpochs} reached`);
    }
    const decision = await this.ctx.onEpoch?.(report);
    if (decision === 'stop') this.stop('stopped by the scheduler');
    else if (typeof decision === 'object' && decision && decision.stop) this.stop(decision.reason ?? 'stopped by the scheduler');
    if (this.opts.checkpoint) await this.checkpoint(epoch);
    this.resetEpoch();
  }

  private stop(reason: string): void {
    if (this.state !== 'training') return;
    this.state = 'stopped';
    this.stopReason = reason;
    this.ctx.log?.(`trial ${this.opts.trialId ?? ''}: ${reason}`);
  }

  private async evaluate(xs: ReturnType<typeof toTensors>, ys: ReturnType<typeof toTensors>): Promise<Record<string, number>> {
    const out = this.model!.evaluate(xs as TF.Tensor, ys as TF.Tensor, { batchSize: this.opts.evalBatchSize ?? 1024 });
    const list = Array.isArray(out) ? out : [out];
    try {
      const values = await Promise.all(list.map(async (t) => (await t.data())[0]!));
      return this.name(values, 'evaluate');
    } finally {
      for (const t of list) t.dispose();
    }
  }

  /** Names the output of trainOnBatch/evaluate (or a custom step) after the model's metrics. */
  private name(out: number | number[] | Record<string, number>, what: string): Record<string, number> {
    if (typeof out === 'number') return { loss: out };
    if (Array.isArray(out)) {
      const names = this.model!.metricsNames;
      const r: Record<string, number> = {};
      out.forEach((v, i) => (r[names[i] ?? `metric_${i}`] = v));
      return r;
    }
    if (out && typeof out === 'object' && Object.values(out).every((v) => typeof v === 'number')) return out;
    throw new TrainerError('ERR_TRAINER_MODULE', `${what} must return a number or a record of numbers, got ${describe(out)}`);
  }

  private async loadSet(src: DataSource, what: string) {
    let pair: TensorPair;
    if ('module' in src && typeof src.module === 'string') {
      const m = (await importModule(src.module)) as Record<string, unknown>;
      const fn = m[src.export ?? 'default'];
      if (typeof fn !== 'function') throw new TrainerError('ERR_TRAINER_MODULE', `${src.module} has no function export '${src.export ?? 'default'}' for the ${what} set`);
      pair = (await (fn as (a: unknown) => TensorPair | Promise<TensorPair>)(src.args)) as TensorPair;
    } else pair = src as TensorPair;
    if (!pair || !('xs' in pair) || !('ys' in pair)) throw new TrainerError('ERR_TRAINER_RECORD', `the ${what} set must be { xs, ys }, got ${describe(pair)}`);
    const xs = toTensors(this.tf, pair.xs as TensorGroup, `${what}.xs`);
    try {
      return { xs, ys: toTensors(this.tf, pair.ys as TensorGroup, `${what}.ys`) };
    } catch (e) {
      disposeTensors(xs);
      throw e;
    }
  }

  private resetEpoch(): void {
    const t = now();
    this.acc = { start: t, wait: 0, samples: 0, steps: 0, sums: {}, valSamples: 0, valSums: {} };
    this.lastReturn = t;
  }

  /** Records the error; rethrows unless `onError: 'report'`. Either way the trainer is failed from here on. */
  private fail(e: unknown): void {
    if (!this.error) this.error = errorInfo(e);
    this.state = 'failed';
    if (this.opts?.onError !== 'report') {
      this.release();
      throw e;
    }
    this.ctx.log?.(`trial ${this.opts.trialId ?? ''} failed: ${this.error.message}`);
  }

  private release(): void {
    disposeTensors(this.validation?.xs);
    disposeTensors(this.validation?.ys);
    this.validation = undefined;
    for (const w of this.keep?.weights ?? []) w.dispose();
    if (this.keep) this.keep.weights = undefined;
    try {
      this.model?.optimizer?.dispose();
      this.model?.dispose();
    } catch {
      // already disposed
    }
    this.model = undefined;
  }
}

function checkOptions(o: TrainerOptions): TrainerOptions {
  if (!o || typeof o !== 'object') throw new InvalidArgumentError('trainer options are required');
  if (typeof o.module !== 'string' || !o.module) throw new InvalidArgumentError('trainer option module: the path of the model module is required');
  if (o.onError !== undefined && o.onError !== 'throw' && o.onError !== 'report') throw new InvalidArgumentError(`onError must be 'throw' or 'report', got '${String(o.onError)}'`);
  for (const k of ['maxEpochs', 'evalBatchSize'] as const) {
    const v = o[k];
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new InvalidArgumentError(`${k} must be an integer >= 1, got ${v}`);
  }
  const p = o.earlyStopping?.patience;
  if (p !== undefined && (!Number.isInteger(p) || p < 1)) throw new InvalidArgumentError(`earlyStopping.patience must be an integer >= 1, got ${p}`);
  if (o.checkpoint !== undefined && (typeof o.checkpoint !== 'string' || !o.checkpoint)) throw new InvalidArgumentError('checkpoint must be a directory path');
  const r = o.resume;
  if (r !== undefined) {
    if (!r || typeof r.model !== 'string' || !r.model) throw new InvalidArgumentError('resume.model: the directory of the checkpoint or saved model is required');
    if (!Number.isInteger(r.epoch) || r.epoch < 0) throw new InvalidArgumentError(`resume.epoch must be an integer >= 0, got ${r.epoch}`);
    if (r.history !== undefined && (!Array.isArray(r.history) || r.history.some((h) => !h || typeof h.epoch !== 'number' || h.epoch > r.epoch))) {
      throw new InvalidArgumentError(`resume.history must be the reports of epochs up to resume.epoch (${r.epoch})`);
    }
  }
  return o;
}

/** Imports a module given as an absolute path, a path relative to cwd, a file URL or a package specifier. */
export async function importModule(spec: string): Promise<unknown> {
  let url = spec;
  if (spec.startsWith('file:') || spec.startsWith('node:') || spec.startsWith('data:')) url = spec;
  else if (isAbsolute(spec) || spec.startsWith('./') || spec.startsWith('../')) url = pathToFileURL(resolve(spec)).href;
  try {
    return await import(url);
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_MODULE', `cannot import ${spec}: ${(e as Error).message}`, { cause: e });
  }
}

function pickFactory(mod: TrainerModule, o: TrainerOptions): ModelFactory {
  const m = mod as Record<string, unknown>;
  const name = o.factory ?? 'createModel';
  const f = m[name] ?? (o.factory === undefined ? m.default : undefined);
  if (typeof f !== 'function') {
    const have = Object.keys(m).filter((k) => typeof m[k] === 'function');
    throw new TrainerError(
      'ERR_TRAINER_MODULE',
      `${o.module} does not export a model factory '${name}'${o.factory === undefined ? ' (nor a default export)' : ''}; its function exports: ${have.join(', ') || 'none'}`,
    );
  }
  if (mod.trainStep !== undefined && typeof mod.trainStep !== 'function') throw new TrainerError('ERR_TRAINER_MODULE', `${o.module}: export trainStep must be a function`);
  if (mod.onEpochEnd !== undefined && typeof mod.onEpochEnd !== 'function') throw new TrainerError('ERR_TRAINER_MODULE', `${o.module}: export onEpochEnd must be a function`);
  return f as ModelFactory;
}

function backendInfo(b: ResolvedBackend): BackendInfo {
  const { tf: _tf, ...rest } = b;
  return { ...rest, attempts: rest.attempts.map((a) => ({ ...a })) };
}

function prefixed(prefix: string, m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [`${prefix}${k}`, v]));
}

export function errorInfo(e: unknown): ErrorInfo {
  if (e instanceof Error) {
    return {
      name: e.name,
      message: e.message,
      ...(e instanceof RingpipeError || typeof (e as NodeJS.ErrnoException).code === 'string' ? { code: String((e as NodeJS.ErrnoException).code) } : {}),
      ...(e.stack ? { stack: e.stack } : {}),
    };
  }
  return { name: 'Error', message: String(e) };
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return `${typeof v} ${String(v).slice(0, 40)}`;
  return `object with keys [${Object.keys(v).slice(0, 8).join(', ')}]`;
}

function fmt(v: number): string {
  return Number.isFinite(v) ? v.toPrecision(4) : String(v);
}
