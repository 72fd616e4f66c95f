// Segment code of the `iterate` suite: 224x224x3 float32 samples made in place, batched by 64.
import type { SegmentContext, Tensor } from '../../src/index.js';

export const SHAPE = [224, 224, 3];
export const BATCH = 64;

export async function* samples(options: { count: number }, ctx: SegmentContext) {
  for (let i = 0; i < options.count; i++) {
    const t = await ctx.tensor(SHAPE, 'float32');
    // Made in place: a real producer (decoder, augmenter) writes here; both ends are touched.
    t.data[0] = i;
    t.data[t.data.length - 1] = i;
    yield t;
  }
}

/** What every consumer does with a batch: reads both ends of it (the work is the hand-off). */
export function touch(b: Tensor): number {
  return (b.data[0] as number) + (b.data[b.data.length - 1] as number);
}

export class TouchBatches {
  n = 0;
  sum = 0;
  run(b: Tensor) {
    this.sum += touch(b);
    this.n++;
  }
  teardown() {
    return this.n;
  }
}
