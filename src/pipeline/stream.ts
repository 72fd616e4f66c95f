// A Stream connects segments in a graph: written by one or more segments, read by one or more.
export interface StreamOptions {
  /**
   * With several reading segments: 'broadcast' (default) gives every reader every record (zero-copy,
   * one cursor each); 'balance' splits the records among them.
   */
  mode?: 'broadcast' | 'balance';
  /** Ring bytes per writer replica (a power of two). Default 16 MiB; must hold 2x the largest record. */
  capacity?: number;
}

let count = 0;

export class Stream {
  readonly name: string;
  readonly mode: 'broadcast' | 'balance';
  readonly capacity: number | undefined;
  constructor(name?: string, options: StreamOptions = {}) {
    this.name = name ?? `stream${++count}`;
    this.mode = options.mode ?? 'broadcast';
    this.capacity = options.capacity;
  }
}
