/**
 * A pipeline as a TensorFlow.js dataset (`tf.data.generator`), for `model.fitDataset`: each pass of
 * the dataset is one run of the pipeline, read in this thread (iterate()), its epoch counting up
 * from `options.epoch`. Records are `{ xs, ys }` batches of tensor records (or lists / maps of
 * them for several inputs), or anything `map` turns into that; they become tf tensors that tfjs
 * disposes after each step.
 */
import type * as TF from '@tensorflow/tfjs';
import type { IterateOptions } from '../pipeline/iterate.js';
import type { Tf } from './backend.js';
import { isBatch, toTensors, type Batch } from './records.js';
import { TrainerError } from './errors.js';

/** What toTfDataset() reads: a Pipeline (its iterate()), or a function giving one pass of records. */
export type TfDatasetSource =
  | {
      /** One pass of the records (a Pipeline's iterate()). */
      iterate(options?: IterateOptions): AsyncIterable<unknown>;
    }
  | ((options: IterateOptions) => AsyncIterable<unknown>);

/** Options of {@link toTfDataset}: those of iterate() (views excepted), the tf namespace, and a map. */
export interface TfDatasetOptions extends IterateOptions {
  /** The tfjs namespace whose model will train on the dataset (e.g. from loadTf()). */
  tf: Tf;
  /** Turns a record into a batch `{ xs, ys }` (default: records already are). */
  map?: (record: unknown) => Batch;
}

/**
 * @example
 * const { tf } = await loadTf();
 * const ds = toTfDataset(batches, { tf });                   // batches: a Pipeline ending in batch()
 * await model.fitDataset(ds, { epochs: 3 });                 // three runs of the pipeline, epochs 0, 1, 2
 */
export function toTfDataset(source: TfDatasetSource, options: TfDatasetOptions): TF.data.Dataset<TF.TensorContainer> {
  const { tf, map, ...iterate } = options;
  if (iterate.views) {
    // tfjs-node wraps typed arrays without copying: a view would be reused under a live tensor.
    throw new TrainerError('ERR_TRAINER_RECORD', 'toTfDataset: views are not supported (a tensor may keep the memory it was made from)');
  }
  let epoch = iterate.epoch ?? 0;
  const pass = (): AsyncIterable<unknown> => {
    const o: IterateOptions = { ...iterate, epoch: epoch++ };
    return typeof source === 'function' ? source(o) : source.iterate(o);
  };
  return tf.data.generator(async function* () {
    let index = 0;
    for await (const record of pass()) {
      const b = map ? map(record) : record;
      if (!isBatch(b)) throw new TrainerError('ERR_TRAINER_RECORD', `toTfDataset: record ${index} is not a batch { xs, ys } (give a map function)`);
      const xs = toTensors(tf, b.xs, 'xs');
      yield { xs, ys: toTensors(tf, b.ys, 'ys') } as TF.TensorContainer;
      index++;
    }
  } as unknown as () => Iterator<TF.TensorContainer>);
}
