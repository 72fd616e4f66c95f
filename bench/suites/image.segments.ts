// Segment code of the `image` suite's ringpipe runner (workers import it by module and export).
import type { Tensor } from '../../src/index.js';

export interface TimedCountOptions {
  /** Records before the clock starts: the span runs from the arrival of record `warmup` - 1 ... */
  warmup: number;
  /** ... to that of record `warmup` + `timed` - 1 (records after it are counted, not timed). */
  timed: number;
  /** Elements every tensor must have. */
  length: number;
}

/**
 * Counts the tensors that reach the end of the pipeline and times the steady state at the sink:
 * from the arrival of the last warm-up record to that of the last timed one. Records arrive in
 * order (the preprocessing replicas are ordered), so when the last warm-up record is here every
 * replica has processed several: the span excludes worker start-up and module loading, not the
 * work; and records follow the timed ones, so the replicas are as busy at its end as at its start.
 */
export class TimedCount {
  private n = 0;
  private warmup = 0;
  private timed = 0;
  private length = 0;
  private tWarm = 0;
  private tLast = 0;

  setup(o: TimedCountOptions): void {
    this.warmup = o.warmup;
    this.timed = o.timed;
    this.length = o.length;
  }

  run(t: Tensor): void {
    if (t.data.length !== this.length || t.dtype !== 'float32') throw new Error(`TimedCount: got ${t.dtype} [${t.shape.join(', ')}], expected ${this.length} float32 elements`);
    const now = performance.now();
    if (++this.n === this.warmup) this.tWarm = now;
    if (this.n === this.warmup + this.timed) this.tLast = now;
  }

  teardown(): { count: number; timed: number; seconds: number } {
    return { count: this.n, timed: Math.min(this.timed, this.n - this.warmup), seconds: (this.tLast - this.tWarm) / 1000 };
  }
}
