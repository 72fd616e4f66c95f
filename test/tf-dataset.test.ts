// A pipeline as a tf.data dataset: model.fitDataset over toTfDataset() trains exactly as model.fit over
// the same batches in the same order (wasm backend), for several epochs, and leaks no tensors.
import { describe, expect, it } from 'vitest';
import { Pipeline, Source, Transform } from '../src/index.js';
import { loadTf, type Tf } from '../src/train/backend.js';
import { toTfDataset } from '../src/train/tf-dataset.js';
import { linearBatches } from './fixtures/iterate.js';
import { passThrough } from './fixtures/minipipe.js';

function model(tf: Tf) {
  const m = tf.sequential();
  m.add(tf.layers.dense({ units: 8, activation: 'relu', inputShape: [4], kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  m.add(tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  m.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  return m;
}

describe('toTfDataset', () => {
  it('fitDataset over a pipeline equals fit over the same arrays (3 epochs, loss to 1e-4), no tensor leak', async () => {
    const { tf } = await loadTf({ backend: 'wasm' });
    const batches = 8;
    const pipeline = new Pipeline().add(new Source(linearBatches, { options: { batches } })).add(new Transform(passThrough));

    const counts: number[] = [];
    const viaPipeline = await model(tf).fitDataset(toTfDataset(pipeline, { tf }), {
      epochs: 3,
      verbose: 0,
      callbacks: { onEpochEnd: async () => void counts.push(tf.memory().numTensors) },
    });

    const rows = [...linearBatches({ batches })];
    const xs = tf.tensor2d(Float32Array.from(rows.flatMap((r) => [...r.xs.data])), [batches * 32, 4]);
    const ys = tf.tensor2d(Float32Array.from(rows.flatMap((r) => [...r.ys.data])), [batches * 32, 1]);
    const direct = await model(tf).fit(xs, ys, { epochs: 3, batchSize: 32, shuffle: false, verbose: 0 });
    tf.dispose([xs, ys]);

    const a = viaPipeline.history.loss as number[], b = direct.history.loss as number[];
    expect(a).toHaveLength(3);
    for (let e = 0; e < 3; e++) expect(Math.abs(a[e]! - b[e]!)).toBeLessThan(1e-4);
    expect(a[2]!).toBeLessThan(a[0]!);
    expect(new Set(counts).size).toBe(1);
  });

  it('refuses views, and records that are not batches (pointing at map)', async () => {
    const { tf } = await loadTf({ backend: 'wasm' });
    const p = new Pipeline().add(new Source(linearBatches, { options: { batches: 1 } })).add(new Transform(passThrough));
    expect(() => toTfDataset(p, { tf, views: true })).toThrow(/views are not supported/);
    const ds = toTfDataset(p, { tf, map: () => ({ nope: 1 }) as never });
    await expect(ds.toArray()).rejects.toThrow(/record 0 is not a batch \{ xs, ys \} \(give a map function\)/);
  });
});
