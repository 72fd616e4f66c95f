// Running a plan: which stages are cached, which must run, in what order, and where their outputs go.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ArtifactRecord } from '../cache/records.js';
import { FsArtifactStore, processAlive, tempPrefix, type ArtifactManifest, type ArtifactStore, type ArtifactWriter } from '../cache/store.js';
import { ConfigError, StageError } from './errors.js';
import { LIBRARY_STAGE_TYPES, libraryOptions, loadLibraryStage } from './library.js';
import { importModule } from './modules.js';
import { isStage, type Plan, type PlanNode } from './plan.js';
import { EngineRunner, wantsEngine } from './engine-runner.js';
import { InProcessRunner, type InputFeed, type SkippedCall, type StageFunction, type StageRunner } from './runner.js';
import { openReplaySource, ReplayableInput, type ReplaySource } from './feeds.js';
import { readSourceFile } from './sources.js';
import type { Isolation, ReadMode } from './types.js';
import { ptr } from './validate.js';

/** Spools of runs without a cache live in the OS temp dir, named after their process. */
const SPOOL_PREFIX = 'ringpipe-spool-p';

/** Removes the spools of processes that are gone (killed runs cannot clean up after themselves). */
export async function removeStaleSpools(parent: string = tmpdir()): Promise<void> {
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(SPOOL_PREFIX)) continue;
    const pid = Number.parseInt(name.slice(SPOOL_PREFIX.length), 10);
    if (pid > 0 && !processAlive(pid)) await rm(join(parent, name), { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Status of a stage (in one branch) after a run. */
export type StageStatus = 'computed' | 'cached' | 'failed';

/** The outcome of one stage in one branch. */
export interface StageResult {
  /** The stage's item name. */
  name: string;
  /** Branch id, or null. */
  branch: string | null;
  /** The branch's parameters. */
  params: Record<string, Record<string, unknown>>;
  /** Cache key of its artifact. */
  key: string;
  /** `computed` (ran now), `cached` (loaded from the cache), `failed` (threw, or an input failed). */
  status: StageStatus;
  /** Records in its artifact (0 when failed). */
  records: number;
  /** Seconds spent on it in this run. */
  seconds: number;
  /** Metadata of its last record. */
  metadata?: Record<string, unknown>;
  /** Records dropped by `on_error: "skip"`. */
  skipped?: SkippedCall[];
  /** Why it failed. */
  error?: Error;
}

/** What happens during a run, for progress displays. */
export type RunEvent =
  | { type: 'plan'; stages: { name: string; branch: string | null; cached: boolean }[] }
  | { type: 'stage-start'; name: string; branch: string | null; total?: number }
  | { type: 'stage-progress'; name: string; branch: string | null; consumed: number; produced: number; total?: number }
  | { type: 'stage-end'; result: StageResult }
  | { type: 'warning'; message: string };

/** Options of {@link executePlan}. */
export interface ExecuteOptions {
  /** The cache. Default: a {@link FsArtifactStore} in `cacheDir`. */
  store?: ArtifactStore;
  /** Cache directory when no `store` is given. Default: `.ringpipe/cache` beside the pipeline file. */
  cacheDir?: string;
  /** Use the cache (default true). When false nothing is read from or written to it; outputs live in a temporary directory for the run. */
  cache?: boolean;
  /** Stages (branches) run at the same time (default 1). */
  concurrency?: number;
  /** Stop starting stages after the first failure (default false: independent branches go on). */
  failFast?: boolean;
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onEvent?: (event: RunEvent) => void;
  /**
   * Only these stage runs (node ids: `item`, or `item[branch]`) and the stages they read; the others
   * are left out of the run and of its result. Default: every stage. (How the cluster splits a
   * pipeline into work items.)
   */
  only?: readonly string[];
  /**
   * Runs every stage function. Default: {@link InProcessRunner} for most stages, {@link EngineRunner}
   * for stages that ask for `workers` > 1 or `isolation` "thread" / "process".
   */
  runner?: StageRunner;
}

/** What a run gave. */
export interface JsonRunResult {
  /** True when no stage failed. */
  ok: boolean;
  /** Every stage in every branch, inputs before the stages that read them. */
  stages: StageResult[];
  /** Where the cache is (undefined with `cache: false`). */
  cacheLocation?: string;
}

/** The default cache directory of a pipeline: `.ringpipe/cache` beside the file. */
export function defaultCacheDir(plan: Plan): string {
  return join(plan.pipeline.file ? dirname(plan.pipeline.file) : plan.pipeline.baseDir, '.ringpipe', 'cache');
}

/** The stage nodes named by `ids` and every stage they read, in plan order. */
function withInputs(plan: Plan, ids: readonly string[]): PlanNode[] {
  const byId = new Map(plan.nodes.map((n) => [n.id, n]));
  const keep = new Set<PlanNode>();
  const visit = (n: PlanNode) => {
    if (keep.has(n)) return;
    keep.add(n);
    n.inputs.forEach(visit);
  };
  for (const id of ids) {
    const n = byId.get(id);
    if (!n || !isStage(n)) throw new ConfigError('ERR_CONFIG', [{ pointer: '', message: `no stage run '${id}' in the pipeline` }], { file: plan.pipeline.file });
    visit(n);
  }
  return plan.nodes.filter((n) => isStage(n) && keep.has(n));
}

/** Code hash of every stage module this process has imported, by file. */
const loadedCode = new Map<string, string>();

/** Where a finished stage's artifact is. */
interface Artifact {
  store: ArtifactStore;
  manifest: ArtifactManifest;
}

const PROGRESS_EVERY_MS = 100;

/**
 * Runs every stage of a plan: stages whose key is in the cache are reported `cached` and not run;
 * the others run once their inputs are ready, and their outputs are committed to the cache.
 * Resolves with every stage's result (failures included); rejects only for a broken cache.
 */
export async function executePlan(plan: Plan, options: ExecuteOptions = {}): Promise<JsonRunResult> {
  const useCache = options.cache !== false;
  const store = useCache ? (options.store ?? new FsArtifactStore(options.cacheDir ?? defaultCacheDir(plan))) : undefined;
  const inProcess = new InProcessRunner();
  const engineRunner = new EngineRunner();
  const workersOf = (n: PlanNode) => Number(n.item.def.workers ?? 1);
  // A library type may run its replicas elsewhere by default (image_preprocess: processes); a
  // stage no input streams into has no replicas.
  const isolationOf = (n: PlanNode, streaming = true): Isolation | undefined =>
    (n.item.def.isolation as Isolation | undefined) ??
    (streaming && n.item.kind === 'library' && workersOf(n) > 1 ? LIBRARY_STAGE_TYPES[n.item.type]?.replicaIsolation : undefined);
  // A stage no input streams into is one call: replicas cannot share it, so it runs where its
  // isolation says (in this process by default).
  const runnerFor = (n: PlanNode, streaming = true): StageRunner =>
    options.runner ?? (wantsEngine(streaming ? workersOf(n) : 1, isolationOf(n, streaming)) ? engineRunner : inProcess);
  const emit = options.onEvent ?? (() => undefined);
  const controller = new AbortController();
  const onAbort = () => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const signal = controller.signal;

  let spool: { store: FsArtifactStore; dir: string } | undefined;
  const spoolStore = async () => {
    if (!spool) {
      // Beside the cache when there is one (so `cache gc` cleans up after a killed run), else in the OS temp dir.
      const inCache = store instanceof FsArtifactStore;
      const parent = inCache ? join(store.location, 'tmp') : tmpdir();
      await mkdir(parent, { recursive: true });
      if (!inCache) await removeStaleSpools(parent);
      const dir = await mkdtemp(join(parent, inCache ? `${tempPrefix()}spool-` : `${SPOOL_PREFIX}${process.pid}-`));
      spool = { store: new FsArtifactStore(dir), dir };
    }
    return spool.store;
  };

  const stages = options.only ? withInputs(plan, options.only) : plan.nodes.filter(isStage);
  const results = new Map<PlanNode, StageResult>();
  const artifacts = new Map<PlanNode, Artifact>();

  try {
    if (store instanceof FsArtifactStore && plan.pipeline.file) await store.registerPipeline(plan.pipeline.file);
    // What is cached already.
    for (const node of stages) {
      if (!store || node.item.def.cache === false) continue;
      const manifest = await store.get(node.key);
      if (manifest) artifacts.set(node, { store, manifest });
    }
    emit({ type: 'plan', stages: stages.map((n) => ({ name: n.item.name, branch: n.branch, cached: artifacts.has(n) })) });
    for (const node of stages) {
      const a = artifacts.get(node);
      if (!a) continue;
      const r = result(node, 'cached', a.manifest.records, 0, { metadata: a.manifest.metadata });
      results.set(node, r);
      emit({ type: 'stage-end', result: r });
    }
    const warned = new Set<string>();
    for (const node of stages) {
      const workers = workersOf(node);
      if (results.has(node) || workers <= 1 || warned.has(node.item.name)) continue;
      warned.add(node.item.name);
      const streaming = node.item.inputs.some((ref, i) => ref.as === 'each' && isStream(node.inputs[i]!));
      const runner = runnerFor(node);
      const can = runner.capacity(workers, isolationOf(node) ?? 'thread');
      if (can < workers) {
        emit({ type: 'warning', message: `stage '${node.item.name}' asks for workers: ${workers}; the ${runner.name} runner runs ${can}${isolationOf(node) === 'local' ? ' (isolation "local" runs in this process)' : ''}` });
      } else if (!streaming) {
        emit({ type: 'warning', message: `stage '${node.item.name}' asks for workers: ${workers}, but no input streams into it: it is one call, made by one worker` });
      }
    }

    // Run what is left, each stage once its stage inputs are done.
    const pending = new Set(stages.filter((n) => !results.has(n)));
    const running = new Map<PlanNode, Promise<void>>();
    const concurrency = Math.max(1, options.concurrency ?? 1);
    let failed = false;
    const stageInputs = (n: PlanNode) => n.inputs.filter(isStage);
    while (pending.size || running.size) {
      for (const node of [...pending]) {
        if (running.size >= concurrency) break;
        const deps = stageInputs(node);
        const bad = deps.find((d) => results.get(d)?.status === 'failed');
        if (bad || (failed && options.failFast) || signal.aborted) {
          pending.delete(node);
          const error = signal.aborted
            ? new StageError('ERR_ABORTED', node.item.name, node.branch, 'not run: the run was cancelled')
            : bad
              ? new StageError('ERR_UPSTREAM_FAILED', node.item.name, node.branch, `not run: its input '${bad.item.name}' failed`)
              : new StageError('ERR_UPSTREAM_FAILED', node.item.name, node.branch, 'not run: an earlier stage failed (fail-fast)');
          const r = result(node, 'failed', 0, 0, { error });
          results.set(node, r);
          emit({ type: 'stage-end', result: r });
          continue;
        }
        if (!deps.every((d) => results.has(d))) continue;
        pending.delete(node);
        const p = runStage(node).then((r) => {
          results.set(node, r);
          if (r.status === 'failed') failed = true;
          emit({ type: 'stage-end', result: r });
          running.delete(node);
        });
        running.set(node, p);
      }
      if (running.size) await Promise.race(running.values());
      else if (pending.size && ![...pending].some((n) => stageInputs(n).every((d) => results.has(d)))) break; // cannot happen in a DAG
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (spool) await rm(spool.dir, { recursive: true, force: true });
  }

  const ordered = stages.map((n) => results.get(n)!).filter(Boolean);
  return { ok: ordered.every((r) => r.status !== 'failed'), stages: ordered, cacheLocation: store?.location };

  function result(node: PlanNode, status: StageStatus, records: number, seconds: number, extra: Partial<StageResult> = {}): StageResult {
    return { name: node.item.name, branch: node.branch, params: node.params, key: node.key, status, records, seconds, ...extra };
  }

  async function runStage(node: PlanNode): Promise<StageResult> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let writer: ArtifactWriter | undefined;
    try {
      const fn = await stageFunction(node);
      const inputs = await Promise.all(node.item.inputs.map((ref, i) => inputFeed(node.inputs[i]!, ref.as)));
      const streamCounts = inputs.filter((f) => f.type === 'stream').map((f) => (f as { count?: number }).count);
      const total = streamCounts.length && streamCounts.every((c) => c !== undefined) ? Math.min(...(streamCounts as number[])) : undefined;
      emit({ type: 'stage-start', name: node.item.name, branch: node.branch, total });
      const target = useCache && node.item.def.cache !== false ? store! : await spoolStore();
      writer = await target.create(node.key);
      const w = writer;
      let consumed = 0;
      let lastEvent = 0;
      const tick = (force = false) => {
        const now = performance.now();
        if (!force && now - lastEvent < PROGRESS_EVERY_MS) return;
        lastEvent = now;
        emit({ type: 'stage-progress', name: node.item.name, branch: node.branch, consumed, produced: w.records, total });
      };
      const streaming = inputs.some((f) => f.type === 'stream');
      const outcome = await runnerFor(node, streaming).run({
        stage: node.item.name,
        branch: node.branch,
        params: node.params,
        target: { file: node.code!.file ?? '', exportName: node.code!.exportName ?? node.item.type },
        ...(node.item.kind === 'library' ? { library: node.item.type } : {}),
        fn: fn.fn,
        inputs,
        options: fn.options,
        workers: streaming ? workersOf(node) : 1,
        isolation: isolationOf(node, streaming) ?? 'thread',
        onError: node.item.def.on_error === 'skip' ? 'skip' : 'fail',
        signal,
        emit: async (record: ArtifactRecord) => {
          await w.append(record);
          tick();
        },
        progress: (n) => {
          consumed = n;
          tick();
        },
      });
      tick(true);
      const { manifest } = await w.commit({
        kind: outcome.kind,
        stage: node.item.name,
        branch: node.branch,
        params: node.params,
        seconds: seconds(),
        ...(plan.pipeline.file ? { pipeline: plan.pipeline.file } : {}),
      });
      writer = undefined;
      artifacts.set(node, { store: target, manifest });
      return result(node, 'computed', manifest.records, seconds(), {
        metadata: manifest.metadata,
        ...(outcome.skipped.length ? { skipped: outcome.skipped } : {}),
      });
    } catch (err) {
      await writer?.abort().catch(() => undefined);
      if (options.failFast) controller.abort(err);
      const error =
        err instanceof StageError || err instanceof ConfigError
          ? err
          : new StageError('ERR_STAGE_FAILED', node.item.name, node.branch, (err as Error)?.message ?? String(err), { cause: err });
      return result(node, 'failed', 0, seconds(), { error });
    }
  }

  /** Whether a node's output is a stream (known for finished stages; folders always). */
  function isStream(src: PlanNode): boolean {
    if (src.item.kind === 'folder') return true;
    if (!isStage(src)) return false;
    const a = artifacts.get(src);
    return a ? a.manifest.kind === 'stream' : true; // not run yet: a stage usually streams
  }

  async function inputFeed(src: PlanNode, as: 'each' | 'all' | 'iterable'): Promise<InputFeed> {
    let feed: InputFeed;
    const read = (src.item.def.read as ReadMode | undefined) ?? 'path';
    switch (src.item.kind) {
      case 'parameters':
      case 'grid':
      case 'random':
        return { type: 'value', data: src.value };
      case 'file': {
        const rec = await readSourceFile(src.files![0]!, read);
        feed = { type: 'value', data: rec.data, metadata: rec.metadata };
        break;
      }
      case 'folder': {
        const files = src.files!;
        feed = {
          type: 'stream',
          count: files.length,
          open: async function* () {
            for (const f of files) yield await readSourceFile(f, read);
          },
        };
        break;
      }
      default: {
        const a = artifacts.get(src);
        if (!a) throw new StageError('ERR_UPSTREAM_FAILED', src.item.name, src.branch, 'its artifact is missing');
        if (a.manifest.kind === 'value') {
          let rec: ArtifactRecord | undefined;
          for await (const r of a.store.read(a.manifest.key)) rec = r;
          feed = { type: 'value', data: rec?.data, ...(rec?.metadata ? { metadata: rec.metadata } : {}) };
        } else {
          feed = { type: 'stream', count: a.manifest.records, open: () => a.store.read(a.manifest.key) };
        }
      }
    }
    if (as === 'each') return feed;
    const count = feed.type === 'stream' ? feed.count : 1;
    let source: ReplaySource | undefined;
    if (feed.type === 'value') source = { type: 'inline', records: [{ data: feed.data, ...(feed.metadata ? { metadata: feed.metadata } : {}) }] };
    else if (src.item.kind === 'folder') source = { type: 'files', files: src.files!, read };
    else {
      const a = artifacts.get(src)!;
      if (a.store instanceof FsArtifactStore) source = { type: 'artifact', location: a.store.location, key: a.manifest.key };
    }
    const open = source ? () => openReplaySource(source!) : (feed as Extract<InputFeed, { type: 'stream' }>).open;
    if (as === 'iterable') return { type: 'value', data: new ReplayableInput(open, count, source) };
    const all: unknown[] = [];
    for await (const r of open()) all.push(r.data);
    return { type: 'value', data: all };
  }

  async function stageFunction(node: PlanNode): Promise<{ fn: StageFunction; options: Record<string, unknown> }> {
    const item = node.item;
    if (item.kind === 'library') {
      const lookup = await loadLibraryStage(item.type);
      if (!lookup.ok) throw new StageError('ERR_NOT_AVAILABLE', item.name, node.branch, lookup.reason);
      return { fn: lookup.impl.run.bind(lookup.impl), options: node.code?.options ?? libraryOptions(item.def) };
    }
    const { file, exportName, identity } = node.code!;
    if (!file) throw new ConfigError('ERR_CONFIG', [{ item: item.name, field: 'run', pointer: ptr(item.name, 'run'), message: `module of '${String(item.def.run)}' does not exist` }]);
    // ES modules cannot be reloaded: a module changed since this process imported it would run its
    // old code under the new code's key. Refuse instead (the CLI runs each pipeline in a fresh process).
    const loaded = loadedCode.get(file);
    if (loaded !== undefined && loaded !== identity) {
      throw new StageError('ERR_STALE_MODULE', item.name, node.branch, `${file} (or a module it imports) changed since this process loaded it; ES modules cannot be reloaded, so run the pipeline in a new process`);
    }
    let mod: Record<string, unknown>;
    try {
      mod = await importModule(file);
      loadedCode.set(file, identity);
    } catch (err) {
      throw new StageError('ERR_STAGE_FAILED', item.name, node.branch, `cannot load '${String(item.def.run)}': ${(err as Error).message}`, { cause: err });
    }
    const fn = mod[exportName!];
    if (typeof fn !== 'function') {
      throw new ConfigError('ERR_CONFIG', [
        {
          item: item.name,
          field: 'run',
          pointer: ptr(item.name, 'run'),
          message: fn === undefined ? `module has no export '${exportName}'` : `export '${exportName}' is not a function (it is ${typeof fn})`,
        },
      ]);
    }
    return { fn: fn as StageFunction, options: {} };
  }
}
