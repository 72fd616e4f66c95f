// Reading a pipeline file, applying `--set` overrides, validating.
import { readFile } from 'node:fs/promises';
import { visit } from 'jsonc-parser';
import { dirname, resolve } from 'node:path';
import { ConfigError, type ConfigIssue } from './errors.js';
import type { PipelineItem, PipelineSpec } from './types.js';
import { IDENTIFIER, ptr, validatePipeline } from './validate.js';
import { branchesAskedFor } from './plan.js';
import type { ProjectScope } from './project.js';

/** Options of {@link loadPipelineFile} and {@link loadPipelineSpec}. */
export interface LoadOptions {
  /**
   * Overrides, each `item.field=value` (the value is JSON when it parses as JSON, else a string);
   * nested fields with more dots. The field must exist (see {@link applyOverrides}); `+item.field=value`
   * adds a new one.
   */
  set?: readonly string[];
  /** Check that `run` modules and their exports exist (default true). */
  checkModules?: boolean;
  /** Check that `file` and `file_folder` paths exist (default true). */
  checkFiles?: boolean;
  /**
   * Most branches the pipeline may have (the product of its search items' sizes); more is refused
   * with `ERR_TOO_MANY_BRANCHES`. Default: `RINGPIPE_MAX_BRANCHES` from the environment, else
   * `DEFAULT_MAX_BRANCHES` (10,000). `Infinity` lifts the limit.
   */
  maxBranches?: number;
  /**
   * Allow paths outside the project folder (the pipeline file's folder): `file` / `file_folder`
   * paths, `run` modules, library module options, and links inside a folder. Default false: such a
   * path is a validation error (a link inside a folder is reported unused).
   */
  allowOutside?: boolean;
}

/** Most branches a pipeline may have unless told otherwise (see {@link LoadOptions.maxBranches}). */
export const DEFAULT_MAX_BRANCHES = 10_000;

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
  /** The project folder and whether paths may leave it. */
  scope: ProjectScope;
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
  const scope: ProjectScope = { dir: options.file ? dirname(options.file) : options.baseDir, allowOutside: options.allowOutside === true };
  const { items, warnings } = await validatePipeline(copy, {
    baseDir: options.baseDir,
    file: options.file,
    checkModules: options.checkModules,
    checkFiles: options.checkFiles,
    scope,
  });
  checkBranchLimit(items, maxBranchesOf(options), options.file);
  return { file: options.file, baseDir: options.baseDir, spec: copy, items, warnings, ...(options.set?.length ? { overrides: [...options.set] } : {}), scope };
}

/** The branch limit of `options`, the environment, or the default. */
function maxBranchesOf(options: LoadOptions): number {
  if (options.maxBranches !== undefined) {
    if (!(options.maxBranches >= 1) || (!Number.isSafeInteger(options.maxBranches) && options.maxBranches !== Infinity)) {
      throw new ConfigError('ERR_CONFIG', [{ pointer: '', message: `maxBranches must be a positive integer or Infinity (got ${String(options.maxBranches)})` }]);
    }
    return options.maxBranches;
  }
  const env = process.env.RINGPIPE_MAX_BRANCHES;
  if (env === undefined || env === '') return DEFAULT_MAX_BRANCHES;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError('ERR_CONFIG', [{ pointer: '', message: `RINGPIPE_MAX_BRANCHES must be a positive integer (got '${env}')` }]);
  return n;
}

/**
 * Refuses a pipeline with more branches than `max` before anything is expanded, naming the search
 * items that multiply and how to raise the limit.
 */
function checkBranchLimit(items: PipelineItem[], max: number, file?: string): void {
  const { total, factors } = branchesAskedFor(items);
  if (total <= max) return;
  const biggest = [...factors].sort((a, b) => b.size - a.size)[0]!;
  const fmt = (n: number) => n.toLocaleString('en-US');
  const product = factors.map((f) => f.how).join(', times ');
  throw new ConfigError(
    'ERR_TOO_MANY_BRANCHES',
    [
      {
        item: biggest.item,
        pointer: ptr(biggest.item),
        message: `the pipeline has ${fmt(total)} branches (${product}), more than the limit of ${fmt(max)}; narrow the search, or raise the limit with --max-branches ${Number.isFinite(total) ? total : 'N'} (maxBranches in the API, RINGPIPE_MAX_BRANCHES in the environment)`,
      },
    ],
    { file },
  );
}

/**
 * Parses JSON; a syntax error names the line and column. A key written twice in one object is
 * refused (`ERR_CONFIG`), naming the key and both lines: `JSON.parse` would keep the last silently.
 */
export function parseJson(text: string, file?: string): unknown {
  const source = text.replace(/^\uFEFF/, '');
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = Number(/position (\d+)/.exec(msg)?.[1]);
    let where = '';
    if (Number.isFinite(pos)) {
      const before = source.slice(0, pos);
      const line = before.split('\n').length;
      const col = pos - before.lastIndexOf('\n');
      where = ` at line ${line}, column ${col}`;
    }
    throw new ConfigError('ERR_CONFIG_READ', [{ pointer: '', message: `not valid JSON${where}: ${msg}` }], { file, cause: err });
  }
  const duplicates = duplicateKeys(source);
  if (duplicates.length) throw new ConfigError('ERR_CONFIG', duplicates, { file });
  return value;
}

/** Every key written twice in one object, as issues naming the key and both lines (1-based). */
function duplicateKeys(source: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const open: Map<string, number>[] = []; // the keys of each object being read, with their line
  visit(source, {
    onObjectBegin: () => void open.push(new Map()),
    onObjectEnd: () => void open.pop(),
    onObjectProperty: (key, _offset, _length, startLine, _startCharacter, pathSupplier) => {
      const keys = open[open.length - 1]!;
      const line = startLine + 1;
      const first = keys.get(key);
      if (first === undefined) {
        keys.set(key, line);
        return;
      }
      const path = [...pathSupplier().map(String), key];
      const [item, ...fields] = path;
      issues.push({
        ...(fields.length || IDENTIFIER.test(item!) ? { item } : {}),
        ...(fields.length ? { field: fields.join('.') } : {}),
        pointer: ptr(...path),
        message: `the key '${key}' is written twice${path.length > 1 ? ` in '${path.slice(0, -1).join('.')}'` : ''}: at line ${first} and at line ${line} (JSON would keep the last one silently: remove or rename one)`,
      });
    },
  });
  return issues;
}

/** Items whose every field is free (a parameter, a grid or random-search dimension): a new field there is a new parameter. */
const FREE_FORM = new Set(['parameters', 'grid_search_parameters', 'random_search_parameters']);

/**
 * Applies `item.field=value` overrides in place. The field must exist: in the file, or (for stage,
 * file and folder items) among the fields the item's type has (the schema checks those). A field
 * that is new to a parameters, grid or random item, or to an object value, would silently add a
 * parameter (a typo such as `hiden`): it is an error naming the fields there are. To add one on
 * purpose, prefix the override with `+` (`+item.field=value`, what `--add` passes).
 */
export function applyOverrides(spec: Record<string, unknown>, overrides: readonly string[], file?: string): void {
  for (const o of overrides) {
    const adding = o.startsWith('+');
    const text = adding ? o.slice(1) : o;
    const flag = adding ? '--add' : '--set';
    const eq = text.indexOf('=');
    const fail = (message: string, item?: string): never => {
      throw new ConfigError('ERR_CONFIG_SET', [{ item, pointer: item ? ptr(item) : '', message: `${flag} ${text}: ${message}` }], { file });
    };
    if (eq < 0) fail("expected 'item.field=value'");
    const path = text.slice(0, eq).split('.');
    const raw = text.slice(eq + 1);
    const [item, ...fields] = path;
    if (!item || !IDENTIFIER.test(item) || !fields.length || fields.some((f) => !f)) fail("expected 'item.field=value'");
    if (path.some((f) => f === '__proto__' || f === 'constructor' || f === 'prototype')) fail(`'${path.find((f) => f === '__proto__' || f === 'constructor' || f === 'prototype')}' cannot be set`);
    const target = Object.hasOwn(spec, item!) ? spec[item!] : undefined;
    if (target === undefined) fail(`no item '${item}'${knownList(Object.keys(spec).filter((k) => !k.startsWith('$')), 'items')}`, item);
    if (!target || typeof target !== 'object' || Array.isArray(target)) fail(`item '${item}' is not an object`, item);
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = raw;
    }
    const type = (target as Record<string, unknown>).type;
    // Fields of stage, file and folder items are fixed by their type: the schema names unknown ones.
    const schemaChecked = typeof type !== 'string' || !FREE_FORM.has(type);
    let node = target as Record<string, unknown>;
    let where = ''; // the issue names the item; deeper, the object
    for (const [depth, f] of fields.entries()) {
      const last = depth === fields.length - 1;
      const exists = Object.hasOwn(node, f);
      const checked = depth === 0 && schemaChecked;
      if (!exists && !adding && !checked) fail(`no field '${f}'${where}${knownList(Object.keys(node), 'fields')}; to add it, use --add ${text}`, item);
      if (last) {
        if (exists && adding) fail(`the field '${f}'${where} exists: use --set to change it`, item);
        node[f] = value;
        break;
      }
      const next = exists ? node[f] : undefined;
      if (next === undefined) node[f] = {};
      else if (!next || typeof next !== 'object' || Array.isArray(next)) fail(`'${f}' is not an object`, item);
      node = node[f] as Record<string, unknown>;
      where = ` in '${fields.slice(0, depth + 1).join('.')}'`;
    }
  }
}

/** ` (fields: a, b)` for a message (`type` and `$comment` left out). */
function knownList(names: string[], what: 'fields' | 'items'): string {
  const shown = names.filter((n) => n !== 'type' && n !== '$comment');
  return ` (${what}: ${shown.length ? shown.join(', ') : 'none'})`;
}
