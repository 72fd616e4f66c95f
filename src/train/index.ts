/**
 * `ringpipe/train`: datasets (IDX, Fashion-MNIST), TensorFlow.js trainers (backend resolution:
 * tfjs-node-gpu, tfjs-node, tfjs + wasm; one process per GPU), pipelines as tf.data datasets, and
 * hyperparameter sweeps whose trials read one preprocessed stream.
 *
 * @example
 * import { loadTf, toTfDataset } from 'ringpipe/train';
 * const { tf } = await loadTf();
 * await model.fitDataset(toTfDataset(batches, { tf }), { epochs: 3 });
 */
export { readIdx, readIdxSync, parseIdx, encodeIdx } from '../data/idx.js';
export type { IdxTensor, IdxDtype } from '../data/idx.js';
export { loadFashionMnist, locateFashionMnist, fashionMnistSearchPath, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR } from '../data/fashion-mnist.js';
export type { FashionMnistSplit, FashionMnistSplitName, FashionMnistLocateOptions, FashionMnistLoadOptions } from '../data/fashion-mnist.js';
export { DataFormatError, DatasetNotFoundError } from '../data/errors.js';
export { loadTf, BACKEND_PREFERENCES } from './backend.js';
export type { Tf, BackendPreference, ResolvedBackend, LoadTfOptions } from './backend.js';
export { detectGpus, resolveGpus, planSlots, trainerEnv } from './gpu.js';
export type { GpuSpec, GpuSharing, GpuResolution, TrainerSlot, SlotPlan } from './gpu.js';
export { Trainer } from './trainer.js';
export type {
  TrainerOptions, TrainerContext, TrainerResult, EpochReport, TrainerModule, ModelFactory, TrainStep, DataSource, CompileOptions,
  EarlyStoppingOptions, RestoreBestOptions,
} from './trainer.js';
export { epochEnd, isEpochEnd, isBatch, tensorRecord } from './records.js';
export type { Batch, TensorRecord, TensorPair } from './records.js';
export { saveModel, loadModel } from './model-io.js';
export { trainerFeed } from './feed.js';
export { toTfDataset } from './tf-dataset.js';
export type { TfDatasetOptions, TfDatasetSource } from './tf-dataset.js';
export type { FeedOptions, EpochData } from './feed.js';
export { readModelFiles, writeModelFiles, loadModelFiles } from './model-files.js';
export type { ModelFiles } from './model-files.js';
export { readCheckpoint, latestCheckpoint } from './checkpoint.js';
export type { TrainerCheckpoint, TrainerResume, TrainerState } from './checkpoint.js';
export { BackendError, TrainerError, GpuError } from './errors.js';
export { sweep, inProcessDataPath, trainerContext } from '../sweep/sweep.js';
export type { SweepOptions, SweepResult, DataPath, Wave, WaveEvents } from '../sweep/sweep.js';
export { engineDataPath, trainerSegmentName } from '../sweep/engine-data-path.js';
export { TrainerSink } from '../sweep/trainer-sink.js';
export { gridSearch, randomSearch, makeTrials, trialId, waves } from '../sweep/space.js';
export { MedianStoppingRule, SuccessiveHalving, createStoppingRule } from '../sweep/early-stopping.js';
export { renderLearningCurves } from '../sweep/chart.js';
export { SweepControlError } from '../sweep/control.js';
