// One replica of one segment, wherever it runs (worker thread, child process, or in-process):
// load the code, setup, move records from the input ports through the code to the output ports,
// teardown. The per-record path stays synchronous while records are there and space is free;
// it only awaits to park, or when the user's code returns a promise.
import { pathToFileURL } from 'node:url';
import { InputPort, EMPTY, END } from './input.js';
import { OutputPort } from './output.js';
import { attachStats } from './stats.js';
import {
  previewRecord, serializeError, STAT_BLOCKED, STAT_BUSY, STAT_CALL, STAT_END, STAT_FORWARDED, STAT_IN, STAT_OUT, STAT_SKIPPED, STAT_START, STAT_WAIT_IN, STAT_WAIT_OUT,
  type LoadedCode, type ReplicaPlan, type RunnerMessage, type SegmentPhase, type SkippedRecord,
} from './plan.js';
import type { DType, Tensor } from '../codec/types.js';
import { copyRecord } from '../codec/copy.js';
import type { ErrorDecision, SegmentContext } from '../segments/segment.js';

type Fn = (...args: any[]) => any;

/** How a runner talks to its supervisor. */
export type Send = (message: RunnerMessage) => void;

/** A runner's hooks for the code around it (worker.ts, the supervisor for 'local' replicas). */
export interface ReplicaWatch {
  /** Where the code is, set by the runner. */
  status?: () => ReplicaStatus;
  /** Aborts ctx.signal (the run is stopping), set by the runner. */
  cancel?: (reason: string) => void;
}

/** Where a replica's code is, for errors raised outside its calls (a callback, a rejected promise). */
export interface ReplicaStatus {
  phase: SegmentPhase | 'done';
  /** The record being processed, or (sources) produced. */
  index: number;
}

const MAX_SKIPPED_REPORTED = 1000;


export async function loadCode(plan: ReplicaPlan): Promise<LoadedCode> {
  const url = plan.segment.module.startsWith('file:') ? plan.segment.module : pathToFileURL(plan.segment.module).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const impl = mod[plan.segment.exportName];
  if (typeof impl !== 'function') throw new Error(`segment '${plan.segment.name}': ${url} has no function export '${plan.segment.exportName}'`);
  let onError: LoadedCode['onError'];
  if (plan.onErrorRef) {
    const m = (await import(plan.onErrorRef.module)) as Record<string, unknown>;
    onError = m[plan.onErrorRef.exportName] as LoadedCode['onError'];
  }
  return { impl: impl as Fn, onError };
}

class AbortedRun extends Error {}

/**
 * Runs one replica. `go` resolves once every replica of the run has loaded its code and set up:
 * sources wait for it, so the stream starts when every stage can take it (as a benchmark's peer
 * starts on 'go'), and a source's running time is the stream's.
 */
export async function runReplica(plan: ReplicaPlan, code: LoadedCode, send: Send, go?: Promise<void>, watch: ReplicaWatch = {}): Promise<void> {
  const seg = plan.segment;
  const stats = attachStats(plan.stats, plan.statsSlot);
  stats[STAT_START] = Date.now();
  let firstLane = 0;
  const inputs = plan.inputs.map((p) => {
    const port = new InputPort(p, plan.spin, firstLane, plan.poison);
    firstLane += port.lanes;
    return port;
  });
  const outputs = plan.outputs.map((p, i) => new OutputPort(p, plan.spin, seg.name, (parked) => (stats[STAT_BLOCKED] = parked ? i + 1 : 0)));
  if (outputs.length > 1) {
    const flushAll = () => {
      for (const o of outputs) o.flush();
      for (const p of inputs) p.flush();
    };
    for (const o of outputs) o.beforeWait = flushAll;
  } else if (outputs.length === 1 && inputs.length > 0) {
    outputs[0]!.beforeWait = () => {
      for (const p of inputs) p.flush();
    };
  }
  // Records are published in batches of 64; when the code awaits something that really takes
  // time, publish at the next turn of the event loop instead of holding them back meanwhile.
  let flushScheduled = false;
  const flushOutputs = () => {
    flushScheduled = false;
    try {
      for (const o of outputs) o.flush();
    } catch {
      // Aborted ring: the hot loop reports it at its next write.
    }
  };
  const flushSoon = () => {
    if (flushScheduled || outputs.length === 0) return;
    flushScheduled = true;
    setImmediate(flushOutputs);
  };
  const skipped: SkippedRecord[] = [];
  let skippedCount = 0;
  let outSeq = 0;   // for resequencing segments
  let index = 0;    // seq of the record being processed
  let waitInMs = 0;

  const instance = seg.isClass ? new (code.impl as new () => any)() : undefined;
  const run: Fn = instance ? instance.run.bind(instance) : (code.impl as Fn);

  let stopped = false;
  const stopping = new AbortController();
  watch.cancel = (reason) => stopping.abort(new Error(reason));
  let sourceIterator: Iterator<unknown> | AsyncIterator<unknown> | undefined;
  const ctx: SegmentContext = {
    signal: stopping.signal,
    stop: () => {
      stopped = true;
    },
    name: seg.name,
    replica: plan.replica,
    replicas: plan.replicas,
    epoch: plan.epoch,
    options: seg.options,
    get index() {
      return index;
    },
    tensor: (shape: number[], dtype: DType = 'float32', port = 0): Promise<Tensor> => {
      const out = outputs[port];
      if (!out) throw new RangeError(`segment '${seg.name}' has no output port ${port}`);
      return out.tensor(shape, dtype, plan.resequence ? outSeq : index);
    },
  };

  const updateStats = () => {
    let out = 0, waitOut = 0;
    for (const o of outputs) {
      out += o.written;
      waitOut += o.waitedMs;
    }
    stats[STAT_OUT] = out;
    stats[STAT_WAIT_OUT] = waitOut;
    stats[STAT_WAIT_IN] = waitInMs;
    stats[STAT_SKIPPED] = skippedCount;
  };

  const waitInput = async (port: InputPort) => {
    // Idle: tell readers downstream how far this replica got, so their ordered merges move on
    // (before the flush, which is what makes it visible).
    if (!plan.resequence) for (const o of outputs) o.watermark(port.seen);
    let forwarding = 0;
    for (const o of outputs) {
      o.flush();
      o.pollForwards();
      forwarding += o.forwarding;
    }
    // Hand back what every input released: with several inputs fed by one writer, that writer may
    // be waiting for space in another input's ring before it can write what this one waits for.
    for (const p of inputs) if (p !== port) p.flush();
    updateStats();
    const t0 = performance.now();
    if (forwarding && port.upstreamBlocked()) {
      // Upstream waits for the space our forwarded records hold: what frees it is readers
      // downstream moving on, so wait for that (it wakes us) rather than for input.
      const o = outputs.find((x) => x.forwarding > 0)!;
      await o.waitForwards(20);
    } else {
      // Held records come back only when readers downstream move on, which does not wake an
      // input wait: look again every half millisecond meanwhile.
      await port.wait(forwarding ? 0.5 : undefined);
    }
    waitInMs += performance.now() - t0;
  };

  /**
   * Passes the input record on by reference where the code returned it unchanged (`out` is the
   * decoded value itself, alone or among several outputs). Returns false when it did not apply.
   */
  const FORWARD_MIN_BYTES = 4096;
  const tryForward = async (port: InputPort, value: unknown, out: unknown, seq: number): Promise<boolean> => {
    if (typeof value !== 'object' || value === null) return false;
    const multi = outputs.length > 1;
    if (multi ? !Array.isArray(out) || !out.includes(value) : out !== value) return false;
    const ports = multi ? outputs.filter((_, i) => (out as unknown[])[i] === value) : outputs;
    if (!ports.every((o) => o.canForward)) return false;
    const src = port.forwardable(FORWARD_MIN_BYTES);
    if (!src) return false;
    const held = port.hold(ports.length);
    stats[STAT_FORWARDED]!++;
    for (let i = 0; i < outputs.length; i++) {
      const v = multi ? (out as unknown[])[i] : out;
      if (v === undefined) continue;
      if (v === value) await outputs[i]!.forward(src, seq, held);
      else {
        const p = outputs[i]!.write(v, seq);
        if (p) await p;
      }
    }
    if (plan.resequence) outSeq++;
    return true;
  };

  /** Sends `result` on the outputs: one value, or one per output port for several. */
  const emit = (result: unknown, seq: number): Promise<void> | void => {
    if (outputs.length === 0 || result === undefined) return;
    if (outputs.length === 1) {
      const p = outputs[0]!.write(result, seq);
      if (plan.resequence) outSeq++;
      return p;
    }
    if (!Array.isArray(result) || result.length !== outputs.length) {
      throw new TypeError(`segment '${seg.name}' has ${outputs.length} outputs: return an array with one value per output (undefined: nothing)`);
    }
    let chain: Promise<void> | undefined;
    for (let i = 0; i < outputs.length; i++) {
      const v = result[i], o = outputs[i]!;
      if (v === undefined) continue;
      if (chain) chain = chain.then(() => o.write(v, seq));
      else chain = o.write(v, seq) ?? undefined;
    }
    if (plan.resequence) outSeq++;
    return chain;
  };

  // Where the code is, for the error report: the phase, and the record that failed.
  let phase: SegmentPhase | 'done' = 'setup';
  let failed: { index: number; record: string } | undefined;
  watch.status = () => ({ phase, index: phase === 'produce' ? outSeq : index });

  /** Applies onError; returns normally to skip the record, throws to fail the run. */
  const onRecordError = (error: unknown, record: unknown) => {
    for (const o of outputs) o.dropPending();
    if (error instanceof AbortedRun || (error as { code?: string })?.code === 'ERR_RING_ABORTED') throw error;
    let decision: ErrorDecision = seg.onError === 'skip' ? 'skip' : 'fail';
    if (seg.onError === 'function' && code.onError) decision = code.onError(error, record, ctx);
    if (decision !== 'skip') {
      failed = { index, record: previewRecord(record) };
      throw error;
    }
    skippedCount++;
    if (skipped.length < MAX_SKIPPED_REPORTED) skipped.push({ segment: seg.name, replica: plan.replica, index, error: serializeError(error) });
  };

  // 'copy': the code gets owned records it may keep; by default views into the ring (no copy).
  const take = seg.records === 'copy' ? (port: InputPort) => copyRecord(port.value()) : (port: InputPort) => port.value();

  let result: unknown;
  try {
    if (instance?.setup) await instance.setup(seg.options, ctx);
    send({ type: 'ready' });
    phase = seg.kind === 'source' ? 'produce' : 'record';
    if (seg.kind === 'source' && go) {
      await go;
      stats[STAT_START] = Date.now();
    }

    if (seg.kind === 'source') {
      const iterable = instance ? instance.run(ctx) : run(seg.options, ctx);
      if (iterable && typeof iterable[Symbol.iterator] === 'function' && typeof iterable.next === 'function' && !(Symbol.asyncIterator in iterable)) {
        const it = (sourceIterator = iterable as Iterator<unknown>);
        for (;;) {
          stats[STAT_CALL] = outSeq + 1;
          const step = it.next();
          stats[STAT_CALL] = 0;
          if (step.done) break;
          index = outSeq;
          const p = emit(step.value, outSeq);
          if (p) await p;
          if (stopped) {
            it.return?.();
            break;
          }
        }
      } else if (iterable && typeof iterable[Symbol.asyncIterator] === 'function') {
        const it = (sourceIterator = (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]());
        for (;;) {
          stats[STAT_CALL] = outSeq + 1;
          const step = await it.next();
          stats[STAT_CALL] = 0;
          if (step.done) break;
          index = outSeq;
          const p = emit(step.value, outSeq);
          if (p) await p;
          if (stopped) {
            await it.return?.();
            break;
          }
          flushSoon();
        }
      } else {
        throw new TypeError(`source '${seg.name}' must be a generator (or return an iterable), got ${typeof iterable}`);
      }
    } else if (seg.kind === 'regulator') {
      const port = inputs[0]!;
      let pendingRelease = false;
      const records = async function* (): AsyncGenerator<unknown> {
        for (;;) {
          if (pendingRelease) {
            port.release();
            pendingRelease = false;
          }
          if (stopped) return;
          const r = port.next();
          if (r === END) return;
          if (r === EMPTY) {
            await waitInput(port);
            continue;
          }
          stats[STAT_IN]!++;
          index = port.seq;
          pendingRelease = true;
          yield take(port);
        }
      };
      for await (const v of run(records(), seg.options, ctx) as AsyncIterable<unknown>) {
        const p = emit(v, outSeq);
        if (p) await p;
      }
      if (pendingRelease) port.release();
    } else if (inputs.length === 1) {
      // Transform or sink with one input: the hot loop.
      const port = inputs[0]!;
      const withCtx = seg.kind === 'transform' || seg.kind === 'sink';
      // A copy handed to the code may be changed and returned: only a view is passed on by reference.
      const canForward = seg.records !== 'copy' && outputs.some((o) => o.canForward);
      let n = 0, skipped = 0;
      for (;;) {
        const r = port.next();
        if (r === END) break;
        if (r === EMPTY) {
          await waitInput(port);
          continue;
        }
        index = port.seq;
        if (port.skipped !== skipped && !plan.resequence) {
          // Other replicas took the records before this one: say that nothing below it will
          // come from here, so ordered merges downstream need not wait for this replica.
          skipped = port.skipped;
          for (const o of outputs) o.watermark(index);
        }
        const value = take(port);
        let out: unknown;
        let forwarded = false;
        try {
          stats[STAT_CALL] = index + 1;
          out = withCtx ? run(value, ctx) : run(value);
          if (out instanceof Promise) {
            flushSoon();
            out = await out;
          }
          stats[STAT_CALL] = 0;
          if (canForward) forwarded = await tryForward(port, value, out, plan.resequence ? outSeq : index);
          if (!forwarded) {
            const p = emit(out, plan.resequence ? outSeq : index);
            if (p) await p;
          }
        } catch (e) {
          onRecordError(e, value);
        }
        if (!forwarded) port.release();
        stats[STAT_IN] = ++n;
        if ((n & 1023) === 0) updateStats();
        if (stopped) break;
      }
    } else {
      // Several inputs: one record from each per call; the first input to end ends the segment.
      let n = 0;
      const values = new Array<unknown>(inputs.length);
      outer: for (;;) {
        for (let i = 0; i < inputs.length; i++) {
          for (;;) {
            const r = inputs[i]!.next();
            if (r === END) break outer;
            if (r === EMPTY) {
              await waitInput(inputs[i]!);
              continue;
            }
            values[i] = take(inputs[i]!);
            break;
          }
        }
        index = outSeq;
        try {
          stats[STAT_CALL] = index + 1;
          let out = run(...values, ctx);
          if (out instanceof Promise) {
            flushSoon();
            out = await out;
          }
          stats[STAT_CALL] = 0;
          const p = emit(out, outSeq);
          if (p) await p;
        } catch (e) {
          onRecordError(e, values);
        }
        for (const port of inputs) port.release();
        stats[STAT_IN] = ++n;
        if (stopped) break;
      }
    }
    // Whatever ended the loop (the inputs, the first of several inputs, ctx.stop()), upstream
    // need not wait for this replica's cursors any more.
    for (const port of inputs) port.detach();

    phase = 'teardown';
    if (instance?.teardown) result = await instance.teardown(ctx);
    for (const port of inputs) port.flush();
    for (const o of outputs) o.close();
    updateStats();
    stats[STAT_END] = Date.now();
    stats[STAT_BUSY] = stats[STAT_END]! - stats[STAT_START]! - waitInMs - (stats[STAT_WAIT_OUT] ?? 0);
    phase = 'done';
    stopping.abort(new Error('the replica has ended'));
    send({ type: 'done', result, skipped, skippedCount });
  } catch (e) {
    stats[STAT_CALL] = 0;
    stopping.abort(e);
    // A generator that did not end by itself gets to run its finally blocks (close what it opened).
    try {
      void Promise.resolve(sourceIterator?.return?.()).catch(() => undefined);
    } catch {
      // A generator that is running cannot be returned: it ends when its await does.
    }
    updateStats();
    stats[STAT_END] = Date.now();
    if ((e as { code?: string })?.code === 'ERR_RING_ABORTED' || (e as { code?: string })?.code === 'ERR_PEER_DEAD') {
      send({ type: 'aborted' });
      return;
    }
    const inRecords = phase === 'record' || phase === 'produce';
    send({
      type: 'error', error: serializeError(e), during: phase === 'done' ? 'after-teardown' : phase,
      index: failed?.index ?? (inRecords ? (phase === 'produce' ? outSeq : index) : null),
      ...(failed ? { record: failed.record } : {}),
    });
  }
}
