// A JSON pipeline run on the cluster (`ringpipe run --cluster`, `pipeline.run({ cluster })`): its
// branches become `ringpipe:pipeline` work items, agents run them against the shared cache, their
// events come back as the local run's events, and the result is the local run's.
//
// The split: every branch of the final stages (the stages no other stage reads) is one item, run
// with `only` those stages. Stages that several items need (preprocessing above a grid) run first,
// as one item of their own, so they are computed once; the branch items then find them cached.
// A pipeline without search items is one branch: nothing to spread, and it is refused.
//
// Items carry the cache keys of their stages: an agent whose checkout differs refuses the item, and
// a changed pipeline makes new items (ids are content hashes) instead of re-attaching to old ones.
import { basename } from 'node:path';
import { FsArtifactStore } from '../cache/store.js';
import { StageError } from '../config/errors.js';
import { defaultCacheDir, type ExecuteOptions, type JsonRunResult, type RunEvent, type StageResult } from '../config/executor.js';
import type { JsonPipeline } from '../config/pipeline.js';
import { isStage, type Plan, type PlanNode } from '../config/plan.js';
import type { PipelineWork, PipelineWorkEvent, PipelineWorkResult, PipelineWorkStage } from './builtins.js';
import { SharedArtifactStore } from './cache.js';
import { ClusterConnection, connectionLogger, type ClusterOptions } from './connect.js';
import { ClusterError, ClusterRunError } from './errors.js';
import { portablePath, submitJob, type WorkEvent, type WorkQueueOptions, type WorkResult, type WorkSpec } from './work.js';

/** The `cluster` option of `JsonPipeline.run`: connection, credentials, TLS, and how items are made. */
export interface PipelineClusterOptions extends ClusterOptions, WorkQueueOptions {
  /**
   * The checkout directory that agents' `--root` stands for; the pipeline file must lie under it
   * (default: the current directory).
   */
  root?: string;
  /** GPUs each branch's item asks for, e.g. 1 for trainer stages (default 0: any agent). */
  gpus?: number;
  /** Name of the jobs (letters, digits, `-`; default `run-<pipeline file name>`). */
  name?: string;
  /** Milliseconds to wait for each job at most (default: no limit). */
  timeout?: number;
  /** Receives the work events (started on which agent, requeued, ...). */
  onWorkEvent?: (event: WorkEvent) => void;
}

/** Options of {@link runPipelineOnCluster}: a local run's, plus `cluster`. */
export type ClusterRunOptions = ExecuteOptions & { cluster: string | PipelineClusterOptions };

/** One work item: the stage runs it is asked for and every stage run it may compute. */
interface Unit {
  targets: PlanNode[];
  closure: Set<PlanNode>;
}

const STAGE_PREFIX = /^stage '[^']*'(?: \[[0-9a-f]+\])?: /;

/** Runs `pipeline`'s branches on the cluster's agents; see the module comment. */
export async function runPipelineOnCluster(pipeline: JsonPipeline, options: ClusterRunOptions): Promise<JsonRunResult> {
  const cluster: PipelineClusterOptions = typeof options.cluster === 'string' ? { servers: options.cluster } : options.cluster;
  const file = pipeline.loaded.file;
  if (!file) throw new ClusterRunError('ERR_CLUSTER_NOT_SHIPPABLE', "option 'cluster': agents load the pipeline from its file in their checkout; a pipeline written in code has none: save it as a file", { option: 'cluster' });
  if (options.cache === false) throw new ClusterError('ERR_CLUSTER_OPTIONS', "option 'cluster' needs the cache (results come back through the shared cache): drop cache: false (--no-cache)");
  if (options.runner) throw new ClusterRunError('ERR_CLUSTER_NOT_SHIPPABLE', "option 'cluster': a custom runner cannot travel to agents", { option: 'runner' });
  if (options.store && !(options.store instanceof FsArtifactStore) && !(options.store instanceof SharedArtifactStore)) {
    throw new ClusterError('ERR_CLUSTER_OPTIONS', "option 'cluster': the local cache in front of the shared one must be a directory (cacheDir) or an FsArtifactStore");
  }
  const plan = await pipeline.plan();
  const search = plan.pipeline.items.filter((i) => i.kind === 'grid' || i.kind === 'random');
  if (!search.length) {
    throw new ClusterRunError(
      'ERR_CLUSTER_NOT_DISTRIBUTABLE',
      `${file}: nothing to distribute: the pipeline has no grid_search_parameters or random_search_parameters item, so its stages form one branch, and JSON pipelines have no shards to split into work items (a file_folder is read whole by the stages that use it). Run it without --cluster, or submit it whole as a 'ringpipe:pipeline' work item (runJob)`,
      { option: 'cluster' },
    );
  }
  const stages = plan.nodes.filter(isStage);
  const emit = options.onEvent ?? (() => undefined);
  const conn = await ClusterConnection.open({ name: 'ringpipe-run', ...cluster });
  // A lost server is said at once, as the run's warnings (the CLI prints them), not waited out silently.
  conn.onConnection(connectionLogger((message) => emit({ type: 'warning', message })));
  const store = options.store instanceof SharedArtifactStore
    ? options.store
    : await SharedArtifactStore.open(conn, { local: options.store instanceof FsArtifactStore ? options.store : (options.cacheDir ?? defaultCacheDir(plan)) }).catch(async (err) => {
      await conn.close();
      throw err;
    });
  try {
    await store.local.registerPipeline(file); // so `cache gc` keeps what this pipeline reaches
    const root = cluster.root ?? process.cwd();
    if (portablePath(file, root) === file) emit({ type: 'warning', message: `${file} is not under ${root} (option root): agents are sent its absolute path` });
    const ended = new Map<PlanNode, StageResult>();
    for (const n of stages) {
      const m = n.item.def.cache === false ? undefined : await store.get(n.key);
      if (m) ended.set(n, result(n, 'cached', manifestFields(m)));
    }
    const cached = new Set(ended.keys());
    emit({ type: 'plan', stages: stages.map((n) => ({ name: n.item.name, branch: n.branch, cached: cached.has(n) })) });
    for (const r of ended.values()) emit({ type: 'stage-end', result: r });

    const { shared, branches } = split(plan, stages, cached);
    const reports = new Map<PlanNode, PipelineWorkStage>();
    const items = new ItemRunner(conn, cluster, root, file, plan, emit, ended, options.signal);
    if (shared) await items.run('shared', [shared], 0, reports);
    const failed = new Set([...[...reports].filter(([, s]) => s.status === 'failed').map(([n]) => n), ...items.failedItemNodes()]);
    const runnable = failed.size && options.failFast ? [] : branches
      .map((u) => ({ ...u, targets: u.targets.filter((t) => ![...closureOf(t)].some((n) => failed.has(n))) }))
      .filter((u) => u.targets.length);
    if (runnable.length) await items.run('branches', runnable, cluster.gpus ?? 0, reports);

    // The run's result, in plan order: what agents reported, checked against the shared cache.
    const out: StageResult[] = [];
    for (const node of stages) {
      if (!cached.has(node)) {
        const r = await settle(node, reports.get(node), store, () => items.missing(node, failed, options.failFast));
        const live = ended.get(node);
        // A computation shown live is completed in place; anything else is shown now.
        if (live && live.status === r.status) Object.assign(live, r);
        else {
          ended.set(node, r);
          emit({ type: 'stage-end', result: r });
        }
      }
      out.push(ended.get(node)!);
    }
    // The final stages' artifacts come to the local cache, where a local run leaves them.
    const read = new Set(stages.flatMap((n) => n.inputs));
    for (const node of stages) {
      if (!read.has(node) && ended.get(node)!.status !== 'failed' && node.item.def.cache !== false) await store.download(node.key);
    }
    return { ok: out.every((r) => r.status !== 'failed'), stages: out, cacheLocation: store.location };
  } finally {
    if (store !== options.store) await store.close();
    await conn.close();
  }
}

/** The result of a stage run from its agent's report (none: `missing` says why). */
async function settle(node: PlanNode, s: PipelineWorkStage | undefined, store: SharedArtifactStore, missing: () => StageError): Promise<StageResult> {
  if (!s) return result(node, 'failed', { error: missing() });
  if (s.status === 'failed') {
    const message = (s.error ?? 'failed on an agent').replace(STAGE_PREFIX, '');
    return result(node, 'failed', { seconds: s.seconds, error: new StageError(s.code ?? 'ERR_STAGE_FAILED', node.item.name, node.branch, message) });
  }
  const status = s.status === 'computed' ? 'computed' : 'cached';
  if (node.item.def.cache === false) return result(node, status, { records: s.records, seconds: s.seconds });
  const m = await store.get(node.key);
  if (!m) return result(node, 'failed', { error: new StageError('ERR_STAGE_FAILED', node.item.name, node.branch, `an agent reported it ${s.status}, but its artifact (key ${node.key.slice(0, 12)}…) is not in the shared cache (${store.location})`) });
  return result(node, status, { seconds: s.seconds, ...manifestFields(m) });
}

function result(node: PlanNode, status: StageResult['status'], extra: Partial<StageResult>): StageResult {
  return { name: node.item.name, branch: node.branch, params: node.params, key: node.key, status, records: 0, seconds: 0, ...extra };
}

function manifestFields(m: { records: number; metadata?: Record<string, unknown> } | undefined): Partial<StageResult> {
  return m ? { records: m.records, ...(m.metadata ? { metadata: m.metadata } : {}) } : {};
}

/** A node and every stage it reads, transitively. */
function closureOf(node: PlanNode, into = new Set<PlanNode>()): Set<PlanNode> {
  if (into.has(node) || !isStage(node)) return into;
  into.add(node);
  for (const i of node.inputs) closureOf(i, into);
  return into;
}

/**
 * The work: one unit per branch of the final stages (stage runs nothing reads), and the uncached
 * stage runs more than one unit would compute, as a unit run before the others.
 */
function split(plan: Plan, stages: PlanNode[], cached: Set<PlanNode>): { shared?: Unit; branches: Unit[] } {
  const read = new Set(stages.flatMap((n) => n.inputs));
  const groups = new Map<string, PlanNode[]>();
  for (const n of stages) {
    if (read.has(n)) continue;
    const k = n.branch ?? '';
    groups.set(k, [...(groups.get(k) ?? []), n]);
  }
  const units: Unit[] = [...groups.values()].map((targets) => {
    const closure = new Set<PlanNode>();
    for (const t of targets) closureOf(t, closure);
    return { targets, closure };
  });
  const todo = units.filter((u) => [...u.closure].some((n) => !cached.has(n)));
  const uses = new Map<PlanNode, number>();
  for (const u of todo) for (const n of u.closure) if (!cached.has(n)) uses.set(n, (uses.get(n) ?? 0) + 1);
  const common = plan.nodes.filter((n) => (uses.get(n) ?? 0) > 1);
  const shared = common.length ? { targets: common, closure: new Set(common.flatMap((n) => [...closureOf(n)])) } : undefined;
  // A unit whose uncached stage runs are all shared has nothing left to do.
  const branches = todo.filter((u) => [...u.closure].some((n) => !cached.has(n) && (uses.get(n) ?? 0) === 1));
  return { shared, branches };
}

/** Submits units as one job, relays their events, collects their stage reports. */
class ItemRunner {
  private readonly itemErrors = new Map<PlanNode, string>();
  private readonly name: string;
  private readonly byId: Map<string, PlanNode>;

  constructor(
    private readonly conn: ClusterConnection,
    private readonly cluster: PipelineClusterOptions,
    private readonly root: string,
    private readonly file: string,
    private readonly plan: Plan,
    private readonly emit: (e: RunEvent) => void,
    private readonly ended: Map<PlanNode, StageResult>,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.byId = new Map(plan.nodes.map((n) => [n.id, n]));
    const stem = basename(file).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9-]+/g, '-').slice(0, 60);
    this.name = cluster.name ?? `run-${stem || 'pipeline'}`;
  }

  async run(phase: 'shared' | 'branches', units: Unit[], gpus: number, reports: Map<PlanNode, PipelineWorkStage>): Promise<void> {
    const root = this.root;
    const specs: WorkSpec<PipelineWork & { keys: Record<string, string> }>[] = units.map((u) => ({
      run: 'ringpipe:pipeline',
      label: u.targets.length === 1 ? u.targets[0]!.id : `${u.targets[0]!.id} +${u.targets.length - 1}`,
      gpus,
      payload: {
        file: portablePath(this.file, root),
        ...(this.plan.pipeline.overrides?.length ? { set: [...this.plan.pipeline.overrides] } : {}),
        only: u.targets.map((t) => t.id),
        keys: Object.fromEntries(u.targets.map((t) => [t.id, t.key])),
      },
    }));
    // Failed items run again (a local run recomputes failed stages too).
    const job = await submitJob(this.conn, specs, { name: phase === 'shared' ? `${this.name}-shared` : this.name, root, retryFailed: true, ackWait: this.cluster.ackWait, agentTtl: this.cluster.agentTtl });
    try {
      const results = await job.wait({
        onEvent: (e) => this.onEvent(e),
        ...(this.cluster.timeout !== undefined ? { timeout: this.cluster.timeout } : {}),
        ...(this.signal ? { signal: this.signal } : {}),
      });
      results.forEach((r, i) => this.collect(r, units[i]!, reports));
    } finally {
      await job.close();
    }
  }

  /** Agents' run events, as this run's (stage results are settled at the end; cached reports are other items' work). */
  private onEvent(e: WorkEvent): void {
    this.cluster.onWorkEvent?.(e);
    const data = e.data as PipelineWorkEvent | undefined;
    if (e.type !== 'progress' || data?.kind !== 'pipeline') return;
    const ev = data.event;
    if (ev.type === 'warning') return this.emit(ev);
    const node = ev.type === 'stage-end' ? this.node(ev.stage) : this.node(ev);
    if (!node || this.ended.has(node)) return;
    if (ev.type !== 'stage-end') return this.emit(ev);
    if (ev.stage.status !== 'computed') return;
    const r = result(node, 'computed', { records: ev.stage.records, seconds: ev.stage.seconds });
    this.ended.set(node, r);
    this.emit({ type: 'stage-end', result: r });
  }

  private node(s: { name: string; branch: string | null }): PlanNode | undefined {
    return this.byId.get(s.branch ? `${s.name}[${s.branch}]` : s.name);
  }

  private collect(r: WorkResult, unit: Unit, reports: Map<PlanNode, PipelineWorkStage>): void {
    if (r.status !== 'ok') {
      for (const n of unit.closure) this.itemErrors.set(n, `work item ${r.label ?? r.id} failed on agent ${r.agent}: ${r.error?.message ?? 'unknown error'}`);
      return;
    }
    for (const s of (r.value as PipelineWorkResult).stages) {
      const node = this.node(s);
      const seen = node && reports.get(node);
      // One report per stage run: a computation beats a cache hit, a success beats a failure.
      if (node && (!seen || rank(s) > rank(seen))) reports.set(node, s);
    }
  }

  /** Stage runs of items that failed as a whole (e.g. an agent whose checkout differs). */
  failedItemNodes(): PlanNode[] {
    return [...this.itemErrors.keys()];
  }

  /** Why a stage run got no report. */
  missing(node: PlanNode, failed: Set<PlanNode>, failFast?: boolean): StageError {
    const item = this.itemErrors.get(node);
    if (item) return new StageError('ERR_STAGE_FAILED', node.item.name, node.branch, item);
    const bad = [...closureOf(node)].find((n) => failed.has(n));
    if (bad) return new StageError('ERR_UPSTREAM_FAILED', node.item.name, node.branch, `not run: its input '${bad.item.name}' failed`);
    if (failFast && failed.size) return new StageError('ERR_UPSTREAM_FAILED', node.item.name, node.branch, 'not run: an earlier stage failed (fail-fast)');
    return new StageError('ERR_STAGE_FAILED', node.item.name, node.branch, 'no agent reported it');
  }
}

const rank = (s: PipelineWorkStage) => (s.status === 'computed' ? 2 : s.status === 'cached' ? 1 : 0);
