// The segment lifecycle: plan the rings of a graph, start every replica (thread, process or
// in-process), watch them, and end the run: all done, the first failure (fail fast: every ring
// is aborted, stragglers are terminated within a second), a crash, or cancellation. Whatever
// happens, every ring is released before run() settles.
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DEFAULT_CAPACITY, Ring } from '../ring/ring.js';
import { unlinkRegion } from '../ring/region.js';
import { layout as L } from '../native.js';
import { InvalidArgumentError, RingError } from '../errors.js';
import { copyRecord, holdsSharedMemory } from '../codec/copy.js';
import { ABORT_GENERIC } from '../ring/wait.js';
import type { Graph, GraphNode } from '../pipeline/graph.js';
import type { Stream } from '../pipeline/stream.js';
import { CancelledError, RecordTimeoutError, SegmentCrashError, SegmentError, SegmentStalledError } from '../pipeline/errors.js';
import { Watchdog, type StuckCall } from './watchdog.js';
import { runReplica, type LoadedCode } from './runner.js';
import { createStatsRegion } from './stats.js';
import {
  STAT_BUSY, STAT_END, STAT_FORWARDED, STAT_IN, STAT_OUT, STAT_SKIPPED, STAT_SLOTS, STAT_START, STAT_WAIT_IN, STAT_WAIT_OUT,
  type InputPlan, type ReplicaPlan, type RunnerMessage, type SkippedRecord,
} from './plan.js';

export interface RunOptions {
  /** Cancels the run: run() rejects with ERR_CANCELLED. */
  signal?: AbortSignal;
  /** Called every `progressIntervalMs` with live stats (for progress bars). */
  onProgress?: (progress: Progress) => void;
  /** Default 250. */
  progressIntervalMs?: number;
  /** Stop cleanly on SIGINT (Ctrl-C) while running. Default true. */
  handleSigint?: boolean;
  /**
   * After a replica's teardown(), how long callbacks its code left pending (an unawaited flush, a
   * timer) may run before the replica is stopped anyway (ms). Errors they raise fail the run; a
   * replica still busy at the end is named in `result.warnings`. Default 5000.
   */
  settleTimeoutMs?: number;
  /**
   * Overwrite released input records with garbage, so a view kept past its call shows at once
   * (a debug aid for test suites). Records are then passed on by copy, never by reference, so
   * every released record can be overwritten. Default: the environment variable RINGPIPE_POISON
   * (`1` on, `0` off), else on for 'local' segments only.
   */
  poisonReleased?: boolean;
}

export interface SegmentStats {
  name: string;
  kind: string;
  replicas: number;
  recordsIn: number;
  recordsOut: number;
  /** Records in per second of the segment's running time. */
  recordsPerSecond: number;
  /** Share of the running time in the segment's code (averaged over replicas). */
  busyPct: number;
  /** Share waiting for input (upstream too slow). */
  waitInputPct: number;
  /** Share waiting for space downstream (backpressure). */
  waitOutputPct: number;
  skipped: number;
  /** Records passed on by reference instead of copied (returned unchanged by a transform). */
  forwarded: number;
  seconds: number;
  /** Epoch ms when the first replica started running (after loading its code) and the last ended. */
  startedAt: number;
  endedAt: number;
}

export interface StreamStats {
  name: string;
  /** Fullest ring of the stream, 0..1. */
  fill: number;
}

export interface Progress {
  seconds: number;
  segments: SegmentStats[];
  streams: StreamStats[];
  /** The segment that limits throughput: busiest, and least often waiting for input. */
  slowest: string | undefined;
  /** Calls in a segment's code for 10 s or more (a record stuck in user code), as of now. */
  stuck: StuckCall[];
}

export interface RunResult extends Progress {
  /** Per segment: what each replica's teardown() returned. */
  results: Record<string, unknown[]>;
  /** Replicas of `onCrash: 'continue'` sinks that died, and how. */
  crashed: { segment: string; replica: number; reason: string }[];
  /** Records dropped by onError 'skip' (first 1000 per replica) and how many in all. */
  skipped: SkippedRecord[];
  skippedCount: number;
  /** What went wrong without failing the run, e.g. a replica that still had work pending after settleTimeoutMs. */
  warnings: string[];
}

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const entryFile = join(here, fromSource ? 'worker.ts' : 'worker.js');
const require = createRequire(import.meta.url);
const tsxDir = () => dirname(require.resolve('tsx/package.json'));

interface Replica {
  node: GraphNode;
  plan: ReplicaPlan;
  done: boolean;
  ready?: boolean;
  stop?: () => Promise<void>;
  /** Tells the replica every replica is ready (sources start then). */
  go?: () => void;
}

function resequences(node: GraphNode, writersOf: Map<Stream, GraphNode[]>): boolean {
  const k = node.segment.kind;
  return k === 'source' || k === 'regulator' || node.inputs.length > 1 || (writersOf.get(node.inputs[0]!)?.length ?? 0) > 1;
}

export async function execute(graph: Graph, options: RunOptions): Promise<RunResult> {
  const nodes = graph.nodes;
  const writersOf = new Map<Stream, GraphNode[]>();
  const readersOf = new Map<Stream, GraphNode[]>();
  for (const n of nodes) {
    for (const s of n.outputs) writersOf.set(s, [...(writersOf.get(s) ?? []), n]);
    for (const s of n.inputs) readersOf.set(s, [...(readersOf.get(s) ?? []), n]);
  }
  const anyProcess = nodes.some((n) => n.options.isolation === 'process');
  const rings: Ring[] = [];
  const ringOf = new Map<string, Ring>();  // `${node}/${port}/${replica}`
  const totalReplicas = nodes.reduce((a, n) => a + n.options.workers, 0);
  const stats = createStatsRegion(totalReplicas, anyProcess);
  const started = Date.now();

  const poisonAsked = options.poisonReleased ?? poisonFromEnv();
  try {
    // Rings: one per (writer segment, output port, replica), a cursor per reading replica.
    nodes.forEach((w, wi) => {
      w.outputs.forEach((st, p) => {
        const consumers = readersOf.get(st)!;
        const readers = consumers.reduce((a, c) => a + c.options.workers, 0);
        const crossProcess = w.options.isolation === 'process' || consumers.some((c) => c.options.isolation === 'process');
        for (let r = 0; r < w.options.workers; r++) {
          const ring = Ring.create({ capacity: w.options.capacity ?? st.capacity ?? DEFAULT_CAPACITY, readers, crossProcess, supervised: true });
          rings.push(ring);
          ringOf.set(`${wi}/${p}/${r}`, ring);
        }
      });
    });

    // Forwarding by reference needs every reader of the output to map the writer's input rings:
    // shared (cross-process) rings always; private ones only when nobody involved is a process.
    const canForward = (w: GraphNode, st: Stream): boolean => {
      if (w.segment.kind !== 'transform' || poisonAsked) return false;
      const inputsShared = w.inputs.every((s) =>
        writersOf.get(s)!.every((u) => {
          const ui = nodes.indexOf(u), p = u.outputs.indexOf(s);
          return ringOf.get(`${ui}/${p}/0`)!.crossProcess;
        }),
      );
      const anyProcessReader = readersOf.get(st)!.some((c) => c.options.isolation === 'process');
      return inputsShared || (!anyProcessReader && w.options.isolation !== 'process');
    };
    const laneRings = (n: GraphNode) =>
      n.inputs.flatMap((st) =>
        writersOf.get(st)!.flatMap((w) => {
          const wi = nodes.indexOf(w), p = w.outputs.indexOf(st);
          return Array.from({ length: w.options.workers }, (_, r) => ringOf.get(`${wi}/${p}/${r}`)!.descriptor);
        }),
      );
    const replicas: Replica[] = [];
    let statsSlot = 0;
    nodes.forEach((n, ni) => {
      const seq = resequences(n, writersOf);
      for (let j = 0; j < n.options.workers; j++) {
        const inputs: InputPlan[] = n.inputs.map((st) => {
          const consumers = readersOf.get(st)!;
          const k = consumers.indexOf(n);
          const first = consumers.slice(0, k).reduce((a, c) => a + c.options.workers, 0);
          const slot = first + j;
          // Who shares the work of this ring: all readers of a balanced stream; otherwise the
          // replicas of this segment (a broadcast stream gives each segment every record).
          const claimSlot = st.mode === 'balance' && consumers.length > 1 ? 0 : n.options.workers > 1 ? first : undefined;
          return {
            groups: writersOf.get(st)!.map((w) => {
              const wi = nodes.indexOf(w);
              const p = w.outputs.indexOf(st);
              return {
                ordered: w.options.ordered && w.options.workers > 1,
                rings: Array.from({ length: w.options.workers }, (_, r) => ({
                  ring: ringOf.get(`${wi}/${p}/${r}`)!.descriptor,
                  slot,
                  claimSlot,
                  // Writer replica r's own input rings, which its forward records point into.
                  sources: canForward(w, st) ? laneRings(w) : undefined,
                })),
              };
            }),
          };
        });
        const plan: ReplicaPlan = {
          segment: {
            kind: n.segment.kind,
            name: n.segment.name,
            module: n.segment.module ?? '',
            exportName: n.segment.exportName ?? '',
            isClass: n.segment.isClass,
            options: n.segment.options,
            onError: typeof n.options.onError === 'function' ? 'function' : (n.options.onError ?? 'fail'),
            records: n.options.records ?? 'view',
          },
          onErrorRef: n.onErrorRef,
          segmentIndex: ni,
          replica: j,
          replicas: n.options.workers,
          inputs,
          outputs: n.outputs.map((st, p) => ({ ring: ringOf.get(`${ni}/${p}/${j}`)!.descriptor, forward: canForward(n, st) })),
          resequence: seq,
          stats: stats.descriptor,
          statsSlot: statsSlot++,
          poison: poisonAsked === undefined ? (n.options.isolation === 'local' ? 'sole' : 'off') : poisonAsked ? 'all' : 'off',
          spin: n.options.isolation === 'local' ? 0 : undefined,
          settleTimeoutMs: options.settleTimeoutMs ?? 5000,
        };
        replicas.push({ node: n, plan, done: false });
      }
    });

    return await supervise(graph, replicas, rings, stats.view, options, started);
  } finally {
    for (const r of rings) r.close();
    unlinkRegion(stats.name);
  }
}

/** RINGPIPE_POISON: '1' poisons released records in every segment, '0' in none; unset: undefined. */
function poisonFromEnv(): boolean | undefined {
  const v = process.env.RINGPIPE_POISON;
  if (v === undefined || v === '') return undefined;
  if (v === '1' || v === '0') return v === '1';
  throw new InvalidArgumentError(`the environment variable RINGPIPE_POISON must be 1 or 0, got '${v}'`);
}

function snapshot(graph: Graph, replicas: Replica[], rings: Ring[], view: Float64Array, started: number, watchdog: Watchdog): Progress {
  const now = Date.now();
  const segments: SegmentStats[] = graph.nodes.map((n) => {
    const mine = replicas.filter((r) => r.node === n);
    let recordsIn = 0, recordsOut = 0, busy = 0, waitIn = 0, waitOut = 0, skipped = 0, forwarded = 0, span = 0, startedAt = Infinity, endedAt = 0;
    for (const r of mine) {
      const s = view.subarray(r.plan.statsSlot * STAT_SLOTS, (r.plan.statsSlot + 1) * STAT_SLOTS);
      const start = s[STAT_START] || now;
      const t = (s[STAT_END] || now) - start;
      recordsIn += s[STAT_IN]!;
      recordsOut += s[STAT_OUT]!;
      waitIn += s[STAT_WAIT_IN]!;
      waitOut += s[STAT_WAIT_OUT]!;
      busy += s[STAT_BUSY] || Math.max(0, t - s[STAT_WAIT_IN]! - s[STAT_WAIT_OUT]!);
      skipped += s[STAT_SKIPPED]!;
      forwarded += s[STAT_FORWARDED]!;
      span += t;
      startedAt = Math.min(startedAt, start);
      endedAt = Math.max(endedAt, s[STAT_END] || now);
    }
    const pct = (x: number) => (span > 0 ? Math.min(100, (100 * x) / span) : 0);
    const seconds = span / mine.length / 1000;
    return {
      name: n.segment.name,
      kind: n.segment.kind,
      replicas: mine.length,
      recordsIn,
      recordsOut,
      recordsPerSecond: seconds > 0 ? (n.segment.kind === 'source' ? recordsOut : recordsIn) / seconds : 0,
      busyPct: pct(busy),
      waitInputPct: pct(waitIn),
      waitOutputPct: pct(waitOut),
      skipped,
      forwarded,
      seconds,
      startedAt,
      endedAt,
    };
  });
  const streams: StreamStats[] = [];
  const seen = new Set<Stream>();
  let ri = 0;
  for (const n of graph.nodes) {
    for (const st of n.outputs) {
      let fill = 0;
      for (let r = 0; r < n.options.workers; r++) {
        const ring = rings[ri++]!;
        const write = Atomics.load(ring.i32, L.offWritePos >> 2) >>> 0;
        let minUsed = 0;
        for (let k = 0; k < ring.readerSlots; k++) {
          const rp = Atomics.load(ring.i32, (L.offReaders + k * L.line) >> 2) >>> 0;
          minUsed = Math.max(minUsed, (write - rp) >>> 0);
        }
        fill = Math.max(fill, minUsed / ring.capacity);
      }
      if (seen.has(st)) streams.find((s) => s.name === st.name)!.fill = Math.max(fill, streams.find((s) => s.name === st.name)!.fill);
      else streams.push({ name: st.name, fill });
      seen.add(st);
    }
  }
  // The bottleneck: the most time in its own code per replica (a short burst at 100% is not it).
  let slowest: string | undefined, most = -1;
  for (const s of segments) {
    const busyMs = (s.busyPct / 100) * s.seconds * 1000;
    if (busyMs > most) {
      most = busyMs;
      slowest = s.name;
    }
  }
  return { seconds: (now - started) / 1000, segments, streams, slowest, stuck: watchdog.stuck(now) };
}

async function supervise(graph: Graph, replicas: Replica[], rings: Ring[], view: Float64Array, options: RunOptions, started: number): Promise<RunResult> {
  const results: Record<string, unknown[]> = {};
  for (const n of graph.nodes) results[n.segment.name] = new Array(n.options.workers).fill(undefined);
  const skipped: SkippedRecord[] = [];
  let skippedCount = 0;
  const warnings: string[] = [];
  let failure: Error | undefined;
  let remaining = replicas.length;
  let settle!: () => void;
  const allDone = new Promise<void>((r) => (settle = r));

  // Sources start once every replica loaded its code and set up (or ended: a crashed sink's
  // absence must not hold the run back), and at once when the run fails.
  let notReady = replicas.length, released = false;
  const release = () => {
    if (released) return;
    released = true;
    for (const r of replicas) if (!r.done) r.go?.();
  };
  const readied = (r: Replica) => {
    if (r.ready) return;
    r.ready = true;
    if (--notReady === 0) release();
  };

  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    release();
    for (const ring of rings) ring.abort(ABORT_GENERIC);  // every parked side wakes and stops
    // Code stuck in a loop never reaches a ring: terminate what has not stopped within a second.
    setTimeout(() => {
      for (const r of replicas) if (!r.done) void r.stop?.();
    }, 1000).unref();
  };

  const finished = (r: Replica) => {
    if (r.done) return;
    r.done = true;  // before readied(): the release it may trigger must skip this replica
    readied(r);
    if (--remaining === 0) settle();
  };

  // Replicas that stopped on an aborted ring while the run had not failed: their results are
  // lost, so the run must not end as a success (nothing in a supervised run should abort a ring
  // but fail(); this is the net under that rule).
  const stoppedShort: Replica[] = [];
  const onMessage = (r: Replica, m: RunnerMessage) => {
    if (m.type === 'ready') return readied(r);
    if (m.type === 'aborted' && !failure) stoppedShort.push(r);
    if (m.type === 'stalled') fail(new SegmentStalledError(r.node.segment.name, r.plan.replica, m.during === 'record' || m.during === 'produce' ? m.index : null, m.during));
    if (m.type === 'done') {
      if (m.lingering) {
        warnings.push(`segment '${r.node.segment.name}' (replica ${r.plan.replica}) still had work pending ${r.plan.settleTimeoutMs} ms after teardown() (${m.lingering.join(', ') || 'timers'}): it was stopped`);
      }
      // A thread's postMessage shares SharedArrayBuffers: a result holding views of a ring (kept
      // past their call, so already reused) must not alias ring memory after the run.
      results[r.node.segment.name]![r.plan.replica] = holdsSharedMemory(m.result) ? copyRecord(m.result) : m.result;
      skipped.push(...m.skipped);
      skippedCount += m.skippedCount;
    } else if (m.type === 'error') {
      fail(new SegmentError(r.node.segment.name, r.plan.replica, m.index, m.error, m.during, m.record));
    }
    if (r.node.options.isolation === 'local') finished(r);
  };

  const crashed: RunResult['crashed'] = [];
  const onExit = (r: Replica, how: string | null) => {
    if (!r.done && how && !failure) {
      if (r.node.options.onCrash === 'continue') {
        // A sink may go: report it, and stop its cursors from holding writers back.
        crashed.push({ segment: r.node.segment.name, replica: r.plan.replica, reason: how });
        for (const input of r.plan.inputs) {
          for (const g of input.groups) for (const l of g.rings) ringFor(l.ring)?.deactivateReader(l.slot);
        }
      } else {
        fail(new SegmentCrashError(r.node.segment.name, r.plan.replica, how));
      }
    }
    finished(r);
  };
  const ringFor = (d: { buffer?: SharedArrayBuffer; name: string }) => rings.find((x) => (d.name ? x.name === d.name : x.buffer === d.buffer));

  const onAbort = () => fail(new CancelledError(String(options.signal?.reason ?? 'aborted')));
  const onSigint = () => fail(new CancelledError('SIGINT'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  const sigint = options.handleSigint ?? true;
  if (sigint) process.on('SIGINT', onSigint);
  const watchdog = new Watchdog(
    view,
    replicas.map((r) => ({ segment: r.node.segment.name, replica: r.plan.replica, statsSlot: r.plan.statsSlot, timeoutMs: r.node.options.recordTimeoutMs })),
  );
  const timeouts = replicas.map((r) => r.node.options.recordTimeoutMs).filter((t): t is number => t !== undefined);
  const watching = setInterval(() => {
    const over = watchdog.sample();
    if (over) fail(new RecordTimeoutError(over.segment, over.replica, over.index, over.timeoutMs, graph.nodes.find((n) => n.segment.name === over.segment)!.segment.kind));
  }, Math.max(20, Math.min(250, ...timeouts.map((t) => t / 4))));
  const timer = options.onProgress
    ? setInterval(() => options.onProgress!(snapshot(graph, replicas, rings, view, started, watchdog)), options.progressIntervalMs ?? 250)
    : undefined;

  const needTsx = fromSource || replicas.some((r) => /\.[cm]?ts$/.test(r.plan.segment.module) || /\.[cm]?ts$/.test(r.plan.onErrorRef?.module ?? ''));
  try {
    for (const r of replicas) start(r, needTsx, onMessage, onExit, fail);
    await allDone;
  } finally {
    if (timer) clearInterval(timer);
    clearInterval(watching);
    options.signal?.removeEventListener('abort', onAbort);
    if (sigint) process.removeListener('SIGINT', onSigint);
  }
  if (failure) throw failure;
  if (stoppedShort.length) {
    const who = stoppedShort.map((r) => `'${r.node.segment.name}' (replica ${r.plan.replica})`).join(', ');
    throw new RingError('ERR_PEER_DEAD', `segment ${who} stopped before the end of its input: a ring it used was aborted by a peer's death; its results are lost`);
  }
  const final = snapshot(graph, replicas, rings, view, started, watchdog);
  options.onProgress?.(final);
  return { ...final, results, crashed, skipped, skippedCount, warnings };
}

function start(
  r: Replica,
  needTsx: boolean,
  onMessage: (r: Replica, m: RunnerMessage) => void,
  onExit: (r: Replica, how: string | null) => void,
  fail: (e: Error) => void,
): void {
  const iso = r.node.options.isolation;
  if (iso === 'local') {
    const seg = r.node.segment;
    const code: LoadedCode = { impl: seg.impl as LoadedCode['impl'], onError: typeof r.node.options.onError === 'function' ? r.node.options.onError : undefined };
    let go!: () => void;
    const going = new Promise<void>((resolve) => (go = resolve));
    r.go = go;
    // Later in this tick, so every replica is started before any runs.
    queueMicrotask(() => {
      runReplica(r.plan, code, (m) => onMessage(r, m), going).catch((e) => {
        fail(e as Error);
        onExit(r, null);
      });
    });
    r.stop = async () => onExit(r, null);
    return;
  }
  let gotFinal = false;
  const handle = (m: RunnerMessage) => {
    if (m.type !== 'ready') gotFinal = true;
    onMessage(r, m);
  };
  if (iso === 'thread') {
    const tsx = pathToFileURL(join(tsxDir(), 'dist/esm/api/index.mjs')).href;
    // The timer holds the worker's event loop open while tsx loads the entry: nothing else does
    // until the entry listens on parentPort, and a worker whose loop empties exits with code 0.
    const code = needTsx
      ? `const t = setInterval(() => {}, 1000); import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(entryFile).href)}); }).finally(() => clearInterval(t))`
      : undefined;
    const worker = code
      ? new Worker(code, { eval: true, workerData: { plan: r.plan }, execArgv: [], env: r.node.options.env ? { ...process.env, ...r.node.options.env } : undefined })
      : new Worker(entryFile, { workerData: { plan: r.plan }, execArgv: [], env: r.node.options.env ? { ...process.env, ...r.node.options.env } : undefined });
    worker.on('message', (m: RunnerMessage) => {
      handle(m);
      if (m.type !== 'ready') void worker.terminate();  // the runner's last word: user code may still hold handles open
    });
    r.go = () => {
      if (!gotFinal) worker.postMessage('go');
    };
    let error: Error | undefined;
    worker.on('error', (e) => (error = e));
    worker.on('exit', (code) => onExit(r, gotFinal ? null : error ? `uncaught ${error.name}: ${error.message}` : `worker thread exited with code ${code}`));
    r.stop = async () => void (await worker.terminate());
    return;
  }
  const child: ChildProcess = fork(entryFile, [], {
    execArgv: needTsx ? ['--import', pathToFileURL(join(tsxDir(), 'dist/loader.mjs')).href] : [],
    env: { ...process.env, ...r.node.options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  child.on('message', (m: RunnerMessage) => {
    handle(m);
    if (m.type !== 'ready') setTimeout(() => child.kill('SIGKILL'), 2000).unref();  // it exits by itself; this is for stray handles
  });
  r.go = () => {
    if (gotFinal || !child.connected) return;
    try {
      // A child ending right now (its channel closing) has nothing left to start: ignore the error.
      child.send('go', () => {});
    } catch {
      // ERR_IPC_CHANNEL_CLOSED: the same.
    }
  };
  child.on('exit', (code, signal) =>
    onExit(r, gotFinal ? null : signal ? `process killed by ${signal}` : `process exited with code ${code}`),
  );
  child.on('error', (e) => fail(e));
  child.send({ plan: r.plan });
  r.stop = async () => void child.kill('SIGKILL');
}

