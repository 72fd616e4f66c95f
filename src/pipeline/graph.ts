// The graph API: segments connected by explicit Streams (several sources and sinks, fan-in,
// fan-out, diamonds). Validation happens here, before anything starts; compile.ts plans the rings.
import { Readable } from 'node:stream';
import { InvalidArgumentError } from '../errors.js';
import { intInRange, oneOf, optional, positive } from '../util/check.js';
import { locate, type Locatable } from '../segments/locate.js';
import type { Segment } from '../segments/segment.js';
import type { ErrorDecision, SegmentContext } from '../segments/segment.js';
import type { Isolation } from '../runtime/plan.js';
import { supervise, type RunOptions, type RunResult } from '../runtime/supervisor.js';
import { compile } from './compile.js';
import { iterateStream, type IterateOptions, type PipelineIterator } from './iterate.js';
import { describeGraph, type GraphDescription } from './describe.js';
import { PipelineValidationError } from './errors.js';
import { Stream } from './stream.js';

/** How a segment runs. Every option has a default; see each field. */
export interface NodeOptions {
  /** Replicas of the segment (horizontal parallelism). Default 1. */
  workers?: number;
  /** 'thread' (default): a worker thread each; 'process': a child process each; 'local': in this thread (debugging). */
  isolation?: Isolation;
  /** With workers > 1, keep the records' order downstream (default true); false gives it up for speed. */
  ordered?: boolean;
  /**
   * What an error thrown by the segment's code does: 'fail' (default) stops the run; 'skip' drops
   * the record and reports it in the result; a function decides per error (it runs where the
   * segment runs, so like segment code it must be exported by a module for threads and processes).
   */
  onError?: 'fail' | 'skip' | ((error: unknown, record: unknown, ctx: SegmentContext) => ErrorDecision);
  /**
   * What a dying replica (crash, signal, out of memory) does: 'fail' (default) stops the run;
   * 'continue' (sinks only) reports it in `result.crashed`, drops its cursors so writers no longer
   * wait for it, and lets the rest of the run finish (e.g. one trainer of a sweep dying).
   */
  onCrash?: 'fail' | 'continue';
  /** Environment variables of the segment's process (isolation 'process'), e.g. CUDA_VISIBLE_DEVICES. */
  env?: Record<string, string>;
  /** Ring bytes of each of this segment's output rings (default: the stream's, else 16 MiB). */
  capacity?: number;
  /**
   * What the segment's code receives. 'view' (default): tensors, typed arrays and bytes, at any
   * depth of a record, are views into the ring, valid until the call returns (zero-copy). 'copy':
   * owned copies (see copyRecord) that the code may keep, e.g. a sink collecting records.
   */
  records?: 'view' | 'copy';
  /**
   * Fail the run with ERR_RECORD_TIMEOUT when one call into the segment's code (a record, or a
   * source producing one) takes longer than this (ms; checked a few times a second). Not for
   * regulators (their calls wait for input). Default: no limit; calls over 10 s are listed in the
   * progress's `stuck` either way.
   */
  recordTimeoutMs?: number;
}

export interface GraphNodeOptions extends NodeOptions {
  /** Input streams: one record from each per call. */
  in?: Stream | Stream[];
  /** Output streams: a transform with several returns one value per output. */
  out?: Stream | Stream[];
}

/** A segment as added to a graph: its streams and its options with defaults applied. */
export interface GraphNode {
  segment: Segment<any>;
  inputs: Stream[];
  outputs: Stream[];
  options: Required<Pick<NodeOptions, 'workers' | 'isolation' | 'ordered'>> & NodeOptions;
  /** Where an onError function lives, for workers. */
  onErrorRef?: { module: string; exportName: string };
}

const list = (s: Stream | Stream[] | undefined): Stream[] => (s === undefined ? [] : Array.isArray(s) ? s : [s]);

/** `options` checked for `segment`, with their defaults: throws InvalidArgumentError naming the segment and option. */
export function checkNodeOptions(segment: Segment<any>, options: NodeOptions): GraphNode['options'] {
  const at = (option: string) => `segment '${segment.name}': ${option}`;
  const workers = optional(options.workers, 1, (v) => intInRange(v, 1, 64, at('workers')));
  const isolation = optional(options.isolation, segment.inThisThread ? 'local' : 'thread', (v) => oneOf(v, ['thread', 'process', 'local'] as const, at('isolation')));
  if (segment.inThisThread && isolation !== 'local') {
    throw new InvalidArgumentError(`segment '${segment.name}' reads objects of this thread (Source.from, writableSource): it runs with isolation 'local', not '${isolation}'`);
  }
  if (options.onCrash !== undefined) oneOf(options.onCrash, ['fail', 'continue'], at('onCrash'));
  if (options.onCrash === 'continue' && segment.kind !== 'sink') {
    throw new InvalidArgumentError(`segment '${segment.name}': onCrash 'continue' is for sinks (a dead ${segment.kind} would leave its readers without an end)`);
  }
  if (options.recordTimeoutMs !== undefined) {
    positive(options.recordTimeoutMs, at('recordTimeoutMs'));
    if (segment.kind === 'regulator') throw new InvalidArgumentError(`segment '${segment.name}': recordTimeoutMs is not for regulators (their calls wait for input)`);
  }
  if (options.records !== undefined) oneOf(options.records, ['view', 'copy'], at('records'));
  if (options.onError !== undefined && typeof options.onError !== 'function') oneOf(options.onError, ['fail', 'skip'], at('onError'));
  return { ...options, workers, isolation, ordered: options.ordered ?? true };
}

/**
 * Segments joined by named streams in any shape: several sources and sinks, fan-in, fan-out,
 * switches, diamonds, feedback loops. Validated before anything starts (`validate()`).
 *
 * @example
 * const g = new Graph();
 * const all = new Stream('all'), even = new Stream('even'), odd = new Stream('odd');
 * g.add(new Source(numbers), { out: all });
 * g.add(new Transform(parity), { in: all, out: [even, odd] });
 * g.add(new Sink(Collect, { name: 'evens' }), { in: even });
 * g.add(new Sink(Collect, { name: 'odds' }), { in: odd });
 * const { results } = await g.run();
 */
export class Graph {
  readonly nodes: GraphNode[] = [];

  /** Adds a segment reading `options.in` and writing `options.out`. */
  add(segment: Segment<any>, options: GraphNodeOptions = {}): this {
    this.nodes.push({ segment, inputs: list(options.in), outputs: list(options.out), options: checkNodeOptions(segment, options) });
    return this;
  }

  /** A new stream to connect segments with. */
  stream(name?: string, options?: ConstructorParameters<typeof Stream>[1]): Stream {
    return new Stream(name, options);
  }

  /**
   * Checks the graph; throws PipelineValidationError naming what is wrong. `read`: streams the
   * caller reads itself (iterate()), which need no reading segment.
   */
  validate(read: readonly Stream[] = []): void {
    const names = new Set<string>();
    const writers = new Map<Stream, GraphNode[]>();
    const readers = new Map<Stream, GraphNode[]>();
    for (const n of this.nodes) {
      const s = n.segment;
      const at = `segment '${s.name}'`;
      if (names.has(s.name)) throw new PipelineValidationError(`two segments are named '${s.name}': give them distinct names ({ name })`);
      names.add(s.name);
      if (new Set(n.inputs).size !== n.inputs.length) throw new PipelineValidationError(`${at} reads the same stream twice`);
      const ins = n.inputs.length, outs = n.outputs.length;
      if (s.kind === 'source' && (ins || !outs)) throw new PipelineValidationError(`${at}: a source has no inputs and at least one output (has ${ins} in, ${outs} out)`);
      if (s.kind === 'sink' && (!ins || outs)) throw new PipelineValidationError(`${at}: a sink has at least one input and no outputs (has ${ins} in, ${outs} out)`);
      if (s.kind === 'transform' && (!ins || !outs)) throw new PipelineValidationError(`${at}: a transform needs inputs and outputs (has ${ins} in, ${outs} out)`);
      if (s.kind === 'regulator' && (ins !== 1 || outs !== 1)) throw new PipelineValidationError(`${at}: a regulator has one input and one output`);
      for (const st of n.outputs) writers.set(st, [...(writers.get(st) ?? []), n]);
      for (const st of n.inputs) readers.set(st, [...(readers.get(st) ?? []), n]);
    }
    for (const [st, w] of readers) if (!writers.has(st)) throw new PipelineValidationError(`stream '${st.name}' is read by '${w[0]!.segment.name}' but no segment writes it`);
    for (const st of read) if (!writers.has(st)) throw new PipelineValidationError(`stream '${st.name}' is to be read, but no segment of the graph writes it`);
    for (const [st, w] of writers) if (!readers.has(st) && !read.includes(st)) throw new PipelineValidationError(`stream '${st.name}' is written by '${w[0]!.segment.name}' but no segment reads it`);
    for (const n of this.nodes) {
      if (n.options.workers === 1) continue;
      const at = `segment '${n.segment.name}' has workers: ${n.options.workers}, but`;
      const why =
        n.segment.kind === 'source' ? 'a source runs once (split its data with options instead, e.g. a shard per source)'
          : n.segment.kind === 'regulator' ? 'a regulator sees the whole stream'
          : n.inputs.length > 1 ? 'a segment with several inputs pairs records one by one'
          : (writers.get(n.inputs[0]!)?.length ?? 0) > 1 ? 'it reads a stream several segments write (fan-in)'
          : '';
      if (why) throw new PipelineValidationError(`${at} ${why}; put the replicas on the next segment`);
    }
    this.checkCycles(writers);
  }

  /**
   * Refuses cycles, but for those that pass through a feedback stream (a loop on purpose): with its
   * edges left out the graph must be acyclic. Segments in a loop run one replica each.
   */
  private checkCycles(writers: Map<Stream, GraphNode[]>): void {
    const state = new Map<GraphNode, 1 | 2>();
    const path: GraphNode[] = [];
    const visit = (n: GraphNode) => {
      if (state.get(n) === 2) return;
      if (state.get(n) === 1) {
        const cycle = path.slice(path.indexOf(n)).map((x) => x.segment.name);
        throw new PipelineValidationError(
          `the graph has a cycle: ${[...cycle, n.segment.name].join(' -> ')}; mark one of its streams as a loop (new Stream(name, { feedback: true, initial: [...] })) if it is one`,
        );
      }
      state.set(n, 1);
      path.push(n);
      for (const st of n.inputs) if (!st.feedback) for (const w of writers.get(st) ?? []) visit(w);
      path.pop();
      state.set(n, 2);
    };
    for (const n of this.nodes) visit(n);
    for (const n of loopMembers(this.nodes, writers)) {
      if (n.options.workers > 1) {
        throw new PipelineValidationError(`segment '${n.segment.name}' has workers: ${n.options.workers}, but it is in a feedback loop: segments in a loop run one replica each`);
      }
    }
  }

  /** Validates (see validate()) and finds every segment's module and export (threads and processes import them). */
  async prepare(read: readonly Stream[] = []): Promise<void> {
    this.validate(read);
    for (const n of this.nodes) {
      if (n.options.isolation !== 'local') await locate(n.segment);
      if (typeof n.options.onError === 'function' && n.options.isolation !== 'local') {
        const probe: Locatable = { impl: n.options.onError, name: `${n.segment.name}.onError`, declaredIn: n.segment.declaredIn, module: undefined, exportName: undefined };
        await locate(probe);
        n.onErrorRef = { module: probe.module!, exportName: probe.exportName! };
      }
    }
  }

  /** Runs the graph to the end. Can be called again: every run starts afresh. */
  async run(options: RunOptions = {}): Promise<RunResult> {
    refuseInWorker('run');
    await this.prepare();
    return supervise(compile(this, options), options);
  }

  /**
   * Runs the graph and yields the records of `stream` in this thread, with backpressure (a slow
   * loop holds the writers back as far as the stream's rings hold). Records are owned copies;
   * `{ views: true }` yields zero-copy views valid until the next `next()`. Leaving the loop
   * (break, return, a throw) or aborting `signal` stops every stage; a failing stage rejects the
   * loop's next `next()` with the error run() would give. `{ epochs: n }` runs the graph n times.
   *
   * @example
   * for await (const batch of graph.iterate(batches)) await model.trainOnBatch(batch.xs, batch.ys);
   */
  iterate<T = unknown>(stream: Stream, options: IterateOptions = {}): PipelineIterator<T> {
    refuseInWorker('iterate');
    return iterateStream<T>(this, stream, options);
  }

  /** The records of `stream` as a Node Readable in object mode (see iterate()); destroying it stops every stage. */
  toReadable(stream: Stream, options?: IterateOptions): Readable {
    return Readable.from(this.iterate(stream, options), { objectMode: true });
  }

  /** The graph as Mermaid and DOT text. */
  describe(): GraphDescription {
    return describeGraph(this);
  }
}

/** Segments on a cycle through a feedback stream (a segment that can reach itself). */
export function loopMembers(nodes: readonly GraphNode[], writers: Map<Stream, GraphNode[]>): GraphNode[] {
  const upstream = (n: GraphNode) => n.inputs.flatMap((st) => writers.get(st) ?? []);
  return nodes.filter((start) => {
    const seen = new Set<GraphNode>();
    const todo = upstream(start);
    while (todo.length) {
      const x = todo.pop()!;
      if (x === start) return true;
      if (seen.has(x)) continue;
      seen.add(x);
      todo.push(...upstream(x));
    }
    return false;
  });
}

/** A module that defines segment code and also runs a pipeline at import time would recurse in every worker. */
function refuseInWorker(what: string): void {
  if ((globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')]) {
    throw new PipelineValidationError(
      `${what}() was called inside a ringpipe worker: a module that defines segment code also runs a pipeline when imported. ` +
        'Move the segment code to a module of its own, or guard the run with `if (!isWorker)` (exported by ringpipe).',
    );
  }
}
