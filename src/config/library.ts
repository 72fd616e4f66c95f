// Stage types implemented by ringpipe's own library (src/image, src/train), found by name.
//
// Each type names a module (relative to this file) and an export (a dotted path) holding a
// {@link LibraryStageImplementation}. Its function is called exactly like a user's `run` function
// (see runner.ts): one argument per input, then a StageContext whose `options` holds the item's own
// fields (everything but type, inputs, workers, isolation, cache, on_error). image_preprocess is an
// adapter in this directory over src/image's `preprocess`; trainer is expected from src/train as
// `configStages.trainer` (not there yet: such a stage fails with ERR_NOT_AVAILABLE).
import { fileURLToPath } from 'node:url';
import { resolveFile } from '../cache/source-hash.js';
import { importModule } from './modules.js';

/** What a library module provides for one stage type. */
export interface LibraryStageImplementation {
  /** Called like a user stage function: `(...inputs, ctx)`; `ctx.options` holds the item's options. */
  run: (...args: any[]) => unknown;
  /** JSON Schema (draft-07) of the options, checked when the pipeline is validated. */
  optionsSchema?: Record<string, unknown>;
  /** How many inputs the stage takes, when fixed (checked when the pipeline is validated). */
  inputs?: number;
}

/** A library stage type and where its implementation lives. */
export interface LibraryStageType {
  /** Module, relative to this file. */
  module: string;
  /** Export holding the {@link LibraryStageImplementation}: a name or a dotted path. */
  export: string;
  /** What it does, for messages. */
  description: string;
}

/** The stage types ringpipe's library provides. */
export const LIBRARY_STAGE_TYPES: Readonly<Record<string, LibraryStageType>> = {
  image_preprocess: { module: './image-stage.js', export: 'imagePreprocess', description: 'image decoding and preprocessing (src/image)' },
  trainer: { module: '../train/index.js', export: 'configStages.trainer', description: 'the TensorFlow.js trainer (src/train)' },
};

/** Fields of a library stage item that are not options of the implementation. */
export const STAGE_FIELDS = new Set(['type', 'inputs', 'workers', 'isolation', 'cache', 'on_error', '$comment', 'run']);

/** The options of a library stage item: its fields other than the common stage fields. */
export function libraryOptions(def: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(def)) if (!STAGE_FIELDS.has(k)) out[k] = v;
  return out;
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
