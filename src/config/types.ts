// The shapes of a JSON pipeline, as TypeScript types (the JSON Schema in schema/pipeline.schema.json
// is the authority for files; these types let the same pipeline be written in code).
import type { TrainerStageOptions } from './trainer-stage.js';

/** How a stage consumes an input. */
export type InputMode =
  /** A stream is consumed one record per call (the default); a single value is passed whole. */
  | 'each'
  /** The whole input, as one array of records' data. */
  | 'all'
  /** An async iterable over the input's data, which may be iterated several times (epochs). */
  | 'iterable';

/** An input of a stage: an item name, or an item name with a mode. */
export type InputSpec = string | { from: string; as?: InputMode };

/** What a `file` or `file_folder` item hands to stages for each file. */
export type ReadMode = 'path' | 'buffer' | 'text' | 'json';

/** Where a stage's replicas run. */
export type Isolation = 'thread' | 'process' | 'local';

/** Parameter values, passed whole to every stage that lists the item as an input. */
export interface ParametersItem {
  type: 'parameters';
  [field: string]: unknown;
}

/** Every field is a list; the cartesian product of the lists gives one branch per combination. */
export interface GridSearchItem {
  type: 'grid_search_parameters';
  [field: string]: unknown;
}

/** A distribution of {@link RandomSearchItem}. */
export type Distribution =
  | unknown[]
  | { uniform: [number, number] }
  | { log_uniform: [number, number] }
  | { int: [number, number] }
  | { choice: unknown[] };

/** `count` combinations sampled with `seed`; every other field is a {@link Distribution}. */
export interface RandomSearchItem {
  type: 'random_search_parameters';
  /** How many combinations to sample (identical samples are dropped). */
  count: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  [field: string]: unknown;
}

/** One file, relative to the pipeline file. */
export interface FileItem {
  type: 'file';
  /** Path relative to the pipeline file. */
  path: string;
  /** What stages receive (default `path`: the absolute path). */
  read?: ReadMode;
}

/** The files of a folder, a stream of one record per file in sorted order. */
export interface FileFolderItem {
  type: 'file_folder';
  /** Path relative to the pipeline file. */
  path: string;
  /** Only these extensions (case-insensitive), e.g. `[".jpg"]`. */
  extensions?: string[];
  /** Descend into sub-folders (default true). */
  recursive?: boolean;
  /** What stages receive (default `path`: the absolute path). */
  read?: ReadMode;
}

/** Fields every stage has. */
export interface StageCommon {
  /** Items whose outputs become the function's arguments, in this order. */
  inputs?: InputSpec[];
  /** Replicas running the function (1 to 64; default 1), in worker threads or processes; records keep their order. */
  workers?: number;
  /** Where the function runs: `thread`, `process` or `local` (this process). Default: `local`, or `thread` when `workers` > 1 (`process` for an `image_preprocess` stage an input streams into). */
  isolation?: Isolation;
  /** Keep outputs in the cache (default true). */
  cache?: boolean;
  /** A record whose call throws: stop the stage (`fail`, default) or drop it, report it and go on (`skip`). */
  on_error?: 'fail' | 'skip';
}

/** A stage running a user function: `run` is `"./module.js#export"`, relative to the pipeline file. */
export interface StageItem extends StageCommon {
  type?: 'stage';
  /** `"./module.js#exportName"` (default export when `#...` is left out). */
  run: string;
  /** Items whose outputs become the function's arguments, in this order; `[]` for a function that takes none. */
  inputs: InputSpec[];
}

/** A stage implemented by ringpipe's library (`image_preprocess`, `trainer`); other fields are its options. */
export interface LibraryStageItem extends StageCommon {
  type: 'image_preprocess' | 'trainer';
  inputs: InputSpec[];
  [option: string]: unknown;
}

/**
 * A `trainer` stage with its options typed (see trainer-stage.ts): one data input (read `iterable`
 * unless it says `all`) and parameter items; trains one model per branch.
 */
export interface TrainerItem extends StageCommon, TrainerStageOptions {
  type: 'trainer';
  inputs: InputSpec[];
}

/** Any pipeline item. */
export type PipelineItemSpec = ParametersItem | GridSearchItem | RandomSearchItem | FileItem | FileFolderItem | StageItem | TrainerItem | LibraryStageItem;

/** A whole pipeline: named items (names are identifiers). */
export type PipelineSpec = { [name: string]: PipelineItemSpec | string | undefined } & { $schema?: string };

/** The kinds of items after validation. */
export type ItemKind = 'parameters' | 'grid' | 'random' | 'file' | 'folder' | 'stage' | 'library';

/** A validated input reference. */
export interface InputRef {
  /** Name of the item it reads. */
  from: string;
  /** How it is consumed. */
  as: InputMode;
}

/** A validated item. */
export interface PipelineItem {
  /** Its name. */
  name: string;
  /** What it is. */
  kind: ItemKind;
  /** Its `type` field (for stages without one, `stage`). */
  type: string;
  /** The item as written (after `--set` overrides). */
  def: Record<string, unknown>;
  /** Its inputs (stages only; empty otherwise). */
  inputs: InputRef[];
}
