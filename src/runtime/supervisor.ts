// The segment lifecycle: start every replica of a compiled run (thread, process or in-process),
// watch them, and end the run: all done, the first failure (fail fast: every ring is aborted,
// stragglers are terminated within a second), a crash, a stall, a call over its time, or
// cancellation. Whatever happens, every ring is released before supervise() settles.
import { RingError } from '../errors.js';
import { copyRecord, holdsSharedMemory } from '../codec/copy.js';
import { ABORT_GENERIC } from '../ring/wait.js';
import { CancelledError, PipelineDeadlockError, RecordTimeoutError, SegmentCrashError, SegmentError, SegmentStalledError } from './errors.js';
import { snapshot, type Progress } from './progress.js';
import { needsTsx, start, type Replica } from './start.js';
import { Watchdog } from './watchdog.js';
import type { RunnerMessage, RunPlan, SkippedRecord } from './plan.js';

export type { Progress, SegmentStats, StreamStats } from './progress.js';

/** Options of `run()` (and `iterate()`): cancellation, progress, and debugging aids. */
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
   * Which pass over the data this run is (SegmentContext.epoch), for code that varies per epoch:
   * shuffles, augmentation seeded by (seed, epoch, index). Default 0; iterate({ epochs }) counts up.
   */
  epoch?: number;
  /**
   * Overwrite released input records with garbage, so a view kept past its call shows at once
   * (a debug aid for test suites). Records are then passed on by copy, never by reference, so
   * every released record can be overwritten. Default: the environment variable RINGPIPE_POISON
   * (`1` on, `0` off), else on for 'local' segments only.
   */
  poisonReleased?: boolean;
}

/**
 * What `run()` resolves with: the final stats, what each replica's teardown() returned, and what
 * went wrong without failing the run.
 */
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

/** Runs a compiled graph to its end (src/pipeline/compile.ts makes the plan); releases its rings and stats whatever happens. */
export async function supervise(run: RunPlan, options: RunOptions): Promise<RunResult> {
  try {
    return await superviseReplicas(run, options);
  } finally {
    for (const r of run.rings) r.close();
    run.stats.close();
  }
}

async function superviseReplicas(run: RunPlan, options: RunOptions): Promise<RunResult> {
  const started = Date.now();
  const { rings } = run;
  const replicas: Replica[] = run.replicas.map((r) => ({ segment: run.segments[r.segment]!, plan: r.plan, done: false }));
  const results: Record<string, unknown[]> = {};
  for (const seg of run.segments) results[seg.name] = new Array(seg.replicas).fill(undefined);
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
    for (const r of replicas) if (!r.done) r.cancel?.();  // code awaiting something else: ctx.signal
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
    if (m.type === 'stalled') fail(new SegmentStalledError(r.segment.name, r.plan.replica, m.during === 'record' || m.during === 'produce' ? m.index : null, m.during));
    if (m.type === 'done') {
      if (m.lingering) {
        warnings.push(`segment '${r.segment.name}' (replica ${r.plan.replica}) still had work pending ${r.plan.settleTimeoutMs} ms after teardown() (${m.lingering.join(', ') || 'timers'}): it was stopped`);
      }
      // A thread's postMessage shares SharedArrayBuffers: a result holding views of a ring (kept
      // past their call, so already reused) must not alias ring memory after the run.
      results[r.segment.name]![r.plan.replica] = holdsSharedMemory(m.result) ? copyRecord(m.result) : m.result;
      skipped.push(...m.skipped);
      skippedCount += m.skippedCount;
    } else if (m.type === 'error') {
      fail(new SegmentError(r.segment.name, r.plan.replica, m.index, m.error, m.during, m.record));
    }
    if (r.segment.isolation === 'local') finished(r);
  };

  const crashed: RunResult['crashed'] = [];
  const onExit = (r: Replica, how: string | null) => {
    if (!r.done && how && !failure) {
      if (r.segment.onCrash === 'continue') {
        // A sink may go: report it, and stop its cursors from holding writers back.
        crashed.push({ segment: r.segment.name, replica: r.plan.replica, reason: how });
        for (const input of r.plan.inputs) {
          for (const g of input.groups) for (const l of g.rings) ringFor(l.ring)?.deactivateReader(l.slot);
        }
      } else {
        fail(new SegmentCrashError(r.segment.name, r.plan.replica, how));
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
    run.stats.view,
    replicas.map((r) => ({ segment: r.segment.name, replica: r.plan.replica, statsSlot: r.plan.statsSlot, timeoutMs: r.segment.recordTimeoutMs })),
  );
  const timeouts = run.segments.map((s) => s.recordTimeoutMs).filter((t): t is number => t !== undefined);
  const watching = setInterval(() => {
    const over = watchdog.sample();
    if (over) fail(new RecordTimeoutError(over.segment, over.replica, over.index, over.timeoutMs, run.segments.find((s) => s.name === over.segment)!.kind));
    const locked = watchdog.deadlock(rings, run.waits);
    if (locked) fail(new PipelineDeadlockError(locked));
  }, Math.max(20, Math.min(250, ...timeouts.map((t) => t / 4))));
  const timer = options.onProgress
    ? setInterval(() => options.onProgress!(snapshot(run, started, watchdog)), options.progressIntervalMs ?? 250)
    : undefined;

  const tsx = needsTsx(replicas.map((r) => r.plan));
  try {
    for (const r of replicas) start(r, tsx, { onMessage, onExit, fail });
    await allDone;
  } finally {
    if (timer) clearInterval(timer);
    clearInterval(watching);
    options.signal?.removeEventListener('abort', onAbort);
    if (sigint) process.removeListener('SIGINT', onSigint);
  }
  if (failure) throw failure;
  if (stoppedShort.length) {
    const who = stoppedShort.map((r) => `'${r.segment.name}' (replica ${r.plan.replica})`).join(', ');
    throw new RingError('ERR_PEER_DEAD', `segment ${who} stopped before the end of its input: a ring it used was aborted by a peer's death; its results are lost`);
  }
  const final = snapshot(run, started, watchdog);
  options.onProgress?.(final);
  return { ...final, results, crashed, skipped, skippedCount, warnings };
}

