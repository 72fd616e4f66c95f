/** Errors of pipeline files (`ConfigError`, every issue named by item and field) and of stage runs (`StageError`). */
export { ConfigError, StageError, formatIssue, type ConfigIssue } from './errors.js';
/** Loading a pipeline file or object: parse, apply `--set` overrides, validate. */
export { loadPipelineFile, loadPipelineSpec, applyOverrides, parseJson, type LoadOptions, type LoadedPipeline } from './load.js';
/** Validation: the schema, names, inputs, cycles, modules, paths; identifiers and item types. */
export { validatePipeline, findCycle, IDENTIFIER, ITEM_TYPES, type ValidateOptions, type ValidationResult } from './validate.js';
/** The JSON schema of pipeline files (also shipped as schema/pipeline.schema.json). */
export { pipelineSchema, pipelineSchemaPath } from './schema.js';
/** Grid and random search: the parameter combinations of a search item. */
export { gridCombinations, randomCombinations, parameterValues } from './search.js';
/** The plan: every item in every branch with its cache key, made as scheduled. */
export { buildPlan, isStage, topoOrder, KEY_VERSION, type Plan, type PlanNode } from './plan.js';
/** Running a plan with the cache: options, progress events, results. */
export {
  executePlan,
  defaultCacheDir,
  type ExecuteOptions,
  type RunEvent,
  type JsonRunResult,
  type StageResult,
  type StageStatus,
} from './executor.js';
/** How a stage function is called, and runners that call it (in this process). */
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
/** Inputs that can be read several times (once per epoch) from the cache. */
export { ReplayableInput, openReplaySource, type ReplaySource } from './feeds.js';
/** Cache garbage collection: what no registered pipeline reaches. */
export { collectGarbage, type GcOptions, type GcReport } from './gc.js';
/** The runner that calls stage functions on the engine (`workers`, `isolation`). */
export { EngineRunner, ENGINE_MAX_WORKERS } from './engine-runner.js';
/** A pipeline as Mermaid and DOT text. */
export { describeItems, describePlan, type GraphText } from './describe.js';
/** Library stage types (`image_preprocess`, `trainer`) and loading their code. */
export { LIBRARY_STAGE_TYPES, loadLibraryStage, type LibraryIssue, type LibraryStageImplementation, type LibraryStageType } from './library.js';
/** The `trainer` library stage's options and result; loading a trained model in a later stage. */
export { loadTrainedModel, type TrainedModel, type TrainerStageOptions, type DataRefOption } from './trainer-stage.js';
/** `JsonPipeline`: load, plan, run, dry-run, results and records of a pipeline, from TypeScript. */
export {
  JsonPipeline,
  loadPipeline,
  type ArtifactResult,
  type CacheLocationOptions,
  type JsonRunOptions,
  type ResultsOptions,
  type StagePlanEntry,
} from './pipeline.js';
/** The shape of a pipeline file: its item kinds and their fields. */
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
