// Segments and the model of the `sweep` suite (imported by the engine's workers and the trainer
// processes; runs nothing at import).
import type { Tensor } from '../../src/index.js';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { permutation, seededRng } from '../../src/util/random.js';
import type { ModelFactoryContext, Params } from '../../src/train/trainer.js';

export interface SweepBenchSource {
  /** Fashion-MNIST directory, or undefined for generated images. */
  data?: string;
  samples: number;
  epochs: number;
  batchSize: number;
  seed: number;
}

/** Generated 28x28 images when the dataset is not there: a class-dependent stripe pattern plus noise. */
function generated(n: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rng = seededRng(seed);
  const images = new Uint8Array(n * 784);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 10;
    labels[i] = c;
    for (let p = 0; p < 784; p++) images[i * 784 + p] = (((p % 28) + c * 3) % 10 < 5 ? 160 : 40) + Math.floor(rng() * 60);
  }
  return { images, labels };
}

/** Loads the data (as every pipeline must) and streams raw batches for all epochs, reshuffled per epoch. */
export async function* rawBatches(o: SweepBenchSource): AsyncGenerator<unknown> {
  const set = o.data ? await loadFashionMnist('train', { data: o.data, limit: o.samples }) : { ...generated(o.samples, o.seed), count: o.samples };
  for (let e = 1; e <= o.epochs; e++) {
    const order = permutation(set.count, o.seed, e);
    for (let s = 0; s + o.batchSize <= set.count; s += o.batchSize) {
      const xs = new Uint8Array(o.batchSize * 784);
      const ys = new Uint8Array(o.batchSize);
      const ids = new Uint32Array(o.batchSize);
      for (let r = 0; r < o.batchSize; r++) {
        const k = order[s + r]!;
        xs.set(set.images.subarray(k * 784, (k + 1) * 784), r * 784);
        ys[r] = set.labels[k]!;
        ids[r] = k;
      }
      yield { epoch: e, ids, xs: { data: xs, shape: [o.batchSize, 784], dtype: 'uint8' }, ys: { data: ys, shape: [o.batchSize], dtype: 'uint8' } };
    }
    yield { epochEnd: e };
  }
}

/**
 * Augmentation as a training pipeline does it, seeded by (epoch, sample) so every pipeline makes the
 * same samples: a random rotation of up to 10 degrees and a shift of up to 2 pixels (bilinear
 * resampling), a random horizontal flip, then normalisation to [0, 1].
 */
export class Augment {
  samples = 0;

  run(rec: { epoch: number; ids: Uint32Array; xs: Tensor<Uint8Array>; ys: Tensor<Uint8Array> } | { epochEnd: number }): unknown {
    if ('epochEnd' in rec) return rec;
    const n = rec.ys.shape[0]!;
    const out = new Float32Array(n * 784);
    for (let r = 0; r < n; r++) {
      const rng = seededRng((rec.ids[r]! * 7919 + rec.epoch * 104729) | 0);
      const angle = ((rng() * 2 - 1) * 10 * Math.PI) / 180;
      const dx = rng() * 4 - 2;
      const dy = rng() * 4 - 2;
      const flip = rng() < 0.5;
      const cos = Math.cos(angle);
      const sin = Math.sin(angle);
      const src = rec.xs.data.subarray(r * 784, (r + 1) * 784);
      const dst = out.subarray(r * 784, (r + 1) * 784);
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const ox = (flip ? 27 - x : x) - 13.5 - dx;
          const oy = y - 13.5 - dy;
          const sx = cos * ox + sin * oy + 13.5;
          const sy = -sin * ox + cos * oy + 13.5;
          const x0 = Math.floor(sx);
          const y0 = Math.floor(sy);
          const fx = sx - x0;
          const fy = sy - y0;
          const at = (xx: number, yy: number) => (xx < 0 || yy < 0 || xx > 27 || yy > 27 ? 0 : src[yy * 28 + xx]!);
          const v = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) + (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
          dst[y * 28 + x] = v / 255;
        }
      }
    }
    this.samples += n;
    return { xs: { data: out, shape: [n, 784], dtype: 'float32' }, ys: { data: Float32Array.from(rec.ys.data), shape: [n], dtype: 'float32' } };
  }

  teardown(): { samples: number } {
    return { samples: this.samples };
  }
}

/** The trials' model: 784-128-10, the learning rate from the trial. */
export function createModel(params: Params, { tf }: ModelFactoryContext) {
  const model = tf.sequential();
  model.add(tf.layers.dense({ units: 128, activation: 'relu', inputShape: [784] }));
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  model.compile({ optimizer: tf.train.adam(Number(params.learningRate)), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}
