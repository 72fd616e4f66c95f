// `ringpipe run FILE`: run a pipeline with its cache; `ringpipe validate FILE`.
import { connectionFromFlags, type ConnectionFlags } from '../../cluster/cli.js';
import type { PipelineClusterOptions } from '../../cluster/remote-pipeline.js';
import { formatIssue } from '../../config/errors.js';
import type { LoadOptions } from '../../config/load.js';
import { JsonPipeline, type StagePlanEntry } from '../../config/pipeline.js';
import { outputClosed } from '../errors.js';
import { line, paramsText, table, type Io } from '../format.js';
import { BarProgress, count, LineProgress, unusedLine, type ProgressView } from '../progress.js';
import { ROWS_PER_RUN, RunReport } from '../report.js';

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
  /** Hash every cached artifact the run uses. */
  verify?: boolean;
  /** Most branches (`--max-branches`). */
  maxBranches?: number;
  /** Allow paths outside the project folder. */
  allowOutsideProject?: boolean;
}

/** `ringpipe run`; returns the exit code. */
export async function runCommand(file: string, opts: RunCommandOptions, io: Io, signal: AbortSignal): Promise<number> {
  const pipeline = await JsonPipeline.load(file, loadOptions(opts));
  for (const w of pipeline.loaded.warnings) line(io.err, `warning: ${formatIssue(w)}`);
  const cluster = opts.cluster === undefined ? undefined : clusterOptions(opts);
  if (cluster && opts.concurrency !== undefined) line(io.err, "warning: with --cluster the agents' --slots decide how many stage runs go at once; --concurrency is ignored");

  if (opts.dryRun) return dryRun(pipeline, opts, cluster, io, signal);

  const view: ProgressView | undefined = opts.quiet ? undefined : io.tty ? new BarProgress(io.err) : new LineProgress(io.err);
  const report = new RunReport(opts.json ? io.out : undefined);
  let result;
  try {
    result = await pipeline.run({
      cache: opts.cache,
      cacheDir: opts.cacheDir,
      concurrency: opts.concurrency,
      failFast: opts.failFast,
      verify: opts.verify,
      signal,
      keepResults: false,
      onEvent: (e) => {
        view?.event(e);
        report.event(e);
      },
      ...(cluster ? { cluster } : {}),
    });
  } catch (err) {
    report.endJson(err);
    throw err;
  } finally {
    view?.stop();
  }

  if (opts.json) report.endJson();
  else report.writeSummary(io.out, result.cacheLocation);
  report.writeErrors(io.err);
  if (signal.aborted && !outputClosed(signal)) line(io.err, 'interrupted');
  return report.ok && !signal.aborted ? 0 : 1;
}

/** How the CLI loads a pipeline: overrides, the branch limit, paths outside the project. */
export function loadOptions(opts: { set?: string[]; maxBranches?: number; allowOutsideProject?: boolean }): LoadOptions {
  return {
    set: opts.set ?? [],
    ...(opts.maxBranches !== undefined ? { maxBranches: opts.maxBranches } : {}),
    ...(opts.allowOutsideProject ? { allowOutside: true } : {}),
  };
}

/** `--dry-run`: every stage run and whether it is cached, listed one per row (or per stage when many), or streamed as JSON. */
async function dryRun(pipeline: JsonPipeline, opts: RunCommandOptions, cluster: PipelineClusterOptions | undefined, io: Io, signal: AbortSignal): Promise<number> {
  const rows: (string | number)[][] = [];
  const perStage = new Map<string, { runs: number; cached: number }>();
  let runs = 0;
  let cached = 0;
  if (opts.json) io.out.write('{"dryRun":true,"stages":[');
  for await (const s of pipelineStatus(pipeline, opts.cache ? opts.cacheDir : undefined, cluster, opts.cache)) {
    if (signal.aborted) break; // interrupted, or nobody reads the output any more
    if (opts.json) {
      io.out.write(`${runs ? ',' : ''}\n${JSON.stringify({ name: s.name, branch: s.branch, status: s.manifest ? 'cached' : 'pending', records: s.manifest?.records ?? null, key: s.key })}`);
    } else if (rows.length <= ROWS_PER_RUN) {
      rows.push([s.name, s.branch ?? '', paramsText(s.params), s.manifest ? 'cached' : 'would run', s.manifest ? s.manifest.records : '']);
    }
    const t = perStage.get(s.name) ?? { runs: 0, cached: 0 };
    t.runs++;
    if (s.manifest) t.cached++;
    perStage.set(s.name, t);
    runs++;
    if (s.manifest) cached++;
  }
  if (opts.json) io.out.write('\n]}\n');
  if (outputClosed(signal)) return 0;
  if (signal.aborted) {
    line(io.err, 'interrupted');
    return 1;
  }
  if (opts.json) return 0;
  if (rows.length <= ROWS_PER_RUN) line(io.out, table(['stage', 'branch', 'params', 'status', 'records'], rows));
  else line(io.out, table(['stage', 'runs', 'cached', 'would run'], [...perStage].map(([name, t]) => [name, count(t.runs), count(t.cached), count(t.runs - t.cached)])));
  line(io.out, `${count(runs)} stage runs: ${count(cached)} cached, ${count(runs - cached)} would run (dry run: nothing was run)`);
  return 0;
}

/** The cluster option from `--cluster` and the connection flags (secrets from files or the environment). */
function clusterOptions(opts: RunCommandOptions): PipelineClusterOptions {
  return {
    ...connectionFromFlags({ ...opts, nats: opts.cluster }),
    ...(opts.root ? { root: opts.root } : {}),
    ...(opts.itemGpus ? { gpus: opts.itemGpus } : {}),
  };
}

/** What the cache holds for every stage run: the local cache, or with `cluster` the shared one; no cache: nothing. */
async function* pipelineStatus(pipeline: JsonPipeline, cacheDir: string | undefined, cluster: PipelineClusterOptions | undefined, useCache: boolean): AsyncGenerator<StagePlanEntry> {
  if (!useCache) {
    for (const s of (await pipeline.plan()).stagesByBranch()) {
      const n = s.node();
      yield { name: n.item.name, branch: n.branch, params: n.params, key: n.key };
    }
    return;
  }
  if (!cluster) {
    yield* pipeline.statusStream({ cacheDir });
    return;
  }
  const [{ SharedArtifactStore }, { defaultCacheDir }] = await Promise.all([import('../../cluster/cache.js'), import('../../config/executor.js')]);
  const store = await SharedArtifactStore.open(cluster, { local: cacheDir ?? defaultCacheDir(await pipeline.plan()) });
  try {
    yield* pipeline.statusStream({ store });
  } finally {
    await store.close();
  }
}

/** `ringpipe validate`; returns the exit code (ConfigError propagates: exit 2). */
export async function validateCommand(file: string, opts: { set: string[]; json?: boolean; maxBranches?: number; allowOutsideProject?: boolean }, io: Io): Promise<number> {
  const pipeline = await JsonPipeline.load(file, loadOptions(opts));
  const plan = await pipeline.plan();
  const stages = plan.pipeline.items.filter((i) => i.kind === 'stage' || i.kind === 'library').length;
  const runs = plan.stageRuns;
  if (opts.json) {
    io.out.write(JSON.stringify({ valid: true, items: plan.pipeline.items.length, stages, branches: plan.branches, stageRuns: runs, warnings: pipeline.loaded.warnings, unusedInputs: plan.unusedInputs }) + '\n');
  } else {
    for (const w of pipeline.loaded.warnings) line(io.err, `warning: ${formatIssue(w)}`);
    for (const u of plan.unusedInputs) line(io.err, unusedLine(u));
    line(io.out, `${file}: valid (${plan.pipeline.items.length} items, ${stages} stages, ${count(runs)} stage runs across ${count(plan.branches)} branch${plan.branches === 1 ? '' : 'es'})`);
  }
  return 0;
}
