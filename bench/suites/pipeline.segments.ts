// Segment code of the `pipeline` suite: trivial stages, so the engine's own cost shows.
import type { SegmentContext } from '../../src/index.js';

export function* smallObjects(options: { count: number }) {
  for (let i = 0; i < options.count; i++) yield { id: i, label: 'cat', score: 0.5 };
}
export function* numbers(options: { count: number }) {
  for (let i = 0; i < options.count; i++) yield i;
}
export async function* tensors(options: { count: number }, ctx: SegmentContext) {
  for (let i = 0; i < options.count; i++) {
    const t = await ctx.tensor([224, 224, 3], 'float32');
    // Made in place: a real producer (decoder, augmenter) writes here; both ends are touched.
    t.data[0] = i;
    t.data[t.data.length - 1] = i;
    yield t;
  }
}
export function identity<T>(x: T): T {
  return x;
}
export function touchTensor(t: { data: Float32Array }) {
  t.data[1] = t.data[0]!;
  return t;
}
export function burn(x: number) {
  // ~50 us of arithmetic per record: CPU-bound.
  let acc = 0;
  for (let i = 0; i < 25_000; i++) acc += Math.sqrt(i + x);
  return acc;
}
export class Count {
  n = 0;
  run() {
    this.n++;
  }
  teardown() {
    return this.n;
  }
}
