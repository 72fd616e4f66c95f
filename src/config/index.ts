export { ConfigError, StageError, formatIssue, type ConfigIssue } from './errors.js';
export { loadPipelineFile, loadPipelineSpec, applyOverrides, parseJson, type LoadOptions, type LoadedPipeline } from './load.js';
export { validatePipeline, findCycle, IDENTIFIER, ITEM_TYPES, type ValidateOptions, type ValidationResult } from './validate.js';
export { pipelineSchema, pipelineSchemaPath } from './schema.js';
export { gridCombinations, randomCombinations, parameterValues } from './search.js';
export { buildPlan, isStage, topoOrder, KEY_VERSION, type Plan, type PlanNode } from './plan.js';
export {
  executePlan,
  defaultCacheDir,
  type ExecuteOptions,
  type RunEvent,
  type JsonRunResult,
  type StageResult,
  type StageStatus,
} from './executor.js';
export {
  InProcessRunner,
  artifact,
  isArtifact,
  type InputFeed,
  type SkippedCall,
  type StageContext,
  type StageFunction,
  type StageInvocation,
  type StageOutcome,
  type StageRunner,
} from './runner.js';
export { ReplayableInput, openReplaySource, type ReplaySource } from './feeds.js';
export { collectGarbage, type GcOptions, type GcReport } from './gc.js';
export { EngineRunner, ENGINE_MAX_WORKERS } from './engine-runner.js';
export { describeItems, describePlan, type GraphText } from './describe.js';
export { LIBRARY_STAGE_TYPES, loadLibraryStage, type LibraryIssue, type LibraryStageImplementation, type LibraryStageType } from './library.js';
export { loadTrainedModel, type TrainedModel, type TrainerStageOptions, type DataRefOption } from './trainer-stage.js';
export {
  JsonPipeline,
  loadPipeline,
  type ArtifactResult,
  type CacheLocationOptions,
  type JsonRunOptions,
  type ResultsOptions,
  type StagePlanEntry,
} from './pipeline.js';
export type {
  InputMode,
  InputRef,
  InputSpec,
  Isolation,
  ItemKind,
  PipelineItem,
  PipelineItemSpec,
  PipelineSpec,
  ReadMode,
  ParametersItem,
  GridSearchItem,
  RandomSearchItem,
  Distribution,
  FileItem,
  FileFolderItem,
  StageItem,
  LibraryStageItem,
  TrainerItem,
  StageCommon,
} from './types.js';
