// Running one stage (in one branch): calling its function with its inputs and collecting what it
// produces. The executor (executor.ts) decides what runs and where outputs go; a StageRunner only
// calls the function. InProcessRunner runs it in this process; a runner on ringpipe's engine (worker
// threads / processes, replicas) implements the same interface.
import type { ArtifactRecord } from '../cache/records.js';
import { StageError } from './errors.js';
import { functionStack, pathOf, previewArgs } from './preview.js';
import type { Isolation } from './types.js';

/** What a stage function receives as its last argument, after one argument per input. */
export interface StageContext {
  /** The stage's item name. */
  readonly stage: string;
  /** Branch id (12 hex digits), or null outside any grid/random-search branch. */
  readonly branch: string | null;
  /** The branch's parameters: `{ searchItem: { field: value } }`. */
  readonly params: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Index of this call: the record's position in the stream for streaming inputs, 0 otherwise. */
  readonly index: number;
  /** Metadata of each input's record for this call, in the order of `inputs` (undefined where there is none). */
  readonly metadata: readonly (Readonly<Record<string, unknown>> | undefined)[];
  /** Options of a library stage (its own fields); `{}` for user stages. */
  readonly options: Readonly<Record<string, unknown>>;
  /** Aborted when the run is cancelled; long computations should stop when it fires. */
  readonly signal: AbortSignal;
}

/** A stage function: one argument per input, then the context; returns a value, or yields many. */
export type StageFunction = (...args: any[]) => unknown;

/** One input of a call. */
export type InputFeed =
  /** Passed whole to every call. */
  | { type: 'value'; data: unknown; metadata?: Record<string, unknown> }
  /** Consumed one record per call. `count` is known when the input is complete. */
  | {
      type: 'stream';
      count?: number;
      /** Opens a pass over the records. */
      open: () => AsyncIterable<ArtifactRecord>;
    };

/** A stage to run. */
export interface StageInvocation {
  /** The stage's item name. */
  stage: string;
  /** Branch id, or null. */
  branch: string | null;
  /** The branch's parameters. */
  params: Record<string, Record<string, unknown>>;
  /** Where the function comes from (so another thread or process can import it). */
  target: { file: string; exportName: string };
  /** For a library stage: its type (the implementation is found by type). */
  library?: string;
  /** The function itself, already imported (for running in this process). */
  fn: StageFunction;
  /** The inputs, in order. */
  inputs: InputFeed[];
  /** Library stage options (`{}` for user stages). */
  options: Record<string, unknown>;
  /** Replicas asked for. */
  workers: number;
  /** Where replicas should run. */
  isolation: Isolation;
  /** Whether a record whose call throws stops the stage (`fail`) or is dropped and reported (`skip`). */
  onError: 'fail' | 'skip';
  /** Cancellation. */
  signal: AbortSignal;
  /** Receives every output record, in order; the runner awaits it (backpressure). */
  emit(record: ArtifactRecord): Promise<void>;
  /** Reports progress: input records consumed so far (streaming stages). */
  progress(consumed: number): void;
}

/** A record dropped by `on_error: "skip"`. */
export interface SkippedCall {
  /** Index of the call (record) that failed. */
  index: number;
  /** The error's message. */
  message: string;
  /** The input file of the record (its metadata's `path`, relative to the pipeline file), when it has one. */
  path?: string;
}

/** What running a stage gave (the records went to `emit`). */
export interface StageOutcome {
  /** `value`: one record from one call; `stream`: a sequence. */
  kind: 'value' | 'stream';
  /** Records dropped by `on_error: "skip"`. */
  skipped: SkippedCall[];
  /** Replicas that actually ran. */
  workers: number;
}

/** Runs stage functions. */
export interface StageRunner {
  /** Short name for messages (`in-process`, `threads`, ...). */
  readonly name: string;
  /** Replicas this runner can run for a stage asking for `workers` (1 when it cannot run replicas). */
  capacity(workers: number, isolation: Isolation): number;
  /** Runs the stage; rejects with a {@link StageError}. */
  run(invocation: StageInvocation): Promise<StageOutcome>;
}

const ARTIFACT = Symbol.for('ringpipe.artifact');

/**
 * Marks a return value or a yielded value as payload plus metadata. A plain object with exactly the
 * keys `data` and `metadata` is understood the same way; use this when the payload itself could look
 * like that.
 */
export function artifact<T>(data: T, metadata: Record<string, unknown>): { data: T; metadata: Record<string, unknown> } {
  const a = { data, metadata };
  Object.defineProperty(a, ARTIFACT, { value: true });
  return a;
}

/** Whether `v` is `{ data, metadata }` (exactly those keys, metadata a plain object) or made by {@link artifact}. */
export function isArtifact(v: unknown): v is { data: unknown; metadata?: Record<string, unknown> } {
  if (!v || typeof v !== 'object') return false;
  if ((v as Record<symbol, unknown>)[ARTIFACT]) return true;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(v);
  if (keys.length !== 2 || !keys.includes('data') || !keys.includes('metadata')) return false;
  const m = (v as { metadata: unknown }).metadata;
  return m === undefined || (m !== null && typeof m === 'object' && !Array.isArray(m));
}

/** Whether a function's result yields many values: a generator, an iterator, or an async iterable. */
export function yieldsMany(v: unknown): v is AsyncIterable<unknown> | Iterator<unknown> {
  if (!v || (typeof v !== 'object' && typeof v !== 'function')) return false;
  if (typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') return true;
  return typeof (v as Iterator<unknown>).next === 'function' && typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function';
}

function mergeMeta(base: Record<string, unknown> | undefined, own: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (!base) return own;
  if (!own) return base;
  return { ...base, ...own };
}

/** The record for one output value, with the metadata of the call's inputs under its own. */
export function toRecord(out: unknown, inherited: Record<string, unknown> | undefined): ArtifactRecord {
  if (isArtifact(out)) {
    const metadata = mergeMeta(inherited, out.metadata);
    return metadata ? { data: out.data, metadata } : { data: out.data };
  }
  return inherited ? { data: out, metadata: inherited } : { data: out };
}

/** Runs every stage in this process, one call at a time. */
export class InProcessRunner implements StageRunner {
  readonly name = 'in-process';

  capacity(): number {
    return 1;
  }

  async run(inv: StageInvocation): Promise<StageOutcome> {
    const streams = inv.inputs.map((f, i) => (f.type === 'stream' ? i : -1)).filter((i) => i >= 0);
    const skipped: SkippedCall[] = [];
    let current: { args: unknown[]; metas: (Record<string, unknown> | undefined)[] } = { args: [], metas: [] };
    const call = (args: unknown[], index: number, metadata: (Record<string, unknown> | undefined)[]) => {
      const ctx: StageContext = { stage: inv.stage, branch: inv.branch, params: inv.params, index, metadata, options: inv.options, signal: inv.signal };
      current = { args, metas: metadata };
      const fn = inv.fn; // unbound: its stack frames name the function, not `[as fn]`
      return fn(...args, ctx);
    };
    const inherited = (metas: (Record<string, unknown> | undefined)[]) => {
      let m: Record<string, unknown> | undefined;
      for (const x of metas) m = mergeMeta(m, x);
      return m;
    };
    // Errors of emit (the cache) or of cancellation are not the function's: never skipped.
    const emit = async (record: ArtifactRecord) => {
      try {
        await inv.emit(record);
      } catch (err) {
        throw new NotTheFunction(err);
      }
    };
    const drain = async (result: unknown, meta: Record<string, unknown> | undefined) => {
      if (yieldsMany(result)) {
        for await (const out of result as AsyncIterable<unknown>) {
          if (inv.signal.aborted) throw new NotTheFunction(aborted(inv));
          await emit(toRecord(out, meta));
        }
        return true;
      }
      return false;
    };

    if (!streams.length) {
      const values = inv.inputs as Extract<InputFeed, { type: 'value' }>[];
      const metas = values.map((v) => v.metadata);
      const meta = inherited(metas);
      try {
        const result = await call(values.map((v) => v.data), 0, metas);
        if (await drain(result, meta)) return { kind: 'stream', skipped, workers: 1 };
        await emit(toRecord(result, meta));
        return { kind: 'value', skipped, workers: 1 };
      } catch (err) {
        if (err instanceof NotTheFunction) throw err.error;
        throw stageFailure(inv, err, undefined, current.args);
      }
    }

    const counts = streams.map((i) => (inv.inputs[i] as Extract<InputFeed, { type: 'stream' }>).count);
    if (counts.every((c) => c !== undefined) && new Set(counts).size > 1) {
      throw new StageError('ERR_STREAM_MISMATCH', inv.stage, inv.branch, `its streaming inputs have different lengths (${streams.map((i, n) => `input ${i + 1}: ${counts[n]}`).join(', ')}); one record of each is consumed per call`);
    }
    const iterators = streams.map((i) => (inv.inputs[i] as Extract<InputFeed, { type: 'stream' }>).open()[Symbol.asyncIterator]());
    try {
      for (let index = 0; ; index++) {
        checkAborted(inv);
        const steps = await Promise.all(iterators.map((it) => it.next()));
        const ended = steps.filter((s) => s.done).length;
        if (ended === steps.length) return { kind: 'stream', skipped, workers: 1 };
        if (ended) {
          throw new StageError('ERR_STREAM_MISMATCH', inv.stage, inv.branch, `its streaming inputs have different lengths: ${streams.filter((_, n) => steps[n]!.done).map((i) => `input ${i + 1}`).join(', ')} ended after ${index} records while the others go on`);
        }
        const args: unknown[] = [];
        const metas: (Record<string, unknown> | undefined)[] = [];
        let s = 0;
        for (const feed of inv.inputs) {
          if (feed.type === 'value') {
            args.push(feed.data);
            metas.push(feed.metadata);
          } else {
            const rec = steps[s++]!.value as ArtifactRecord;
            args.push(rec.data);
            metas.push(rec.metadata);
          }
        }
        const meta = inherited(metas);
        try {
          const result = await call(args, index, metas);
          if (!(await drain(result, meta)) && result !== undefined) await emit(toRecord(result, meta));
        } catch (err) {
          if (err instanceof NotTheFunction) throw err.error;
          if (inv.onError !== 'skip') throw stageFailure(inv, err, index, args);
          skipped.push(skippedCall(index, err, metas));
        }
        inv.progress(index + 1);
      }
    } finally {
      await Promise.all(iterators.map((it) => it.return?.().catch(() => undefined)));
    }
  }
}

/** Wraps an error that must pass through the per-record error handling untouched. */
class NotTheFunction {
  constructor(readonly error: unknown) {}
}

function aborted(inv: StageInvocation): StageError {
  return new StageError('ERR_ABORTED', inv.stage, inv.branch, 'the run was cancelled', { cause: inv.signal.reason });
}

function checkAborted(inv: StageInvocation): void {
  if (inv.signal.aborted) throw aborted(inv);
}

function stageFailure(inv: StageInvocation, err: unknown, record: number | undefined, args: unknown[]): StageError {
  if (err instanceof StageError) return err;
  if (inv.signal.aborted) return new StageError('ERR_ABORTED', inv.stage, inv.branch, 'the run was cancelled', { cause: err });
  const msg = err instanceof Error ? err.message : String(err);
  const where = record === undefined ? '' : ` on record ${record}`;
  return new StageError('ERR_STAGE_FAILED', inv.stage, inv.branch, `${inv.target.exportName === 'default' ? 'the function' : `'${inv.target.exportName}'`} failed${where}: ${msg}`, {
    cause: err,
    record,
    ...(args.length ? { input: previewArgs(args) } : {}),
    ...(err instanceof Error && err.stack ? { functionStack: functionStack(err.stack) } : {}),
  });
}

/** A skipped call: its index, the error's message, and the input file when the record has one. */
export function skippedCall(index: number, err: unknown, metas: readonly (Record<string, unknown> | undefined)[]): SkippedCall {
  const path = pathOf(metas);
  return { index, message: (err as Error)?.message ?? String(err), ...(path !== undefined ? { path } : {}) };
}

/**
 * The arguments (and input metadata) of the calls at `indices`, read again from the inputs:
 * streaming inputs are opened anew and read up to the last index; values are as given. For
 * errors reported by index only (the engine's).
 */
export async function callsAt(inputs: readonly InputFeed[], indices: readonly number[]): Promise<Map<number, { args: unknown[]; metas: (Record<string, unknown> | undefined)[] }>> {
  const wanted = new Set(indices);
  const out = new Map<number, { args: unknown[]; metas: (Record<string, unknown> | undefined)[] }>();
  if (!wanted.size) return out;
  let last = -1;
  for (const i of wanted) if (i > last) last = i;
  const iterators = inputs.map((f) => (f.type === 'stream' ? f.open()[Symbol.asyncIterator]() : undefined));
  try {
    for (let index = 0; index <= last; index++) {
      const steps = await Promise.all(iterators.map((it) => it?.next()));
      if (steps.some((s) => s?.done)) break;
      if (!wanted.has(index)) continue;
      const args: unknown[] = [];
      const metas: (Record<string, unknown> | undefined)[] = [];
      inputs.forEach((f, i) => {
        const rec = f.type === 'stream' ? (steps[i]!.value as ArtifactRecord) : { data: f.data, metadata: f.metadata };
        args.push(rec.data);
        metas.push(rec.metadata);
      });
      out.set(index, { args, metas });
    }
  } finally {
    await Promise.all(iterators.map((it) => it?.return?.().catch(() => undefined)));
  }
  return out;
}
