// Consuming a pipeline from the calling thread, the way ML code consumes a data loader: the
// caller's loop is one more reader of a stream (a cursor in its rings, so a slow loop holds the
// writers back, never buffers without bound), and leaving the loop stops the run.
import { copyRecord } from '../codec/copy.js';
import { EMPTY, END, InputPort } from '../runtime/input.js';
import { supervise, type RunOptions, type RunResult } from '../runtime/supervisor.js';
import { compile } from './compile.js';
import type { Graph } from './graph.js';
import type { Stream } from './stream.js';
import { intInRange, optional } from '../util/check.js';

/** Options of iterate(): those of run(), and how records are handed out. */
export interface IterateOptions extends RunOptions {
  /**
   * Hand out zero-copy views into the ring, valid until the next `next()` call (poisoned then in
   * a poisoning run). Default false: owned copies (copyRecord), safe to keep.
   */
  views?: boolean;
  /**
   * Runs the graph this many times, one after the other, as one iteration: a pass over the data
   * each, with SegmentContext.epoch counting from `epoch` (default 0). Default 1.
   */
  epochs?: number;
}

/** What iterate() returns: an async iterator of records, and the result of every run it made. */
export interface PipelineIterator<T> extends AsyncIterableIterator<T> {
  /** The result of each run (epoch) that ended, in order; complete once the loop has ended. */
  readonly runs: RunResult[];
}

/** Stops the run when the caller leaves its loop early: not an error of the run. */
class IterationClosed extends Error {}

export function iterateStream<T>(graph: Graph, stream: Stream, options: IterateOptions): PipelineIterator<T> {
  const epochs = optional(options.epochs, 1, (v) => intInRange(v, 1, Infinity, 'iterate: epochs'));
  const runs: RunResult[] = [];
  const records = async function* (): AsyncGenerator<T> {
    await graph.prepare([stream]);
    for (let e = 0; e < epochs; e++) runs.push(yield* epoch<T>(graph, stream, { ...options, epoch: (options.epoch ?? 0) + e }));
  };
  return Object.assign(records(), { runs });
}

/** One run of the graph, read in this thread. */
async function* epoch<T>(graph: Graph, stream: Stream, options: IterateOptions): AsyncGenerator<T, RunResult> {
  const plan = compile(graph, options, [stream]);
  const tap = plan.taps[0]!;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  const running = supervise(plan, { ...options, signal });
  running.catch(() => undefined);  // awaited below; a failure must not go unhandled meanwhile
  const port = new InputPort(tap.plan, undefined, 0, tap.poison);
  let ended = false;
  try {
    for (;;) {
      let r: number;
      try {
        r = port.next();
        if (r === EMPTY) {
          await port.wait();
          continue;
        }
      } catch (e) {
        // The ring was aborted: the run failed or was cancelled; its own error says why.
        await running;
        throw e;
      }
      if (r === END) break;
      const value = port.value();
      yield (options.views ? value : copyRecord(value)) as T;
      port.release();
    }
    ended = true;
    port.detach();
    return await running;
  } finally {
    if (!ended) {
      // Left early (break, return, a throw in the loop) or failed: stop every stage and wait
      // until every worker, process and ring is gone.
      stop.abort(new IterationClosed('the loop reading the pipeline ended'));
      port.detach();
      await running.catch(() => undefined);
    }
  }
}
