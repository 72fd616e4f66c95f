// From validated items to the graph of (item, branch) nodes the executor runs, each with its cache key.
//
// Branches: a search item (grid or random) has one branch per combination. Every item downstream of
// search items has one branch per combination of the search items it depends on (transitively), so
// stages upstream of a grid run once and a diamond below a grid joins matching branches. A branch id
// is a hash of its parameters ({ searchItem: combination }), stable across runs and key order.
// Branches are made lazily, when asked for: a grid's combinations are decoded from their index, so the
// number of branches costs nothing until they are scheduled.
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
import { gridSize, gridSpace, parameterValues, randomSpace, type SearchSpace } from './search.js';
import { relativePath, sourceFiles, type SourceFileEntry, type UnusedInput } from './sources.js';
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
  /** Its coordinates: for each of its search items ({@link Plan.searchItemsOf}), the index of the combination. */
  indices: number[];
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

/** A stage run handed out by {@link Plan.stagesByBranch}, with where it sits in the order of branches. */
export interface ScheduledNode {
  /** Its item. */
  item: PipelineItem;
  /** Its slot key (`slotKey`): item and coordinates (known without hashing anything). */
  slot: string;
  /** The slots of the stages it reads. */
  inputSlots: string[];
  /** Makes (or finds) the node: its key, inputs and parameters. */
  node(): PlanNode;
  /** Index of the branch (combination of every search item) at which it is handed out. */
  at: number;
  /** Index of the last branch that reads it: once every branch up to this one is done, nothing needs it any more. */
  lastUse: number;
}

/** `item` and its coordinates as one string: identifies a node without making it. */
export function slotKey(item: string, indices: readonly number[]): string {
  return `${item}\0${indices.join(',')}`;
}

/** A made node as a {@link ScheduledNode} (for runs of a given list of stage runs). */
export function scheduledNode(node: PlanNode, at = 0, lastUse = Infinity): ScheduledNode {
  return {
    item: node.item,
    slot: slotKey(node.item.name, node.indices),
    inputSlots: node.inputs.filter(isStage).map((i) => slotKey(i.item.name, i.indices)),
    node: () => node,
    at,
    lastUse,
  };
}

/** Whether a node is a stage (something that runs and is cached). */
export function isStage(node: PlanNode | PipelineItem): boolean {
  const kind = 'item' in node ? node.item.kind : node.kind;
  return kind === 'stage' || kind === 'library';
}

/** Nodes of branched items kept for reuse while planning lazily (their inputs are looked up again and again). */
const RECENT_NODES = 4096;

/**
 * The plan: every item in every branch with its cache key. Branches are not expanded up front: a node
 * is made when it is asked for ({@link Plan.nodeAt}, {@link Plan.stagesByBranch}), so a grid of 10^6
 * branches costs nothing until its branches are scheduled. {@link Plan.nodes} and {@link Plan.byItem}
 * expand everything (and keep it), for callers that need the whole list.
 */
export class Plan {
  /** Items in an order where every item comes after its inputs. */
  readonly order: PipelineItem[];
  /** Search items (grid and random), in the order of the file: the coordinates of a branch. */
  readonly searchItems: string[];
  private readonly byName: Map<string, PipelineItem>;
  private readonly searchOf: Map<string, string[]>;
  private readonly spaces: Map<string, SearchSpace>;
  private readonly fixed = new Map<string, PlanNode>();
  private readonly recent = new Map<string, PlanNode>();
  private all?: Map<string, PlanNode>;
  private expanded?: { nodes: PlanNode[]; byItem: Map<string, PlanNode[]> };

  /** @internal use {@link buildPlan}. */
  constructor(
    /** The pipeline it was made from. */
    readonly pipeline: LoadedPipeline,
    private readonly files: Map<string, SourceFileEntry[]>,
    private readonly code: Map<string, NonNullable<PlanNode['code']>>,
    /** Entries of `file_folder` items that are not among their files, with the reason (hidden, other extension, dangling link, ...). */
    readonly unusedInputs: readonly UnusedInput[] = [],
  ) {
    this.order = topoOrder(pipeline.items);
    this.byName = new Map(pipeline.items.map((i) => [i.name, i]));
    this.searchOf = searchItemsOf(pipeline.items);
    this.searchItems = pipeline.items.filter(isSearch).map((i) => i.name);
    this.spaces = new Map(pipeline.items.filter(isSearch).map((i) => [i.name, i.kind === 'grid' ? gridSpace(i.def) : randomSpace(i.def)]));
  }

  /** Number of branches of an item: the product of the sizes of the search items above it (1 for none). */
  branchCount(item: string): number {
    return this.searchOf.get(item)!.reduce((n, g) => n * this.spaces.get(g)!.size, 1);
  }

  /** Number of branches of the whole pipeline: the product of the sizes of every search item. */
  get branches(): number {
    return this.searchItems.reduce((n, g) => n * this.spaces.get(g)!.size, 1);
  }

  /** Number of stage runs: every stage in every one of its branches. */
  get stageRuns(): number {
    return this.order.filter(isStage).reduce((n, i) => n + this.branchCount(i.name), 0);
  }

  /** The search items an item depends on (its branch coordinates), in the order of the file. */
  searchItemsOf(item: string): readonly string[] {
    return this.searchOf.get(item)!;
  }

  /**
   * The node of `item` in one branch: `indices` gives, for each of its search items
   * ({@link searchItemsOf}), the index of the combination.
   */
  nodeAt(item: string, indices: readonly number[]): PlanNode {
    const id = slotKey(item, indices);
    const memo = this.all ?? (indices.length ? this.recent : this.fixed);
    const found = memo.get(id);
    if (found) {
      if (memo === this.recent) {
        memo.delete(id); // most recently used last
        memo.set(id, found);
      }
      return found;
    }
    const node = this.make(this.byName.get(item)!, indices);
    memo.set(id, node);
    if (memo === this.recent && memo.size > RECENT_NODES) memo.delete(memo.keys().next().value!);
    return node;
  }

  /** Every node of an item, in branch order (the last search item varies fastest); made as iterated. */
  *nodesOf(item: string): Generator<PlanNode> {
    const sizes = this.searchOf.get(item)!.map((g) => this.spaces.get(g)!.size);
    for (const indices of product(sizes)) yield this.nodeAt(item, indices);
  }

  /** Every node, inputs before the nodes that read them; made as iterated (not kept, unless already expanded). */
  *allNodes(): Generator<PlanNode> {
    for (const item of this.order) yield* this.nodesOf(item.name);
  }

  /**
   * The stage runs branch by branch: for each combination of every search item (the last varies
   * fastest), the stage runs of that branch not handed out before, inputs first. Stages above the
   * search items come with the first branch; a stage below only some of them comes with the first
   * branch that has its combination. Nodes are made as iterated, so the first branch can start at
   * once whatever the number of branches. Items for which `skip` says true are left out (and when
   * all are, the iteration ends).
   */
  *stagesByBranch(options: { skip?: (item: string) => boolean } = {}): Generator<ScheduledNode> {
    const k = this.searchItems.length;
    const sizes = this.searchItems.map((g) => this.spaces.get(g)!.size);
    const stride = new Array<number>(k);
    for (let j = k - 1, s = 1; j >= 0; j--) {
      stride[j] = s;
      s *= sizes[j]!;
    }
    const position = new Map(this.searchItems.map((g, j) => [g, j]));
    const stages = this.order.filter(isStage).map((item) => {
      const mine = this.searchOf.get(item.name)!;
      const own = mine.map((g) => position.get(g)!);
      const others = [...Array(k).keys()].filter((j) => !own.includes(j));
      // The stages it reads, and where their coordinates are among its own.
      const reads = item.inputs.map((r) => this.byName.get(r.from)!).filter(isStage).map((i) => ({ name: i.name, at: this.searchOf.get(i.name)!.map((g) => mine.indexOf(g)) }));
      return { item, own, others, reads, tail: others.reduce((n, j) => n + (sizes[j]! - 1) * stride[j]!, 0) };
    });
    const total = this.branches;
    const a = new Array<number>(k).fill(0);
    const skip = options.skip;
    for (let at = 0; at < total; at++) {
      if (skip && stages.every((s) => skip(s.item.name))) return;
      for (const s of stages) {
        if (!s.others.every((j) => a[j] === 0) || skip?.(s.item.name)) continue;
        const indices = s.own.map((j) => a[j]!);
        const lastUse = s.own.reduce((n, j) => n + a[j]! * stride[j]!, s.tail);
        yield {
          item: s.item,
          slot: slotKey(s.item.name, indices),
          inputSlots: s.reads.map((r) => slotKey(r.name, r.at.map((i) => indices[i]!))),
          node: () => this.nodeAt(s.item.name, indices),
          at,
          lastUse,
        };
      }
      for (let j = k - 1; j >= 0 && ++a[j]! === sizes[j]; j--) a[j] = 0;
    }
  }

  /** Every node, inputs before the nodes that read them (file order otherwise). Expands the whole plan and keeps it. */
  get nodes(): PlanNode[] {
    return this.expand().nodes;
  }

  /** Nodes of each item, in branch order. Expands the whole plan and keeps it. */
  get byItem(): Map<string, PlanNode[]> {
    return this.expand().byItem;
  }

  private expand(): { nodes: PlanNode[]; byItem: Map<string, PlanNode[]> } {
    if (this.expanded) return this.expanded;
    this.all = new Map(this.fixed);
    const nodes: PlanNode[] = [];
    const byItem = new Map<string, PlanNode[]>();
    for (const item of this.order) {
      const list: PlanNode[] = [];
      for (const node of this.nodesOf(item.name)) {
        list.push(node);
        nodes.push(node);
      }
      byItem.set(item.name, list);
    }
    this.recent.clear();
    this.expanded = { nodes, byItem };
    return this.expanded;
  }

  private make(item: PipelineItem, indices: readonly number[]): PlanNode {
    const grids = this.searchOf.get(item.name)!;
    const params: Record<string, Record<string, unknown>> = {};
    grids.forEach((g, i) => (params[g] = this.spaces.get(g)!.at(indices[i]!)));
    const branch = grids.length ? shortHash(hashValue(params)) : null;
    const inputs = item.inputs.map((ref) => this.nodeAt(ref.from, this.searchOf.get(ref.from)!.map((g) => indices[grids.indexOf(g)]!)));
    const node: PlanNode = { id: branch ? `${item.name}[${branch}]` : item.name, item, branch, indices: [...indices], params, inputs, key: '' };
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
      case 'folder': {
        const files = this.files.get(item.name)!;
        node.files = files;
        node.key = hashValue({ v: KEY_VERSION, kind: item.kind, read: item.def.read ?? 'path', files: files.map((f) => [f.rel, f.sha256]) });
        break;
      }
      default: {
        const code = this.code.get(item.name)!;
        const operational = new Set([...OPERATIONAL, ...(LIBRARY_STAGE_TYPES[item.type]?.operational ?? [])]);
        node.code = code;
        node.key = hashValue({
          v: KEY_VERSION,
          kind: 'stage',
          name: item.name,
          def: Object.fromEntries(Object.entries(item.def).filter(([k]) => !operational.has(k) && k !== 'inputs')),
          code: code.hash,
          inputs: item.inputs.map((ref, i) => ({ from: ref.from, as: ref.as, key: inputs[i]!.key })),
        });
      }
    }
    return node;
  }
}

/** Whether an item is a search item (grid or random), whose combinations make branches. */
const isSearch = (i: PipelineItem) => i.kind === 'grid' || i.kind === 'random';

/** For each item, the search items it depends on (transitively), in the order of the file. */
function searchItemsOf(items: PipelineItem[]): Map<string, string[]> {
  const position = new Map(items.map((i, n) => [i.name, n]));
  const out = new Map<string, string[]>();
  for (const item of topoOrder(items)) {
    const set = new Set<string>();
    if (isSearch(item)) set.add(item.name);
    for (const ref of item.inputs) for (const g of out.get(ref.from) ?? []) set.add(g);
    out.set(item.name, [...set].sort((a, b) => position.get(a)! - position.get(b)!));
  }
  return out;
}

/**
 * Branches a pipeline asks for at most: the product of every search item's size (a random search
 * counts its `count`, before identical samples are dropped). Cheap: nothing is expanded.
 */
export function branchesAskedFor(items: readonly PipelineItem[]): { total: number; factors: { item: string; size: number; how: string }[] } {
  const factors = items.filter(isSearch).map((i) => {
    if (i.kind === 'random') return { item: i.name, size: Number(i.def.count), how: `random search '${i.name}': count ${Number(i.def.count)}` };
    const fields = Object.entries(i.def).filter(([k]) => k !== 'type' && k !== '$comment') as [string, unknown[]][];
    return { item: i.name, size: gridSize(i.def), how: `grid '${i.name}': ${fields.map(([k, v]) => `${k} ${v.length}`).join(' x ')}` };
  });
  return { total: factors.reduce((n, f) => n * f.size, 1), factors };
}

/**
 * Builds the plan: hashes the files and the code of every item once. Branches are expanded lazily
 * (see {@link Plan}).
 */
export async function buildPlan(pipeline: LoadedPipeline): Promise<Plan> {
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
  const files = new Map<string, SourceFileEntry[]>();
  const unused: UnusedInput[] = [];
  const code = new Map<string, NonNullable<PlanNode['code']>>();
  for (const item of topoOrder(pipeline.items)) {
    if (item.kind === 'file' || item.kind === 'folder') {
      const listed = await sourceFiles(item.def, item.kind, pipeline.baseDir, pipeline.scope);
      files.set(item.name, listed.files);
      for (const u of listed.unused) unused.push({ item: item.name, path: relativePath(pipeline.baseDir, u.path), reason: u.reason });
    }
    if (isStage(item)) code.set(item.name, await stageCode(item, pipeline.baseDir, codeHash));
  }
  return new Plan(pipeline, files, code, unused);
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
