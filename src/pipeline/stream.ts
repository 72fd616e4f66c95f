// A Stream connects segments in a graph: written by one or more segments, read by one or more.
import { fail } from '../util/check.js';

/** How a stream delivers its records, its ring size, and whether it closes a feedback loop. */
export interface StreamOptions {
  /**
   * With several reading segments: 'broadcast' (default) gives every reader every record (zero-copy,
   * one cursor each); 'balance' splits the records among them.
   */
  mode?: 'broadcast' | 'balance';
  /** Ring bytes per writer replica (a power of two). Default 16 MiB; must hold 2x the largest record. */
  capacity?: number;
  /**
   * The stream closes a loop: a segment reads (directly or further down) what it writes, as in
   * MiniPipe's Fibonacci example. Cycles are refused unless one of their streams says so. A segment
   * in the loop ends it with ctx.stop(); a loop whose rings all fill fails with ERR_PIPELINE_DEADLOCK.
   */
  feedback?: boolean;
  /** Records the stream starts with, read before anything written to it (a feedback loop's seed). */
  initial?: unknown[];
}

let count = 0;

/**
 * A named connection in a Graph: written by one or more segments, read by one or more
 * (broadcast by default, or balanced among its readers).
 */
export class Stream {
  readonly name: string;
  readonly mode: 'broadcast' | 'balance';
  readonly capacity: number | undefined;
  readonly feedback: boolean;
  readonly initial: readonly unknown[];
  constructor(name?: string, options: StreamOptions = {}) {
    this.name = name ?? `stream${++count}`;
    this.mode = options.mode ?? 'broadcast';
    this.capacity = options.capacity;
    this.feedback = options.feedback ?? false;
    if (options.initial !== undefined && !Array.isArray(options.initial)) fail(`stream '${this.name}': initial`, 'an array of records', options.initial);
    this.initial = options.initial ?? [];
  }
}
