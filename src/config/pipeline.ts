// The TypeScript face of JSON pipelines: load a file (or give the same object in code), validate,
// plan, run with the cache, read results.
import { FsArtifactStore, type ArtifactManifest, type ArtifactStore } from '../cache/store.js';
import type { ArtifactRecord } from '../cache/records.js';
import { describeItems, describePlan, type GraphText } from './describe.js';
import { defaultCacheDir, executePlan, type ExecuteOptions, type JsonRunResult } from './executor.js';
import { loadPipelineFile, loadPipelineSpec, type LoadedPipeline, type LoadOptions } from './load.js';
import { buildPlan, isStage, type Plan, type PlanNode } from './plan.js';
import type { PipelineSpec } from './types.js';
import type { PipelineClusterOptions } from '../cluster/remote-pipeline.js';

/** Options of {@link JsonPipeline.run}. */
export interface JsonRunOptions extends ExecuteOptions {
  /**
   * Runs the branches on a cluster's agents instead of this machine: a server URL
   * (`nats://host:4222`) or connection options (credentials, TLS, project, GPUs per item, ...).
   * Agents share the cache; the final stages' artifacts are copied into the local cache, and the
   * result is a local run's. Needs grid or random search items (see docs/cluster.md).
   */
  cluster?: string | PipelineClusterOptions;
}

/** Where a pipeline's cache is. */
export interface CacheLocationOptions {
  /** A store to use (e.g. a shared one). Default: a {@link FsArtifactStore} in `cacheDir`. */
  store?: ArtifactStore;
  /** Cache directory. Default: `.ringpipe/cache` beside the pipeline file. */
  cacheDir?: string;
}

/** A stage (in one branch) and what the cache holds for it. */
export interface StagePlanEntry {
  /** The stage's item name. */
  name: string;
  /** Branch id, or null. */
  branch: string | null;
  /** The branch's parameters. */
  params: Record<string, Record<string, unknown>>;
  /** Cache key. */
  key: string;
  /** The cache entry, when there is one. */
  manifest?: ArtifactManifest;
}

/** Options of {@link JsonPipeline.results}. */
export interface ResultsOptions extends CacheLocationOptions {
  /** Only these stages (default: the stages no other stage reads). */
  stages?: string[];
  /** Every stage. */
  all?: boolean;
}

/** One row of {@link JsonPipeline.results}. */
export interface ArtifactResult {
  /** The stage's item name. */
  stage: string;
  /** Branch id, or null. */
  branch: string | null;
  /** The branch's parameters. */
  params: Record<string, Record<string, unknown>>;
  /** Cache key. */
  key: string;
  /** `cached` when the artifact is in the cache, else `missing` (not run yet, or failed). */
  status: 'cached' | 'missing';
  /** Records in the artifact. */
  records?: number;
  /** Metadata of its last record (e.g. a final loss). */
  metadata?: Record<string, unknown>;
  /** When it was computed. */
  createdAt?: string;
}

/** A validated JSON pipeline. */
export class JsonPipeline {
  private planned?: Promise<Plan>;

  private constructor(
    /** The validated pipeline. */
    readonly loaded: LoadedPipeline,
  ) {}

  /** Loads and validates a pipeline file (throws {@link ConfigError}). */
  static async load(file: string, options?: LoadOptions): Promise<JsonPipeline> {
    return new JsonPipeline(await loadPipelineFile(file, options));
  }

  /**
   * A pipeline written in code: the same object as a file, with relative paths resolved against
   * `baseDir` (cache default: `baseDir/.ringpipe/cache`).
   */
  static async fromSpec(spec: PipelineSpec | Record<string, unknown>, options: LoadOptions & { baseDir: string }): Promise<JsonPipeline> {
    return new JsonPipeline(await loadPipelineSpec(spec, options));
  }

  /** The plan: every item in every branch with its cache key (files and modules are hashed once). */
  plan(): Promise<Plan> {
    this.planned ??= buildPlan(this.loaded);
    return this.planned;
  }

  /** Runs the pipeline; stages already in the cache are not run. */
  async run(options: JsonRunOptions = {}): Promise<JsonRunResult> {
    // Loaded only for cluster runs: local runs need no NATS client.
    if (options.cluster) return (await import('../cluster/remote-pipeline.js')).runPipelineOnCluster(this, { ...options, cluster: options.cluster });
    return executePlan(await this.plan(), options);
  }

  /** Every stage in every branch, with its cache entry if there is one (what `--dry-run` shows). */
  async status(options: CacheLocationOptions = {}): Promise<StagePlanEntry[]> {
    const out: StagePlanEntry[] = [];
    for await (const entry of this.statusStream(options)) out.push(entry);
    return out;
  }

  /** {@link status}, one stage run at a time, branch by branch (as a run takes them; nodes are made as listed). */
  async *statusStream(options: CacheLocationOptions = {}): AsyncGenerator<StagePlanEntry> {
    const plan = await this.plan();
    const store = this.store(plan, options);
    for (const s of plan.stagesByBranch()) {
      const n = s.node();
      const manifest = n.item.def.cache === false ? undefined : await store.get(n.key);
      yield { name: n.item.name, branch: n.branch, params: n.params, key: n.key, ...(manifest ? { manifest } : {}) };
    }
  }

  /** The artifacts of the pipeline's stages, with their metadata (e.g. each grid branch's loss). */
  async results(options: ResultsOptions = {}): Promise<ArtifactResult[]> {
    const plan = await this.plan();
    const store = this.store(plan, options);
    const read = new Set(plan.pipeline.items.flatMap((i) => i.inputs.map((r) => r.from)));
    const wanted = (n: PlanNode) => (options.stages?.length ? options.stages.includes(n.item.name) : options.all || !read.has(n.item.name));
    const out: ArtifactResult[] = [];
    for (const n of plan.nodes.filter(isStage).filter(wanted)) {
      const m = await store.get(n.key);
      out.push({
        stage: n.item.name,
        branch: n.branch,
        params: n.params,
        key: n.key,
        status: m ? 'cached' : 'missing',
        ...(m ? { records: m.records, createdAt: m.createdAt } : {}),
        ...(m?.metadata ? { metadata: m.metadata } : {}),
      });
    }
    return out;
  }

  /** The records of one stage's artifact (in one branch), read from the cache. */
  async *records(stage: string, branch: string | null = null, options: CacheLocationOptions & { metadataOnly?: boolean } = {}): AsyncGenerator<ArtifactRecord> {
    const plan = await this.plan();
    const node = plan.byItem.get(stage)?.find((n) => n.branch === branch);
    if (!node) throw new Error(`no stage '${stage}'${branch ? ` in branch ${branch}` : ''}`);
    const store = this.store(plan, options);
    if (!(await store.get(node.key))) return;
    yield* store.read(node.key, { metadataOnly: options.metadataOnly });
  }

  /** The graph as Mermaid and DOT: one node per item, or per item and branch with `branches`. */
  async describe(options: { branches?: boolean } = {}): Promise<GraphText> {
    return options.branches ? describePlan(await this.plan()) : describeItems(this.loaded.items);
  }

  private store(plan: Plan, options: CacheLocationOptions): ArtifactStore {
    return options.store ?? new FsArtifactStore(options.cacheDir ?? defaultCacheDir(plan));
  }
}

/** Loads and validates a pipeline file: `await (await loadPipeline('pipeline.json')).run()`. */
export function loadPipeline(file: string, options?: LoadOptions): Promise<JsonPipeline> {
  return JsonPipeline.load(file, options);
}
