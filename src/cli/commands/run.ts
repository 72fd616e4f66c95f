// `ringpipe run FILE`: run a pipeline with its cache; `ringpipe validate FILE`.
import { connectionFromFlags, type ConnectionFlags } from '../../cluster/cli.js';
import type { PipelineClusterOptions } from '../../cluster/remote-pipeline.js';
import { formatIssue } from '../../config/errors.js';
import type { StageResult } from '../../config/executor.js';
import { JsonPipeline } from '../../config/pipeline.js';
import { isStage } from '../../config/plan.js';
import { cellValue, line, paramsText, seconds, table, type Io } from '../format.js';
import { BarProgress, LineProgress, type ProgressView } from '../progress.js';

/** Options of `ringpipe run`; with `cluster`, the connection flags of `ringpipe agent` (but --nats) too. */
export interface RunCommandOptions extends Omit<ConnectionFlags, 'nats'> {
  /** NATS server URL(s): run the branches on the cluster's agents. */
  cluster?: string;
  /** With `cluster`: the checkout directory agents' --root stands for. */
  root?: string;
  /** With `cluster`: GPUs each branch's item asks for. */
  itemGpus?: number;
  /** `item.field=value` overrides. */
  set: string[];
  /** Show what would run, run nothing. */
  dryRun?: boolean;
  /** false with `--no-cache`. */
  cache: boolean;
  /** Print one JSON object at the end (and nothing else on stdout). */
  json?: boolean;
  /** Cache directory. */
  cacheDir?: string;
  /** Stages at a time. */
  concurrency?: number;
  /** Stop at the first failure. */
  failFast?: boolean;
  /** No progress output. */
  quiet?: boolean;
}

/** `ringpipe run`; returns the exit code. */
export async function runCommand(file: string, opts: RunCommandOptions, io: Io, signal: AbortSignal): Promise<number> {
  const pipeline = await JsonPipeline.load(file, { set: opts.set });
  for (const w of pipeline.loaded.warnings) line(io.err, `warning: ${formatIssue(w)}`);
  const cluster = opts.cluster === undefined ? undefined : clusterOptions(opts);
  if (cluster && opts.concurrency !== undefined) line(io.err, "warning: with --cluster the agents' --slots decide how many stage runs go at once; --concurrency is ignored");

  if (opts.dryRun) {
    const status = opts.cache ? await pipelineStatus(pipeline, opts.cacheDir, cluster) : (await pipeline.plan()).nodes.filter(isStage).map((n) => ({ name: n.item.name, branch: n.branch, params: n.params, key: n.key, manifest: undefined }));
    if (opts.json) {
      io.out.write(
        JSON.stringify({
          dryRun: true,
          stages: status.map((s) => ({ name: s.name, branch: s.branch, status: s.manifest ? 'cached' : 'pending', records: s.manifest?.records ?? null, key: s.key })),
        }) + '\n',
      );
    } else {
      const rows = status.map((s) => [s.name, s.branch ?? '', paramsText(s.params), s.manifest ? 'cached' : 'would run', s.manifest ? s.manifest.records : '']);
      line(io.out, table(['stage', 'branch', 'params', 'status', 'records'], rows));
      const todo = status.filter((s) => !s.manifest).length;
      line(io.out, `${status.length} stage runs: ${status.length - todo} cached, ${todo} would run (dry run: nothing was run)`);
    }
    return 0;
  }

  const view: ProgressView | undefined = opts.quiet ? undefined : io.tty ? new BarProgress(io.err) : new LineProgress(io.err);
  let result;
  try {
    result = await pipeline.run({
      cache: opts.cache,
      cacheDir: opts.cacheDir,
      concurrency: opts.concurrency,
      failFast: opts.failFast,
      signal,
      onEvent: (e) => view?.event(e),
      ...(cluster ? { cluster } : {}),
    });
  } finally {
    view?.stop();
  }

  const failed = result.stages.filter((s) => s.status === 'failed');
  if (opts.json) {
    io.out.write(JSON.stringify({ stages: result.stages.map(jsonStage) }) + '\n');
  } else {
    line(io.out, summaryTable(result.stages));
    const count = (s: string) => result.stages.filter((r) => r.status === s).length;
    line(io.out, `${result.stages.length} stage runs: ${count('computed')} computed, ${count('cached')} cached, ${count('failed')} failed${result.cacheLocation ? ` (cache: ${result.cacheLocation})` : ''}`);
  }
  for (const f of failed) {
    if (f.error && !(f.error as { code?: string }).code?.startsWith('ERR_UPSTREAM')) {
      line(io.err, `error: ${f.error.message}`);
      const cause = (f.error as { cause?: unknown }).cause;
      if (process.env.RINGPIPE_DEBUG && cause instanceof Error && cause.stack) line(io.err, cause.stack);
    }
  }
  if (signal.aborted) line(io.err, 'interrupted');
  return failed.length || signal.aborted ? 1 : 0;
}

/** The cluster option from `--cluster` and the connection flags (secrets from files or the environment). */
function clusterOptions(opts: RunCommandOptions): PipelineClusterOptions {
  return {
    ...connectionFromFlags({ ...opts, nats: opts.cluster }),
    ...(opts.root ? { root: opts.root } : {}),
    ...(opts.itemGpus ? { gpus: opts.itemGpus } : {}),
  };
}

/** What the cache holds for every stage run: the local cache, or with `cluster` the shared one. */
async function pipelineStatus(pipeline: JsonPipeline, cacheDir: string | undefined, cluster: PipelineClusterOptions | undefined) {
  if (!cluster) return pipeline.status({ cacheDir });
  const [{ SharedArtifactStore }, { defaultCacheDir }] = await Promise.all([import('../../cluster/cache.js'), import('../../config/executor.js')]);
  const store = await SharedArtifactStore.open(cluster, { local: cacheDir ?? defaultCacheDir(await pipeline.plan()) });
  try {
    return await pipeline.status({ store });
  } finally {
    await store.close();
  }
}

function jsonStage(s: StageResult) {
  return {
    name: s.name,
    branch: s.branch,
    status: s.status,
    records: s.records,
    seconds: Math.round(s.seconds * 1000) / 1000,
    ...(s.error ? { error: s.error.message } : {}),
  };
}

function summaryTable(stages: StageResult[]): string {
  const rows = stages.map((s) => [
    s.name,
    s.branch ?? '',
    paramsText(s.params),
    s.status,
    s.records,
    s.status === 'computed' ? seconds(s.seconds) : '',
    s.metadata ? Object.entries(s.metadata).map(([k, v]) => `${k}=${cellValue(v)}`).join(' ') : '',
  ]);
  return table(['stage', 'branch', 'params', 'status', 'records', 'time', 'metadata'], rows);
}

/** `ringpipe validate`; returns the exit code (ConfigError propagates: exit 2). */
export async function validateCommand(file: string, opts: { set: string[]; json?: boolean }, io: Io): Promise<number> {
  const pipeline = await JsonPipeline.load(file, { set: opts.set });
  const plan = await pipeline.plan();
  const stages = plan.pipeline.items.filter((i) => i.kind === 'stage' || i.kind === 'library').length;
  const runs = plan.nodes.filter(isStage).length;
  if (opts.json) {
    io.out.write(JSON.stringify({ valid: true, items: plan.pipeline.items.length, stages, stageRuns: runs, warnings: pipeline.loaded.warnings }) + '\n');
  } else {
    for (const w of pipeline.loaded.warnings) line(io.err, `warning: ${formatIssue(w)}`);
    line(io.out, `${file}: valid (${plan.pipeline.items.length} items, ${stages} stages, ${runs} stage runs across branches)`);
  }
  return 0;
}
