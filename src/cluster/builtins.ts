// Built-in work types, run by items whose `run` is `ringpipe:<name>`.
//
// `ringpipe:sweep-trials`: trials of a distributed sweep (clusterDataPath in sweep.ts).
// `ringpipe:pipeline`: runs a JSON pipeline file of the project on the agent, with the shared cache
// (so what one agent computes, every other one and the submitter get as cache hits).
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ConfigError } from '../config/errors.js';
import type { RunEvent, StageResult } from '../config/executor.js';
import { moduleOptions } from '../config/library.js';
import type { Plan } from '../config/plan.js';
import type { WorkContext } from './context.js';
import { registerWorkType } from './registry.js';
import { WorkError } from './errors.js';
import { trustedModule, trustedPath } from './trust.js';

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
  /** Only these stage runs (`item` or `item[branch]`) and the stages they read (default: all). */
  only?: string[];
  /** Cache keys the submitter planned for stage runs: the item fails when this checkout's differ. */
  keys?: Record<string, string>;
}

/** A stage run as a `ringpipe:pipeline` item reports it (its error as text). */
export interface PipelineWorkStage {
  name: string;
  branch: string | null;
  status: string;
  records: number;
  seconds: number;
  error?: string;
  /** The error's code (`ERR_STAGE_FAILED`, `ERR_UPSTREAM_FAILED`, ...). */
  code?: string;
}

/** What a `ringpipe:pipeline` item returns. */
export interface PipelineWorkResult {
  ok: boolean;
  stages: PipelineWorkStage[];
}

/**
 * Progress a `ringpipe:pipeline` item streams back (`ctx.report`): the run's events, stage results
 * as {@link PipelineWorkStage}, progress at most once a second per stage.
 */
export type PipelineWorkEvent = {
  kind: 'pipeline';
  event: Exclude<RunEvent, { type: 'stage-end' | 'plan' }> | { type: 'stage-end'; stage: PipelineWorkStage };
};

/** A stage result as JSON. */
export function stageJson(s: StageResult): PipelineWorkStage {
  const code = (s.error as { code?: unknown } | undefined)?.code;
  return {
    name: s.name,
    branch: s.branch,
    status: s.status,
    records: s.records,
    seconds: s.seconds,
    ...(s.error ? { error: s.error.message } : {}),
    ...(typeof code === 'string' ? { code } : {}),
  };
}

/** Forwards a run's events to the submitter (progress throttled: the events stream is shared). */
function reporter(ctx: WorkContext): (e: RunEvent) => void {
  const last = new Map<string, number>();
  const send = (event: PipelineWorkEvent['event']) => void ctx.report({ kind: 'pipeline', event } satisfies PipelineWorkEvent).catch(() => undefined);
  return (e) => {
    if (e.type === 'plan') return;
    if (e.type === 'stage-end') return send({ type: 'stage-end', stage: stageJson(e.result) });
    if (e.type === 'stage-progress') {
      const k = `${e.name}[${e.branch}]`;
      if (Date.now() - (last.get(k) ?? 0) < 1000) return;
      last.set(k, Date.now());
    }
    send(e);
  };
}

/** Fails when a stage run's cache key here is not the one the submitter planned. */
function checkKeys(plan: Plan, keys: Record<string, string>): void {
  const byId = new Map(plan.nodes.map((n) => [n.id, n]));
  for (const [id, key] of Object.entries(keys)) {
    const here = byId.get(id)?.key;
    if (here === key) continue;
    const what = here ? `has cache key ${here.slice(0, 12)}… on this agent, ${key.slice(0, 12)}… where it was submitted` : 'does not exist on this agent';
    throw new ConfigError('ERR_CONFIG', [{ pointer: '', message: `stage run '${id}' ${what}: the checkouts differ (code, data files or ringpipe version)` }], { file: plan.pipeline.file });
  }
}

/**
 * Refuses a plan whose stages would run code, or whose sources would read files, from outside the
 * agent's roots (a `set` override can point a stage anywhere).
 */
function checkPlanTrust(plan: Plan, roots: readonly string[]): void {
  for (const n of plan.nodes) {
    const item = `stage '${n.item.name}'`;
    if (n.item.kind === 'stage' && n.code?.file) trustedPath(n.code.file, roots, item, n.code.file);
    if (n.item.kind === 'library') {
      for (const m of moduleOptions(n.item.type, n.code?.options ?? {})) {
        if (isAbsolute(m.module)) trustedPath(m.module, roots, `${item} option ${m.field}`, m.module);
        else trustedModule(m.module, roots, `${item} option ${m.field}`);
      }
    }
    for (const f of n.files ?? []) trustedPath(f.path, roots, `item '${n.item.name}' reads`, f.path);
  }
}

/** Runs the pipeline of a `ringpipe:pipeline` item. */
export async function runPipelineWork(payload: PipelineWork, ctx: WorkContext): Promise<PipelineWorkResult> {
  if (!payload || typeof payload.file !== 'string') throw new WorkError('ERR_WORK_INVALID', 'a ringpipe:pipeline item needs { file }');
  const root = ctx.root;
  const file = trustedPath(isAbsolute(payload.file) ? payload.file : resolve(root, payload.file), ctx.roots, 'pipeline file', payload.file);
  const cacheDir = payload.cacheDir
    ? trustedPath(resolve(root, payload.cacheDir), ctx.roots, 'cache directory', payload.cacheDir)
    : join(dirname(file), '.ringpipe', 'cache');
  const { JsonPipeline } = await import('../config/pipeline.js');
  const pipeline = await JsonPipeline.load(file, { set: payload.set ?? [] });
  const plan = await pipeline.plan();
  checkPlanTrust(plan, ctx.roots);
  if (payload.keys) checkKeys(plan, payload.keys);
  let store;
  if (payload.shared !== false) {
    const { SharedArtifactStore } = await import('./cache.js');
    store = await SharedArtifactStore.open(ctx.cluster, { local: cacheDir });
  }
  try {
    const result = await pipeline.run({ ...(store ? { store } : { cacheDir }), signal: ctx.signal, onEvent: reporter(ctx), ...(payload.only ? { only: payload.only } : {}) });
    return { ok: result.ok, stages: result.stages.map(stageJson) };
  } finally {
    await store?.close();
  }
}

// By module reference: each item runs in its own process, which the agent kills (with the trainers and
// pipeline processes it started) when the item times out or is given back.
registerWorkType('pipeline', `${import.meta.url}#runPipelineWork`);
registerWorkType('sweep-trials', `${new URL('./sweep.js', import.meta.url).href}#runSweepItem`);
