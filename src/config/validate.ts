// Validation of a pipeline: the JSON Schema first (shape of each item), then what a schema cannot say
// (inputs that name items, cycles, files, modules and exports). Every issue names the item, the field
// and the JSON pointer.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ErrorObject } from 'ajv';
import { canonicalJson } from '../cache/hash.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { LIBRARY_STAGE_TYPES, libraryOptions, loadLibraryStage, moduleOptions } from './library.js';
import { findExport, parseRun, resolveRunModule } from './modules.js';
import { outsideProblem, type ProjectScope } from './project.js';
import { getAjv, schemaErrors } from './schema.js';
import type { InputMode, InputRef, ItemKind, PipelineItem } from './types.js';

/** Item names (and input references) must match this. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every `type` a pipeline item may have, and what kind of item it makes. */
export const ITEM_TYPES: Readonly<Record<string, ItemKind>> = {
  parameters: 'parameters',
  grid_search_parameters: 'grid',
  random_search_parameters: 'random',
  file: 'file',
  file_folder: 'folder',
  stage: 'stage',
  ...Object.fromEntries(Object.keys(LIBRARY_STAGE_TYPES).map((t) => [t, 'library' as const])),
};

const ALLOWED_FIELDS: Partial<Record<ItemKind, string[]>> = {
  file: ['type', 'path', 'read', '$comment'],
  folder: ['type', 'path', 'extensions', 'recursive', 'read', '$comment'],
  stage: ['type', 'run', 'inputs', 'workers', 'isolation', 'cache', 'on_error', '$comment'],
};

/** Options of {@link validatePipeline}. */
export interface ValidateOptions {
  /** Directory that relative paths (`run` modules, files, folders) are resolved against: the pipeline file's directory. */
  baseDir: string;
  /** The pipeline file, for messages. */
  file?: string;
  /** Check that `run` modules and their exports exist (default true). */
  checkModules?: boolean;
  /** Check that `file` and `file_folder` paths exist (default true). */
  checkFiles?: boolean;
  /** Where paths may lead: the project folder, and whether paths outside it are allowed (default: anywhere). */
  scope?: ProjectScope;
}

/** A validated pipeline. */
export interface ValidationResult {
  /** The items, in the order of the file. */
  items: PipelineItem[];
  /** Problems that do not stop validation but will stop a run (e.g. a library stage type that is not available). */
  warnings: ConfigIssue[];
}

/**
 * Validates a parsed pipeline. Throws a {@link ConfigError} (`ERR_CONFIG`) listing every problem
 * found; each names the item, the field and the JSON pointer.
 */
export async function validatePipeline(spec: unknown, options: ValidateOptions): Promise<ValidationResult> {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    throw new ConfigError('ERR_CONFIG', [{ pointer: '', message: 'a pipeline must be a JSON object of named items' }], { file: options.file });
  }
  const obj = spec as Record<string, unknown>;
  const names = Object.keys(obj).filter((k) => k !== '$schema' && k !== '$comment');
  for (const name of names) {
    if (!IDENTIFIER.test(name)) {
      issues.push({ item: name, pointer: ptr(name), message: `the name '${name}' is not an identifier (letters, digits and _, not starting with a digit)` });
    }
  }
  issues.push(...mapSchemaErrors(schemaErrors(spec), obj));
  const broken = new Set(issues.map((i) => i.item));

  // Items whose shape is right.
  const items: PipelineItem[] = [];
  for (const name of names) {
    if (broken.has(name)) continue;
    const def = obj[name] as Record<string, unknown>;
    const type = typeof def.type === 'string' ? def.type : 'stage';
    const kind = ITEM_TYPES[type]!;
    items.push({ name, kind, type, def, inputs: [] });
  }
  const known = new Set(names);

  for (const item of items) {
    if (item.kind === 'stage' || item.kind === 'library') {
      item.inputs = checkInputs(item, known, issues);
    }
    if (item.kind === 'random') checkRandom(item, issues);
    if (item.kind === 'grid') checkGrid(item, issues);
  }
  const byName = new Map(items.map((i) => [i.name, i]));
  checkInputKinds(items, byName, issues);
  checkDataInputs(items, byName, issues);
  const cycle = findCycle(items);
  if (cycle) {
    issues.push({
      item: cycle[0],
      field: 'inputs',
      pointer: ptr(cycle[0]!, 'inputs'),
      message: `the inputs form a cycle: ${cycle.join(' -> ')}`,
    });
  }

  for (const item of items) {
    checkScope(item, options.baseDir, options.scope, issues);
    if (options.checkFiles !== false && (item.kind === 'file' || item.kind === 'folder')) checkPath(item, options.baseDir, issues);
    if (options.checkModules !== false && item.kind === 'stage') await checkRun(item, options.baseDir, issues);
    if (options.checkModules !== false && item.kind === 'library') await checkLibrary(item, options.baseDir, issues, warnings);
  }
  if (issues.length) throw new ConfigError('ERR_CONFIG', sortIssues(issues, names), { file: options.file });
  return { items, warnings };
}

function sortIssues(issues: ConfigIssue[], names: string[]): ConfigIssue[] {
  const order = new Map(names.map((n, i) => [n, i]));
  const seen = new Set<string>();
  return issues
    .filter((i) => {
      const k = `${i.pointer}\0${i.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .map((issue, i) => ({ issue, i }))
    .sort((a, b) => (order.get(a.issue.item ?? '') ?? -1) - (order.get(b.issue.item ?? '') ?? -1) || a.i - b.i)
    .map(({ issue }) => issue);
}

/** A JSON pointer from path segments. */
export function ptr(...segments: (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

function segmentsOf(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function show(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** What a missing field is for, after "missing field 'x'". */
const MISSING_HINT: Record<string, string> = {
  run: ' (the function to call, e.g. "./steps.js#prepare")',
  inputs: ' (the items whose outputs the function takes, in order, e.g. ["params"]; write [] for a function that takes none)',
};

const KNOWN_TYPES = () => Object.keys(ITEM_TYPES).join(', ');
const DISTRIBUTION_HELP = 'a list of values, or one of {"uniform": [lo, hi]}, {"log_uniform": [lo, hi]} (lo > 0), {"int": [lo, hi]}, {"choice": [values]}';

/** Turns Ajv's errors into one issue per (item, field), with messages written for people. */
function mapSchemaErrors(errors: ErrorObject[], spec: Record<string, unknown>): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const covered = new Set<string>(); // pointers already explained
  const add = (issue: ConfigIssue) => {
    if (covered.has(issue.pointer)) return;
    covered.add(issue.pointer);
    out.push(issue);
  };
  for (const e of errors) {
    if (e.keyword === 'if' || e.keyword === 'allOf') continue;
    const segs = segmentsOf(e.instancePath);
    if (segs.length === 0) {
      if (e.keyword === 'additionalProperties') continue; // names: reported by validatePipeline
      add({ pointer: '', message: `the pipeline ${e.message}` });
      continue;
    }
    const item = segs[0]!;
    if (!IDENTIFIER.test(item)) continue; // already reported as a bad name
    const def = spec[item];
    const type = def && typeof def === 'object' && !Array.isArray(def) ? (def as Record<string, unknown>).type : undefined;
    const kind = typeof type === 'string' ? ITEM_TYPES[type] : type === undefined ? 'stage' : undefined;
    if (segs.length === 1) {
      switch (e.keyword) {
        case 'type':
          add({ item, pointer: ptr(item), message: `an item must be a JSON object (got ${show(def)})` });
          break;
        case 'required': {
          const missing = (e.params as { missingProperty: string }).missingProperty;
          if (missing === 'inputs' && type === undefined && !('run' in (def as object))) break; // no type, no run: 'missing type' says it all
          if (missing === 'run' && type === undefined) {
            add({ item, field: 'type', pointer: ptr(item, 'type'), message: `missing field 'type' (or 'run' for a stage); known types: ${KNOWN_TYPES()}` });
          } else {
            add({ item, field: missing, pointer: ptr(item, missing), message: `missing field '${missing}'${MISSING_HINT[missing] ?? ''}` });
          }
          break;
        }
        case 'additionalProperties': {
          if (type === undefined && !('run' in (def as object))) break; // no type: 'missing type' says it all
          const field = (e.params as { additionalProperty: string }).additionalProperty;
          const allowed = kind ? ALLOWED_FIELDS[kind] : undefined;
          const hint = allowed ? closest(field, allowed) : undefined;
          add({ item, field, pointer: ptr(item, field), message: `unknown field '${field}'${hint ? ` (did you mean '${hint}'?)` : ''}${allowed ? ` (a ${kind} item has: ${allowed.join(', ')})` : ''}` });
          break;
        }
        case 'propertyNames': {
          const field = (e.params as { propertyName: string }).propertyName;
          add({ item, field, pointer: ptr(item, field), message: `field names starting with '$' are reserved (only $comment is allowed)` });
          break;
        }
        default:
          add({ item, pointer: ptr(item), message: e.message ?? 'is invalid' });
      }
      continue;
    }
    const field = segs[1]!;
    const fieldPtr = ptr(item, field);
    if (field === 'inputs') {
      // Each input is checked (with better messages) by checkInputs; only the list itself here.
      if (segs.length === 2 && e.keyword === 'type') add({ item, field, pointer: fieldPtr, message: `must be a list of item names (got ${show((def as Record<string, unknown>)[field])})` });
      continue;
    }
    if (field === 'type' && e.keyword === 'enum') {
      add({ item, field, pointer: fieldPtr, message: `unknown type ${show(type)}; known types: ${KNOWN_TYPES()}` });
      continue;
    }
    if (field === 'type' && e.keyword === 'const') continue; // reported as enum
    const value = (def as Record<string, unknown>)[field];
    if (kind === 'grid' && field !== 'type') {
      const msg =
        Array.isArray(value) && value.length === 0
          ? 'a grid value must be a non-empty list'
          : `a grid value must be a list of the values to try (got ${show(value)}; write [${show(value)}] for a single value)`;
      add({ item, field, pointer: fieldPtr, message: msg });
      continue;
    }
    if (kind === 'random' && field !== 'count' && field !== 'seed' && field !== 'type') {
      add({ item, field, pointer: fieldPtr, message: `a random-search field must be ${DISTRIBUTION_HELP} (got ${show(value)})` });
      continue;
    }
    if (field === 'run' && e.keyword === 'not') {
      add({ item, field, pointer: fieldPtr, message: `a '${String(type)}' stage is implemented by ringpipe and has no 'run'` });
      continue;
    }
    if (field === 'run' && (e.keyword === 'pattern' || e.keyword === 'type')) {
      add({ item, field, pointer: fieldPtr, message: `must be "./module.js#exportName" (got ${show(value)})` });
      continue;
    }
    const subfield = segs.slice(1).join('.');
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'enum') message = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => show(v)).join(', ')} (got ${show(value)})`;
    add({ item, field: subfield, pointer: e.instancePath, message });
  }
  return out;
}

function checkInputs(item: PipelineItem, known: Set<string>, issues: ConfigIssue[]): InputRef[] {
  const raw = item.def.inputs;
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) return []; // reported by the schema
  const refs: InputRef[] = [];
  raw.forEach((entry: unknown, i: number) => {
    const field = `inputs.${i}`;
    const pointer = ptr(item.name, 'inputs', i);
    let from: unknown;
    let as: unknown = 'each';
    if (typeof entry === 'string') from = entry;
    else if (entry && typeof entry === 'object' && !Array.isArray(entry)) {
      const o = entry as Record<string, unknown>;
      from = o.from;
      as = o.as ?? 'each';
      const extra = Object.keys(o).filter((k) => k !== 'from' && k !== 'as');
      if (extra.length) issues.push({ item: item.name, field, pointer, message: `unknown field '${extra[0]}' in an input (an input is a name or { "from": name, "as": "each" | "all" | "iterable" })` });
      if (!['each', 'all', 'iterable'].includes(as as string)) {
        issues.push({ item: item.name, field: `${field}.as`, pointer: pointer + '/as', message: `must be "each", "all" or "iterable" (got ${show(as)})` });
        return;
      }
    } else {
      issues.push({ item: item.name, field, pointer, message: `an input must be an item name or { "from": name, "as": mode } (got ${show(entry)})` });
      return;
    }
    if (typeof from !== 'string') {
      issues.push({ item: item.name, field, pointer, message: `an input must name an item (got ${show(from)})` });
      return;
    }
    if (!known.has(from)) {
      const hint = closest(from, [...known].filter((n) => n !== item.name));
      issues.push({ item: item.name, field, pointer, message: `input '${from}' names no item${hint ? ` (did you mean '${hint}'?)` : ''}` });
      return;
    }
    refs.push({ from, as: as as InputMode });
  });
  return refs;
}

function checkInputKinds(items: PipelineItem[], byName: Map<string, PipelineItem>, issues: ConfigIssue[]): void {
  for (const item of items) {
    item.inputs.forEach((ref, i) => {
      const src = byName.get(ref.from);
      if (!src) return; // a broken item, already reported
      if ((src.kind === 'parameters' || src.kind === 'grid' || src.kind === 'random') && ref.as !== 'each') {
        issues.push({
          item: item.name,
          field: `inputs.${i}.as`,
          pointer: ptr(item.name, 'inputs', i, 'as'),
          message: `'${ref.from}' is a ${src.type} item: it is passed whole, so "as": "${ref.as}" does not apply`,
        });
      }
    });
  }
}

const isParameters = (i: PipelineItem) => i.kind === 'parameters' || i.kind === 'grid' || i.kind === 'random';

/** Library stages that say how they read their data inputs: their count, their default mode, the modes allowed. */
function checkDataInputs(items: PipelineItem[], byName: Map<string, PipelineItem>, issues: ConfigIssue[]): void {
  for (const item of items) {
    const data = item.kind === 'library' ? LIBRARY_STAGE_TYPES[item.type]?.data : undefined;
    const raw = item.def.inputs;
    if (!data || !Array.isArray(raw) || raw.length !== item.inputs.length) continue; // broken inputs: already reported
    const names: string[] = [];
    item.inputs.forEach((ref, i) => {
      const src = byName.get(ref.from);
      if (!src || isParameters(src)) return;
      names.push(ref.from);
      if ((raw[i] as { as?: unknown }).as === undefined) ref.as = data.mode;
      else if (!data.modes.includes(ref.as)) {
        issues.push({
          item: item.name,
          field: `inputs.${i}.as`,
          pointer: ptr(item.name, 'inputs', i, 'as'),
          message: `a '${item.type}' stage reads its data input whole: "as" must be ${data.modes.map((m) => `"${m}"`).join(' or ')} (default "${data.mode}"), not "${ref.as}"`,
        });
      }
    });
    if (names.length !== data.count) {
      issues.push({
        item: item.name,
        field: 'inputs',
        pointer: ptr(item.name, 'inputs'),
        message: `a '${item.type}' stage takes ${data.count} data input${data.count === 1 ? '' : 's'} (a stage, file or file_folder item) besides parameter items; got ${names.length}${names.length ? ` (${names.map((n) => `'${n}'`).join(', ')})` : ''}`,
      });
    }
  }
}

function checkRandom(item: PipelineItem, issues: ConfigIssue[]): void {
  if (!Object.keys(item.def).some((k) => !['type', 'count', 'seed', '$comment'].includes(k))) {
    issues.push({ item: item.name, pointer: ptr(item.name), message: 'a random search needs at least one field with a distribution' });
  }
  for (const [field, dist] of Object.entries(item.def)) {
    if (['type', 'count', 'seed', '$comment'].includes(field) || Array.isArray(dist) || !dist || typeof dist !== 'object') continue;
    const [kindName, range] = Object.entries(dist as Record<string, unknown>)[0] ?? [];
    if (kindName === 'choice' || !Array.isArray(range)) continue;
    const [lo, hi] = range as number[];
    if (!(lo! <= hi!)) issues.push({ item: item.name, field, pointer: ptr(item.name, field, kindName!), message: `the range [${lo}, ${hi}] is empty (write [low, high])` });
  }
}

function checkGrid(item: PipelineItem, issues: ConfigIssue[]): void {
  if (!Object.keys(item.def).some((k) => k !== 'type' && k !== '$comment')) {
    issues.push({ item: item.name, pointer: ptr(item.name), message: 'a grid search needs at least one field with a list of values' });
  }
  for (const [field, values] of Object.entries(item.def)) {
    if (field === 'type' || field === '$comment' || !Array.isArray(values)) continue;
    const seen = new Set<string>();
    for (const v of values) {
      const k = canonicalJson(v);
      if (seen.has(k)) {
        issues.push({ item: item.name, field, pointer: ptr(item.name, field), message: `the value ${show(v)} is listed twice (each combination must be distinct)` });
        break;
      }
      seen.add(k);
    }
  }
}

/** A cycle among the inputs, as [a, b, ..., a], or undefined. */
export function findCycle(items: PipelineItem[]): string[] | undefined {
  const byName = new Map(items.map((i) => [i.name, i]));
  const state = new Map<string, 1 | 2>(); // 1: on the stack, 2: done
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const s = state.get(name);
    if (s === 2) return undefined;
    if (s === 1) return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, 1);
    stack.push(name);
    for (const ref of byName.get(name)?.inputs ?? []) {
      const c = visit(ref.from);
      if (c) return c;
    }
    stack.pop();
    state.set(name, 2);
    return undefined;
  };
  for (const item of items) {
    const c = visit(item.name);
    if (c) return c;
  }
  return undefined;
}

/** Paths an item names that lead outside the project folder (unless the scope allows it). */
function checkScope(item: PipelineItem, baseDir: string, scope: ProjectScope | undefined, issues: ConfigIssue[]): void {
  if (!scope || scope.allowOutside) return;
  const named: { field: string; path: string; written: string }[] = [];
  if (item.kind === 'file' || item.kind === 'folder') named.push({ field: 'path', path: resolve(baseDir, item.def.path as string), written: item.def.path as string });
  const modules = item.kind === 'stage' ? [{ field: 'run', module: parseRun(item.def.run as string).module }] : item.kind === 'library' ? moduleOptions(item.type, libraryOptions(item.def)) : [];
  for (const m of modules) {
    const path = m.module.startsWith('file:') ? fileUrlPath(m.module) : m.module.startsWith('./') || m.module.startsWith('../') || isAbsolute(m.module) ? resolve(baseDir, m.module) : undefined;
    if (path) named.push({ field: m.field, path: resolveRunModule(m.module, baseDir).path ?? path, written: m.module });
  }
  for (const n of named) {
    const problem = outsideProblem(n.path, scope);
    if (problem) issues.push({ item: item.name, field: n.field, pointer: ptr(item.name, ...n.field.split('.')), message: `'${n.written}' is not allowed: ${problem}` });
  }
}

function fileUrlPath(url: string): string | undefined {
  try {
    return fileURLToPath(url);
  } catch {
    return undefined;
  }
}

function checkPath(item: PipelineItem, baseDir: string, issues: ConfigIssue[]): void {
  const path = item.def.path as string;
  const abs = resolve(baseDir, path);
  let st;
  try {
    st = statSync(abs);
  } catch {
    issues.push({ item: item.name, field: 'path', pointer: ptr(item.name, 'path'), message: `${item.kind === 'file' ? 'file' : 'folder'} '${path}' does not exist (looked for ${abs})` });
    return;
  }
  if (item.kind === 'file' && !st.isFile()) issues.push({ item: item.name, field: 'path', pointer: ptr(item.name, 'path'), message: `'${path}' is not a file` });
  if (item.kind === 'folder' && !st.isDirectory()) issues.push({ item: item.name, field: 'path', pointer: ptr(item.name, 'path'), message: `'${path}' is not a folder` });
}

async function checkRun(item: PipelineItem, baseDir: string, issues: ConfigIssue[]): Promise<void> {
  const target = parseRun(item.def.run as string);
  const pointer = ptr(item.name, 'run');
  const { path, problem } = resolveRunModule(target.module, baseDir);
  if (!path) {
    issues.push({ item: item.name, field: 'run', pointer, message: problem! });
    return;
  }
  const { found, exports } = await findExport(path, target.exportName);
  if (!found) {
    issues.push({
      item: item.name,
      field: 'run',
      pointer,
      message: `module '${target.module}' has no export '${target.exportName}' (it exports: ${exports.length ? exports.join(', ') : 'nothing'})`,
    });
  }
}

async function checkLibrary(item: PipelineItem, baseDir: string, issues: ConfigIssue[], warnings: ConfigIssue[]): Promise<void> {
  const lookup = await loadLibraryStage(item.type);
  if (!lookup.ok) {
    warnings.push({ item: item.name, field: 'type', pointer: ptr(item.name, 'type'), message: `${lookup.reason}; a run will fail at this stage` });
    return;
  }
  const arity = lookup.impl.inputs;
  if (arity !== undefined && item.inputs.length !== arity) {
    issues.push({ item: item.name, field: 'inputs', pointer: ptr(item.name, 'inputs'), message: `a '${item.type}' stage takes ${arity} input${arity === 1 ? '' : 's'} (got ${item.inputs.length})` });
  }
  const schema = lookup.impl.optionsSchema;
  const options = libraryOptions(item.def);
  const validate = schema ? getAjv().compile(schema) : undefined;
  if (validate && !validate(options)) {
    issues.push(...optionIssues(item, schema!, validate.errors ?? []));
    return;
  }
  for (const problem of lookup.impl.check?.(item.def) ?? []) {
    issues.push({ item: item.name, field: problem.field, pointer: problem.field ? ptr(item.name, ...problem.field.split('.')) : ptr(item.name), message: problem.message });
  }
  for (const m of moduleOptions(item.type, options)) {
    const pointer = ptr(item.name, ...m.field.split('.'));
    const { path, problem } = resolveRunModule(m.module, baseDir);
    if (!path) {
      issues.push({ item: item.name, field: m.field, pointer, message: problem! });
      continue;
    }
    const wanted = m.exportName === undefined ? m.defaults : [m.exportName];
    if (!wanted.length) continue;
    const found = await Promise.all(wanted.map((name) => findExport(path, name)));
    if (!found.some((f) => f.found)) {
      const exports = found[0]!.exports;
      issues.push({
        item: item.name,
        field: m.field,
        pointer,
        message: `module '${m.module}' has no export ${wanted.map((w) => `'${w}'`).join(' or ')} (it exports: ${exports.length ? exports.join(', ') : 'nothing'})`,
      });
    }
  }
}

/**
 * A library stage's options against its schema, one issue per field. A value that matches no branch
 * of a `oneOf` / `anyOf` gets that node's `description` (what the branches' own errors would only
 * say piecemeal).
 */
function optionIssues(item: PipelineItem, schema: Record<string, unknown>, errors: ErrorObject[]): ConfigIssue[] {
  const alternatives = new Map<string, string>();
  for (const e of errors) {
    if (e.keyword !== 'oneOf' && e.keyword !== 'anyOf') continue;
    let node: unknown = schema;
    for (const seg of e.schemaPath.replace(/^#\//, '').split('/').slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[seg];
    const description = (node as { description?: unknown } | undefined)?.description;
    alternatives.set(e.instancePath, typeof description === 'string' ? description : (e.message ?? 'is invalid'));
  }
  const out: ConfigIssue[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'if') continue; // its `then` says what is wrong
    const alt = [...alternatives].find(([path]) => e.instancePath === path || e.instancePath.startsWith(`${path}/`));
    const named = alt ? undefined : e.keyword === 'required' ? (e.params as { missingProperty: string }).missingProperty : e.keyword === 'additionalProperties' ? (e.params as { additionalProperty: string }).additionalProperty : undefined;
    const field = [...segmentsOf(alt ? alt[0] : e.instancePath), ...(named ? [named] : [])].join('.') || undefined;
    const message = alt
      ? alt[1]
      : e.keyword === 'additionalProperties'
        ? `unknown option '${field}' of a '${item.type}' stage${knownOptions(schema, field!)}`
        : e.keyword === 'required'
          ? `missing option '${field}'`
          : e.keyword === 'enum'
            ? `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => show(v)).join(', ')}`
            : (e.message ?? 'is invalid');
    const pointer = field ? ptr(item.name, ...field.split('.')) : ptr(item.name);
    if (seen.has(pointer)) continue;
    seen.add(pointer);
    out.push({ item: item.name, field, pointer, message });
  }
  return out;
}

/** ` (did you mean 'x'?) (its options: a, b, ...)` for an unknown top-level option of a library stage. */
function knownOptions(schema: Record<string, unknown>, field: string): string {
  if (field.includes('.')) return '';
  const names = Object.keys((schema.properties as Record<string, unknown> | undefined) ?? {});
  if (!names.length) return '';
  const hint = closest(field, names);
  return `${hint ? ` (did you mean '${hint}'?)` : ''} (its options: ${names.join(', ')})`;
}

/** The name in `names` closest to `name` (edit distance at most 2 and less than half its length), or undefined. */
function closest(name: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(name.toLowerCase(), n.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return bestD <= 2 && bestD < name.length / 2 ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
