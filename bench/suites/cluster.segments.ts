// Segment code of the `cluster` suite (exported so worker threads can import it).
import type { SegmentContext } from '../../src/index.js';

/** `count` small JSON records. */
export function* smallRecords(options: { count: number }) {
  for (let i = 0; i < options.count; i++) yield { id: i, label: 'cat', score: 0.5 };
}

/** `count` float32 tensors of `shape`, made in place in the output ring. */
export async function* tensorRecords(options: { count: number; shape: number[] }, ctx: SegmentContext) {
  for (let i = 0; i < options.count; i++) {
    const t = await ctx.tensor(options.shape, 'float32');
    t.data[0] = i;
    t.data[t.data.length - 1] = i;
    yield t;
  }
}

/** Counts records and their payload bytes; checks they arrive in order. */
export class CountRecords {
  n = 0;
  bytes = 0;
  outOfOrder = 0;
  run(r: { id?: number; data?: Float32Array }) {
    const i = r.data ? r.data[0] : r.id;
    if (i !== this.n) this.outOfOrder++;
    this.bytes += r.data ? r.data.byteLength : 40;
    this.n++;
  }
  teardown() {
    return { count: this.n, bytes: this.bytes, outOfOrder: this.outOfOrder };
  }
}
