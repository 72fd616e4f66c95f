// Errors a run raises while it goes on: a segment's code failed, stalled, timed out or died, or the
// run was cancelled. Raised by the supervisor from what its replicas report.
import { RingpipeError } from '../errors.js';
import type { SegmentPhase, SerializedError } from './plan.js';

/**
 * A segment's code threw and onError said fail. `cause` is the original error (its `code`, e.g.
 * ERR_RECORD_TOO_LARGE, and its stack); `during` says where: loading the code, setup(), a record,
 * producing a record (sources), teardown(), or a callback still pending after it.
 */
export class SegmentError extends RingpipeError {
  /** The original error, rebuilt from the replica's report (name, message, code, stack). */
  declare readonly cause: Error & { code?: string };
  constructor(
    readonly segment: string,
    readonly replica: number,
    /** Sequence number of the record being processed, or (sources) of the record being produced; null outside records. */
    readonly index: number | null,
    readonly original: SerializedError,
    readonly during: SegmentPhase = index === null ? 'setup' : 'record',
    /** The record that failed, shortened (for messages and logs). */
    readonly record?: string,
  ) {
    super('ERR_SEGMENT_FAILED', `segment '${segment}' (replica ${replica}) ${where(during, index)}: ${original.name}: ${original.message}`, {
      cause: rebuild(original),
    });
    this.stack = `${this.name}: ${this.message}\n--- original stack ---\n${original.stack ?? original.message}`;
  }
}

function where(during: SegmentPhase, index: number | null): string {
  switch (during) {
    case 'load': return 'failed to load its code';
    case 'setup': return 'failed in setup()';
    case 'produce': return `failed producing record ${index}`;
    case 'teardown': return 'failed in teardown()';
    case 'after-teardown': return 'failed after teardown() (a callback or promise it left pending)';
    default: return index === null ? 'failed' : `failed on record ${index}`;
  }
}

function rebuild(e: SerializedError): Error & { code?: string } {
  const out = new Error(e.message) as Error & { code?: string };
  out.name = e.name;
  if (e.code !== undefined) out.code = e.code;
  out.stack = e.stack ?? `${e.name}: ${e.message}`;
  return out;
}

/** A call into a segment's code took longer than its `recordTimeoutMs`. */
export class RecordTimeoutError extends RingpipeError {
  constructor(readonly segment: string, readonly replica: number, readonly index: number, readonly timeoutMs: number, kind: string) {
    super(
      'ERR_RECORD_TIMEOUT',
      `segment '${segment}' (replica ${replica}) ${kind === 'source' ? `took longer than ${timeoutMs} ms producing record ${index}` : `spent longer than ${timeoutMs} ms on record ${index}`} (recordTimeoutMs)`,
    );
  }
}

/**
 * A replica's event loop emptied while its code was not done: it awaits a promise that nothing can
 * settle any more (no timer, I/O or ring wait is left). Reported at once instead of a hang.
 */
export class SegmentStalledError extends RingpipeError {
  constructor(readonly segment: string, readonly replica: number, readonly index: number | null, readonly during: SegmentPhase) {
    super(
      'ERR_SEGMENT_STALLED',
      `segment '${segment}' (replica ${replica}) stalled ${during === 'record' ? `on record ${index}` : during === 'produce' ? `producing record ${index}` : `in ${during}`}: ` +
        'its code awaits a promise that nothing will ever settle (its event loop has nothing left to run)',
    );
  }
}

/** A worker thread or process died (crash, signal, out of memory) before finishing. */
export class SegmentCrashError extends RingpipeError {
  constructor(readonly segment: string, readonly replica: number, how: string) {
    super('ERR_SEGMENT_CRASHED', `segment '${segment}' (replica ${replica}) died: ${how}`);
  }
}

/** The run was cancelled (AbortSignal or SIGINT). */
export class CancelledError extends RingpipeError {
  constructor(reason: string) {
    super('ERR_CANCELLED', `run cancelled: ${reason}`);
  }
}

/** Segments that can only go on once another one has, all of them (a feedback loop whose rings all filled). */
export class PipelineDeadlockError extends RingpipeError {
  constructor(readonly segments: string[]) {
    super(
      'ERR_PIPELINE_DEADLOCK',
      `deadlock: ${segments.map((s) => `'${s}'`).join(', ')} each wait for space in a ring that only another of them can free ` +
        '(a loop whose rings all filled): give the loop\'s streams more capacity, or write fewer records per record read in it',
    );
  }
}
