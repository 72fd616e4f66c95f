// Feeding a pipeline from outside: a Writable (object mode) whose records a Source reads, in this
// thread. A record's write completes once the source has written it into its ring, so a full
// pipeline holds the writer back (Writable backpressure: write() returns false past highWaterMark).
import { Writable } from 'node:stream';
import { Source, type SegmentContext } from './segment.js';
import { intInRange, optional } from '../util/check.js';

/** Options of {@link writableSource}. */
export interface WritableSourceOptions {
  /** Name of the source segment. Default 'writable'. */
  name?: string;
  /** Records buffered before write() returns false. Default 16. */
  highWaterMark?: number;
}

/**
 * A Writable and the Source that reads what is written to it. Ending the writable ends the stream;
 * destroying it with an error fails the run naming the source. If the run ends first (it failed,
 * or was stopped), writes still pending fail with that reason, so a producer never waits for ever.
 *
 * @example
 * const { writable, source } = writableSource({ name: 'requests' });
 * const done = new Pipeline().add(source).add(new Transform(parse), { workers: 2 }).add(new Sink(store)).run();
 * await pipeline(httpRecords, writable);   // node:stream/promises
 * await done;
 */
export function writableSource(options: WritableSourceOptions = {}): { writable: Writable; source: Source } {
  const hwm = optional(options.highWaterMark, 16, (v) => intInRange(v, 1, Infinity, 'writableSource: highWaterMark'));
  const queue: { record: unknown; done: (e?: Error | null) => void }[] = [];
  let ended = false;
  let failed: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = () => {
    wake?.();
    wake = undefined;
  };

  const writable = new Writable({
    objectMode: true,
    highWaterMark: hwm,
    write(record, _encoding, done) {
      queue.push({ record, done });
      poke();
    },
    final(done) {
      ended = true;
      poke();
      done();
    },
    destroy(error, done) {
      failed = error ?? failed;
      ended = true;
      for (const q of queue.splice(0)) q.done(error ?? new Error('the writable was destroyed'));
      poke();
      done(error);
    },
  });

  const read = async function* (_options: unknown, ctx: SegmentContext) {
    ctx.signal.addEventListener('abort', poke, { once: true });
    try {
      for (;;) {
        const next = queue.shift();
        if (next) {
          yield next.record;  // resumes once the record is in the ring
          next.done();
          continue;
        }
        if (failed) throw failed;
        if (ended || ctx.signal.aborted) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      // The run ended before the writable did: writes still pending must not wait for ever.
      if (!ended) writable.destroy(new Error(`the pipeline reading '${source.name}' ended before its input did`));
    }
  };
  const source = new Source(read, { name: options.name ?? 'writable' });
  (source as { inThisThread: boolean }).inThisThread = true;
  return { writable, source };
}
