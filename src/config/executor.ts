// Running a plan: which stages are cached, which must run, in what order, and where their outputs go.
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ArtifactRecord } from '../cache/records.js';
import { shortHash } from '../cache/hash.js';
import { FsArtifactStore, processAlive, tempPrefix, VERIFY_HASH_BELOW, type ArtifactManifest, type ArtifactStore, type ArtifactWriter } from '../cache/store.js';
import { ConfigError, StageError } from './errors.js';
import { LIBRARY_STAGE_TYPES, libraryOptions, loadLibraryStage } from './library.js';
import { importModule } from './modules.js';
import { isStage, scheduledNode, slotKey, type Plan, type PlanNode, type ScheduledNode } from './plan.js';
import { MinHeap } from './heap.js';
import { EngineRunner, wantsEngine } from './engine-runner.js';
import { InProcessRunner, type InputFeed, type SkippedCall, type StageFunction, type StageRunner } from './runner.js';
import { openReplaySource, ReplayableInput, type ReplaySource } from './feeds.js';
import { readSourceFile, type UnusedInput } from './sources.js';
import type { Isolation, PipelineItem, ReadMode } from './types.js';
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
  /** `computed` (ran now), `cached` (loaded from the cache), `failed` (it ran and failed, or could not start). */
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

/**
 * Stage runs that were not run, counted by stage and reason (never listed one by one: a cancelled
 * grid of 10^6 branches leaves 10^6 of them).
 */
export interface NotRunGroup {
  /** The stage's item name. */
  name: string;
  /** `ERR_ABORTED` (the run was cancelled) or `ERR_UPSTREAM_FAILED` (an input failed or was not run; or fail-fast). */
  code: 'ERR_ABORTED' | 'ERR_UPSTREAM_FAILED';
  /** Why, in words: `the run was cancelled`, `its input 'x' failed`, ... */
  reason: string;
  /** How many of its stage runs (branches). */
  count: number;
}

/** What happens during a run, for progress displays. */
export type RunEvent =
  /** The run starts: `total` stage runs; `stages` lists them with their cache state when the run checked them all up front (small plans). */
  | { type: 'plan'; total?: number; stages?: { name: string; branch: string | null; cached: boolean }[] }
  | { type: 'stage-start'; name: string; branch: string | null; total?: number }
  | { type: 'stage-progress'; name: string; branch: string | null; consumed: number; produced: number; total?: number }
  | { type: 'stage-end'; result: StageResult }
  /** Stage runs of stage `name` that were not run (sent once per stage and reason, at the end). */
  | { type: 'not-run'; name: string; branch: null; group: NotRunGroup }
  /** An entry of `file_folder` item `name` that is not among its files (sent at the start). */
  | { type: 'unused-input'; name: string; branch: null; input: UnusedInput }
  | { type: 'warning'; message: string };

/** Options of {@link executePlan}. */
export interface ExecuteOptions {
  /** The cache. Default: a {@link FsArtifactStore} in `cacheDir`. */
  store?: ArtifactStore;
  /** Cache directory when no `store` is given. Default: `.ringpipe/cache` beside the pipeline file. */
  cacheDir?: string;
  /** Use the cache (default true). When false nothing is read from or written to it; outputs live in a temporary directory for the run. */
  cache?: boolean;
  /**
   * Hash every cached artifact the run uses and compare it with its manifest (default false: record
   * files up to `VERIFY_HASH_BELOW` (64 MiB) are hashed, larger ones have their size checked). A
   * damaged entry is computed again, with a warning.
   */
  verify?: boolean;
  /** Record files up to this many bytes are hashed when found in the cache, without `verify` (default `VERIFY_HASH_BELOW`, 64 MiB). */
  verifyHashBelow?: number;
  /** Stages (branches) run at the same time (default 1). */
  concurrency?: number;
  /** Stop starting stages after the first failure (default false: independent branches go on). */
  failFast?: boolean;
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Receives progress events. */
  onEvent?: (event: RunEvent) => void;
  /**
   * Keep every stage run's result in {@link JsonRunResult.stages} (default true). Off, the results
   * are only sent as `stage-end` events, and memory stays flat however many branches run.
   */
  keepResults?: boolean;
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
  /** True when every stage run was computed or cached. */
  ok: boolean;
  /** The stage runs that ran, were cached, or failed, in the order they were scheduled (empty with `keepResults: false`). */
  stages: StageResult[];
  /** Stage runs that were not run (cancelled, or an input failed), counted by stage and reason. */
  notRun?: NotRunGroup[];
  /** Entries of `file_folder` items that are not among their files, with the reason. */
  unusedInputs?: UnusedInput[];
  /** Where the cache is (undefined with `cache: false`). */
  cacheLocation?: string;
}

/** The default cache directory of a pipeline: `.ringpipe/cache` beside the file. */
export function defaultCacheDir(plan: Plan): string {
  return join(plan.pipeline.file ? dirname(plan.pipeline.file) : plan.pipeline.baseDir, '.ringpipe', 'cache');
}

/** The stage nodes named by `ids` and every stage they read, in plan order (expands the plan). */
function withInputs(plan: Plan, ids: readonly string[]): ScheduledNode[] {
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
  return plan.nodes.filter((n) => isStage(n) && keep.has(n)).map((node) => scheduledNode(node));
}

/** Code hash of every stage module this process has imported, by file. */
const loadedCode = new Map<string, string>();

/** Where a finished stage's artifact is. */
interface Artifact {
  store: ArtifactStore;
  manifest: ArtifactManifest;
}

/** What the run knows of a stage run it scheduled, until nothing needs it any more. */
interface NodeState {
  item: PipelineItem;
  slot: string;
  inputSlots: string[];
  /** Made unless the stage run was doomed from the start. */
  node?: PlanNode;
  at: number;
  lastUse: number;
  /** Scheduled nodes waiting for it. */
  waiting: number;
  /** Undefined while pending or running. */
  outcome?: 'done' | 'failed' | 'not-run';
  artifact?: Artifact;
}

const PROGRESS_EVERY_MS = 100;
/** Plans of at most this many stage runs are checked against the cache up front (the `plan` event lists them). */
const CHECK_ALL_UP_TO = 1000;

/**
 * Runs every stage of a plan, branch by branch: stage runs are taken from the plan as they are
 * scheduled (a bounded window ahead of what runs), so the first branch starts at once and memory
 * stays flat whatever the number of branches. Stages whose key is in the cache (and whose entry
 * checks out) are reported `cached` and not run; the others run once their inputs are ready, and
 * their outputs are committed to the cache. Cancelling stops scheduling at once; what was not run
 * is counted in `notRun`. Resolves with the result (failures included); rejects only for a broken
 * cache.
 */
export async function executePlan(plan: Plan, options: ExecuteOptions = {}): Promise<JsonRunResult> {
  const useCache = options.cache !== false;
  const store = useCache ? (options.store ?? new FsArtifactStore(options.cacheDir ?? defaultCacheDir(plan))) : undefined;
  const keepResults = options.keepResults !== false;
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
  const aborted = new Promise<void>((resolvePromise) => signal.addEventListener('abort', () => resolvePromise(), { once: true }));

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

  // What to run, taken lazily: every stage run branch by branch, or (cluster items) a given few.
  const onlyThese = options.only ? withInputs(plan, options.only) : undefined;
  // Stage items none of whose runs can run any more (below a failed stage above every search item).
  const dead = new Map<string, { code: NotRunGroup['code']; reason: string }>();
  const scheduled: Iterator<ScheduledNode> = onlyThese ? onlyThese[Symbol.iterator]() : plan.stagesByBranch({ skip: (item) => dead.has(item) });
  const total = onlyThese ? onlyThese.length : plan.stageRuns;
  const itemsRun = new Set(plan.order.filter(isStage).map((i) => i.name));
  const states = new Map<string, NodeState>(); // by slot
  const given = new Map<string, number>(); // stage item -> stage runs taken from the plan
  const slots: (StageResult | undefined)[] = [];
  const resultAt = new Map<string, number>();
  const notRun = new Map<string, NotRunGroup>();
  const pending: NodeState[] = [];
  const running = new Map<NodeState, Promise<void>>();
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const window = total > CHECK_ALL_UP_TO ? Math.max(64, concurrency * 8) : Infinity;
  let exhausted = false;
  let failed = false;
  let ok = true;
  let held: RunEvent[] | undefined = [];
  const send = (e: RunEvent) => (held ? held.push(e) : emit(e));
  // Settled states no one waits for, by the last branch that reads them.
  const retired = new MinHeap<NodeState>((s) => s.lastUse);
  const stopped = () => signal.aborted || (failed && options.failFast);

  /**
   * A stage run above every search item that failed or was not run dooms every run of the stages
   * below it: they are left out of the schedule and counted at the end, so a failure above 10^6
   * branches costs nothing more.
   */
  const doom = (state: NodeState) => {
    if (onlyThese || plan.searchItemsOf(state.item.name).length) return;
    const reasons = new Map<string, string>([[state.item.name, '']]);
    for (const item of plan.order) {
      const from = item.inputs.find((r) => reasons.has(r.from) && r.from !== item.name);
      if (!from || !isStage(item) || reasons.has(item.name)) continue;
      reasons.set(item.name, from.from === state.item.name && state.outcome === 'failed' ? `its input '${from.from}' failed` : `its input '${from.from}' was not run`);
      if (!dead.has(item.name)) dead.set(item.name, { code: 'ERR_UPSTREAM_FAILED', reason: reasons.get(item.name)! });
    }
  };
  const record = (state: NodeState, r: StageResult) => {
    state.outcome = r.status === 'failed' ? 'failed' : 'done';
    if (r.status === 'failed') {
      ok = false;
      doom(state);
    }
    if (keepResults) slots[resultAt.get(state.slot)!] = r;
    send({ type: 'stage-end', result: r });
    retire(state);
  };
  /** A stage run that will not run; `upstream`: because an input failed (what is below is doomed too). */
  const skip = (state: NodeState, code: NotRunGroup['code'], reason: string, upstream = false) => {
    state.outcome = 'not-run';
    ok = false;
    countNotRun(state.item.name, code, reason, 1);
    if (upstream) doom(state);
    retire(state);
  };
  const countNotRun = (name: string, code: NotRunGroup['code'], reason: string, count: number) => {
    if (count <= 0) return;
    const k = `${name}\0${code}\0${reason}`;
    const g = notRun.get(k);
    if (g) g.count += count;
    else notRun.set(k, { name, code, reason, count });
  };
  const retire = (state: NodeState) => {
    if (state.outcome && state.waiting === 0) retired.push(state);
  };
  /** Forgets settled states that no stage run taken from now on reads (every reader is at a branch <= lastUse). */
  const forget = (cursor: number) => {
    while (retired.size && retired.peek()!.lastUse < cursor) {
      const s = retired.pop()!;
      if (states.get(s.slot) === s && s.waiting === 0) states.delete(s.slot);
    }
  };
  /** Why a stage run cannot run: an input that failed or was not run (known before its node is made). */
  const doomedBy = (slots: readonly string[]): NodeState | undefined => {
    for (const k of slots) {
      const s = states.get(k);
      if (s?.outcome === 'failed' || s?.outcome === 'not-run') return s;
    }
    return undefined;
  };
  const inputFailed = (bad: NodeState) => `its input '${bad.item.name}' ${bad.outcome === 'failed' ? 'failed' : 'was not run'}`;

  /** Takes stage runs from the plan until the window is full: doomed ones are counted, cached ones settled. */
  const fill = async () => {
    let cursor = 0;
    while (!exhausted && pending.length < window && !stopped()) {
      const next = scheduled.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      const { item, slot, inputSlots, at, lastUse } = next.value;
      cursor = at;
      given.set(item.name, (given.get(item.name) ?? 0) + 1);
      const state: NodeState = { item, slot, inputSlots, at, lastUse, waiting: 0 };
      states.set(slot, state);
      const bad = doomedBy(inputSlots);
      if (bad) {
        skip(state, 'ERR_UPSTREAM_FAILED', inputFailed(bad), true); // its node is never made
        continue;
      }
      const node = (state.node = next.value.node());
      if (keepResults) resultAt.set(slot, slots.push(undefined) - 1);
      const artifact = store && item.def.cache !== false ? await cached(node, store) : undefined;
      if (artifact) {
        state.artifact = artifact;
        record(state, result(node, 'cached', artifact.manifest.records, 0, { metadata: artifact.manifest.metadata }));
        continue;
      }
      for (const k of inputSlots) {
        const s = states.get(k);
        if (s) s.waiting++;
      }
      pending.push(state);
      warnWorkers(node);
    }
    forget(exhausted ? Infinity : cursor);
  };

  /** Whether a scheduled node's cached entry checks out; a damaged one is removed, with a warning. */
  async function cached(node: PlanNode, target: ArtifactStore): Promise<Artifact | undefined> {
    if (!target.check) {
      const manifest = await target.get(node.key);
      return manifest ? { store: target, manifest } : undefined;
    }
    let found = await target.check(node.key);
    if (found.state === 'ok' && (options.verify || found.manifest.bytes <= (options.verifyHashBelow ?? VERIFY_HASH_BELOW))) found = await target.check(node.key, { hash: true });
    if (found.state === 'ok') return { store: target, manifest: found.manifest };
    if (found.state === 'damaged') {
      send({ type: 'warning', message: `cache entry of stage '${node.item.name}'${node.branch ? ` [${node.branch}]` : ''} (key ${shortHash(node.key)}) is damaged: ${found.reason}; computing it again` });
      await target.remove(node.key);
    }
    return undefined;
  }

  const warned = new Set<string>();
  function warnWorkers(node: PlanNode): void {
    const workers = workersOf(node);
    if (workers <= 1 || warned.has(node.item.name)) return;
    warned.add(node.item.name);
    const streaming = node.item.inputs.some((ref, i) => ref.as === 'each' && isStream(node.inputs[i]!));
    const runner = runnerFor(node);
    const can = runner.capacity(workers, isolationOf(node) ?? 'thread');
    if (can < workers) {
      send({ type: 'warning', message: `stage '${node.item.name}' asks for workers: ${workers}; the ${runner.name} runner runs ${can}${isolationOf(node) === 'local' ? ' (isolation "local" runs in this process)' : ''}` });
    } else if (!streaming) {
      send({ type: 'warning', message: `stage '${node.item.name}' asks for workers: ${workers}, but no input streams into it: it is one call, made by one worker` });
    }
  }

  try {
    if (store instanceof FsArtifactStore && plan.pipeline.file) await store.registerPipeline(plan.pipeline.file);
    for (const input of plan.unusedInputs) send({ type: 'unused-input', name: input.item, branch: null, input });
    await fill();
    const first = held;
    held = undefined;
    const everything = exhausted && total <= CHECK_ALL_UP_TO;
    emit({
      type: 'plan',
      total,
      ...(everything ? { stages: [...states.values()].filter((s) => s.node).map((s) => ({ name: s.item.name, branch: s.node!.branch, cached: !!s.artifact })) } : {}),
    });
    for (const e of first) emit(e);

    // Run what is pending, each stage run once its stage inputs are settled.
    while (pending.length || running.size) {
      for (let i = 0; i < pending.length && !stopped(); ) {
        const state = pending[i]!;
        const deps = state.inputSlots.map((k) => states.get(k));
        const bad = doomedBy(state.inputSlots);
        if (bad) {
          pending.splice(i, 1);
          release(state);
          skip(state, 'ERR_UPSTREAM_FAILED', inputFailed(bad), true);
          continue;
        }
        if (running.size >= concurrency || !deps.every((d) => d?.outcome === 'done')) {
          i++;
          continue;
        }
        pending.splice(i, 1);
        const inputs = new Map(deps.map((d) => [d!.slot, d!.artifact!]));
        release(state);
        const p = runStage(state.node!, inputs).then(({ r, artifact }) => {
          state.artifact = artifact;
          if (r.status === 'failed') {
            failed = true;
            if (options.failFast) controller.abort(r.error);
          }
          running.delete(state);
          record(state, r);
        });
        running.set(state, p);
      }
      if (stopped()) {
        await Promise.all(running.values()); // they see the abort and end
        break;
      }
      await fill();
      if (running.size) await Promise.race([...running.values(), aborted]);
      else if (pending.length && !pending.some((s) => s.inputSlots.every((k) => states.get(k)?.outcome))) {
        // Inputs are scheduled before what reads them, so the first pending run can always start.
        throw new Error(`ringpipe: the scheduler is stuck with ${pending.length} stage runs waiting (first: ${pending[0]!.slot}); please report this`);
      }
    }
    if (stopped()) {
      // fail-fast aborts the running stages too: the caller's signal says whether it was a cancellation
      const cancelled = options.signal?.aborted === true || !(failed && options.failFast);
      const reason = cancelled ? 'the run was cancelled' : 'an earlier stage failed (fail-fast)';
      const code = cancelled ? 'ERR_ABORTED' : 'ERR_UPSTREAM_FAILED';
      for (const state of pending.splice(0)) skip(state, code, reason);
      for (const name of itemsRun) if (!dead.has(name)) countNotRun(name, code, reason, (onlyThese ? onlyThese.filter((s) => s.item.name === name).length : plan.branchCount(name)) - (given.get(name) ?? 0));
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    if (spool) await rm(spool.dir, { recursive: true, force: true });
  }

  for (const [name, d] of dead) countNotRun(name, d.code, d.reason, plan.branchCount(name) - (given.get(name) ?? 0));
  const groups = [...notRun.values()];
  for (const group of groups) emit({ type: 'not-run', name: group.name, branch: null, group });
  const stages = slots.filter((r): r is StageResult => r !== undefined);
  return {
    ok: ok && groups.length === 0,
    stages,
    ...(groups.length ? { notRun: groups } : {}),
    ...(plan.unusedInputs.length ? { unusedInputs: [...plan.unusedInputs] } : {}),
    cacheLocation: store?.location,
  };

  /** A pending node leaves the queue: its inputs have one waiter fewer. */
  function release(state: NodeState): void {
    for (const k of state.inputSlots) {
      const s = states.get(k);
      if (!s) continue;
      s.waiting--;
      retire(s);
    }
  }

  function result(node: PlanNode, status: StageStatus, records: number, seconds: number, extra: Partial<StageResult> = {}): StageResult {
    return { name: node.item.name, branch: node.branch, params: node.params, key: node.key, status, records, seconds, ...extra };
  }

  /** Runs one stage run whose stage inputs are done (`artifacts`: theirs, by slot). */
  async function runStage(node: PlanNode, artifacts: Map<string, Artifact>): Promise<{ r: StageResult; artifact?: Artifact }> {
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    let writer: ArtifactWriter | undefined;
    try {
      const fn = await stageFunction(node);
      const inputs = await Promise.all(node.item.inputs.map((ref, i) => inputFeed(node.inputs[i]!, ref.as, artifacts.get(slotKey(ref.from, node.inputs[i]!.indices)))));
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
      const r = result(node, 'computed', manifest.records, seconds(), {
        metadata: manifest.metadata,
        ...(outcome.skipped.length ? { skipped: outcome.skipped } : {}),
      });
      return { r, artifact: { store: target, manifest } };
    } catch (err) {
      await writer?.abort().catch(() => undefined);
      const error =
        err instanceof StageError || err instanceof ConfigError
          ? err
          : new StageError('ERR_STAGE_FAILED', node.item.name, node.branch, (err as Error)?.message ?? String(err), { cause: err });
      return { r: result(node, 'failed', 0, seconds(), { error }) };
    }
  }

  /** Whether a node's output is a stream (known for finished stages; folders always). */
  function isStream(src: PlanNode): boolean {
    if (src.item.kind === 'folder') return true;
    if (!isStage(src)) return false;
    const a = states.get(slotKey(src.item.name, src.indices))?.artifact;
    return a ? a.manifest.kind === 'stream' : true; // not run yet: a stage usually streams
  }

  async function inputFeed(src: PlanNode, as: 'each' | 'all' | 'iterable', a: Artifact | undefined): Promise<InputFeed> {
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
    else if (a) {
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
