/**
 * `ringpipe/train`: datasets (IDX, Fashion-MNIST), TensorFlow.js trainers (backend resolution:
 * tfjs-node-gpu, tfjs-node, tfjs + wasm; one process per GPU), pipelines as tf.data datasets, and
 * hyperparameter sweeps whose trials read one preprocessed stream.
 *
 * @example
 * import { loadTf, toTfDataset } from 'ringpipe/train';
 * const { tf } = await loadTf();
 * await model.fitDataset(toTfDataset(batches, { tf }), { epochs: 3 });
 *
 * @packageDocumentation
 */

/** IDX files (MNIST, Fashion-MNIST): read, parse, write. */
export { readIdx, readIdxSync, parseIdx, encodeIdx } from '../data/idx.js';
/** An IDX tensor and its element types. */
export type { IdxTensor, IdxDtype } from '../data/idx.js';
/** Fashion-MNIST: find it (Debian package, a folder) and load a split. */
export { loadFashionMnist, locateFashionMnist, fashionMnistSearchPath, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR } from '../data/fashion-mnist.js';
/** Fashion-MNIST splits and the options to find and load them. */
export type { FashionMnistSplit, FashionMnistSplitName, FashionMnistLocateOptions, FashionMnistLoadOptions } from '../data/fashion-mnist.js';
/** Data files that are damaged, or not found (`ERR_IDX_FORMAT`, `ERR_DATASET_MISMATCH`, `ERR_DATASET_NOT_FOUND`). */
export { DataFormatError, DatasetNotFoundError } from '../data/errors.js';
/** TensorFlow.js backends: tfjs-node-gpu, tfjs-node, else tfjs with wasm (`loadTf`). */
export { loadTf, BACKEND_PREFERENCES } from './backend.js';
/** The tfjs namespace, backend choices, and what was loaded. */
export type { Tf, BackendPreference, ResolvedBackend, LoadTfOptions } from './backend.js';
/** GPUs: detect them, resolve a `gpus` option, plan trainer slots, and a trainer's environment. */
export { detectGpus, resolveGpus, planSlots, trainerEnv } from './gpu.js';
/** GPU options and the slot plan. */
export type { GpuSpec, GpuSharing, GpuResolution, TrainerSlot, SlotPlan } from './gpu.js';
/** The trainer: trains a model from its module on a stream of batches and epoch markers. */
export { Trainer } from './trainer.js';
/** The trainer's options, hooks and result, and the model module's contract. */
export type {
  TrainerOptions, TrainerContext, TrainerResult, EpochReport, TrainerModule, ModelFactory, TrainStep, DataSource, CompileOptions,
  EarlyStoppingOptions, RestoreBestOptions,
} from './trainer.js';
/** Records a trainer reads: batches, tensor records, epoch-end markers. */
export { epochEnd, isEpochEnd, isBatch, tensorRecord } from './records.js';
/** A mini-batch, a tensor record, and examples in memory. */
export type { Batch, TensorRecord, TensorPair } from './records.js';
/** Saving and loading a model (tfjs layers format). */
export { saveModel, loadModel } from './model-io.js';
/** `trainerFeed`: batches and epoch markers from data iterated once per epoch. */
export { trainerFeed } from './feed.js';
/** `toTfDataset`: a pipeline as a `tf.data.Dataset` for `model.fitDataset`. */
export { toTfDataset } from './tf-dataset.js';
/** What toTfDataset() reads, and its options. */
export type { TfDatasetOptions, TfDatasetSource } from './tf-dataset.js';
/** Options of trainerFeed(), and the data it reads. */
export type { FeedOptions, EpochData } from './feed.js';
/** A model's files in memory: read, write, load (as the JSON pipelines' cache keeps them). */
export { readModelFiles, writeModelFiles, loadModelFiles } from './model-files.js';
/** A model's files. */
export type { ModelFiles } from './model-files.js';
/** Epoch-end checkpoints: read one, find the latest. */
export { readCheckpoint, latestCheckpoint } from './checkpoint.js';
/** A checkpoint, what a trainer resumes from, and its saved state. */
export type { TrainerCheckpoint, TrainerResume, TrainerState } from './checkpoint.js';
/** Trainer, backend and GPU errors (`ERR_TRAINER_*`, `ERR_BACKEND_UNAVAILABLE`, `ERR_GPU`). */
export { BackendError, TrainerError, GpuError } from './errors.js';
/** Sweeps: `sweep()` runs trials in waves, each wave reading one stream; a data path in this process. */
export { sweep, inProcessDataPath, trainerContext } from '../sweep/sweep.js';
/** A sweep's options and result; data paths and the waves they run. */
export type { SweepOptions, SweepResult, DataPath, Wave, WaveEvents } from '../sweep/sweep.js';
/** The data path on the engine: a wave's stream broadcast to trainer processes. */
export { engineDataPath, trainerSegmentName } from '../sweep/engine-data-path.js';
/** The trainer as a sink segment, as sweeps run it. */
export { TrainerSink } from '../sweep/trainer-sink.js';
/** Search spaces: grid and random search, trial ids, waves. */
export { gridSearch, randomSearch, makeTrials, trialId, waves } from '../sweep/space.js';
/** Stopping weak trials early: the median rule and successive halving. */
export { MedianStoppingRule, SuccessiveHalving, createStoppingRule } from '../sweep/early-stopping.js';
/** The learning-curves page of a sweep's results. */
export { renderLearningCurves } from '../sweep/chart.js';
/** The channel between a sweep and its trainer processes failed (`ERR_SWEEP_CONTROL`). */
export { SweepControlError } from '../sweep/control.js';
