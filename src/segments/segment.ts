// Segments: what a pipeline is made of. A segment names user code (a function or a class with
// setup/run/teardown) that runs inside its own worker thread, child process, or in-process.
import { InvalidArgumentError } from '../errors.js';
import type { DType, Tensor } from '../codec/types.js';
import { callerFile } from './locate.js';
import { func } from '../util/check.js';

/** What a segment does with records. */
export type SegmentKind = 'source' | 'transform' | 'sink' | 'regulator';

/** What segment code sees besides its records. */
export interface SegmentContext<O = unknown> {
  /** The segment's name. */
  readonly name: string;
  /** This replica's index, 0..replicas-1. */
  readonly replica: number;
  readonly replicas: number;
  /** The options given when the segment was declared. */
  readonly options: O;
  /** Sequence number of the record being processed (a source's own count for sources). */
  readonly index: number;
  /** Which pass over the data this run is: RunOptions.epoch, counted up by iterate({ epochs }). */
  readonly epoch: number;
  /**
   * Aborted when the run stops (a failure elsewhere, cancellation) or this replica has ended: pass
   * it to long awaits (fetch, timers, queues) so they end with the run.
   */
  readonly signal: AbortSignal;
  /**
   * An output tensor whose data lives in the output ring: fill it and return (or yield) it, and it
   * is handed on without a copy. At most one may be pending per output port.
   */
  tensor<D extends DType = 'float32'>(shape: number[], dtype?: D, port?: number): Promise<Tensor>;
  /**
   * Reads no more: after the current call this replica lets go of its inputs (writers stop waiting
   * for it; other readers of a broadcast stream go on), its outputs end, and teardown runs. For a
   * consumer that has seen enough, e.g. an early-stopped trainer.
   */
  stop(): void;
}

/** A class-style segment: `setup` and `teardown` run once per replica, inside the worker. */
export interface SegmentClass<O = any> {
  new (): {
    /** Once per replica, before the first record, with the options given at declaration. */
    setup?(options: O, ctx: SegmentContext<O>): unknown;
    /** Per record (one argument per input, then ctx); for sources and regulators, once. */
    run(...args: any[]): unknown;
    /** After the last record; what it returns is this replica's entry in `result.results`. */
    teardown?(ctx: SegmentContext<O>): unknown;
  };
}

/** Per-error decision of `onError` as a function: drop the record or stop the run. */
export type ErrorDecision = 'skip' | 'fail';

/** Options of a segment's declaration: its name, the options its code receives, where its code is. */
export interface SegmentOptions<O = unknown> {
  /** Name in errors, stats and diagrams. Default: the function's or class's name. */
  name?: string;
  /** Handed to `setup(options)` (classes), sources' generators and `ctx.options`. */
  options?: O;
  /**
   * Module (file URL or path) exporting the code, for when ringpipe cannot find it by itself. By
   * default it looks in the module that declared the segment and in the modules that one imports.
   */
  module?: string;
  /** Export name within `module`. Default: found by identity. */
  export?: string;
}

/** Segment code given as a function. */
export type AnyFunction = (...args: any[]) => any;

let anonymous = 0;

/**
 * What Source, Transform, Sink and Regulator share: the code, its name and options, and where to
 * find it (module and export) for workers.
 */
export abstract class Segment<O = unknown> {
  abstract readonly kind: SegmentKind;
  readonly impl: AnyFunction | SegmentClass<O>;
  readonly name: string;
  readonly options: O;
  readonly isClass: boolean;
  /** Where the segment was declared, to look for its module. */
  readonly declaredIn: string | undefined;
  module: string | undefined;
  exportName: string | undefined;
  /**
   * The code is a closure over objects of this thread (a stream, a queue): it runs with isolation
   * 'local' only, which is then its default. Set by Source.from() and writableSource().
   */
  readonly inThisThread: boolean = false;

  constructor(impl: AnyFunction | SegmentClass<O>, options: SegmentOptions<O> = {}) {
    func(impl, "a segment's code (a function or a class)");
    this.impl = impl;
    this.isClass = /^class[\s{]/.test(Function.prototype.toString.call(impl));
    this.name = options.name ?? (impl.name || `segment${++anonymous}`);
    this.options = options.options as O;
    this.module = options.module;
    this.exportName = options.export;
    this.declaredIn = callerFile();
    if (this.isClass && typeof (impl as SegmentClass).prototype.run !== 'function') {
      throw new InvalidArgumentError(`segment '${this.name}': a class segment needs a run() method`);
    }
  }
}

/**
 * Produces records: a generator or async generator function `(options, ctx) => records`, or a
 * class whose `run(ctx)` is one. Returning early ends the stream.
 */
export class Source<O = unknown> extends Segment<O> {
  readonly kind = 'source' as const;

  /**
   * A source reading `input` in this thread: any iterable or async iterable, such as an array, a
   * Node Readable (object mode: its objects; bytes: its Buffer chunks) or a web ReadableStream. It
   * runs with isolation 'local' (the object cannot reach a worker). An input that fails fails the
   * run naming the source; one that ends ends the stream. It is read once: a second run of the
   * pipeline finds it consumed.
   *
   * @example
   * const lines = Readable.from(['a', 'b']);
   * await new Pipeline().add(Source.from(lines, { name: 'lines' })).add(new Sink(store)).run();
   */
  static from<T>(input: Iterable<T> | AsyncIterable<T>, options: { name?: string } = {}): Source {
    if (input === null || typeof input !== 'object' || (typeof (input as Iterable<T>)[Symbol.iterator] !== 'function' && typeof (input as AsyncIterable<T>)[Symbol.asyncIterator] !== 'function')) {
      throw new InvalidArgumentError(`Source.from: expected an iterable, an async iterable, a Readable or a ReadableStream, got ${input === null ? 'null' : typeof input}`);
    }
    // A stream that fails before the run reads it (the run starts once every stage is ready) must
    // not crash the process with an unheard 'error': it keeps the error, and reading it rejects.
    const emitter = input as { on?: (event: string, listener: () => void) => unknown };
    if (typeof emitter.on === 'function') emitter.on('error', () => {});
    const read = async function* (_options: unknown, ctx: SegmentContext) {
      const it = (Symbol.asyncIterator in input ? (input as AsyncIterable<T>)[Symbol.asyncIterator]() : (input as Iterable<T>)[Symbol.iterator]()) as AsyncIterator<T> | Iterator<T>;
      // A run that stops while the input is quiet must not leave this waiting for it.
      const stopped = new Promise<never>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
      stopped.catch(() => undefined);
      try {
        for (;;) {
          const step = await Promise.race([it.next(), stopped]);
          if (step.done) return;
          yield step.value;
        }
      } finally {
        // Close the input (a Readable is destroyed); when the run stopped, without waiting on it.
        const closing = Promise.resolve(it.return?.()).catch(() => undefined);
        if (!ctx.signal.aborted) await closing;
      }
    };
    const source = new Source(read, { name: options.name ?? 'from' });
    (source as { inThisThread: boolean }).inThisThread = true;
    return source;
  }
}

/**
 * Maps records: `(record, ctx) => value` (or one argument per input, then ctx). Returning
 * `undefined` sends nothing; with several outputs, return an array with one value per output.
 */
export class Transform<O = unknown> extends Segment<O> {
  readonly kind = 'transform' as const;
}

/** Consumes records: `(record, ctx) => void`. A class's `teardown()` result is the run's result. */
export class Sink<O = unknown> extends Segment<O> {
  readonly kind = 'sink' as const;
}

/**
 * Turns a stream into another of any length: an async generator `(records, options, ctx)` that
 * reads the async iterable `records` and yields outputs (e.g. batch, unbatch). A record from
 * `records` is valid until the next one is pulled: copy what you keep.
 */
export class Regulator<O = unknown> extends Segment<O> {
  readonly kind = 'regulator' as const;
}
