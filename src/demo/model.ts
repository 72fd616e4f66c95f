/**
 * The model module of the demo's sweep, imported inside each trainer process (by path, see
 * `./demo.ts`): a small MLP over the flattened `[H, W, 3]` image tensors, built from a trial's
 * parameters. Dense layers only, so it trains on every tfjs backend, the wasm fallback included.
 * Its initial weights come from the demo's seed, so a seed gives the same numbers every run.
 */
import type * as TF from '@tensorflow/tfjs';
import { InvalidArgumentError } from '../errors.js';
import type { ModelFactoryContext, Params } from '../train/trainer.js';

/** A trial's parameters: the searched `hidden` and `learningRate`, and the shared data shape. */
export interface DemoModelParams {
  /** Width of the hidden layer. */
  hidden: number;
  /** Adam's learning rate. */
  learningRate: number;
  /** Side of the square input images. */
  size: number;
  /** Number of classes. */
  classes: number;
  /** Seed of the initial weights: the same seed trains the same way. */
  seed: number;
}

export function createModel(params: Params, { tf }: ModelFactoryContext): TF.LayersModel {
  const p = params as unknown as DemoModelParams;
  for (const k of ['hidden', 'size', 'classes'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 1) throw new InvalidArgumentError(`demo model: ${k} must be a positive integer, got ${JSON.stringify(p[k])}`);
  }
  if (!(typeof p.learningRate === 'number' && p.learningRate > 0)) throw new InvalidArgumentError(`demo model: learningRate must be a positive number, got ${JSON.stringify(p.learningRate)}`);
  if (!Number.isSafeInteger(p.seed)) throw new InvalidArgumentError(`demo model: seed must be an integer, got ${JSON.stringify(p.seed)}`);
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [p.size, p.size, 3] }));
  model.add(tf.layers.dense({ units: p.hidden, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: p.seed }) }));
  model.add(tf.layers.dense({ units: p.classes, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: p.seed + 1 }) }));
  model.compile({ optimizer: tf.train.adam(p.learningRate), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}
