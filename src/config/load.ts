// Reading a pipeline file, applying `--set` overrides, validating.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from './errors.js';
import type { PipelineItem, PipelineSpec } from './types.js';
import { IDENTIFIER, ptr, validatePipeline } from './validate.js';

/** Options of {@link loadPipelineFile} and {@link loadPipelineSpec}. */
export interface LoadOptions {
  /** Overrides, each `item.field=value` (the value is JSON when it parses as JSON, else a string); nested fields with more dots. */
  set?: readonly string[];
  /** Check that `run` modules and their exports exist (default true). */
  checkModules?: boolean;
  /** Check that `file` and `file_folder` paths exist (default true). */
  checkFiles?: boolean;
}

/** A validated pipeline and where it came from. */
export interface LoadedPipeline {
  /** Absolute path of the pipeline file (undefined for a pipeline written in code). */
  file?: string;
  /** Directory relative paths are resolved against. */
  baseDir: string;
  /** The pipeline object, after overrides. */
  spec: Record<string, unknown>;
  /** Validated items, in the order of the file. */
  items: PipelineItem[];
  /** Problems that will stop a run at a particular stage but not validation. */
  warnings: ConfigIssue[];
  /** The `set` overrides applied (so the same pipeline can be loaded elsewhere, e.g. on an agent). */
  overrides?: readonly string[];
}

/**
 * Reads, overrides and validates a pipeline file. Throws {@link ConfigError}: `ERR_CONFIG_READ` when
 * the file cannot be read or parsed, `ERR_CONFIG_SET` for a bad override, `ERR_CONFIG` for a
 * pipeline that does not validate.
 */
export async function loadPipelineFile(file: string, options: LoadOptions = {}): Promise<LoadedPipeline> {
  const abs = resolve(file);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message;
    throw new ConfigError('ERR_CONFIG_READ', [{ pointer: '', message: `cannot read the pipeline file: ${why}` }], { file: abs, cause: err });
  }
  const spec = parseJson(text, abs) as Record<string, unknown>;
  return loadPipelineSpec(spec, { ...options, baseDir: dirname(abs), file: abs });
}

/**
 * Validates a pipeline given as an object (the same shape as a file): the way to write a pipeline in
 * code. Relative paths are resolved against `baseDir`.
 */
export async function loadPipelineSpec(
  spec: PipelineSpec | Record<string, unknown>,
  options: LoadOptions & { baseDir: string; file?: string },
): Promise<LoadedPipeline> {
  const copy = structuredClone(spec) as Record<string, unknown>;
  const isObject = copy !== null && typeof copy === 'object' && !Array.isArray(copy);
  if (isObject && options.set?.length) applyOverrides(copy, options.set, options.file);
  const { items, warnings } = await validatePipeline(copy, {
    baseDir: options.baseDir,
    file: options.file,
    checkModules: options.checkModules,
    checkFiles: options.checkFiles,
  });
  return { file: options.file, baseDir: options.baseDir, spec: copy, items, warnings, ...(options.set?.length ? { overrides: [...options.set] } : {}) };
}

/** Parses JSON; a syntax error names the line and column. */
export function parseJson(text: string, file?: string): unknown {
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    const msg = (err as Error).message;
    const pos = Number(/position (\d+)/.exec(msg)?.[1]);
    let where = '';
    if (Number.isFinite(pos)) {
      const before = text.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${col}`;
    }
    throw new ConfigError('ERR_CONFIG_READ', [{ pointer: '', message: `not valid JSON${where}: ${msg}` }], { file, cause: err });
  }
}

/** Applies `item.field=value` overrides in place. */
export function applyOverrides(spec: Record<string, unknown>, overrides: readonly string[], file?: string): void {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    const fail = (message: string, item?: string): never => {
      throw new ConfigError('ERR_CONFIG_SET', [{ item, pointer: item ? ptr(item) : '', message: `--set ${o}: ${message}` }], { file });
    };
    if (eq < 0) fail("expected 'item.field=value'");
    const path = o.slice(0, eq).split('.');
    const raw = o.slice(eq + 1);
    const [item, ...fields] = path;
    if (!item || !IDENTIFIER.test(item) || !fields.length || fields.some((f) => !f)) fail("expected 'item.field=value'");
    if (path.some((f) => f === '__proto__' || f === 'constructor' || f === 'prototype')) fail(`'${path.find((f) => f === '__proto__' || f === 'constructor' || f === 'prototype')}' cannot be set`);
    const target = Object.hasOwn(spec, item!) ? spec[item!] : undefined;
    if (target === undefined) fail(`no item '${item}'`, item);
    if (!target || typeof target !== 'object' || Array.isArray(target)) fail(`item '${item}' is not an object`, item);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    let node = target as Record<string, unknown>;
    for (const f of fields.slice(0, -1)) {
      const next = Object.hasOwn(node, f) ? node[f] : undefined;
      if (next === undefined) node[f] = {};
      else if (!next || typeof next !== 'object') fail(`'${f}' is not an object`, item);
      node = node[f] as Record<string, unknown>;
    }
    node[fields[fields.length - 1]!] = value;
  }
}
