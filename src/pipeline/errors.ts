import { RingpipeError } from '../errors.js';
import type { SerializedError } from '../runtime/plan.js';

/** The graph cannot run as declared (names the segment or stream). */
export class PipelineValidationError extends RingpipeError {
  constructor(message: string) {
    super('ERR_PIPELINE_INVALID', message);
  }
}

/** A segment's code threw and onError said fail. `cause` carries the original error and stack. */
export class SegmentError extends RingpipeError {
  constructor(
    readonly segment: string,
    readonly replica: number,
    /** Sequence number of the record being processed (null in a source). */
    readonly index: number | null,
    readonly original: SerializedError,
  ) {
    super(
      'ERR_SEGMENT_FAILED',
      `segment '${segment}' (replica ${replica})${index === null ? '' : ` failed on record ${index}`}: ${original.name}: ${original.message}`,
    );
    this.stack = `${this.name}: ${this.message}\n--- original stack ---\n${original.stack ?? original.message}`;
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
