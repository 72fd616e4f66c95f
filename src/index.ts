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

// --- Pipelines and graphs: declare segments and how they connect, then run or iterate them.
export { Pipeline } from './pipeline/pipeline.js';
export { Graph, checkNodeOptions } from './pipeline/graph.js';
export type { NodeOptions, GraphNodeOptions, GraphNode } from './pipeline/graph.js';
export { Stream } from './pipeline/stream.js';
export type { StreamOptions } from './pipeline/stream.js';
export type { IterateOptions, PipelineIterator } from './pipeline/iterate.js';
export type { GraphDescription } from './pipeline/describe.js';

// --- Segments: the code a pipeline runs, found by module and export so workers can import it.
export { Source, Transform, Sink, Regulator } from './segments/segment.js';
export type { SegmentContext, SegmentOptions, SegmentClass, ErrorDecision, SegmentKind } from './segments/segment.js';
export { batch, unbatch, batchRegulator, unbatchRegulator } from './segments/regulators.js';
export type { BatchOptions } from './segments/regulators.js';
export { writableSource } from './segments/writable-source.js';
export type { WritableSourceOptions } from './segments/writable-source.js';

// --- Runs: options, live stats and results.
export type { RunOptions, RunResult, Progress, SegmentStats, StreamStats } from './runtime/supervisor.js';
export type { SkippedRecord, SerializedError, SegmentPhase } from './runtime/plan.js';
export type { StuckCall } from './runtime/watchdog.js';

/** True inside a ringpipe worker thread or process: guard module-level pipeline runs with it. */
export const isWorker: boolean = Boolean((globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')]);

// --- Records: what travels through rings. Tensors, typed arrays and bytes arrive as views.
export { copyRecord, holdsSharedMemory, isTensor } from './codec/index.js';
export type { Tensor, DType, TypedArray } from './codec/index.js';

// --- Errors: every one is a RingpipeError with a stable `code`.
export { RingpipeError, NativeLoadError, InvalidArgumentError, RegionError, RingError } from './errors.js';
export { PipelineValidationError } from './pipeline/errors.js';
export { SegmentError, SegmentCrashError, SegmentStalledError, RecordTimeoutError, PipelineDeadlockError, CancelledError } from './runtime/errors.js';
export { SegmentCodeError } from './segments/locate.js';

// --- Rings, for building on the transport directly (the engine's own layer below segments).
export { Ring, RingMemory, RingWriter, RingReader, attachRing, maxPayload, cleanupStaleRegions, EMPTY, END, DEFAULT_CAPACITY } from './ring/index.js';
export type { RingOptions, RingDescriptor, WriterOptions, ReaderOptions, WaitOptions } from './ring/index.js';
