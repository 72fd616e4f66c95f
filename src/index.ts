/**
 * `ringpipe`: the engine. Segments (Source, Transform, Sink, regulators) run in worker threads,
 * processes or in-process, connected by lock-free rings in shared memory, in a sequential
 * `Pipeline` or any `Graph` of `Stream`s. Importing it loads neither sharp, tfjs nor NATS: those
 * live in `ringpipe/image`, `ringpipe/train`, `ringpipe/json` and `ringpipe/cluster`.
 *
 * @example
 * import { Pipeline, Source, Transform, Sink } from 'ringpipe';
 * import { numbers, square, Collect } from './steps.js';   // segment code lives in modules
 * const result = await new Pipeline().add(new Source(numbers)).add(new Transform(square), { workers: 2 }).add(new Sink(Collect)).run();
 *
 * @packageDocumentation
 */

/** Pipelines and graphs. `Pipeline`: segments one after the other, run() or iterate() it. */
export { Pipeline } from './pipeline/pipeline.js';
/** `Graph`: segments joined by named streams in any shape; `checkNodeOptions` checks a node's options. */
export { Graph, checkNodeOptions } from './pipeline/graph.js';
/** How a segment runs in a pipeline or graph (replicas, isolation, onError, ...), and a graph's nodes. */
export type { NodeOptions, GraphNodeOptions, GraphNode } from './pipeline/graph.js';
/** `Stream`: a named connection in a graph (broadcast, balance, feedback). */
export { Stream } from './pipeline/stream.js';
/** Options of a stream. */
export type { StreamOptions } from './pipeline/stream.js';
/** Reading a pipeline in this thread: iterate()'s options and iterator. */
export type { IterateOptions, PipelineIterator } from './pipeline/iterate.js';
/** describe()'s Mermaid and DOT text. */
export type { GraphDescription } from './pipeline/describe.js';

/** Segments: the code a pipeline runs, found by module and export so workers can import it. */
export { Source, Transform, Sink, Regulator } from './segments/segment.js';
/** What segment code sees (`ctx`), how a segment is declared, class segments, onError decisions. */
export type { SegmentContext, SegmentOptions, SegmentClass, ErrorDecision, SegmentKind } from './segments/segment.js';
/** Built-in regulators: `batch(n)` and `unbatch()` (and their code, for workers). */
export { batch, unbatch, batchRegulator, unbatchRegulator } from './segments/regulators.js';
/** Options of batch(). */
export type { BatchOptions } from './segments/regulators.js';
/** `writableSource()`: a Writable whose records a Source reads, to feed a pipeline from outside. */
export { writableSource } from './segments/writable-source.js';
/** Options of writableSource(). */
export type { WritableSourceOptions } from './segments/writable-source.js';

/** Runs: run()'s options, its result, and the live stats onProgress gets. */
export type { RunOptions, RunResult, Progress, SegmentStats, StreamStats } from './runtime/supervisor.js';
/** Records skipped by onError 'skip', errors as they come from workers, where in its life a segment's code failed. */
export type { SkippedRecord, SerializedError, SegmentPhase } from './runtime/plan.js';
/** A call in a segment's code for 10 s or more (progress `stuck`). */
export type { StuckCall } from './runtime/watchdog.js';

/** True inside a ringpipe worker thread or process: guard module-level pipeline runs with it. */
export const isWorker: boolean = Boolean((globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')]);

/** Records: owned copies of records that hold views (`copyRecord`), and what is a view or a tensor. */
export { copyRecord, holdsSharedMemory, isTensor } from './codec/index.js';
/** A tensor record `{ data, shape, dtype }`, its element types, and the typed arrays it may hold. */
export type { Tensor, DType, TypedArray } from './codec/index.js';

/** Errors: every one is a RingpipeError with a stable `code`; these are the general ones. */
export { RingpipeError, NativeLoadError, InvalidArgumentError, RegionError, RingError } from './errors.js';
/** A graph that cannot run (`ERR_PIPELINE_INVALID`), found before anything starts. */
export { PipelineValidationError } from './pipeline/errors.js';
/** What a run raises: a segment failed, crashed, stalled or timed out, a loop deadlocked, the run was cancelled. */
export { SegmentError, SegmentCrashError, SegmentStalledError, RecordTimeoutError, PipelineDeadlockError, CancelledError } from './runtime/errors.js';
/** A segment's code cannot reach a worker (`ERR_SEGMENT_NOT_EXPORTED`, `ERR_SEGMENT_MODULE`). */
export { SegmentCodeError } from './segments/locate.js';

/** Rings, for building on the transport directly: create, write, read, attach; stale shared memory. */
export { Ring, RingMemory, RingWriter, RingReader, attachRing, maxPayload, cleanupStaleRegions, EMPTY, END, DEFAULT_CAPACITY } from './ring/index.js';
/** Options and descriptors of rings and their ends. */
export type { RingOptions, RingDescriptor, WriterOptions, ReaderOptions, WaitOptions } from './ring/index.js';
