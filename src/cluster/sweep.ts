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
//
// Every trainer checkpoints at each epoch end (weights, optimizer state, history); the agent keeps the
// latest one of each trial in the item's checkpoint. An item redelivered after its agent died resumes
// each trial after its last checkpointed epoch (the stream replays from epoch 1, the trainer passes
// over the epochs done) and does not run again trials whose result was saved.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Subscription } from '@nats-io/transport-node';
import { canonicalJson, sha256 } from '../cache/hash.js';
import type { EngineDataPathOptions } from '../sweep/engine-data-path.js';
import type { DataPath, Wave, WaveEvents, WaveTrial } from '../sweep/sweep.js';
import type { TrainerResume, TrainerState } from '../train/checkpoint.js';
import type { EpochDecision, EpochReport, TrainerOptions, TrainerReady, TrainerResult } from '../train/trainer.js';
import type { WorkContext } from './agent.js';
import { ClusterConnection, connectionLogger, type ClusterOptions } from './connect.js';
import { WorkError } from './errors.js';
import { importWork, locateWork } from './resolve.js';
import { trustedModule } from './trust.js';
import { portablePath, submitJob, type WorkEvent, type WorkQueueOptions, type WorkSpec } from './work.js';

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
  /**
   * Checkpoint every trial at each epoch end, so that an item redelivered after its agent died
   * resumes its trials where they were (default true). false: a redelivered trial starts over; no
   * weights travel to the object store during training.
   */
  checkpoints?: boolean;
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
  /** false: no epoch checkpoints (see {@link ClusterSweepOptions.checkpoints}). */
  checkpoints?: false;
}

/** What a `ringpipe:sweep-trials` item returns. */
export interface SweepItemResult {
  results: (TrainerResult & { modelObjects?: string[] })[];
}

type ProgressData =
  | { kind: 'ready'; trialId: string; info: TrainerReady }
  | { kind: 'epoch'; trialId: string; report: EpochReport };

// ---- paths that cross machines ------------------------------------------------------------------

const portable = portablePath;

function mapModules(t: TrainerOptions, f: (p: string, field: string) => string): TrainerOptions {
  const out: TrainerOptions = { ...t, module: f(t.module, 'module') };
  for (const k of ['validation', 'test'] as const) {
    const src = t[k];
    if (src && typeof src === 'object' && 'module' in src && typeof src.module === 'string') out[k] = { ...src, module: f(src.module, `${k}.module`) };
  }
  return out;
}

/**
 * A trial's trainer options as an agent runs them: every module checked to lie under the agent's
 * roots and named by its real path (so the trainer imports what was checked); the directories the
 * trainer writes to and resumes from are the agent's to choose, never the item's.
 */
function agentTrainer(t: TrainerOptions, trialId: string, roots: readonly string[]): TrainerOptions {
  if (!t || typeof t.module !== 'string') throw new WorkError('ERR_WORK_INVALID', `trial ${trialId}: the trainer needs a module`);
  const { save: _s, checkpoint: _c, resume: _r, ...rest } = t;
  return mapModules(rest, (p, field) => trustedModule(p, roots, `trial ${trialId}: trainer ${field} ${p.length > 60 ? `${p.slice(0, 60)}…` : p}`));
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
  conn.onConnection(connectionLogger((line) => events.log(line)));
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
        // Only when off: the items (and their ids) of sweeps that checkpoint stay as they were.
        ...(options.checkpoints === false ? { checkpoints: false as const } : {}),
        wave: wave.index,
        control,
        trials: g.map((wt) => {
          const { save, ...trainer } = wt.trainer;
          return { trial: wt.trial, trainer: mapModules(trainer, (p) => portable(p, root)), saveModel: !!save };
        }),
      },
    }));

    // Epoch reports arrive by request (live, wants a decision) and from the events stream (replayed
    // when re-attaching): each is handled once. A redelivered trial resumes after its last
    // checkpoint, so it may report again an epoch done after that checkpoint: the first report
    // stands, and its decision is the answer again.
    const decisions = new Map<string, Promise<EpochDecision>>();
    const readied = new Set<string>();
    const onEpoch = (trialId: string, report: EpochReport): Promise<EpochDecision> => {
      const k = `${trialId}:${report.epoch}`;
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
      } else if (data.kind === 'epoch') void onEpoch(data.trialId, data.report).catch(() => undefined);
    };
    sub = conn.nc.subscribe(control, {
      callback: (err, msg) => {
        if (err) return;
        let req: { trialId: string; report: EpochReport };
        try {
          req = msg.json();
        } catch {
          return;
        }
        onEpoch(req.trialId, req.report)
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

/** Removes the scratch folders (models, checkpoints) of agents of this machine that were killed. */
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
  // Every module the item names is checked before any of them is imported.
  const trials = (payload.trials ?? []).map((t) => ({ ...t, trainer: agentTrainer(t.trainer, t.trial?.id, ctx.roots) }));
  const buildCode = locateWork(payload.build, ctx.roots);
  const [{ engineDataPath }, { trainerEnv }] = await Promise.all([import('../sweep/engine-data-path.js'), import('../train/gpu.js')]);
  const build = (buildCode.kind === 'inline' ? await buildCode.load() : await importWork(buildCode.url, buildCode.export, buildCode.module)) as unknown as Build;
  await removeStaleModelDirs();
  // Saved models, trainers' checkpoints and checkpoints to resume from, removed when the item ends.
  const scratch = await mkdtemp(join(tmpdir(), `ringpipe-models-${process.pid}-`));
  try {
    return await runTrials({ ...payload, trials }, ctx, build, scratch, engineDataPath, trainerEnv);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** A trial's part of its item's checkpoint: its last epoch checkpoint, or its result once it has one. */
type TrialCheckpoint =
  | { kind: 'epoch'; state: TrainerState & { trialId?: string }; files: Record<string, Uint8Array> }
  | { kind: 'result'; result: SweepItemResult['results'][number] };

/** An item's checkpoint: the latest part of each of its trials. */
interface ItemCheckpoint {
  trials: Record<string, TrialCheckpoint>;
}

/**
 * The item's checkpoint, kept through `ctx.checkpoint`: one object replaced whole (so a reader never
 * sees part of one) holding every trial's latest part. Saves go one at a time; trials that checkpoint
 * during a save go together in the next one.
 */
class ItemCheckpoints {
  private readonly trials: Record<string, TrialCheckpoint>;
  private queued?: Promise<void>;
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: WorkContext,
    loaded?: ItemCheckpoint,
  ) {
    this.trials = { ...(loaded?.trials ?? {}) };
  }

  get(trialId: string): TrialCheckpoint | undefined {
    return this.trials[trialId];
  }

  /** Sets a trial's part; resolves once a save that holds it is complete. */
  set(trialId: string, part: TrialCheckpoint): Promise<void> {
    this.trials[trialId] = part;
    if (!this.queued) {
      const save = this.last.then(() => {
        this.queued = undefined;
        const epochs = Object.fromEntries(Object.entries(this.trials).map(([id, t]) => [id, t.kind === 'epoch' ? t.state.epoch : 'done']));
        return this.ctx.checkpoint.save({ trials: { ...this.trials } } satisfies ItemCheckpoint, { epochs });
      });
      this.queued = save;
      this.last = save.catch(() => undefined);
    }
    return this.queued;
  }
}

/** The item's checkpoint saved by an earlier attempt, if there is one. */
async function loadItemCheckpoint(ctx: WorkContext): Promise<ItemCheckpoint | undefined> {
  if (ctx.attempt <= 1) return undefined;
  try {
    const ck = await ctx.checkpoint.load<ItemCheckpoint>();
    if (!ck || !ck.value || typeof ck.value.trials !== 'object') return undefined;
    ctx.log(`checkpoint of attempt ${ck.attempt} (agent ${ck.agent}): ${Object.entries(ck.value.trials).map(([id, t]) => `${id} ${t.kind === 'epoch' ? `after epoch ${t.state.epoch}` : 'done'}`).join(', ')}`);
    return ck.value;
  } catch (err) {
    ctx.log(`cannot read the checkpoint of an earlier attempt, the trials start over: ${(err as Error).message}`);
    return undefined;
  }
}

async function runTrials(
  payload: SweepItemPayload,
  ctx: WorkContext,
  build: Build,
  scratch: string,
  engineDataPath: typeof import('../sweep/engine-data-path.js').engineDataPath,
  trainerEnv: typeof import('../train/gpu.js').trainerEnv,
): Promise<SweepItemResult> {
  const { STATE_JSON } = await import('../train/checkpoint.js');
  const checkpoints = new ItemCheckpoints(ctx, await loadItemCheckpoint(ctx));
  // Trials whose result an earlier attempt saved are not run again; the others resume from their last epoch.
  const done = new Map<string, SweepItemResult['results'][number]>();
  const trials: WaveTrial[] = [];
  for (const [i, t] of payload.trials.entries()) {
    const part = checkpoints.get(t.trial.id);
    if (part?.kind === 'result') {
      done.set(t.trial.id, part.result);
      continue;
    }
    let resume: TrainerResume | undefined;
    if (part?.kind === 'epoch') {
      const dir = join(scratch, 'resume', t.trial.id);
      await mkdir(dir, { recursive: true });
      for (const [name, bytes] of Object.entries(part.files)) await writeFile(join(dir, name), bytes);
      resume = { ...part.state, model: dir };
    }
    const gpu = ctx.gpus.length ? ctx.gpus[i % ctx.gpus.length]! : null;
    trials.push({
      trial: t.trial,
      slot: { index: i, gpu },
      env: trainerEnv(gpu),
      trainer: {
        ...t.trainer,
        ...(t.saveModel ? { save: join(scratch, t.trial.id) } : {}),
        ...(payload.checkpoints === false ? {} : { checkpoint: join(scratch, 'checkpoints', t.trial.id) }),
        ...(resume ? { resume } : {}),
      },
    });
  }
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
    // The trainer waits while its checkpoint is stored: what a later attempt resumes from.
    checkpoint: async (trialId, ck) => {
      const files: Record<string, Uint8Array> = {};
      for (const name of await readdir(ck.model)) if (name !== STATE_JSON) files[name] = await readFile(join(ck.model, name));
      const { model: _dir, ...state } = ck;
      await checkpoints.set(trialId, { kind: 'epoch', state, files });
    },
    log: (m) => ctx.log(m),
  };
  const results = trials.length
    ? await engineDataPath({ build: (graph, w) => build(graph, w, payload.args), isolation: payload.isolation, run: { signal: ctx.signal, handleSigint: false } }).runWave({ index: payload.wave, trials }, events)
    : [];
  const os = payload.trials.some((t) => t.saveModel) && results.length ? await ctx.cluster.objectStore('models') : undefined;
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
    done.set(r.trialId!, res);
  }
  // Kept until the item's result is recorded: an attempt after a crash from here on runs nothing again.
  if (results.length) await Promise.all(results.map((r) => checkpoints.set(r.trialId!, { kind: 'result', result: done.get(r.trialId!)! }))).catch((err) => ctx.log(`cannot save the trials' results in the checkpoint: ${(err as Error).message}`));
  return { results: payload.trials.map((t) => done.get(t.trial.id)).filter((r) => r !== undefined) };
}
