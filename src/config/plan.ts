// From validated items to the graph of (item, branch) nodes the executor runs, each with its cache key.
//
// Branches: a search item (grid or random) has one branch per combination. Every item downstream of
// search items has one branch per combination of the search items it depends on (transitively), so
// stages upstream of a grid run once and a diamond below a grid joins matching branches. A branch id
// is a hash of its parameters ({ searchItem: combination }), stable across runs and key order.
//
// Keys (Merkle style, known before anything runs): a stage's key hashes its definition, the code of
// its module and the project files that module imports, and the keys of its inputs. A parameter's
// key hashes its value; a file's, its path and content.
import { resolve } from 'node:path';
import { hashModuleGraph } from '../cache/source-hash.js';
import { hashValue, shortHash } from '../cache/hash.js';
import { LIBRARY_STAGE_TYPES, keyOptions, libraryModuleFile, libraryOptions, moduleOptions, resolveModuleOptions } from './library.js';
import type { LoadedPipeline } from './load.js';
import { parseRun, resolveRunModule } from './modules.js';
import { gridCombinations, parameterValues, randomCombinations } from './search.js';
import { sourceFiles, type SourceFileEntry } from './sources.js';
import type { PipelineItem } from './types.js';

/** Bumped when the meaning of a key changes, so old entries are not mistaken for new ones. */
export const KEY_VERSION = 1;
/** Stage fields that do not change what a stage computes (left out of its key). */
const OPERATIONAL = new Set(['workers', 'isolation', 'cache', '$comment']);

/** One item in one branch. */
export interface PlanNode {
  /** `item` or `item[branch]`. */
  id: string;
  /** The item. */
  item: PipelineItem;
  /** Branch id (12 hex digits), or null when no search item is upstream. */
  branch: string | null;
  /** The branch's parameters: `{ searchItem: combination }`. */
  params: Record<string, Record<string, unknown>>;
  /** The nodes feeding it, in the order of `item.inputs`. */
  inputs: PlanNode[];
  /** Cache key (sha256 hex). */
  key: string;
  /** Value of a parameters / grid / random node. */
  value?: unknown;
  /** Files of a file / file_folder node. */
  files?: SourceFileEntry[];
  /**
   * For stages: the module file and export (or the library type), the code's hash for the key
   * (paths relative to the pipeline), and its identity (absolute paths: what this process has loaded).
   * For library stages, `options` are the options the implementation receives (module paths resolved).
   */
  code?: { file?: string; exportName?: string; library?: string; hash: string; identity: string; options?: Record<string, unknown> };
}

/** The whole plan. */
export interface Plan {
  /** The pipeline it was made from. */
  pipeline: LoadedPipeline;
  /** Every node, inputs before the nodes that read them (file order otherwise). */
  nodes: PlanNode[];
  /** Nodes of each item, in branch order. */
  byItem: Map<string, PlanNode[]>;
}

/** Whether a node is a stage (something that runs and is cached). */
export function isStage(node: PlanNode | PipelineItem): boolean {
  const kind = 'item' in node ? node.item.kind : node.kind;
  return kind === 'stage' || kind === 'library';
}

/** Builds the plan: expands search items into branches and computes every key. */
export async function buildPlan(pipeline: LoadedPipeline): Promise<Plan> {
  const order = topoOrder(pipeline.items);
  const byName = new Map(pipeline.items.map((i) => [i.name, i]));
  const searchOf = new Map<string, string[]>(); // item -> search items it depends on (file order)
  const position = new Map(pipeline.items.map((i, n) => [i.name, n]));
  for (const item of order) {
    const set = new Set<string>();
    if (item.kind === 'grid' || item.kind === 'random') set.add(item.name);
    for (const ref of item.inputs) for (const g of searchOf.get(ref.from) ?? []) set.add(g);
    searchOf.set(item.name, [...set].sort((a, b) => position.get(a)! - position.get(b)!));
  }
  const combos = new Map<string, Record<string, unknown>[]>();
  for (const item of pipeline.items) {
    if (item.kind === 'grid') combos.set(item.name, gridCombinations(item.def));
    if (item.kind === 'random') combos.set(item.name, randomCombinations(item.def));
  }

  const codeMemo = new Map<string, Promise<CodeHash>>();
  const codeHash = (file: string) => {
    let p = codeMemo.get(file);
    if (!p) {
      p = hashModuleGraph(file, pipeline.baseDir).then((h) => ({
        hash: h.hash,
        identity: hashValue(h.files.map((f) => [resolve(pipeline.baseDir, f.path), f.sha256])),
      }));
      codeMemo.set(file, p);
    }
    return p;
  };

  const nodes: PlanNode[] = [];
  const byItem = new Map<string, PlanNode[]>();
  const index = new Map<string, PlanNode>(); // `${item}\0${assignment}` -> node
  const assignmentKey = (grids: string[], a: Map<string, number>) => grids.map((g) => `${g}=${a.get(g)}`).join(',');

  for (const item of order) {
    const grids = searchOf.get(item.name)!;
    const files = item.kind === 'file' || item.kind === 'folder' ? await sourceFiles(item.def, item.kind, pipeline.baseDir) : undefined;
    const code = isStage(item) ? await stageCode(item, pipeline.baseDir, codeHash) : undefined;
    const operational = new Set([...OPERATIONAL, ...(LIBRARY_STAGE_TYPES[item.type]?.operational ?? [])]);
    const list: PlanNode[] = [];
    for (const assignment of product(grids.map((g) => combos.get(g)!.length))) {
      const a = new Map(grids.map((g, i) => [g, assignment[i]!]));
      const params: Record<string, Record<string, unknown>> = {};
      for (const g of grids) params[g] = combos.get(g)![a.get(g)!]!;
      const branch = grids.length ? shortHash(hashValue(params)) : null;
      const inputs = item.inputs.map((ref) => {
        const from = byName.get(ref.from)!;
        const k = `${from.name}\0${assignmentKey(searchOf.get(from.name)!, a)}`;
        return index.get(k)!;
      });
      const node: PlanNode = { id: branch ? `${item.name}[${branch}]` : item.name, item, branch, params, inputs, key: '' };
      switch (item.kind) {
        case 'parameters':
          node.value = parameterValues(item.def);
          node.key = hashValue({ v: KEY_VERSION, kind: 'parameters', value: node.value });
          break;
        case 'grid':
        case 'random':
          node.value = params[item.name];
          node.key = hashValue({ v: KEY_VERSION, kind: 'parameters', value: node.value });
          break;
        case 'file':
        case 'folder':
          node.files = files;
          node.key = hashValue({
            v: KEY_VERSION,
            kind: item.kind,
            read: item.def.read ?? 'path',
            files: files!.map((f) => [f.rel, f.sha256]),
          });
          break;
        default:
          node.code = code;
          node.key = hashValue({
            v: KEY_VERSION,
            kind: 'stage',
            name: item.name,
            def: Object.fromEntries(Object.entries(item.def).filter(([k]) => !operational.has(k) && k !== 'inputs')),
            code: code!.hash,
            inputs: item.inputs.map((ref, i) => ({ from: ref.from, as: ref.as, key: inputs[i]!.key })),
          });
      }
      index.set(`${item.name}\0${assignmentKey(grids, a)}`, node);
      list.push(node);
      nodes.push(node);
    }
    byItem.set(item.name, list);
  }
  return { pipeline, nodes, byItem };
}

interface CodeHash {
  hash: string;
  identity: string;
}

async function stageCode(item: PipelineItem, baseDir: string, codeHash: (file: string) => Promise<CodeHash>): Promise<NonNullable<PlanNode['code']>> {
  if (item.kind === 'library') {
    const file = libraryModuleFile(item.type);
    // Unavailable implementations still get a key (the run fails at that stage with a clear error).
    const h = file ? await codeHash(file) : { hash: hashValue({ unavailable: LIBRARY_STAGE_TYPES[item.type]?.module }), identity: '' };
    const options = libraryOptions(item.def);
    // Modules the options name (a trainer's model) are code of the stage, as a `run` module is.
    const modules = await Promise.all(
      moduleOptions(item.type, options).map(async (m) => {
        const { path } = resolveRunModule(m.module, baseDir);
        return path ? (await codeHash(path)).hash : hashValue({ missing: m.module });
      }),
    );
    return {
      library: item.type,
      file,
      hash: hashValue({ hash: h.hash, options: keyOptions(item.type, item.def), ...(modules.length ? { modules } : {}) }),
      identity: h.identity,
      options: resolveModuleOptions(item.type, options, baseDir),
    };
  }
  const target = parseRun(item.def.run as string);
  const { path } = resolveRunModule(target.module, baseDir);
  const h = path ? await codeHash(path) : { hash: hashValue({ missing: target.module }), identity: '' };
  return { file: path, exportName: target.exportName, hash: h.hash, identity: h.identity };
}

/** Items in an order where every item comes after its inputs (file order where free). */
export function topoOrder(items: PipelineItem[]): PipelineItem[] {
  const byName = new Map(items.map((i) => [i.name, i]));
  const done = new Set<string>();
  const out: PipelineItem[] = [];
  const visit = (item: PipelineItem) => {
    if (done.has(item.name)) return;
    done.add(item.name); // validated: no cycles
    for (const ref of item.inputs) visit(byName.get(ref.from)!);
    out.push(item);
  };
  for (const item of items) visit(item);
  return out;
}

/** All index tuples of a product of lengths (the last varies fastest); one empty tuple for no lengths. */
function* product(lengths: number[]): Generator<number[]> {
  if (lengths.some((n) => n === 0)) return;
  const idx = lengths.map(() => 0);
  for (;;) {
    yield [...idx];
    let i = lengths.length - 1;
    while (i >= 0 && ++idx[i]! === lengths[i]) idx[i--] = 0;
    if (i < 0) return;
  }
}
