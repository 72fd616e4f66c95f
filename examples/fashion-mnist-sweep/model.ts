// The model module the trainers load: an MLP for Fashion-MNIST built from a trial's parameters.
import type * as TF from '@tensorflow/tfjs';
import type { ModelFactoryContext, Params } from '../../src/train/trainer.js';

/** Trial parameters of this sweep. */
export interface MlpParams {
  /** Hidden layer widths, e.g. "256-128". */
  hidden: string;
  learningRate: number;
  /** Dropout after each hidden layer (0: none). */
  dropout: number;
  /** Learning rate multiplier applied after each epoch (1: constant). */
  lrDecay: number;
}

export function createModel(params: Params, { tf }: ModelFactoryContext): TF.LayersModel {
  const p = params as unknown as MlpParams;
  const widths = String(p.hidden).split('-').map(Number);
  if (!widths.length || widths.some((w) => !Number.isInteger(w) || w < 1)) throw new Error(`hidden must look like "256-128", got ${JSON.stringify(p.hidden)}`);
  const model = tf.sequential();
  widths.forEach((units, i) => {
    model.add(tf.layers.dense({ units, activation: 'relu', ...(i === 0 ? { inputShape: [784] } : {}) }));
    if (p.dropout > 0) model.add(tf.layers.dropout({ rate: p.dropout }));
  });
  model.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  model.compile({ optimizer: tf.train.adam(p.learningRate), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Step decay of the learning rate at every epoch end. */
export function onEpochEnd({ model, params }: { model: TF.LayersModel; params: Params }): void {
  const decay = Number((params as unknown as MlpParams).lrDecay ?? 1);
  if (decay !== 1) (model.optimizer as unknown as { learningRate: number }).learningRate *= decay;
}
