// Distributed sweeps: a sweep's data path (src/sweep's DataPath) that runs each wave's trials on the
// cluster's agents instead of this machine. Pass it as `sweep({ ..., data: clusterDataPath(...) })`,
// with `concurrency` set to the number of trials to keep in flight on the cluster.
//
// Per item (`trialsPerItem` trials, default 1) an agent runs the engine's own data path: the user's
// `build` function adds the source and preprocessing to a graph, its stream is broadcast to one
// trainer process per trial, bound to the agent's GPUs. Readiness and per-epoch metrics stream back
// (events stream, replayed on re-attach); early-stopping decisions go back to the agent by
// request/reply; results are the trainers' own; saved models travel through the object store.
//
// Re-running the same sweep re-attaches: trial ids are hashes of their parameters, item and job ids
// are hashes of their content, so trials done are not run again and trials in flight are awaited.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Subscription } from '@nats-io/transport-node';
import { canonicalJson, sha256 } from '../cache/hash.js';
import type { EngineDataPathOptions } from '../sweep/engine-data-path.js';
import type { DataPath, Wave, WaveEvents, WaveTrial } from '../sweep/sweep.js';
import type { EpochDecision, EpochReport, TrainerOptions, TrainerReady, TrainerResult } from '../train/trainer.js';
import type { WorkContext } from './agent.js';
import { ClusterConnection, type ClusterOptions } from './connect.js';
import { WorkError } from './errors.js';
import { submitJob, type WorkEvent, type WorkQueueOptions, type WorkSpec } from './work.js';

/** Options of {@link clusterDataPath}. */
export interface ClusterSweepOptions extends ClusterOptions, WorkQueueOptions {
  /**
   * `module#export` of the function that adds a wave's source and preprocessing to the agent's
   * graph: `(graph, wave, args) => Stream | [Stream, Stream]`, as `engineDataPath`'s `build` (the
   * module path is resolved against each agent's root).
   */
  build: string;
  /** Argument handed to `build` (JSON). */
  args?: unknown;
  /** Trials per work item: one stream on one agent feeds them all (default 1). */
  trialsPerItem?: number;
  /** GPUs each item asks for (default 0: any agent); the item's trials are spread over them. */
  gpus?: number;
  /** Where trainers run on the agent: `'process'` (default) or `'thread'`. */
  isolation?: 'process' | 'thread';
  /** Name of the sweep's jobs (letters, digits, `-`; default `sweep`). */
  name?: string;
  /** Directory relative module paths are made against (default: the current directory). */
  root?: string;
  /** Milliseconds a wave may take at most (default: no limit). */
  timeout?: number;
  /** Receives the work events (started on which agent, requeued, ...). */
  onWorkEvent?: (event: WorkEvent) => void;
  /** Cancels waiting (the trials go on running on the agents). */
  signal?: AbortSignal;
}

/** One trial as an agent runs it. */
interface ItemTrial {
  trial: WaveTrial['trial'];
  trainer: TrainerOptions;
  /** The submitter wants the model saved (it is uploaded to the object store). */
  saveModel: boolean;
}

/** Payload of a `ringpipe:sweep-trials` item. */
export interface SweepItemPayload {
  build: string;
  args?: unknown;
  isolation: 'process' | 'thread';
  wave: number;
  trials: ItemTrial[];
  /** Subject for epoch reports that expect an early-stopping decision. */
  control: string;
}

/** What a `ringpipe:sweep-trials` item returns. */
export interface SweepItemResult {
  results: (TrainerResult & { modelObjects?: string[] })[];
}

type ProgressData =
  | { kind: 'ready'; trialId: string; info: TrainerReady }
  | { kind: 'epoch'; trialId: string; report: EpochReport };

// ---- paths that cross machines ------------------------------------------------------------------

function portable(path: string, root: string): string {
  const p = path.startsWith('file:') ? fileURLToPath(path) : path;
  if (!isAbsolute(p)) return p;
  const rel = relative(resolve(root), p);
  return !rel.startsWith('..') && !isAbsolute(rel) ? `./${rel.split(sep).join('/')}` : p;
}

function local(path: string, root: string): string {
  return path.startsWith('./') || path.startsWith('../') ? resolve(root, path) : path;
}

function mapModules(t: TrainerOptions, f: (p: string) => string): TrainerOptions {
  const out: TrainerOptions = { ...t, module: f(t.module) };
  for (const k of ['validation', 'test'] as const) {
    const src = t[k];
    if (src && typeof src === 'object' && 'module' in src && typeof src.module === 'string') out[k] = { ...src, module: f(src.module) };
  }
  return out;
}

const MODEL_FILES = ['model.json', 'weights.bin'];

// ---- the submitter's side -----------------------------------------------------------------------

/** A sweep data path that runs trials on the cluster's agents (see the module comment). */
export function clusterDataPath(options: ClusterSweepOptions): DataPath {
  const per = options.trialsPerItem ?? 1;
  if (!Number.isInteger(per) || per < 1) throw new WorkError('ERR_WORK_INVALID', `trialsPerItem must be an integer >= 1, got ${per}`);
  if (!options.build || !options.build.includes('#')) throw new WorkError('ERR_WORK_INVALID', `build must be 'module#export', got '${options.build}'`);
  const root = options.root ?? process.cwd();
  const hash = options.build.lastIndexOf('#');
  const build = `${portable(options.build.slice(0, hash), root)}#${options.build.slice(hash + 1)}`;
  return {
    name: `cluster (${Array.isArray(options.servers) ? options.servers.join(',') : options.servers.split(',')[0]}, project ${options.project ?? 'default'})`,
    isolation: 'process',
    runWave: (wave, events) => runWaveOnCluster(options, build, root, per, wave, events),
  };
}

async function runWaveOnCluster(options: ClusterSweepOptions, build: string, root: string, per: number, wave: Wave, events: WaveEvents): Promise<TrainerResult[]> {
  const conn = await ClusterConnection.open({ name: 'ringpipe-sweep', ...options });
  let sub: Subscription | undefined;
  try {
    const name = options.name ?? 'sweep';
    const groups: WaveTrial[][] = [];
    for (let i = 0; i < wave.trials.length; i += per) groups.push(wave.trials.slice(i, i + per));
    const controlKey = sha256(canonicalJson({ name, build, trials: wave.trials.map((t) => t.trial.id) })).slice(0, 24);
    const control = conn.names.subject('control', controlKey);
    const specs: WorkSpec<SweepItemPayload>[] = groups.map((g) => ({
      run: 'ringpipe:sweep-trials',
      label: g.map((t) => t.trial.id).join('+'),
      gpus: options.gpus ?? 0,
      payload: {
        build,
        ...(options.args !== undefined ? { args: options.args } : {}),
        isolation: options.isolation ?? 'process',
        wave: wave.index,
        control,
        trials: g.map((wt) => {
          const { save, ...trainer } = wt.trainer;
          return { trial: wt.trial, trainer: mapModules(trainer, (p) => portable(p, root)), saveModel: !!save };
        }),
      },
    }));

    // Epoch reports arrive by request (live, wants a decision) and from the events stream (replayed
    // when re-attaching): each is handled once.
    const decisions = new Map<string, Promise<EpochDecision>>();
    const readied = new Set<string>();
    const onEpoch = (trialId: string, attempt: number, report: EpochReport): Promise<EpochDecision> => {
      const k = `${trialId}:${attempt}:${report.epoch}`;
      let d = decisions.get(k);
      if (!d) {
        d = Promise.resolve().then(() => events.epoch(trialId, report));
        decisions.set(k, d);
      }
      return d;
    };
    const onProgress = (e: WorkEvent) => {
      const data = e.data as ProgressData | undefined;
      if (!data || typeof data !== 'object') return;
      if (data.kind === 'ready' && !readied.has(`${data.trialId}:${e.attempt}`)) {
        readied.add(`${data.trialId}:${e.attempt}`);
        events.ready(data.trialId, data.info);
      } else if (data.kind === 'epoch') void onEpoch(data.trialId, e.attempt, data.report).catch(() => undefined);
    };
    sub = conn.nc.subscribe(control, {
      callback: (err, msg) => {
        if (err) return;
        let req: { trialId: string; attempt: number; report: EpochReport };
        try {
          req = msg.json();
        } catch {
          return;
        }
        onEpoch(req.trialId, req.attempt, req.report)
          .then((decision) => msg.respond(JSON.stringify({ decision: decision ?? null })))
          .catch(() => msg.respond(JSON.stringify({ decision: null })));
      },
    });

    const job = await submitJob(conn, specs, { name, ackWait: options.ackWait, root });
    if (job.reattached) events.log(`re-attached to ${job.reattached} of ${specs.length} item(s) of job ${job.id} already done or in flight`);
    const results = await job.wait({
      onEvent: (e) => {
        options.onWorkEvent?.(e);
        if (e.type === 'progress') onProgress(e);
        else if (e.type === 'started') events.log(`${job.items.find((i) => i.id === e.id)?.label ?? e.id} started on agent ${e.agent} (attempt ${e.attempt})`);
        else if (e.type === 'requeued') events.log(`${e.id} given back by agent ${e.agent}: it will run elsewhere`);
      },
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    await job.close();

    const out = new Map<string, TrainerResult>();
    for (const [i, r] of results.entries()) {
      const group = groups[i]!;
      if (r.status === 'ok') {
        for (const tr of (r.value as SweepItemResult).results) {
          const wt = group.find((t) => t.trial.id === tr.trialId);
          if (!wt) continue;
          const { modelObjects, ...res } = tr;
          if (modelObjects?.length && wt.trainer.save) {
            await downloadModel(conn, modelObjects, wt.trainer.save);
            res.model = { ...(res.model ?? { handler: 'ringpipe', weightBytes: 0 }), dir: resolve(wt.trainer.save) };
          } else delete res.model;
          out.set(tr.trialId!, res);
        }
      }
      for (const wt of group) {
        if (out.has(wt.trial.id)) continue;
        out.set(wt.trial.id, {
          trialId: wt.trial.id,
          params: wt.trial.params,
          status: 'failed',
          error: r.error ?? { name: 'Error', message: `item ${r.id} returned no result for this trial` },
          pid: 0,
          history: [],
          samples: 0,
          steps: 0,
          drained: 0,
          seconds: r.seconds,
        });
      }
    }
    return wave.trials.map((wt) => out.get(wt.trial.id)!);
  } finally {
    sub?.unsubscribe();
    await conn.close();
  }
}

async function downloadModel(conn: ClusterConnection, objects: string[], dir: string): Promise<void> {
  const os = await conn.objectStore('models');
  await mkdir(dir, { recursive: true });
  for (const name of objects) {
    const bytes = await conn.retry('cannot download a model', `${conn.names.bucket('models')}/${name}`, () => os.getBlob(name), 60_000);
    if (!bytes) throw new WorkError('ERR_WORK_INVALID', `model file ${name} is missing from ${conn.names.bucket('models')} (server ${conn.server()})`, { server: conn.server(), subject: name });
    await writeFile(join(dir, name.slice(name.lastIndexOf('/') + 1)), bytes);
  }
}

// ---- the agent's side ---------------------------------------------------------------------------

/** Removes the temporary model folders of agents of this machine that were killed. */
async function removeStaleModelDirs(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const m = /^ringpipe-models-(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) await rm(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/** The user's `build`: adds a wave's source and preprocessing to the agent's graph. */
type Build = (graph: Parameters<EngineDataPathOptions['build']>[0], wave: Wave, args: unknown) => ReturnType<EngineDataPathOptions['build']>;

/** Runs the trials of a `ringpipe:sweep-trials` item on this agent (see the module comment). */
export async function runSweepItem(payload: SweepItemPayload, ctx: WorkContext): Promise<SweepItemResult> {
  const [{ engineDataPath }, { trainerEnv }, { resolveWork }] = await Promise.all([
    import('../sweep/engine-data-path.js'),
    import('../train/gpu.js'),
    import('./agent.js'),
  ]);
  const build = (await resolveWork(payload.build, ctx.root)) as unknown as Build;
  await removeStaleModelDirs();
  const modelDir = await mkdtemp(join(tmpdir(), `ringpipe-models-${process.pid}-`));
  try {
    return await runTrials(payload, ctx, build, modelDir, engineDataPath, trainerEnv);
  } finally {
    await rm(modelDir, { recursive: true, force: true });
  }
}

async function runTrials(
  payload: SweepItemPayload,
  ctx: WorkContext,
  build: Build,
  modelDir: string,
  engineDataPath: typeof import('../sweep/engine-data-path.js').engineDataPath,
  trainerEnv: typeof import('../train/gpu.js').trainerEnv,
): Promise<SweepItemResult> {
  const wave: Wave = {
    index: payload.wave,
    trials: payload.trials.map((t, i) => {
      const gpu = ctx.gpus.length ? ctx.gpus[i % ctx.gpus.length]! : null;
      return {
        trial: t.trial,
        slot: { index: i, gpu },
        env: trainerEnv(gpu),
        trainer: { ...mapModules(t.trainer, (p) => local(p, ctx.root)), ...(t.saveModel ? { save: join(modelDir, t.trial.id) } : {}) },
      };
    }),
  };
  const events: WaveEvents = {
    ready: (trialId, info) => void ctx.report({ kind: 'ready', trialId, info }).catch(() => undefined),
    epoch: async (trialId, report) => {
      await ctx.report({ kind: 'epoch', trialId, report }).catch(() => undefined);
      try {
        const m = await ctx.cluster.nc.request(payload.control, JSON.stringify({ trialId, attempt: ctx.attempt, report }), { timeout: 10_000 });
        return (m.json<{ decision: EpochDecision | null }>().decision ?? undefined) as EpochDecision;
      } catch {
        return undefined; // no submitter listening (it will re-attach): go on
      }
    },
    log: (m) => ctx.log(m),
  };
  const path = engineDataPath({ build: (graph, w) => build(graph, w, payload.args), isolation: payload.isolation, run: { signal: ctx.signal, handleSigint: false } });
  const results = await path.runWave(wave, events);
  const out: SweepItemResult['results'] = [];
  const os = payload.trials.some((t) => t.saveModel) ? await ctx.cluster.objectStore('models') : undefined;
  for (const r of results) {
    const res: SweepItemResult['results'][number] = { ...r };
    if (os && r.model?.dir) {
      const names: string[] = [];
      for (const f of (await readdir(r.model.dir)).filter((x) => MODEL_FILES.includes(x))) {
        const name = `${ctx.id}/${r.trialId}/${f}`;
        const bytes = await readFile(join(r.model.dir, f));
        await ctx.cluster.retry('cannot upload a model', `${ctx.cluster.names.bucket('models')}/${name}`, () => os.putBlob({ name }, bytes), 60_000);
        names.push(name);
      }
      res.modelObjects = names;
    }
    out.push(res);
  }
  return { results: out };
}
