// The agent: one per machine. It announces its capacity and liveness, pulls only the work it has
// room for, runs it here (the code uses the local engine: rings, trainers bound to this machine's
// GPUs), reports progress, records the result once, and only then acknowledges the item.
//
// Each item's code runs in a process of its own (item-runner.ts), so an item past its timeout, or
// still running when a stopping agent's grace is over, is killed with every process it started.
//
// Faults: while an item runs the agent tells the server it is alive (`working`), so a dead agent's
// items are redelivered after the consumers' ack wait; an item whose result exists already is
// acknowledged without running again; a stopped agent gives its unfinished items back at once.
import { availableParallelism, hostname, loadavg } from 'node:os';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { ObjectStore } from '@nats-io/obj';
import { packageVersion } from '../cache/package-root.js';
import { ClusterConnection, connectionLogger, type ClusterOptions } from './connect.js';
import { workContext, type Checkpoint, type ItemHost, type ItemInfo, type StoredCheckpoint } from './context.js';
import { WorkError, type ClusterError } from './errors.js';
import { runInline, runInProcess, type ItemOutcome } from './item-runner.js';
import { locateWork, serializeError, type SerializedError } from './resolve.js';
import { codeRoots } from './trust.js';
import './builtins.js';
import { WorkQueue, type AgentInfo, type WorkEvent, type WorkMessage, type WorkQueueOptions, type WorkResult, type WorkSpec } from './work.js';

export type { Checkpoint, WorkContext, WorkFunction } from './context.js';
export { resolveWork } from './resolve.js';

/** Options of an agent. */
export interface AgentOptions extends ClusterOptions, WorkQueueOptions {
  /** Name in status tables (letters, digits, `-`, `.`; default `<host>-<pid>`). */
  name?: string;
  /** CPU items run at a time (default: the number of cores). */
  slots?: number;
  /** CUDA devices this agent offers to GPU items (default none). */
  gpus?: readonly number[];
  /**
   * Directory relative module paths of work items are resolved against: the project checkout
   * (default: current directory). Items run code, and read pipeline files, only from under it (or
   * `allowRoots`), symlinks resolved: anything else fails with `ERR_WORK_REFUSED`.
   */
  root?: string;
  /** More directories work items may take code from (e.g. a shared library checkout). Default none. */
  allowRoots?: readonly string[];
  /** Milliseconds between announcements (default 5 000). */
  heartbeat?: number;
  /** Stop after this many milliseconds with nothing to do (default: never). */
  idleExit?: number;
  /** Stop after finishing this many items (default: never). */
  maxItems?: number;
  /** On stop, milliseconds running items may take to finish before they are given back (default 10 000). */
  grace?: number;
  /**
   * Milliseconds an item whose signal was aborted (past its `timeout`, or still running when a
   * stopping agent's `grace` is over) has to end by itself. Then its process is SIGKILLed with every
   * process it started (its process group), its slot is freed, and it is recorded as failed
   * (`ERR_WORK_TIMEOUT`) or given back (agent stopping). Default 3 000.
   */
  killGrace?: number;
  /**
   * Milliseconds an item with a `timeout` may take to start: its process, the import of its code and
   * its connection, before its function is called (from where its `timeout` counts). Past it, the
   * item is stopped as past its timeout and fails with `ERR_WORK_TIMEOUT` ("did not start within").
   * Default 60 000.
   */
  startLimit?: number;
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

/** An item an agent is running: its delivery, GPUs, signal and process. */
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
  /** Its code has ended (or was abandoned): context calls are refused. */
  ended?: boolean;
  /** It was given back (nak) already. */
  givenBack?: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

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
  private announcing = false;
  /** Why the agent stopped by itself (it may not pull work): thrown once it has stopped. */
  private fatal?: ClusterError;
  /** Resolves when the agent has stopped. */
  readonly finished: Promise<AgentSummary>;
  private readonly log: (line: string) => void;
  /** Where items may take code from: the root, then the allowed roots (real paths). */
  private readonly roots: string[];

  private constructor(
    readonly queue: WorkQueue,
    private readonly options: AgentOptions,
  ) {
    this.name = options.name ?? `${hostname().replace(/[^A-Za-z0-9-]/g, '-')}-${process.pid}`;
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,127}$/.test(this.name)) throw new WorkError('ERR_WORK_INVALID', `agent name '${this.name}' is not valid: use letters, digits, '-' and '.'`);
    this.slots = options.slots ?? availableParallelism();
    if (!Number.isInteger(this.slots) || this.slots < 0) throw new WorkError('ERR_WORK_INVALID', `slots must be an integer >= 0, got ${options.slots}`);
    this.gpus = [...(options.gpus ?? [])];
    this.roots = codeRoots(options.root ?? process.cwd(), options.allowRoots);
    const out = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    this.log = (line) => out(`[agent ${this.name}] ${line}`);
    const logConnection = connectionLogger(this.log, 30_000);
    queue.conn.onConnection((e) => {
      logConnection(e);
      // Back: tell the others at once which items this agent holds (see heldElsewhere).
      if (e.type === 'reconnected') void this.announce(true);
    });
    this.finished = this.main();
    this.finished.catch(() => undefined);
  }

  /** Connects, creates the work queue's resources if needed, announces itself and starts pulling. */
  static async start(options: AgentOptions): Promise<Agent> {
    codeRoots(options.root ?? process.cwd(), options.allowRoots); // a missing root fails before connecting
    // An agent waits for its servers for as long as it takes (its items' results are kept until recorded).
    const conn = await ClusterConnection.open({ name: `ringpipe-agent ${options.name ?? hostname()}`, ...options, unreachableTimeout: 0 });
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

  /**
   * Puts the agent's info in the agents bucket; `now`: also while another announcement is under way.
   * Failures are logged (and returned): the next heartbeat tries again.
   */
  private async announce(now = false): Promise<ClusterError | undefined> {
    // One at a time: while the server is away an announcement waits for it, and later ones would pile up.
    if (this.announcing && !now) return;
    if (!now) this.announcing = true;
    try {
      await this.conn.retry('announce', this.conn.names.bucket('agents'), () => this.queue.agents.put(this.name, JSON.stringify(this.info())), 5_000);
    } catch (err) {
      this.log(`cannot announce: ${(err as Error).message}`);
      return err as ClusterError;
    } finally {
      if (!now) this.announcing = false;
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
    try {
      // A user that may not announce itself (or, below, pull work) is not an agent's: say so and stop.
      const refused = await this.announce();
      if (refused?.code === 'ERR_CLUSTER_AUTH') throw refused;
      this.announceTimer = setInterval(() => void this.announce(), hb);
      this.log(`pulling work for project '${this.conn.names.project}' from ${this.conn.server()}: ${this.slots} slot(s), GPUs [${this.gpus.join(', ')}]; code only from ${this.roots.join(', ')}`);
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
    if (this.fatal) throw this.fatal;
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
      if (this.conn.down) {
        // Nothing to pull without a server; the connection says when it is back.
        await this.change();
        continue;
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
      const asked = Date.now();
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
        const work = WorkQueue.names(this.conn).work;
        const e = this.conn.permissionDenied(`$JS.API.CONSUMER.MSG.NEXT.${work}.`, asked, 'cannot pull work') ?? this.conn.error(err, 'cannot pull work', work);
        if (e.code === 'ERR_CLUSTER_AUTH') {
          // This user may not pull work: no point in trying again.
          this.fatal ??= e;
          void this.stop();
          break;
        }
        if (!this.conn.down) this.log(e.message);
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
    if (await this.heldElsewhere(msg, wm)) return;
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

  /**
   * Whether a delivered item is held already: here, or by another agent. JetStream delivers an item
   * again once its ack wait passed without a sign of life, which happens to every item in flight
   * when the server was away longer than that; a server that restarted may also have lost its record
   * of deliveries and hand items out as new. The agent that holds an item (running, or with its
   * result waiting to be recorded) finishes and acknowledges it (by stream sequence: every delivery
   * at once), so it must not run a second time. Checked for deliveries after the first, and for all
   * in the first minute after this agent (re)connected; right after (re)connecting the agent keeps
   * the item until the others had time to announce again what they hold.
   */
  private async heldElsewhere(msg: JsMsg, wm: WorkMessage): Promise<boolean> {
    const label = wm.spec.label ?? wm.id.slice(0, 10);
    if (this.running.has(wm.id)) {
      // Its first delivery is kept alive by this agent (working), and its acknowledgement covers this one.
      this.log(`${label}: delivered again (attempt ${msg.info.deliveryCount}) while this agent holds it: finishing it here`);
      return true;
    }
    const connected = this.conn.connectedFor();
    if (msg.info.deliveryCount <= 1 && connected >= Math.max(60_000, 2 * this.queue.ackWait)) return false;
    if (await this.queue.result(wm.id)) return false; // execute acknowledges it
    const heartbeat = this.options.heartbeat ?? 5_000;
    const settle = heartbeat + 1_000;
    if (connected < settle) {
      // Kept (not given back: that would count as an attempt) while the other agents announce what they hold.
      if (msg.info.deliveryCount > 1) this.log(`${label}: delivered again (attempt ${msg.info.deliveryCount}) just after this agent connected: waiting ${((settle - connected) / 1000).toFixed(1)} s for the other agents to announce what they hold`);
      msg.working();
      await sleep(settle - connected);
      if (await this.queue.result(wm.id)) return false;
    }
    const holder = await this.holder(wm.id);
    if (!holder) return false;
    this.log(`${label}: delivered again (attempt ${msg.info.deliveryCount}), but agent ${holder} holds it (running, or its result not yet recorded): leaving it to that agent`);
    // Looked at again shortly: by then that agent has acknowledged it, or (dead) its announcement expired.
    msg.nak(2 * heartbeat);
    return true;
  }

  /** Another agent whose announcement (not expired: an agent's entries live `agentTtl`) lists item `id` as running. */
  private async holder(id: string): Promise<string | undefined> {
    for (const name of await this.conn.kvKeys('agents').catch(() => [] as string[])) {
      if (name === this.name) continue;
      const e = await this.queue.agents.get(name).catch(() => null);
      if (e?.operation === 'PUT' && e.json<AgentInfo>().running.some((r) => r.id === id)) return name;
    }
    return undefined;
  }

  private event(r: Running, type: WorkEvent['type'], data?: unknown): Promise<void> {
    return this.queue.event({ id: r.id, type, attempt: r.attempt, agent: this.name, time: Date.now(), ...(data !== undefined ? { data } : {}) });
  }

  private checkpointStore(): Promise<ObjectStore> {
    this.checkpoints ??= this.conn.objectStore('checkpoints');
    return this.checkpoints;
  }

  /** The agent's side of an item's context; refuses calls once the item has ended (code left running inside the agent). */
  private host(r: Running): ItemHost {
    const conn = this.conn;
    const where = `${conn.names.bucket('checkpoints')}/${r.id}`;
    const live = () => {
      if (r.ended) throw new WorkError('ERR_CANCELLED', `item ${r.label} has ended on agent ${this.name}`);
    };
    return {
      report: async (data) => {
        live();
        await this.event(r, 'progress', data);
      },
      save: async (bytes, info) => {
        live();
        const meta = { info, attempt: r.attempt, agent: this.name, savedAt: new Date().toISOString() };
        const os = await this.checkpointStore();
        await conn.retry('cannot save a checkpoint', where, () => os.putBlob({ name: r.id, description: JSON.stringify(meta) }, bytes), 60_000);
        await this.event(r, 'checkpoint', info);
      },
      load: async (): Promise<StoredCheckpoint | undefined> => {
        live();
        const os = await this.checkpointStore();
        const info = await conn.retry('cannot read a checkpoint', where, () => os.info(r.id), 60_000);
        if (!info || info.deleted) return undefined;
        const bytes = await conn.retry('cannot read a checkpoint', where, () => os.getBlob(r.id), 60_000);
        if (!bytes) return undefined;
        const meta = JSON.parse(info.description ?? '{}') as Omit<Checkpoint, 'value'>;
        return { bytes, meta: { info: meta.info ?? {}, attempt: meta.attempt, agent: meta.agent, savedAt: meta.savedAt } };
      },
      log: (m) => this.log(`${r.label}: ${m}`),
    };
  }

  /** Runs an item's code: in its own process, or inside the agent for work types registered with a loader. */
  private run(r: Running, spec: WorkSpec, onRunning: () => void): Promise<ItemOutcome> {
    const info: ItemInfo = {
      id: r.id, label: r.label, job: r.job, attempt: r.attempt, agent: this.name, gpus: r.gpus, root: this.roots[0]!, roots: this.roots,
      env: { CUDA_VISIBLE_DEVICES: r.gpus.length ? r.gpus.join(',') : '-1' },
    };
    const killGrace = this.options.killGrace ?? 3_000;
    try {
      const code = locateWork(spec.run, this.roots);
      if (code.kind === 'inline') return runInline(code.load(), spec.payload, workContext(info, this.host(r), r.controller.signal, this.conn), killGrace, onRunning);
      return runInProcess({ ...code, payload: spec.payload, info, cluster: clusterOptions(this.options), host: this.host(r), signal: r.controller.signal, killGrace, onRunning });
    } catch (err) {
      return Promise.resolve({ status: 'failed', error: serializeError(err) });
    }
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
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const expire = (why: string) => {
      timedOut = true;
      r.controller.abort(new WorkError('ERR_WORK_TIMEOUT', `item ${r.label} ${why} on agent ${this.name}`));
    };
    // An item's timeout counts from the call of its function: its process's start-up (imports, the
    // connection) is bounded on its own, so a loaded machine does not eat a short timeout.
    const startLimit = this.options.startLimit ?? 60_000;
    if (spec.timeout) timer = setTimeout(() => expire(`did not start within ${startLimit / 1000} s`), startLimit);
    const onRunning = () => {
      if (!spec.timeout || timedOut) return;
      clearTimeout(timer);
      timer = setTimeout(() => expire(`ran longer than its timeout of ${spec.timeout} s`), spec.timeout * 1000);
    };
    let outcome: ItemOutcome;
    try {
      outcome = await this.run(r, spec, onRunning);
    } finally {
      clearTimeout(timer);
      r.ended = true;
    }
    if (outcome.status === 'terminated') {
      this.log(`${r.label}: ${outcome.how}`);
      await removeStaleRegions(); // the shared memory of the processes killed with it
    }
    if (r.controller.signal.aborted && !timedOut) {
      // Given back by a stopping agent (whatever its code did after that): not a failure of the item.
      if (r.givenBack) return;
      r.givenBack = true;
      r.msg.nak();
      this.counts.requeued++;
      await this.event(r, 'requeued').catch(() => undefined);
      return;
    }
    const base = { id: r.id, label: r.label, agent: this.name, host: hostname(), attempt: r.attempt, startedAt: r.startedAt, finishedAt: new Date().toISOString(), seconds: (Date.now() - t0) / 1000 };
    const result: WorkResult = outcome.status === 'ok' && !timedOut
      ? { ...base, status: 'ok', ...(outcome.value !== undefined ? { value: outcome.value } : {}) }
      : { ...base, status: 'failed', error: this.failure(r, outcome, timedOut) };
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

  /** Why an item failed: its own error, or the agent's word when it timed out or ended without a result. */
  private failure(r: Running, outcome: ItemOutcome, timedOut: boolean): SerializedError {
    const how = outcome.status === 'terminated' ? ` (${outcome.how})` : '';
    if (timedOut) return { name: 'WorkError', code: 'ERR_WORK_TIMEOUT', message: `${(r.controller.signal.reason as Error).message}: it was stopped${how}` };
    if (outcome.status === 'failed') return outcome.error;
    return { name: 'WorkError', code: 'ERR_WORK_CRASHED', message: `item ${r.label} ended without a result on agent ${this.name}${how}` };
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

  /** After the pull loops end: lets running items finish for `grace` ms, then stops them (killed after `killGrace`) and gives them back. */
  private async drain(): Promise<void> {
    if (!this.running.size) return;
    const grace = this.options.grace ?? 10_000;
    this.log(`waiting up to ${grace / 1000} s for ${this.running.size} running item(s)`);
    const all = () => Promise.all([...this.running.values()].map((r) => r.done));
    await Promise.race([all(), sleep(grace)]);
    if (!this.running.size) return;
    for (const r of this.running.values()) r.controller.abort(new WorkError('ERR_CANCELLED', `agent ${this.name} stopped`));
    await Promise.race([all(), sleep((this.options.killGrace ?? 3_000) + 5_000)]);
    // Items still not through (their reports or checkpoints are still being stored): give them back anyway.
    for (const r of this.running.values()) {
      if (r.givenBack) continue;
      r.givenBack = true;
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

/** The connection options of an agent, for the connections of its items' processes. */
function clusterOptions(o: AgentOptions): ClusterOptions {
  const { servers, project, user, password, token, nkeySeed, nkeyFile, credsFile, tls, timeout, replicas, storage } = o;
  // Like the agent's, an item's connection waits for the servers as long as it takes (the item's timeout bounds it).
  const picked: ClusterOptions = { servers, project, user, password, token, nkeySeed, nkeyFile, credsFile, tls, timeout, replicas, storage, unreachableTimeout: 0 };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) as unknown as ClusterOptions;
}

/** Starts an agent and resolves when it stops (signal, `idleExit`, `maxItems`). */
export async function runAgent(options: AgentOptions): Promise<AgentSummary> {
  const agent = await Agent.start(options);
  return agent.finished;
}
