/**
 * Segment code of the demo's sweep: the source of the training stream. It runs in an engine worker,
 * which imports this module by name (`DEMO_SEGMENTS` in `./demo.ts`): the module exports code and
 * starts nothing at import.
 *
 *   demoBatches (shards -> { xs, ys } batches, reshuffled per epoch) -> broadcast -> one trainer per trial
 */
import type { Tensor } from '../codec/types.js';
import { InvalidArgumentError } from '../errors.js';
import { permutation } from '../util/random.js';
import { loadSplit, type DemoSetArgs } from './sets.js';

/** Options of {@link demoBatches} (plain data: cloned into the worker). */
export interface DemoBatchOptions extends DemoSetArgs {
  epochs: number;
  batchSize: number;
}

/** A training batch: `[n, H, W, 3]` float32 images and `[n]` float32 class indices. */
export interface DemoBatch {
  xs: Tensor<Float32Array>;
  ys: Tensor<Float32Array>;
}

/**
 * The training stream of a wave, all epochs: the training split of the preprocessed shards in a new
 * seeded order each epoch, in batches of `batchSize` (the last one of an epoch may be smaller), each
 * epoch followed by `{ epochEnd: e }`.
 */
export async function* demoBatches(o: DemoBatchOptions): AsyncGenerator<DemoBatch | { epochEnd: number }> {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new InvalidArgumentError(`demoBatches: epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new InvalidArgumentError(`demoBatches: batchSize must be a positive integer, got ${o.batchSize}`);
  const set = await loadSplit(o, 'train');
  if (!set.count) throw new InvalidArgumentError('demoBatches: the training split is empty');
  const per = set.sampleShape[0] * set.sampleShape[1] * set.sampleShape[2];
  for (let e = 1; e <= o.epochs; e++) {
    const order = permutation(set.count, o.seed, e);
    for (let s = 0; s < set.count; s += o.batchSize) {
      const n = Math.min(o.batchSize, set.count - s);
      const xs = new Float32Array(n * per);
      const ys = new Float32Array(n);
      for (let r = 0; r < n; r++) {
        const k = order[s + r]!;
        xs.set(set.xs.subarray(k * per, (k + 1) * per), r * per);
        ys[r] = set.ys[k]!;
      }
      yield { xs: { data: xs, shape: [n, ...set.sampleShape], dtype: 'float32' }, ys: { data: ys, shape: [n], dtype: 'float32' } };
    }
    yield { epochEnd: e };
  }
}
