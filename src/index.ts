// ringpipe's public API.
export { RingpipeError, NativeLoadError, InvalidArgumentError, RegionError, RingError } from './errors.js';
export { Ring, RingMemory, RingWriter, RingReader, attachRing, maxPayload, cleanupStaleRegions, EMPTY, END, DEFAULT_CAPACITY } from './ring/index.js';
export type { RingOptions, RingDescriptor, WriterOptions, ReaderOptions, WaitOptions } from './ring/index.js';
export { copyRecord, holdsSharedMemory, isTensor } from './codec/index.js';
export type { Tensor, DType, TypedArray } from './codec/index.js';
export { Source, Transform, Sink, Regulator } from './segments/segment.js';
export type { SegmentContext, SegmentOptions, SegmentClass, ErrorDecision, SegmentKind } from './segments/segment.js';
export { batch, unbatch, batchRegulator, unbatchRegulator } from './segments/regulators.js';
export { writableSource } from './segments/writable-source.js';
export type { WritableSourceOptions } from './segments/writable-source.js';
export { Pipeline } from './pipeline/pipeline.js';
export { Graph } from './pipeline/graph.js';
export type { NodeOptions, GraphNodeOptions } from './pipeline/graph.js';
export type { IterateOptions, PipelineIterator } from './pipeline/iterate.js';
export { Stream } from './pipeline/stream.js';
export type { StreamOptions } from './pipeline/stream.js';
export { PipelineValidationError } from './pipeline/errors.js';
export { SegmentError, SegmentCrashError, SegmentStalledError, RecordTimeoutError, PipelineDeadlockError, CancelledError } from './runtime/errors.js';
export { SegmentCodeError } from './segments/locate.js';
export type { RunOptions, RunResult, Progress, SegmentStats, StreamStats } from './runtime/supervisor.js';
export type { SkippedRecord } from './runtime/plan.js';

/** True inside a ringpipe worker thread or process: guard module-level pipeline runs with it. */
export const isWorker: boolean = Boolean((globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')]);

// JSON pipelines (Pipetree's model) and the content-addressed cache.
export {
  JsonPipeline, loadPipeline, loadPipelineFile, loadPipelineSpec, validatePipeline, buildPlan, executePlan, collectGarbage,
  artifact, isArtifact, ReplayableInput, ConfigError, StageError, pipelineSchema, pipelineSchemaPath, describeItems, describePlan,
  gridCombinations, randomCombinations, InProcessRunner, EngineRunner, LIBRARY_STAGE_TYPES,
} from './config/index.js';
export type {
  PipelineSpec, PipelineItemSpec, InputSpec, InputMode, StageContext, StageFunction, ExecuteOptions, JsonRunResult, StageResult,
  StageStatus, RunEvent, LoadOptions, LoadedPipeline, ConfigIssue, ArtifactResult, ResultsOptions, GcOptions, GcReport, StageRunner,
  StageInvocation, LibraryStageImplementation, JsonRunOptions,
} from './config/index.js';
export { FsArtifactStore, CacheError, canonicalJson, hashValue, hashModuleGraph, readRecordFile, RecordFileWriter, CACHE_FORMAT } from './cache/index.js';
export type { ArtifactStore, ArtifactWriter, ArtifactManifest, ArtifactRecord, ArtifactInfo, CacheEntry } from './cache/index.js';

// Image preprocessing with sharp: `import { image } from 'ringpipe'`, or the main entry points.
export * as image from './image/index.js';
export { imageFolder, imageList, imageSource, preprocess, preprocessItem, ImageDecodeError, IMAGENET_MEAN, IMAGENET_STD } from './image/index.js';
export type { ImageItem, ImageSourceOptions, PreprocessSpec, ImageTensor } from './image/index.js';
export { imagePipeline, imageItems, preprocessImages, writeShards, digestSink, skippedImages, unusedImages, ImagePreprocessor, ShardWriterSink, DigestSink } from './image/index.js';
export type { ImagePipelineOptions, SampleMeta, SkippedImage, ImagePreprocessorOptions, ImagePreprocessorReport, DigestReport, WriteShardsOptions } from './image/index.js';

// Datasets, trainers and sweeps (TensorFlow.js: tfjs-node-gpu, tfjs-node, or tfjs + wasm).
export { readIdx, readIdxSync, parseIdx, encodeIdx } from './data/idx.js';
export type { IdxTensor, IdxDtype } from './data/idx.js';
export { loadFashionMnist, locateFashionMnist, fashionMnistSearchPath, FASHION_MNIST_CLASSES, FASHION_MNIST_SYSTEM_DIR } from './data/fashion-mnist.js';
export type { FashionMnistSplit, FashionMnistSplitName, FashionMnistLocateOptions, FashionMnistLoadOptions } from './data/fashion-mnist.js';
export { DataFormatError, DatasetNotFoundError } from './data/errors.js';
export { loadTf, BACKEND_PREFERENCES } from './train/backend.js';
export type { Tf, BackendPreference, ResolvedBackend, LoadTfOptions } from './train/backend.js';
export { detectGpus, resolveGpus, planSlots, trainerEnv } from './train/gpu.js';
export type { GpuSpec, GpuSharing, GpuResolution, TrainerSlot, SlotPlan } from './train/gpu.js';
export { Trainer } from './train/trainer.js';
export type {
  TrainerOptions, TrainerContext, TrainerResult, EpochReport, TrainerModule, ModelFactory, TrainStep, DataSource, CompileOptions,
  EarlyStoppingOptions, RestoreBestOptions,
} from './train/trainer.js';
export { epochEnd, isEpochEnd, isBatch, tensorRecord } from './train/records.js';
export type { Batch, TensorRecord, TensorPair } from './train/records.js';
export { saveModel, loadModel } from './train/model-io.js';
export { trainerFeed } from './train/feed.js';
export { toTfDataset } from './train/tf-dataset.js';
export type { TfDatasetOptions, TfDatasetSource } from './train/tf-dataset.js';
export type { FeedOptions, EpochData } from './train/feed.js';
export { readModelFiles, writeModelFiles, loadModelFiles } from './train/model-files.js';
export type { ModelFiles } from './train/model-files.js';
export { loadTrainedModel } from './config/trainer-stage.js';
export type { TrainedModel, TrainerStageOptions } from './config/trainer-stage.js';
export { readCheckpoint, latestCheckpoint } from './train/checkpoint.js';
export type { TrainerCheckpoint, TrainerResume, TrainerState } from './train/checkpoint.js';
export { BackendError, TrainerError, GpuError } from './train/errors.js';
export { sweep, inProcessDataPath, trainerContext } from './sweep/sweep.js';
export type { SweepOptions, SweepResult, DataPath, Wave, WaveEvents } from './sweep/sweep.js';
export { engineDataPath, trainerSegmentName } from './sweep/engine-data-path.js';
export { TrainerSink } from './sweep/trainer-sink.js';
export { gridSearch, randomSearch, makeTrials, trialId, waves } from './sweep/space.js';
export { MedianStoppingRule, SuccessiveHalving, createStoppingRule } from './sweep/early-stopping.js';
export { renderLearningCurves } from './sweep/chart.js';
export { SweepControlError } from './sweep/control.js';

// Past one machine: NATS JetStream links, work queue and agents, distributed sweeps, shared cache.
export { ClusterConnection } from './cluster/connect.js';
export type { ClusterOptions, ClusterTlsOptions, ConnectionEvent } from './cluster/connect.js';
export { ClusterError, ClusterRunError, LinkError, WorkError } from './cluster/errors.js';
export { LinkReader, LinkWriter, jetstreamSink, jetstreamSource } from './cluster/link.js';
export type { LinkOptions, JetStreamLinkOptions, LinkSummary } from './cluster/link.js';
export { Job, WorkQueue, submitJob, runJob } from './cluster/work.js';
export type { WorkSpec, WorkResult, WorkEvent, SubmitOptions, AgentInfo } from './cluster/work.js';
export { Agent, runAgent } from './cluster/agent.js';
export type { AgentOptions, AgentSummary, WorkContext, WorkFunction, Checkpoint } from './cluster/agent.js';
export { registerWorkType } from './cluster/registry.js';
export { clusterStatus } from './cluster/status.js';
export type { ClusterStatus } from './cluster/status.js';
export { clusterDataPath } from './cluster/sweep.js';
export type { ClusterSweepOptions } from './cluster/sweep.js';
export type { SweepClusterOptions } from './cluster/remote-sweep.js';
export type { PipelineClusterOptions } from './cluster/remote-pipeline.js';
export { SharedArtifactStore, sharedCache } from './cluster/cache.js';
