// Segments of the Fashion-MNIST sweep's data path. They run in the engine's workers, which import
// this module: it exports code and runs nothing at import.
//
//   source (raw uint8 batches, shuffled per epoch) -> normalize (float32 / 255) -> trainers (broadcast)
import type { SegmentContext, Tensor } from '../../src/index.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { permutation } from '../../src/util/random.js';

export interface BatchSourceOptions {
  /** Dataset directory (--data), or undefined to search the usual places. */
  data?: string;
  /** Training examples to use (the first `train` of the 60,000). */
  train: number;
  epochs: number;
  batchSize: number;
  /** Shuffle seed; epoch e uses seed * 1000 + e. */
  seed: number;
}

interface RawBatch {
  xs: Tensor<Uint8Array>;
  ys: Tensor<Uint8Array>;
}

/**
 * The training stream for all epochs: batches of raw pixels and labels in a fresh seeded order per
 * epoch, each epoch followed by `{ epochEnd: e }`. The last partial batch of an epoch is dropped.
 */
export async function* fashionMnistBatches(o: BatchSourceOptions): AsyncGenerator<RawBatch | { epochEnd: number }> {
  const set = await loadFashionMnist('train', { data: o.data, limit: o.train });
  const px = set.rows * set.cols;
  for (let e = 1; e <= o.epochs; e++) {
    const order = permutation(set.count, o.seed, e);
    for (let s = 0; s + o.batchSize <= set.count; s += o.batchSize) {
      const xs = new Uint8Array(o.batchSize * px);
      const ys = new Uint8Array(o.batchSize);
      for (let r = 0; r < o.batchSize; r++) {
        const k = order[s + r]!;
        xs.set(set.images.subarray(k * px, (k + 1) * px), r * px);
        ys[r] = set.labels[k]!;
      }
      yield { xs: { data: xs, shape: [o.batchSize, px], dtype: 'uint8' }, ys: { data: ys, shape: [o.batchSize], dtype: 'uint8' } };
    }
    yield { epochEnd: e };
  }
}

/**
 * The preprocessing, run once per sample per epoch whatever the number of trainers: pixels to
 * float32 in [0, 1]. Batches go on as `{ xs, ys }` records, epoch markers unchanged; the output
 * stream is broadcast to every trainer of the wave.
 *
 * (Two outputs, xs and ys tensors written in place with `ctx.tensor`, would keep the tensors
 * zero-copy up to the trainers, which can read two streams; but a two-input segment currently stalls
 * once one of its input rings fills, so this example sends one stream of `{ xs, ys }` objects.)
 */
export class Normalize {
  samples = 0;

  /**
   * Two outputs, images and labels, each written in place in the ring the trainers read: the
   * batches reach every trainer zero-copy. Epoch markers go on both.
   */
  async run(rec: RawBatch | { epochEnd: number }, ctx: SegmentContext): Promise<unknown[]> {
    if ('epochEnd' in rec) return [rec, rec];
    const [n, px] = rec.xs.shape as [number, number];
    const src = rec.xs.data;
    const xs = await ctx.tensor([n, px], 'float32', 0);
    const dst = xs.data as Float32Array;
    for (let i = 0; i < src.length; i++) dst[i] = src[i]! / 255;
    const ys = await ctx.tensor([n], 'float32', 1);
    (ys.data as Float32Array).set(rec.ys.data);
    this.samples += n;
    return [xs, ys];
  }

  teardown(): { samples: number } {
    return { samples: this.samples };
  }
}
