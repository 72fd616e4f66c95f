// Stage types implemented by ringpipe's own library (src/image, src/train), found by name.
//
// Each type names a module (relative to this file) and an export (a dotted path) holding a
// {@link LibraryStageImplementation}. Its function is called exactly like a user's `run` function
// (see runner.ts): one argument per input, then a StageContext whose `options` holds the item's own
// fields (everything but type, inputs, workers, isolation, cache, on_error). Both types are adapters
// in this directory: image_preprocess over src/image's `preprocess`, trainer over src/train's
// `Trainer` (trainer-stage.ts). A type whose module is missing fails its stages with ERR_NOT_AVAILABLE.
import { fileURLToPath } from 'node:url';
import { resolveFile } from '../cache/source-hash.js';
import { importModule, resolveRunModule } from './modules.js';
import type { InputMode } from './types.js';

/** What a library module provides for one stage type. */
export interface LibraryStageImplementation {
  /** Called like a user stage function: `(...inputs, ctx)`; `ctx.options` holds the item's options. */
  run: (...args: any[]) => unknown;
  /** JSON Schema (draft-07) of the options, checked when the pipeline is validated. */
  optionsSchema?: Record<string, unknown>;
  /** How many inputs the stage takes, when fixed (checked when the pipeline is validated). */
  inputs?: number;
  /**
   * Checks of the item as a whole that the options schema cannot express (e.g. an option that needs
   * `"isolation": "process"`), run when the pipeline is validated; each problem names its field.
   */
  check?(def: Readonly<Record<string, unknown>>): LibraryIssue[];
  /** Environment of the stage's replicas when they run as processes (e.g. a preloaded allocator). */
  processEnv?(): Record<string, string>;
  /**
   * Called once in each replica on the engine (worker thread or process), before its first call:
   * `replicas` is the stage's replica count, `ownProcess` whether this replica has a process of its
   * own (e.g. to size thread pools per process).
   */
  setup?(replica: { replicas: number; ownProcess: boolean }): void;
}

/** A problem {@link LibraryStageImplementation.check} found. */
export interface LibraryIssue {
  /** The field concerned (dotted for nested options). */
  field?: string;
  /** What is wrong. */
  message: string;
}

/** A library stage type and where its implementation lives. */
export interface LibraryStageType {
  /** Module, relative to this file. */
  module: string;
  /** Export holding the {@link LibraryStageImplementation}: a name or a dotted path. */
  export: string;
  /** What it does, for messages. */
  description: string;
  /**
   * Its inputs other than parameter items (its data): how many it takes, the mode they get when the
   * item names them without `"as"`, and the modes allowed. Default: any number, `each`, any mode.
   */
  data?: { count: number; mode: InputMode; modes: readonly InputMode[] };
  /**
   * Options naming modules of the project, with the exports looked for when the value names none. A
   * value is `"./file.js"` or `"./file.js#export"` relative to the pipeline file, or an object with
   * such a `module` (and an `export`). Validation checks the file and export; the module's code and
   * what it imports are part of the stage's cache key; the stage receives absolute paths.
   */
  modules?: Readonly<Record<string, readonly string[]>>;
  /** Options that do not change what the stage computes (left out of its cache key), like `workers`. */
  operational?: readonly string[];
  /** Where its replicas run when the item asks for `workers` > 1 and names no `isolation`. Default 'thread'. */
  replicaIsolation?: 'thread' | 'process';
}

/** The stage types ringpipe's library provides. */
export const LIBRARY_STAGE_TYPES: Readonly<Record<string, LibraryStageType>> = {
  image_preprocess: {
    module: './image-stage.js',
    export: 'imagePreprocess',
    description: 'image decoding and preprocessing (src/image)',
    operational: ['readFile'],  // how the bytes are read, not what comes out
    // As imagePipeline's: replicas in threads share one libvips and its locks (bench/RESULTS.md).
    replicaIsolation: 'process',
  },
  trainer: {
    module: './trainer-stage.js',
    export: 'trainer',
    description: 'the TensorFlow.js trainer (src/train)',
    data: { count: 1, mode: 'iterable', modes: ['iterable', 'all'] },
    modules: { model: ['createModel', 'default'], validation: ['default'], test: ['default'] },
    operational: ['gpus'],
  },
};

/** Fields of a library stage item that are not options of the implementation. */
export const STAGE_FIELDS = new Set(['type', 'inputs', 'workers', 'isolation', 'cache', 'on_error', '$comment', 'run']);

/** The options of a library stage item: its fields other than the common stage fields. */
export function libraryOptions(def: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(def)) if (!STAGE_FIELDS.has(k)) out[k] = v;
  return out;
}

/** A module named by an option of a library stage (see {@link LibraryStageType.modules}). */
export interface ModuleOption {
  /** The field holding the module (`model`, `validation.module`). */
  field: string;
  /** The module as written. */
  module: string;
  /** The export named by `#name` or an `export` field. */
  exportName?: string;
  /** The exports looked for when none is named. */
  defaults: readonly string[];
}

/** The modules named by the options of a library stage item. */
export function moduleOptions(type: string, options: Readonly<Record<string, unknown>>): ModuleOption[] {
  const out: ModuleOption[] = [];
  for (const [name, defaults] of Object.entries(LIBRARY_STAGE_TYPES[type]?.modules ?? {})) {
    const v = options[name];
    if (typeof v === 'string') {
      const hash = v.lastIndexOf('#');
      out.push({ field: name, module: hash < 0 ? v : v.slice(0, hash), ...(hash < 0 ? {} : { exportName: v.slice(hash + 1) }), defaults });
    } else if (v && typeof v === 'object' && typeof (v as { module?: unknown }).module === 'string') {
      const e = (v as { export?: unknown }).export;
      out.push({ field: `${name}.module`, module: (v as { module: string }).module, ...(typeof e === 'string' ? { exportName: e } : {}), defaults });
    }
  }
  return out;
}

/** The options with their modules' paths made absolute (against `baseDir`, the pipeline file's directory). */
export function resolveModuleOptions(type: string, options: Readonly<Record<string, unknown>>, baseDir: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const m of moduleOptions(type, options)) {
    const { path } = resolveRunModule(m.module, baseDir);
    if (!path) continue; // reported by validation; the stage fails importing it
    const [name, sub] = m.field.split('.');
    if (sub) out[name!] = { ...(options[name!] as object), module: path };
    else out[name!] = m.exportName === undefined ? path : `${path}#${m.exportName}`;
  }
  return out;
}

/** The options that are part of a library stage's cache key (all but its operational ones). */
export function keyOptions(type: string, def: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const operational = new Set(LIBRARY_STAGE_TYPES[type]?.operational ?? []);
  return Object.fromEntries(Object.entries(libraryOptions(def)).filter(([k]) => !operational.has(k)));
}

/** The file implementing a library type, or undefined when it is not there. */
export function libraryModuleFile(type: string): string | undefined {
  const t = LIBRARY_STAGE_TYPES[type];
  if (!t) return undefined;
  return resolveFile(fileURLToPath(new URL(t.module, import.meta.url)));
}

/** Result of {@link loadLibraryStage}. */
export type LibraryLookup = { ok: true; impl: LibraryStageImplementation; file: string } | { ok: false; reason: string };

/** Loads the implementation of a library stage type, or says why it is not available. */
export async function loadLibraryStage(type: string): Promise<LibraryLookup> {
  const t = LIBRARY_STAGE_TYPES[type];
  if (!t) return { ok: false, reason: `'${type}' is not a library stage type` };
  const file = libraryModuleFile(type);
  if (!file) return { ok: false, reason: `stage type '${type}' is not available: ${t.description} is not part of this build of ringpipe` };
  let mod: Record<string, unknown>;
  try {
    mod = await importModule(file);
  } catch (err) {
    return { ok: false, reason: `stage type '${type}' is not available: loading ${t.description} failed: ${(err as Error).message}` };
  }
  let impl: unknown = mod;
  for (const part of t.export.split('.')) impl = impl && typeof impl === 'object' ? (impl as Record<string, unknown>)[part] : undefined;
  if (!impl || typeof (impl as LibraryStageImplementation).run !== 'function') {
    return { ok: false, reason: `stage type '${type}' is not available: ${t.description} does not export ${t.export} with a run function` };
  }
  return { ok: true, impl: impl as LibraryStageImplementation, file };
}
