// The agent: one per machine. It announces its capacity and liveness, pulls only the work it has
// room for, runs it here (the code uses the local engine: rings, trainers bound to this machine's
// GPUs), reports progress, records the result once, and only then acknowledges the item.
//
// Faults: while an item runs the agent tells the server it is alive (`working`), so a dead agent's
// items are redelivered after the consumers' ack wait; an item whose result exists already is
// acknowledged without running again; a stopped agent gives its unfinished items back at once.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, hostname, loadavg } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { packageVersion } from '../cache/package-root.js';
import { ClusterConnection, type ClusterOptions } from './connect.js';
import { WorkError } from './errors.js';
import { packValue, unpackValue } from './frame.js';
import { builtinWorkType, workTypes } from './registry.js';
import './builtins.js';
import { WorkQueue, type AgentInfo, type WorkEvent, type WorkMessage, type WorkQueueOptions, type WorkResult, type WorkSpec } from './work.js';

/** A saved checkpoint of an item. */
export interface Checkpoint<T = unknown> {
  /** What was saved (any record value: JSON, bytes, tensors, structured values). */
  value: T;
  /** What was said about it (e.g. `{ epoch: 3 }`). */
  info: Record<string, unknown>;
  /** Attempt and agent that saved it, and when. */
  attempt: number;
  agent: string;
  savedAt: string;
}

/** What an item's function gets besides its payload. */
export interface WorkContext {
  /** The item's id and label, and the job that published it. */
  readonly id: string;
  readonly label: string;
  readonly job: string;
  /** Delivery attempt: 1 the first time, more after an agent died or gave it back. */
  readonly attempt: number;
  /** Name of the agent running it. */
  readonly agent: string;
  /** CUDA devices assigned to this item (as many as it asked for). */
  readonly gpus: number[];
  /** Environment for processes the item starts (`CUDA_VISIBLE_DEVICES` set to its GPUs, `-1` for none). */
  readonly env: Record<string, string>;
  /** Aborted when the agent stops and gives the item back. */
  readonly signal: AbortSignal;
  /** The agent's connection (same project): for links and the shared cache. */
  readonly cluster: ClusterConnection;
  /** The agent's root directory (the project checkout relative paths refer to). */
  readonly root: string;
  /** Streams progress to the submitter (e.g. one epoch's metrics). JSON values. */
  report(data: unknown): Promise<void>;
  /** The item's checkpoint in the object store: the last one saved by any attempt. */
  readonly checkpoint: {
    save(value: unknown, info?: Record<string, unknown>): Promise<void>;
    load<T = unknown>(): Promise<Checkpoint<T> | undefined>;
  };
  /** A line in the agent's log. */
  log(message: string): void;
}

/** The code of a work item: `(payload, ctx) => result` (JSON). */
export type WorkFunction<P = any, R = unknown> = (payload: P, ctx: WorkContext) => R | Promise<R>;


/** Options of an agent. */
export interface AgentOptions extends ClusterOptions, WorkQueueOptions {
  /** Name in status tables (letters, digits, `-`, `.`; default `<host>-<pid>`). */
  name?: string;
  /** CPU items run at a time (default: the number of cores). */
  slots?: number;
  /** CUDA devices this agent offers to GPU items (default none). */
  gpus?: readonly number[];
  /** Directory relative module paths of work items are resolved against: the project checkout (default: current directory). */
  root?: string;
  /** Milliseconds between announcements (default 5 000). */
  heartbeat?: number;
  /** Stop after this many milliseconds with nothing to do (default: never). */
  idleExit?: number;
  /** Stop after finishing this many items (default: never). */
  maxItems?: number;
  /** On stop, milliseconds running items may take to finish before they are given back (default 10 000). */
  grace?: number;
  /** Stops the agent (as {@link Agent.stop}). */
  signal?: AbortSignal;
  /** Log lines (default: stderr). */
  log?: (line: string) => void;
}

/** What an agent did. */
export interface AgentSummary {
  name: string;
  /** Items it ran to a result (ok / failed). */
  done: number;
  failed: number;
  /** Items it skipped because their result existed already. */
  duplicates: number;
  /** Items it gave back unfinished. */
  requeued: number;
  seconds: number;
}

interface Running {
  id: string;
  label: string;
  job: string;
  attempt: number;
  startedAt: string;
  gpus: number[];
  controller: AbortController;
  msg: JsMsg;
  done: Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Resolves a `run` spec to its function (see {@link WorkSpec.run}). */
export async function resolveWork(run: string, root: string): Promise<WorkFunction> {
  if (run.startsWith('ringpipe:')) {
    const load = builtinWorkType(run.slice('ringpipe:'.length));
    if (!load) throw new WorkError('ERR_WORK_INVALID', `unknown work type '${run}' (known: ${workTypes().map((k) => `ringpipe:${k}`).join(', ') || 'none'})`);
    return load();
  }
  const hash = run.lastIndexOf('#');
  const mod = run.slice(0, hash), exp = run.slice(hash + 1);
  let url: string;
  if (mod.startsWith('file:')) url = mod;
  else if (isAbsolute(mod) || mod.startsWith('.')) {
    const path = isAbsolute(mod) ? mod : resolve(root, mod);
    // A checkout run from source (tsx) has ./x.ts where a build has ./x.js.
    const found = [path, path.replace(/\.js$/, '.ts'), path.replace(/\.mjs$/, '.mts')].find((p) => existsSync(p));
    if (!found) throw new WorkError('ERR_WORK_INVALID', `work code ${mod} does not exist under ${root} (agents resolve relative modules against their --root)`);
    url = pathToFileURL(found).href;
  } else {
    try {
      url = pathToFileURL(createRequire(join(root, 'package.json')).resolve(mod)).href;
    } catch {
      url = mod;
    }
  }
  const m = (await import(url)) as Record<string, unknown>;
  const fn = m[exp];
  if (typeof fn !== 'function') throw new WorkError('ERR_WORK_INVALID', `${mod} has no function export '${exp}'`);
  return fn as WorkFunction;
}

function errorOf(err: unknown): NonNullable<WorkResult['error']> {
  const e = err as { name?: string; message?: string; code?: unknown; stack?: string };
  return {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(e?.stack ? { stack: e.stack.split('\n').slice(0, 12).join('\n') } : {}),
  };
}

/** An agent: pulls work items of one project and runs them. Start with {@link Agent.start}. */
export class Agent {
  readonly name: string;
  private readonly slots: number;
  private readonly gpus: number[];
  private readonly usedGpus = new Set<number>();
  private readonly running = new Map<string, Running>();
  private stopping = false;
  private counts = { done: 0, failed: 0, duplicates: 0, requeued: 0 };
  private readonly started = Date.now();
  private readonly startedAt = new Date().toISOString();
  private waiters: (() => void)[] = [];
  private announceTimer?: NodeJS.Timeout;
  private checkpoints?: Promise<ObjectStore>;
  private lastActivity = Date.now();
  /** Resolves when the agent has stopped. */
  readonly finished: Promise<AgentSummary>;
  private readonly log: (line: string) => void;

  private constructor(
    readonly queue: WorkQueue,
    private readonly options: AgentOptions,
  ) {
    this.name = options.name ?? `${hostname().replace(/[^A-Za-z0-9-]/g, '-')}-${process.pid}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$/.test(this.name)) throw new WorkError('ERR_WORK_INVALID', `agent name '${this.name}' is not valid: use letters, digits, '-' and '.'`);
    this.slots = options.slots ?? availableParallelism();
    if (!Number.isInteger(this.slots) || this.slots < 0) throw new WorkError('ERR_WORK_INVALID', `slots must be an integer >= 0, got ${options.slots}`);
    this.gpus = [...(options.gpus ?? [])];
    const out = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.log = (line) => out(`[agent ${this.name}] ${line}`);
    this.finished = this.main();
    this.finished.catch(() => undefined);
  }

  /** Connects, creates the work queue's resources if needed, announces itself and starts pulling. */
  static async start(options: AgentOptions): Promise<Agent> {
    const conn = await ClusterConnection.open({ name: `ringpipe-agent ${options.name ?? hostname()}`, ...options });
    try {
      const queue = await WorkQueue.open(conn, options);
      const agent = new Agent(queue, options);
      options.signal?.addEventListener('abort', () => void agent.stop(), { once: true });
      if (options.signal?.aborted) void agent.stop();
      return agent;
    } catch (err) {
      await conn.close();
      throw err;
    }
  }

  private get conn(): ClusterConnection {
    return this.queue.conn;
  }

  /** Stops pulling, lets running items finish (up to `grace`), gives the rest back; resolves when stopped. */
  stop(): Promise<AgentSummary> {
    if (!this.stopping) {
      this.stopping = true;
      this.wake();
    }
    return this.finished;
  }

  /** What the agent announces. */
  info(): AgentInfo {
    return {
      name: this.name,
      host: hostname(),
      pid: process.pid,
      slots: this.slots,
      gpus: this.gpus,
      cores: availableParallelism(),
      running: [...this.running.values()].map((r) => ({ id: r.id, label: r.label, job: r.job, attempt: r.attempt, startedAt: r.startedAt, gpus: r.gpus })),
      done: this.counts.done,
      failed: this.counts.failed,
      load: loadavg()[0] ?? 0,
      startedAt: this.startedAt,
      heartbeatAt: new Date().toISOString(),
      version: packageVersion(),
    };
  }

  private async announce(): Promise<void> {
    try {
      await this.conn.retry('announce', this.conn.names.bucket('agents'), () => this.queue.agents.put(this.name, JSON.stringify(this.info())), 5_000);
    } catch (err) {
      this.log(`cannot announce: ${(err as Error).message}`);
    }
  }

  /** Wakes every loop waiting for a change (an item finished, the agent stops). */
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next change, or after `ms` at the latest. */
  private change(ms = 1_000): Promise<void> {
    return Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(ms)]);
  }

  private async main(): Promise<AgentSummary> {
    const hb = this.options.heartbeat ?? 5_000;
    await this.announce();
    this.announceTimer = setInterval(() => void this.announce(), hb);
    this.log(`pulling work for project '${this.conn.names.project}' from ${this.conn.server()}: ${this.slots} slot(s), GPUs [${this.gpus.join(', ')}]`);
    try {
      const names = WorkQueue.names(this.conn);
      const [cpu, gpu] = await Promise.all(['cpu', 'gpu'].map((c) => this.conn.retry(`cannot open consumer ${c}`, names.work, () => this.conn.js.consumers.get(names.work, c))));
      const loops = [this.pullLoop(cpu!, 'cpu')];
      if (this.gpus.length) loops.push(this.pullLoop(gpu!, 'gpu'));
      await Promise.all(loops);
      await this.drain();
    } finally {
      clearInterval(this.announceTimer);
      await this.queue.agents.delete(this.name).catch(() => undefined);
      await this.conn.close();
    }
    const summary = { name: this.name, ...this.counts, seconds: (Date.now() - this.started) / 1000 };
    this.log(`stopped: ${summary.done} done, ${summary.failed} failed, ${summary.duplicates} already done, ${summary.requeued} given back`);
    return summary;
  }

  private room(cls: 'cpu' | 'gpu'): number {
    if (cls === 'cpu') return this.slots - [...this.running.values()].filter((r) => !r.gpus.length).length;
    return this.gpus.length - this.usedGpus.size;
  }

  private finishedEnough(): boolean {
    const max = this.options.maxItems;
    return max !== undefined && this.counts.done + this.counts.failed + this.counts.duplicates >= max;
  }

  private async pullLoop(consumer: Consumer, cls: 'cpu' | 'gpu'): Promise<void> {
    while (!this.stopping) {
      if (this.finishedEnough()) {
        void this.stop();
        break;
      }
      const idle = this.options.idleExit;
      if (idle !== undefined && this.running.size === 0 && Date.now() - this.lastActivity > idle) {
        this.log(`idle for ${Math.round(idle / 1000)} s: stopping`);
        void this.stop();
        break;
      }
      const room = this.room(cls);
      if (room <= 0) {
        await this.change();
        continue;
      }
      // Leave room for the items that will end the run (maxItems): do not take more than that.
      const max = this.options.maxItems !== undefined ? Math.min(room, this.options.maxItems - this.counts.done - this.counts.failed - this.counts.duplicates - this.running.size) : room;
      if (max <= 0) {
        await this.change();
        continue;
      }
      try {
        const batch = await consumer.fetch({ max_messages: cls === 'gpu' ? 1 : max, expires: 1_000 });
        for await (const msg of batch) {
          if (this.stopping) {
            msg.nak();
            continue;
          }
          this.lastActivity = Date.now();
          await this.begin(msg, cls);
        }
      } catch (err) {
        if (this.stopping) break;
        this.log(`cannot pull work: ${this.conn.error(err, 'fetch', WorkQueue.names(this.conn).work).message}`);
        await sleep(1_000);
      }
    }
  }

  /** Takes an item: reserves its GPUs (waiting for them if needed) and starts it. */
  private async begin(msg: JsMsg, cls: 'cpu' | 'gpu'): Promise<void> {
    let wm: WorkMessage;
    try {
      wm = msg.json<WorkMessage>();
      if (typeof wm.id !== 'string' || typeof wm.spec?.run !== 'string') throw new Error('not a work message');
    } catch (err) {
      this.log(`dropping a malformed work message on ${msg.subject}: ${(err as Error).message}`);
      msg.term();
      return;
    }
    const need = cls === 'gpu' ? Math.max(1, wm.spec.gpus ?? 1) : 0;
    if (need > this.gpus.length) {
      this.log(`item ${wm.spec.label ?? wm.id} needs ${need} GPUs, this agent has ${this.gpus.length}: leaving it to another agent`);
      msg.nak(5_000);
      return;
    }
    const keepAlive = setInterval(() => msg.working(), Math.max(500, Math.floor(this.queue.ackWait / 3)));
    while (this.gpus.length - this.usedGpus.size < need && !this.stopping) {
      await this.change();
    }
    if (this.stopping) {
      clearInterval(keepAlive);
      msg.nak();
      return;
    }
    const gpus = this.gpus.filter((g) => !this.usedGpus.has(g)).slice(0, need);
    for (const g of gpus) this.usedGpus.add(g);
    const r: Running = {
      id: wm.id,
      label: wm.spec.label ?? wm.id.slice(0, 10),
      job: wm.job,
      attempt: msg.info.deliveryCount,
      startedAt: new Date().toISOString(),
      gpus,
      controller: new AbortController(),
      msg,
      done: Promise.resolve(),
    };
    this.running.set(r.id, r);
    r.done = this.execute(r, wm.spec)
      .catch((err) => this.log(`item ${r.label}: ${(err as Error).message}`))
      .finally(() => {
        clearInterval(keepAlive);
        for (const g of gpus) this.usedGpus.delete(g);
        this.running.delete(r.id);
        this.lastActivity = Date.now();
        void this.announce();
        this.wake();
      });
    void this.announce();
  }

  private event(r: Running, type: WorkEvent['type'], data?: unknown): Promise<void> {
    return this.queue.event({ id: r.id, type, attempt: r.attempt, agent: this.name, time: Date.now(), ...(data !== undefined ? { data } : {}) });
  }

  private checkpointStore(): Promise<ObjectStore> {
    this.checkpoints ??= this.conn.objectStore('checkpoints');
    return this.checkpoints;
  }

  private context(r: Running): WorkContext {
    const store = () => this.checkpointStore();
    const conn = this.conn;
    const where = (id: string) => `${conn.names.bucket('checkpoints')}/${id}`;
    return {
      id: r.id,
      label: r.label,
      job: r.job,
      attempt: r.attempt,
      agent: this.name,
      gpus: r.gpus,
      env: { CUDA_VISIBLE_DEVICES: r.gpus.length ? r.gpus.join(',') : '-1' },
      signal: r.controller.signal,
      cluster: conn,
      root: this.options.root ?? process.cwd(),
      report: (data) => this.event(r, 'progress', data),
      checkpoint: {
        save: async (value, info = {}) => {
          const bytes = packValue(value);
          const meta = { info, attempt: r.attempt, agent: this.name, savedAt: new Date().toISOString() };
          const os = await store();
          await conn.retry('cannot save a checkpoint', where(r.id), () => os.putBlob({ name: r.id, description: JSON.stringify(meta) }, bytes), 60_000);
          await this.event(r, 'checkpoint', info);
        },
        load: async <T>() => {
          const os = await store();
          const info = await conn.retry('cannot read a checkpoint', where(r.id), () => os.info(r.id), 60_000);
          if (!info || info.deleted) return undefined;
          const bytes = await conn.retry('cannot read a checkpoint', where(r.id), () => os.getBlob(r.id), 60_000);
          if (!bytes) return undefined;
          const meta = JSON.parse(info.description ?? '{}') as Omit<Checkpoint, 'value'>;
          return { value: unpackValue(bytes) as T, info: meta.info ?? {}, attempt: meta.attempt, agent: meta.agent, savedAt: meta.savedAt };
        },
      },
      log: (m) => this.log(`${r.label}: ${m}`),
    };
  }

  private async execute(r: Running, spec: WorkSpec): Promise<void> {
    if (await this.queue.result(r.id)) {
      // It ran to a result before (its agent died after recording it): acknowledge only.
      this.counts.duplicates++;
      await this.ack(r);
      return;
    }
    await removeStaleRegions();
    const t0 = Date.now();
    this.log(`running ${r.label} (attempt ${r.attempt}${r.gpus.length ? `, GPUs ${r.gpus.join(',')}` : ''})`);
    await this.event(r, 'started', { gpus: r.gpus }).catch(() => undefined);
    let result: WorkResult;
    const base = { id: r.id, label: r.label, agent: this.name, host: hostname(), attempt: r.attempt, startedAt: r.startedAt };
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    try {
      const fn = await resolveWork(spec.run, this.options.root ?? process.cwd());
      const running = Promise.resolve(fn(spec.payload, this.context(r)));
      let value: unknown;
      if (spec.timeout) {
        // Past its time the item fails (its signal is aborted; code that ignores it is left behind).
        const expired = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            timedOut = true;
            const err = new WorkError('ERR_WORK_TIMEOUT', `item ${r.label} ran longer than its timeout of ${spec.timeout} s on agent ${this.name}`);
            r.controller.abort(err);
            reject(err);
          }, spec.timeout! * 1000);
        });
        running.catch(() => undefined);
        value = await Promise.race([running, expired]);
      } else value = await running;
      if (r.controller.signal.aborted) throw r.controller.signal.reason;
      const json = value === undefined ? undefined : JSON.parse(JSON.stringify(value)) as unknown;
      result = { ...base, status: 'ok', ...(json !== undefined ? { value: json } : {}), finishedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 };
    } catch (err) {
      if (r.controller.signal.aborted && !timedOut) {
        // Given back by a stopping agent: not a failure of the item.
        r.msg.nak();
        this.counts.requeued++;
        await this.event(r, 'requeued').catch(() => undefined);
        return;
      }
      result = { ...base, status: 'failed', error: errorOf(timedOut ? r.controller.signal.reason : err), finishedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 };
    } finally {
      clearTimeout(timer);
    }
    const recorded = await this.queue.recordResult(result);
    if (!recorded) this.counts.duplicates++;
    else if (result.status === 'ok') this.counts.done++;
    else this.counts.failed++;
    await this.event(r, result.status === 'ok' ? 'done' : 'failed', recorded ? undefined : { duplicate: true }).catch(() => undefined);
    await this.ack(r);
    this.log(`${r.label}: ${result.status}${recorded ? '' : ' (a result was recorded already)'} in ${result.seconds.toFixed(1)} s`);
    // The checkpoint served its purpose.
    const os = await this.checkpointStore().catch(() => undefined);
    await os?.delete(r.id).catch(() => undefined);
  }

  /** Acknowledges an item (its result is recorded): retried for a while, since a lost ack means a duplicate run. */
  private async ack(r: Running): Promise<void> {
    const subject = r.msg.subject;
    await this.conn
      .retry(`cannot acknowledge ${r.label}`, subject, async () => {
        if (!(await r.msg.ackAck({ timeout: this.conn.timeout }))) throw new Error('acknowledgement not confirmed: timeout');
      }, 30_000)
      .catch((err) => this.log(`${(err as Error).message} (it will be redelivered and recognised as done)`));
  }

  /** After the pull loops end: lets running items finish for `grace` ms, then gives them back. */
  private async drain(): Promise<void> {
    if (!this.running.size) return;
    const grace = this.options.grace ?? 10_000;
    this.log(`waiting up to ${grace / 1000} s for ${this.running.size} running item(s)`);
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    await Promise.race([all(), sleep(grace)]);
    if (!this.running.size) return;
    for (const r of this.running.values()) r.controller.abort(new WorkError('ERR_CANCELLED', `agent ${this.name} stopped`));
    await Promise.race([all(), sleep(5_000)]);
    // Items whose code ignores the abort: give them back anyway.
    for (const r of this.running.values()) {
      r.msg.nak();
      this.counts.requeued++;
    }
    await this.conn.nc.flush().catch(() => undefined);
  }
}

/**
 * Removes shared memory left by processes of this machine that were SIGKILLed (e.g. another agent
 * killed mid-item). The engine does this once per process; a long-running agent does it per item.
 */
async function removeStaleRegions(): Promise<void> {
  try {
    const { cleanupStaleRegions } = await import('../ring/region.js');
    cleanupStaleRegions();
  } catch {
    // no native addon here: items that need the engine will say so themselves
  }
}

/** Starts an agent and resolves when it stops (signal, `idleExit`, `maxItems`). */
export async function runAgent(options: AgentOptions): Promise<AgentSummary> {
  const agent = await Agent.start(options);
  return agent.finished;
}
