// Work queues on JetStream: items of work (trials of a sweep, shards of a preprocessing job, JSON
// pipelines) published to a work-queue stream, pulled by agents, their results recorded once in a
// KV bucket, their progress streamed back.
//
// Per project (see Namespace):
//   stream  RP_<p>_WORK     rp.<p>.work.<cpu|gpu>.<item id>   work-queue retention; consumers `cpu`, `gpu`
//   stream  RP_<p>_EVENTS   rp.<p>.events.<item id>           progress and metrics (limits retention)
//   KV      rp_<p>_results  <item id> -> WorkResult           written once (create), first result wins
//   KV      rp_<p>_jobs     <job id>  -> JobRecord            what a submitter asked for
//   KV      rp_<p>_agents   <agent>   -> AgentInfo            capacity and load; entries expire (TTL)
//   objects rp_<p>_checkpoints <item id>                       latest checkpoint of a running item
//
// Ids are content hashes: an item's id is the hash of what it runs, a job's the hash of its items,
// so submitting the same work again re-attaches to it instead of starting it over.
import { AckPolicy, DeliverPolicy, RetentionPolicy, type ConsumerInfo } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { nanos } from '@nats-io/transport-node';
import { hostname } from 'node:os';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson, sha256 } from '../cache/hash.js';
import { checkName, useConnection, type ClusterConnection, type ClusterTarget } from './connect.js';
import { ClusterError, WorkError } from './errors.js';

/** One piece of work. Its id is the hash of `run`, `payload` and `gpus`. */
export interface WorkSpec<P = unknown> {
  /**
   * The code: `module#export`. `module` is a path relative to the agent's root directory (the
   * project checkout on each machine: `./steps.js`), an absolute path or file URL (turned into a
   * root-relative path when it lies under the submitter's root), or a package name; or a
   * built-in work type `ringpipe:<name>` (see {@link registerWorkType}).
   */
  run: string;
  /** Argument of the function: JSON values. */
  payload?: P;
  /** GPUs the item needs on one agent (default 0: a CPU item). */
  gpus?: number;
  /** Name shown in tables (default: the item id's first characters). */
  label?: string;
  /**
   * Seconds the item's function may run on an agent (from its call, once its process has started and
   * loaded its code: start-up is bounded by the agent's `startLimit`, default 60 s). Past it, its `ctx.signal`
   * is aborted; code still running the agent's `killGrace` later (default 3 s) is killed with every
   * process it started (the item runs in a process group of its own); then the item is recorded as
   * failed with `ERR_WORK_TIMEOUT` (naming the item, the agent and the limit), not retried, and its
   * slot goes to the next item. Default: no limit. Not part of the item's id.
   */
  timeout?: number;
}

/** What an item gave, recorded once. */
export interface WorkResult<R = unknown> {
  /** The item's id. */
  id: string;
  /** `ok`: the function returned `value`; `failed`: it threw `error`. */
  status: 'ok' | 'failed';
  /** The function's return value (JSON). */
  value?: R;
  /** Why it failed. */
  error?: { name: string; message: string; code?: string; stack?: string };
  /** The item's label. */
  label?: string;
  /** Agent that ran it, its host, and the delivery attempt (1 = first). */
  agent: string;
  host: string;
  attempt: number;
  /** ISO times and duration of the run that produced this result. */
  startedAt: string;
  finishedAt: string;
  seconds: number;
}

/** A progress event of an item, streamed back to the submitter. */
export interface WorkEvent {
  /** The item's id. */
  id: string;
  /** `started`, `progress` (what the item reported, e.g. one epoch's metrics), `checkpoint`, `done`, `failed`, `requeued`. */
  type: 'started' | 'progress' | 'checkpoint' | 'done' | 'failed' | 'requeued';
  /** Delivery attempt that sent it (a redelivered item starts a new attempt). */
  attempt: number;
  /** Agent that sent it. */
  agent: string;
  /** Milliseconds since the epoch. */
  time: number;
  /** What was reported. */
  data?: unknown;
}

/** A job as recorded in the jobs bucket. */
export interface JobRecord {
  id: string;
  name: string;
  items: { id: string; label: string }[];
  createdAt: string;
  submittedFrom: string;
}

/** The message an agent pulls. */
export interface WorkMessage {
  id: string;
  job: string;
  spec: WorkSpec;
  submittedAt: string;
}

/** Options of the work queue's resources (created by whoever comes first: submitter or agent). */
export interface WorkQueueOptions {
  /**
   * Milliseconds an agent may hold an item without a sign of life before it is redelivered to
   * another agent (agents extend it while they work, so this bounds the time lost to a dead agent).
   * Default 30 000. Changing it updates the consumers.
   */
  ackWait?: number;
  /** Seconds agent entries live without a heartbeat (default 15). Fixed when the bucket is created. */
  agentTtl?: number;
}

/** The id of an item: sha256 of its canonical JSON (`run`, `payload`, `gpus`), 40 hex digits. */
export function workId(spec: WorkSpec): string {
  return sha256(canonicalJson({ run: spec.run, payload: spec.payload ?? null, gpus: spec.gpus ?? 0 })).slice(0, 40);
}

/** The id of a job: hash of its name and its items' ids. */
export function jobId(name: string, itemIds: readonly string[]): string {
  return sha256(canonicalJson({ name, items: itemIds })).slice(0, 24);
}

/**
 * Makes a spec portable: an absolute module path (or file URL) under `root` becomes `./relative`,
 * so agents resolve it against their own checkout.
 */
export function portableSpec(spec: WorkSpec, root: string = process.cwd()): WorkSpec {
  if (spec.run.startsWith('ringpipe:')) return spec;
  const hash = spec.run.lastIndexOf('#');
  if (hash <= 0 || hash === spec.run.length - 1) {
    throw new WorkError('ERR_WORK_INVALID', `work item run '${spec.run}' must be 'module#export' or 'ringpipe:<type>'`);
  }
  return { ...spec, run: `${portablePath(spec.run.slice(0, hash), root)}#${spec.run.slice(hash + 1)}` };
}

/** An absolute path (or file URL) under `root` as `./relative`, for agents to resolve against their root; other paths as given. */
export function portablePath(path: string, root: string = process.cwd()): string {
  const p = path.startsWith('file:') ? fileURLToPath(path) : path;
  if (!isAbsolute(p)) return p;
  const rel = relative(resolve(root), p);
  return !rel.startsWith('..') && !isAbsolute(rel) ? `./${rel.split(sep).join('/')}` : p;
}

/** Handles to one project's work-queue resources. */
export class WorkQueue {
  private constructor(
    readonly conn: ClusterConnection,
    readonly results: KV,
    readonly jobs: KV,
    readonly agents: KV,
    /** Milliseconds of the consumers' ack wait. */
    readonly ackWait: number,
  ) {}

  /** Stream and consumers' names and subjects. */
  static names(conn: ClusterConnection) {
    const n = conn.names;
    return {
      work: n.stream('WORK'),
      events: n.stream('EVENTS'),
      /** The subject an item of class `cls` is published on. */
      workSubject: (cls: 'cpu' | 'gpu', id: string) => n.subject('work', cls, id),
      /** The subject of an item's progress events. */
      eventSubject: (id: string) => n.subject('events', id),
      eventsAll: n.subject('events', '>'),
    };
  }

  /** Creates (or opens) the streams, consumers, buckets and object store of the project's work queue. */
  static async open(conn: ClusterConnection, options: WorkQueueOptions = {}): Promise<WorkQueue> {
    const names = WorkQueue.names(conn);
    // Independent resources are created at once (on a fresh replicated cluster each takes a while).
    const work = conn.ensureStream({
      name: names.work,
      subjects: [conn.names.subject('work', '>')],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: nanos(10 * 60_000),
    });
    const consumers = work.then(() =>
      Promise.all((['cpu', 'gpu'] as const).map((cls) => ensureConsumer(conn, names.work, cls, conn.names.subject('work', cls, '>'), options.ackWait))),
    );
    const [, [cpu], results, jobs, agents] = await Promise.all([
      conn.ensureStream({ name: names.events, subjects: [names.eventsAll], max_age: nanos(14 * 24 * 3600_000) }, { update: false }),
      consumers,
      conn.kv('results', { history: 1 }),
      conn.kv('jobs', { history: 1 }),
      conn.kv('agents', { history: 1, ttl: (options.agentTtl ?? 15) * 1000 }),
    ]);
    const ackWait = Math.round((cpu.config.ack_wait ?? nanos(30_000)) / 1e6);
    return new WorkQueue(conn, results, jobs, agents, ackWait);
  }

  /** The recorded result of an item, or undefined. */
  async result(id: string): Promise<WorkResult | undefined> {
    const e = await this.conn.retry(`cannot read result ${id}`, `${this.conn.names.bucket('results')}/${id}`, () => this.results.get(id));
    return e && e.operation === 'PUT' ? e.json<WorkResult>() : undefined;
  }

  /**
   * Records a result unless one exists. Returns true when this call recorded it, false when a
   * result was there already (the item ran twice: the first result stands).
   */
  async recordResult(result: WorkResult): Promise<boolean> {
    const data = JSON.stringify(result);
    if (data.length > this.conn.maxPayload - 4096) {
      throw new WorkError('ERR_WORK_INVALID', `the result of item ${result.id} is ${data.length} bytes; results must stay under the server's max_payload (${this.conn.maxPayload}): put large outputs in the shared cache or a checkpoint`, { server: this.conn.server(), subject: `results/${result.id}` });
    }
    return this.conn.retry(`cannot record the result of ${result.id}`, `${this.conn.names.bucket('results')}/${result.id}`, async () => {
      try {
        await this.results.create(result.id, data);
        return true;
      } catch (err) {
        if (/wrong last sequence|key exists/i.test(String((err as Error).message))) return false;
        throw err;
      }
    }, 60_000);
  }

  /** Publishes a progress event of an item (awaits the server's acknowledgement). */
  async event(event: WorkEvent): Promise<void> {
    const subject = WorkQueue.names(this.conn).eventSubject(event.id);
    await this.conn.retry(`cannot publish an event of ${event.id}`, subject, () => this.conn.js.publish(subject, JSON.stringify(event)), 30_000);
  }

  /** Consumer state: items waiting and items being worked on. */
  async counts(): Promise<{ queued: number; running: number }> {
    const names = WorkQueue.names(this.conn);
    let queued = 0, running = 0;
    for (const cls of ['cpu', 'gpu']) {
      const ci = await this.conn.retry('cannot read the work queue', names.work, () => this.conn.jsm.consumers.info(names.work, cls));
      queued += ci.num_pending;
      running += ci.num_ack_pending;
    }
    return { queued, running };
  }
}

async function ensureConsumer(conn: ClusterConnection, stream: string, name: string, filter: string, ackWait: number | undefined): Promise<ConsumerInfo> {
  return conn.retry(`cannot create consumer ${name}`, stream, async () => {
    let info: ConsumerInfo | undefined;
    try {
      info = await conn.jsm.consumers.info(stream, name);
    } catch (err) {
      if (!/not found/i.test(String((err as Error).message))) throw err;
    }
    if (!info) {
      return conn.jsm.consumers.add(stream, {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        filter_subject: filter,
        ack_wait: nanos(ackWait ?? 30_000),
        max_deliver: -1,
        max_ack_pending: 10_000,
      });
    }
    if (ackWait !== undefined && info.config.ack_wait !== nanos(ackWait)) {
      return conn.jsm.consumers.update(stream, name, { ack_wait: nanos(ackWait) });
    }
    return info;
  });
}

/** Options of {@link submitJob}. */
export interface SubmitOptions extends WorkQueueOptions {
  /** Name of the job (letters, digits, `-`; default `job`); part of its id. */
  name?: string;
  /** Run again the items whose recorded result is a failure (default false: failures are results). */
  retryFailed?: boolean;
  /** Root that relative module paths are made against (default: the current directory). */
  root?: string;
}

/**
 * Where an item of a job stands: `missing` means neither queued, running nor done (its submitter
 * stopped before publishing it): submitting the job again publishes it.
 */
export type ItemState = 'done' | 'failed' | 'queued' | 'running' | 'missing';

/**
 * A submitted job. Submitting the same items again (same name) gives the same job and re-attaches:
 * items done are not run again, items in flight are not published again.
 */
export class Job {
  private closed = false;
  private constructor(
    readonly queue: WorkQueue,
    private readonly owned: boolean,
    readonly record: JobRecord,
    /** The job's items, in order, with their portable specs. */
    readonly items: { id: string; spec: WorkSpec; label: string }[],
    /** How many items were already done or in flight when this submit ran. */
    readonly reattached: number,
    /** How many items this submit published. */
    readonly published: number,
  ) {}

  /** The job's id. */
  get id(): string {
    return this.record.id;
  }

  /** Publishes the items not done and not in flight; see {@link submitJob}. */
  static async submit(target: ClusterTarget, specs: readonly WorkSpec[], options: SubmitOptions = {}): Promise<Job> {
    const { conn, owned } = await useConnection(target);
    try {
      const name = checkName('job name', options.name ?? 'job');
      if (!specs.length) throw new WorkError('ERR_WORK_INVALID', `job '${name}' has no work items`);
      const queue = await WorkQueue.open(conn, options);
      const names = WorkQueue.names(conn);
      const items = specs.map((s) => {
        if (s.gpus !== undefined && (!Number.isInteger(s.gpus) || s.gpus < 0)) throw new WorkError('ERR_WORK_INVALID', `work item gpus must be an integer >= 0, got ${s.gpus}`);
        if (s.timeout !== undefined && !(s.timeout > 0)) throw new WorkError('ERR_WORK_INVALID', `work item timeout must be a number of seconds > 0, got ${s.timeout}`);
        const spec = portableSpec(s, options.root);
        const id = workId(spec);
        return { id, spec, label: spec.label ?? id.slice(0, 10) };
      });
      const ids = items.map((i) => i.id);
      if (new Set(ids).size !== ids.length) throw new WorkError('ERR_WORK_INVALID', `job '${name}' lists the same work item twice`);
      const id = jobId(name, ids);
      const existing = await conn.retry(`cannot read job ${id}`, conn.names.bucket('jobs'), () => queue.jobs.get(id));
      const record: JobRecord = existing?.operation === 'PUT'
        ? existing.json<JobRecord>()
        : { id, name, items: items.map((i) => ({ id: i.id, label: i.label })), createdAt: new Date().toISOString(), submittedFrom: hostname() };
      if (existing?.operation !== 'PUT') await conn.retry(`cannot record job ${id}`, conn.names.bucket('jobs'), () => queue.jobs.put(id, JSON.stringify(record)));
      let reattached = 0, published = 0;
      for (const item of items) {
        let result = await queue.result(item.id);
        let msgId = item.id;
        if (result?.status === 'failed' && options.retryFailed) {
          await conn.retry(`cannot clear result ${item.id}`, conn.names.bucket('results'), () => queue.results.purge(item.id));
          msgId = `${item.id}:retry:${Date.now()}`;
          result = undefined;
        }
        if (result) {
          reattached++;
          continue;
        }
        const subject = names.workSubject(item.spec.gpus ? 'gpu' : 'cpu', item.id);
        if (msgId === item.id && (await inStream(conn, names.work, subject))) {
          reattached++;
          continue;
        }
        // Not queued: it was never published, or it finished between the two checks above.
        if (msgId === item.id && (await queue.result(item.id))) {
          reattached++;
          continue;
        }
        const msg: WorkMessage = { id: item.id, job: id, spec: item.spec, submittedAt: new Date().toISOString() };
        const data = JSON.stringify(msg);
        if (data.length > conn.maxPayload - 1024) {
          throw new WorkError('ERR_WORK_INVALID', `work item ${item.label} is ${data.length} bytes, over the server's max_payload (${conn.maxPayload}): pass large inputs through the shared cache or a link`, { server: conn.server(), subject });
        }
        const ack = await conn.retry(`cannot publish work item ${item.label}`, subject, () => conn.js.publish(subject, data, { msgID: msgId }));
        if (ack.duplicate) reattached++;
        else published++;
      }
      return new Job(queue, owned, record, items, reattached, published);
    } catch (err) {
      if (owned) await conn.close();
      throw err;
    }
  }

  /** Current state of every item. */
  async states(): Promise<Map<string, ItemState>> {
    const conn = this.queue.conn;
    const names = WorkQueue.names(conn);
    const running = await runningItems(this.queue);
    const out = new Map<string, ItemState>();
    for (const item of this.items) {
      const r = await this.queue.result(item.id);
      if (r) out.set(item.id, r.status === 'ok' ? 'done' : 'failed');
      else if (running.has(item.id)) out.set(item.id, 'running');
      else out.set(item.id, (await inStream(conn, names.work, names.workSubject(item.spec.gpus ? 'gpu' : 'cpu', item.id))) ? 'queued' : 'missing');
    }
    return out;
  }

  /**
   * Waits for every item's result and returns them in the order of the items. `onEvent` receives
   * progress events (replayed from the job's start when re-attaching) and each result as it lands.
   */
  async wait(options: {
    onEvent?: (event: WorkEvent) => void;
    onResult?: (result: WorkResult, index: number) => void;
    signal?: AbortSignal;
    /** Milliseconds to wait at most (default: until done or cancelled). */
    timeout?: number;
    /** Milliseconds between look-ups of missing results, besides the watch (default 5 000). */
    pollMs?: number;
  } = {}): Promise<WorkResult[]> {
    const conn = this.queue.conn;
    const index = new Map(this.items.map((it, i) => [it.id, i]));
    const results = new Array<WorkResult | undefined>(this.items.length);
    let left = this.items.length;
    let finish!: () => void;
    let fail!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      finish = res;
      fail = rej;
    });
    const stops: (() => void)[] = [];
    // Results: a watch of the results bucket (every existing value, then updates).
    const watch = await conn.retry('cannot watch results', conn.names.bucket('results'), () => this.queue.results.watch({ ignoreDeletes: true }));
    stops.push(() => watch.stop());
    void (async () => {
      for await (const e of watch) {
        const i = index.get(e.key);
        if (i === undefined || results[i] || e.operation !== 'PUT') continue;
        const r = e.json<WorkResult>();
        results[i] = r;
        options.onResult?.(r, i);
        if (--left === 0) finish();
      }
    })().catch(fail);
    // Progress events since the job was created.
    if (options.onEvent) {
      const names = WorkQueue.names(conn);
      const start = new Date(Date.parse(this.record.createdAt) - 5_000).toISOString();
      const consumer = await conn.retry('cannot read events', names.events, () =>
        conn.js.consumers.get(names.events, { filter_subjects: names.eventsAll, deliver_policy: DeliverPolicy.StartTime, opt_start_time: start }),
      );
      const events = await consumer.consume();
      stops.push(() => events.stop());
      const onEvent = options.onEvent;
      void (async () => {
        for await (const m of events) {
          const ev = m.json<WorkEvent>();
          if (index.has(ev.id)) onEvent(ev);
        }
      })().catch(() => undefined);
    }
    // Belt and braces: a watch can stall while its server fails over; look up missing results now and then.
    let polling = false;
    const poll = setInterval(() => {
      if (polling) return;
      polling = true;
      void (async () => {
        for (let i = 0; i < this.items.length; i++) {
          if (results[i]) continue;
          const r = await this.queue.result(this.items[i]!.id).catch(() => undefined);
          if (r && !results[i]) {
            results[i] = r;
            options.onResult?.(r, i);
            if (--left === 0) finish();
          }
        }
      })().finally(() => (polling = false));
    }, options.pollMs ?? 5_000);
    stops.push(() => clearInterval(poll));
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => fail(new ClusterError('ERR_CANCELLED', `waiting for job '${this.record.name}' was cancelled (its items go on running)`));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    // The servers stayed unreachable past the connection's bound: say so rather than wait silently.
    const onLost = () => fail(conn.lost.reason);
    conn.lost.addEventListener('abort', onLost, { once: true });
    if (conn.lost.aborted) onLost();
    if (options.timeout !== undefined) {
      timer = setTimeout(() => {
        const missing = this.items.filter((_, i) => !results[i]).map((i) => i.label);
        fail(new WorkError('ERR_WORK_TIMEOUT', `job '${this.record.name}' (${this.id}): ${missing.length} of ${this.items.length} item(s) not done after ${options.timeout! / 1000} s (server ${conn.server()}): ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}`, { server: conn.server(), subject: WorkQueue.names(conn).work }));
      }, options.timeout);
    }
    try {
      await done;
      return results as WorkResult[];
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      conn.lost.removeEventListener('abort', onLost);
      for (const s of stops) s();
    }
  }

  /** Closes the connection if the job opened it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.owned) await this.queue.conn.close();
  }
}

/** Submits work items as a job (see {@link Job.submit}). */
export function submitJob(target: ClusterTarget, specs: readonly WorkSpec[], options: SubmitOptions = {}): Promise<Job> {
  return Job.submit(target, specs, options);
}

/** Submits `specs`, waits for every result, closes; results in the order of `specs`. */
export async function runJob(
  target: ClusterTarget,
  specs: readonly WorkSpec[],
  options: SubmitOptions & Parameters<Job['wait']>[0] = {},
): Promise<WorkResult[]> {
  const job = await submitJob(target, specs, options);
  try {
    return await job.wait(options);
  } finally {
    await job.close();
  }
}

async function inStream(conn: ClusterConnection, stream: string, subject: string): Promise<boolean> {
  return conn.retry('cannot look up a work item', subject, async () => {
    try {
      return (await conn.jsm.streams.getMessage(stream, { last_by_subj: subject })) !== null;
    } catch (err) {
      if (/no message found|not found/i.test(String((err as Error).message))) return false;
      throw err;
    }
  });
}

/** Ids of the items the live agents say they are running. */
async function runningItems(queue: WorkQueue): Promise<Set<string>> {
  const out = new Set<string>();
  for (const a of await listAgents(queue)) for (const r of a.running) out.add(r.id);
  return out;
}

/** An agent as it announces itself. */
export interface AgentInfo {
  name: string;
  host: string;
  pid: number;
  /** Items it runs at a time. */
  slots: number;
  /** CUDA devices it has. */
  gpus: number[];
  /** CPU cores of its machine. */
  cores: number;
  /** Items it runs now. */
  running: { id: string; label: string; job: string; attempt: number; startedAt: string; gpus: number[] }[];
  /** Items it finished (ok, failed) since it started. */
  done: number;
  failed: number;
  /** 1-minute load average of its machine. */
  load: number;
  startedAt: string;
  heartbeatAt: string;
  version: string;
}

/** The agents whose announcement has not expired. */
export async function listAgents(queue: WorkQueue): Promise<AgentInfo[]> {
  const out: AgentInfo[] = [];
  for (const k of await queue.conn.kvKeys('agents')) {
    const e = await queue.agents.get(k).catch(() => null);
    if (e?.operation === 'PUT') out.push(e.json<AgentInfo>());
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
