// The `trainer` stage type: src/train's Trainer as a JSON pipeline stage.
//
//   "trained": { "type": "trainer", "inputs": ["prepared", "model_params", "lr_grid"],
//                "model": "./model.js", "epochs": 5, "batch_size": 64, "loss": "meanSquaredError" }
//
// Inputs: one data input (a stage, file or folder; read "as": "iterable" unless the item says "all")
// and any number of parameter items, merged in input order into the model's parameters, so a grid
// gives one trained model per branch. The data is replayed from the cache once per epoch (or carries
// its own `{ epochEnd }` markers): records are examples `{ x, y }` or batches `{ xs, ys }` (see
// src/train/feed.ts). The stage returns one record: the training result with the model's files
// ({@link TrainedModel}), and as metadata the status and the last epoch's metrics, which
// `ringpipe results` lists per branch.
import { isMainThread } from 'node:worker_threads';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as TF from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import { BACKEND_PREFERENCES, loadTf, type BackendPreference, type LoadTfOptions } from '../train/backend.js';
import { trainerFeed, type EpochData } from '../train/feed.js';
import { TrainerError } from '../train/errors.js';
import { leaseGpu, type GpuLease } from '../train/gpu-lease.js';
import { resolveGpus, trainerEnv } from '../train/gpu.js';
import { loadModelFiles, readModelFiles, type ModelFiles } from '../train/model-files.js';
import type { MonitorMode } from '../train/monitor.js';
import { Trainer, type BackendInfo, type DataLoaderRef, type EpochReport, type TrainerOptions, type TrainerResult } from '../train/trainer.js';
import type { LibraryIssue, LibraryStageImplementation } from './library.js';
import { importModule } from './modules.js';
import { artifact, type StageContext } from './runner.js';

/** A set loaded inside the trainer: `"./sets.js#export"`, or `{ module, export?, args? }` (paths relative to the pipeline file). */
export type DataRefOption = string | { module: string; export?: string; args?: unknown };

/** Options of a `trainer` item (its fields besides type, inputs, workers, isolation, cache, on_error). */
export interface TrainerStageOptions {
  /** `"./model.js"` or `"./model.js#factory"`: the model module (createModel or default export; optional trainStep, onEpochEnd). Its code is part of the cache key. */
  model: string;
  /** Passes over the data (default 1); with epoch markers in the data, the most epochs trained (default all). A parameter `epochs` wins. */
  epochs?: number;
  /** Rows per batch: examples are stacked, batches re-cut. Default: batches as they come, examples 32 at a time. A parameter `batch_size` (or `batchSize`) wins. */
  batch_size?: number;
  /** Shuffle buffer: records are shuffled within this many, differently each epoch; 0 (default) keeps their order. */
  shuffle?: number;
  /** Seed of the shuffle (default 0). */
  seed?: number;
  /** Fraction (0 < f < 1) of the records, the last ones, held out and evaluated at every epoch end (`val_` metrics). */
  validation_split?: number;
  /** Validation set, evaluated at every epoch end (`val_` metrics). */
  validation?: DataRefOption;
  /** Test set, evaluated once after training, on the restored best weights (`test_` metrics). */
  test?: DataRefOption;
  /** Optimizer of a model the factory leaves uncompiled (default adam). A parameter `optimizer` wins. */
  optimizer?: string;
  /** Its learning rate (default: the optimizer's). A parameter `learning_rate` (or `learningRate`) wins, so a grid can search it. */
  learning_rate?: number;
  /** Loss of an uncompiled model (default categoricalCrossentropy). */
  loss?: string;
  /** Metrics of an uncompiled model (default ["accuracy"], reported as `acc`). */
  metrics?: string[];
  /** Stop when `monitor` (default val_loss with validation, else loss) has not improved for `patience` epochs (default 2). */
  early_stopping?: { monitor?: string; mode?: MonitorMode; patience?: number; min_delta?: number };
  /** Keep the weights of the best epoch (true, or by `monitor`/`mode`); they are tested and saved. */
  restore_best?: boolean | { monitor?: string; mode?: MonitorMode };
  /** Batch size for evaluating validation and test sets (default 1024). */
  eval_batch_size?: number;
  /** tfjs backend: auto (default: tfjs-node-gpu, tfjs-node, wasm, cpu), or one of them only. */
  backend?: BackendPreference;
  /**
   * GPUs (CUDA indexes, or "all") to bind the trainer to; needs `"isolation": "process"`. Each branch's
   * process takes a GPU no other trainer on this machine holds (else shares one) and sets
   * CUDA_VISIBLE_DEVICES before TensorFlow loads. Not part of the cache key.
   */
  gpus?: number[] | 'all';
}

/** One epoch of the history (an {@link EpochReport} without the trial id). */
export type TrainedEpoch = Omit<EpochReport, 'trialId'>;

/** The data of a trainer stage's artifact. */
export interface TrainedModel {
  /** `completed`, or `stopped` by early stopping. */
  status: 'completed' | 'stopped';
  /** Why it stopped early. */
  stopReason?: string;
  /** The parameters the model was built with (the parameter inputs, merged). */
  params: Record<string, unknown>;
  /** Training settings in effect (options, or the parameters that override them). */
  settings: { epochs?: number; batchSize?: number; learningRate?: number; optimizer?: string };
  /** Every epoch: metrics (`loss`, `acc`, `val_loss`, ...), samples, steps, seconds, samples/s. */
  history: TrainedEpoch[];
  /** The last epoch's metrics. */
  metrics: Record<string, number>;
  /** Best epoch by the restore_best (or early_stopping) monitor. */
  best?: { epoch: number; metric: string; value: number };
  /** Test metrics (`test_loss`, `test_acc`, ...). */
  test?: Record<string, number>;
  /** Training examples seen, all epochs. */
  samples: number;
  steps: number;
  seconds: number;
  /** The tfjs backend it ran on (with CUDA_VISIBLE_DEVICES). */
  backend?: BackendInfo;
  /** The trained model (the restored best weights, when asked): `loadTrainedModel(trained)` or `writeModelFiles(trained.model, dir)`. */
  model: ModelFiles;
}

const dataRef = {
  description: 'must be "./module.js#export" or { "module": "./module.js", "export": name, "args": value }',
  oneOf: [
    { type: 'string', pattern: '^[^#]+(#[A-Za-z_$][A-Za-z0-9_$]*)?$' },
    { type: 'object', properties: { module: { type: 'string' }, export: { type: 'string' }, args: true }, required: ['module'], additionalProperties: false },
  ],
};
const mode = { enum: ['auto', 'min', 'max'] };

/** `trainer`: trains a TensorFlow.js model per branch (see the module comment and {@link TrainerStageOptions}). */
export const trainer: LibraryStageImplementation = {
  optionsSchema: {
    type: 'object',
    required: ['model'],
    properties: {
      model: { type: 'string', pattern: '^[^#]+(#[A-Za-z_$][A-Za-z0-9_$]*)?$' },
      epochs: { type: 'integer', minimum: 1 },
      batch_size: { type: 'integer', minimum: 1 },
      shuffle: { type: 'integer', minimum: 0 },
      seed: { type: 'integer' },
      validation_split: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      validation: dataRef,
      test: dataRef,
      optimizer: { enum: ['adam', 'sgd', 'rmsprop', 'adagrad', 'adadelta', 'adamax', 'momentum'] },
      learning_rate: { type: 'number', exclusiveMinimum: 0 },
      loss: { type: 'string' },
      metrics: { type: 'array', items: { type: 'string' } },
      early_stopping: {
        type: 'object',
        properties: { monitor: { type: 'string' }, mode, patience: { type: 'integer', minimum: 1 }, min_delta: { type: 'number', minimum: 0 } },
        additionalProperties: false,
      },
      restore_best: { description: 'must be true, false or { "monitor": metric, "mode": "auto" | "min" | "max" }', oneOf: [{ type: 'boolean' }, { type: 'object', properties: { monitor: { type: 'string' }, mode }, additionalProperties: false }] },
      eval_batch_size: { type: 'integer', minimum: 1 },
      backend: { enum: [...BACKEND_PREFERENCES] },
      gpus: { description: 'must be "all" or a list of CUDA device indexes (integers >= 0, each once)', oneOf: [{ const: 'all' }, { type: 'array', items: { type: 'integer', minimum: 0 }, uniqueItems: true }] },
    },
    additionalProperties: false,
  },

  check(def): LibraryIssue[] {
    const gpus = def.gpus;
    if (gpus !== undefined && !(Array.isArray(gpus) && !gpus.length) && def.isolation !== 'process') {
      return [{ field: 'gpus', message: 'binding trainers to GPUs needs "isolation": "process" (CUDA_VISIBLE_DEVICES must be set before TensorFlow loads, once per process)' }];
    }
    return [];
  },

  async run(...args: unknown[]): Promise<unknown> {
    const ctx = args.pop() as StageContext;
    const o = ctx.options as unknown as TrainerStageOptions;
    const { data, params } = splitInputs(args);
    const settings = effectiveSettings(o, params);
    const lease = o.gpus === undefined ? undefined : bindGpu(o.gpus);
    const dir = await mkdtemp(join(tmpdir(), 'ringpipe-trainer-'));
    try {
      const options = await trainerOptions(o, settings, params, ctx, dir);
      const t = new Trainer();
      await t.setup(options);
      try {
        const feed = trainerFeed(data, { epochs: settings.epochs, batchSize: settings.batchSize, shuffle: o.shuffle, seed: o.seed, validationSplit: o.validation_split, signal: ctx.signal });
        for await (const record of feed) {
          await t.run(record);
          if (!t.training) break; // stopped early: the rest of the data need not be read
        }
      } catch (e) {
        await t.teardown().catch(() => undefined); // frees tfjs memory
        throw e;
      }
      const result = await t.teardown();
      if (!result.model) throw new TrainerError('ERR_TRAINER_SAVE', 'the trainer saved no model');
      return trained(result, settings, await readModelFiles(result.model.dir));
    } finally {
      lease?.release();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** Loads the model of a trainer stage's artifact (its data, e.g. as a later stage's input) with tfjs. */
export async function loadTrainedModel(trained: TrainedModel | ModelFiles, options: LoadTfOptions = {}): Promise<TF.LayersModel> {
  const { tf } = await loadTf(options);
  return loadModelFiles(tf, 'files' in trained ? trained : trained.model);
}

/** The data input (the one that is not a parameter object) and the parameters, merged in input order. */
function splitInputs(args: unknown[]): { data: EpochData; params: Record<string, unknown> } {
  const isParams = (a: unknown) => !!a && typeof a === 'object' && [Object.prototype, null].includes(Object.getPrototypeOf(a));
  const data = args.filter((a) => !isParams(a));
  if (data.length !== 1 || !isEpochData(data[0])) {
    throw new InvalidArgumentError(`a trainer stage takes one data input (an iterable of records) besides parameter objects; got ${data.length === 1 ? typeof data[0] : data.length}`);
  }
  return { data: data[0] as EpochData, params: Object.assign({}, ...args.filter(isParams)) as Record<string, unknown> };
}

function isEpochData(v: unknown): boolean {
  return !!v && (typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function' || typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function');
}

type Settings = TrainedModel['settings'];

/** The training settings: the options, overridden by parameters of the same name (so a grid can search them). */
function effectiveSettings(o: TrainerStageOptions, params: Record<string, unknown>): Settings {
  const from = (names: string[], fallback: unknown, ok: (v: unknown) => boolean, what: string) => {
    const name = names.find((n) => params[n] !== undefined);
    const v = name === undefined ? fallback : params[name];
    if (name !== undefined && !ok(v)) throw new InvalidArgumentError(`parameter '${name}' must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  };
  const count = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
  const s: Settings = {
    epochs: from(['epochs'], o.epochs, count, 'an integer >= 1') as number | undefined,
    batchSize: from(['batch_size', 'batchSize'], o.batch_size, count, 'an integer >= 1') as number | undefined,
    learningRate: from(['learning_rate', 'learningRate'], o.learning_rate, (v) => typeof v === 'number' && v > 0, 'a number > 0') as number | undefined,
    optimizer: from(['optimizer'], o.optimizer, (v) => typeof v === 'string', 'an optimizer name') as string | undefined,
  };
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as Settings;
}

/** Sets CUDA_VISIBLE_DEVICES for this process, which must be the stage's own and not have loaded TensorFlow yet. */
function bindGpu(spec: number[] | 'all'): GpuLease | undefined {
  const ownProcess = isMainThread && Boolean((globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')]);
  if (!ownProcess) throw new InvalidArgumentError('option gpus needs "isolation": "process": the trainer must be alone in its process to bind it to a GPU');
  const { gpus } = resolveGpus(spec);
  const lease = gpus.length ? leaseGpu(gpus) : undefined;
  Object.assign(process.env, trainerEnv(lease ? lease.gpu : null));
  return lease;
}

async function trainerOptions(o: TrainerStageOptions, s: Settings, params: Record<string, unknown>, ctx: StageContext, dir: string): Promise<TrainerOptions> {
  const [model, factory] = splitRef(o.model);
  // Imported here first so that TypeScript modules load (through tsx) as `run` modules do; the
  // trainer's own import then finds it loaded.
  await preload(model, 'model');
  const compile = Object.fromEntries(Object.entries({ optimizer: s.optimizer, learningRate: s.learningRate, loss: o.loss, metrics: o.metrics }).filter(([, v]) => v !== undefined));
  const es = o.early_stopping;
  const rb = o.restore_best;
  return {
    module: model,
    ...(factory ? { factory } : {}),
    params,
    ...(ctx.branch ? { trialId: ctx.branch } : {}),
    ...(o.backend ? { backend: o.backend } : {}),
    compile,
    ...(o.validation ? { validation: await loaderRef(o.validation, 'validation') } : {}),
    ...(o.test ? { test: await loaderRef(o.test, 'test') } : {}),
    ...(o.eval_batch_size ? { evalBatchSize: o.eval_batch_size } : {}),
    ...(es ? { earlyStopping: { monitor: es.monitor, mode: es.mode, patience: es.patience, minDelta: es.min_delta } } : {}),
    ...(rb ? { restoreBest: rb === true ? {} : { monitor: rb.monitor, mode: rb.mode } } : {}),
    save: dir,
    onError: 'throw',
  };
}

function splitRef(spec: string): [string, string | undefined] {
  const hash = spec.lastIndexOf('#');
  return hash < 0 ? [spec, undefined] : [spec.slice(0, hash), spec.slice(hash + 1)];
}

async function loaderRef(ref: DataRefOption, what: string): Promise<DataLoaderRef> {
  const [module, exportName] = typeof ref === 'string' ? splitRef(ref) : [ref.module, ref.export];
  await preload(module, what);
  return { module, ...(exportName ? { export: exportName } : {}), ...(typeof ref === 'object' && ref.args !== undefined ? { args: ref.args } : {}) };
}

async function preload(file: string, what: string): Promise<void> {
  try {
    await importModule(file);
  } catch (e) {
    throw new TrainerError('ERR_TRAINER_MODULE', `cannot load the ${what} module ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function trained(r: TrainerResult, settings: Settings, model: ModelFiles) {
  const history = r.history.map(({ trialId: _t, ...e }) => e);
  const metrics = history.at(-1)?.metrics ?? {};
  const data: TrainedModel = {
    status: r.status === 'stopped' ? 'stopped' : 'completed',
    ...(r.stopReason ? { stopReason: r.stopReason } : {}),
    params: r.params,
    settings,
    history,
    metrics,
    ...(r.best ? { best: r.best } : {}),
    ...(r.test ? { test: r.test } : {}),
    samples: r.samples,
    steps: r.steps,
    seconds: r.seconds,
    ...(r.backend ? { backend: r.backend } : {}),
    model,
  };
  // Flat, so `ringpipe results` shows one column per value.
  const metadata: Record<string, unknown> = {
    training: data.status,
    epochs: history.length,
    ...metrics,
    ...r.test,
    ...(r.best ? { best_epoch: r.best.epoch, [`best_${r.best.metric}`]: r.best.value } : {}),
    ...(r.backend ? { backend: r.backend.name } : {}),
  };
  return artifact(data, metadata);
}
