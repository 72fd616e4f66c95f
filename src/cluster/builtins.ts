// Built-in work types, run by items whose `run` is `ringpipe:<name>`.
//
// `ringpipe:sweep-trials`: trials of a distributed sweep (clusterDataPath in sweep.ts).
// `ringpipe:pipeline`: runs a JSON pipeline file of the project on the agent, with the shared cache
// (so what one agent computes, every other one and the submitter get as cache hits).
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { WorkContext } from './agent.js';
import { registerWorkType } from './registry.js';
import { WorkError } from './errors.js';

/** Payload of a `ringpipe:pipeline` item. */
export interface PipelineWork {
  /** The pipeline file, relative to the agent's root (the project checkout). */
  file: string;
  /** `item.field=value` overrides (as `ringpipe run --set`). */
  set?: string[];
  /** Local cache directory in front of the shared one (default `.ringpipe/cache` beside the file). */
  cacheDir?: string;
  /** Use the shared cache (default true); false: the local cache only. */
  shared?: boolean;
}

/** What a `ringpipe:pipeline` item returns. */
export interface PipelineWorkResult {
  ok: boolean;
  stages: { name: string; branch: string | null; status: string; records: number; seconds: number; error?: string }[];
}

/** Runs the pipeline of a `ringpipe:pipeline` item. */
export async function runPipelineWork(payload: PipelineWork, ctx: WorkContext): Promise<PipelineWorkResult> {
  if (!payload || typeof payload.file !== 'string') throw new WorkError('ERR_WORK_INVALID', 'a ringpipe:pipeline item needs { file }');
  const root = ctx.root;
  const file = isAbsolute(payload.file) ? payload.file : resolve(root, payload.file);
  const { JsonPipeline } = await import('../config/pipeline.js');
  const pipeline = await JsonPipeline.load(file, { set: payload.set ?? [] });
  const cacheDir = payload.cacheDir ? resolve(root, payload.cacheDir) : join(dirname(file), '.ringpipe', 'cache');
  let store;
  if (payload.shared !== false) {
    const { SharedArtifactStore } = await import('./cache.js');
    store = await SharedArtifactStore.open(ctx.cluster, { local: cacheDir });
  }
  const result = await pipeline.run({ ...(store ? { store } : { cacheDir }), signal: ctx.signal });
  return {
    ok: result.ok,
    stages: result.stages.map((s) => ({
      name: s.name,
      branch: s.branch,
      status: s.status,
      records: s.records,
      seconds: s.seconds,
      ...(s.error ? { error: s.error.message } : {}),
    })),
  };
}

registerWorkType('pipeline', () => runPipelineWork as (p: unknown, ctx: WorkContext) => Promise<PipelineWorkResult>);

// `ringpipe:sweep-trials`: trials of a distributed sweep (see sweep.ts); loaded when first used.
registerWorkType('sweep-trials', async () => (await import('./sweep.js')).runSweepItem as (p: unknown, ctx: WorkContext) => Promise<unknown>);
