// Example: train a TensorFlow.js model in the main thread from an image pipeline, the way ML code
// consumes a data loader. The images are decoded, augmented and batched by replicas on the engine;
// the training loop reads the batches with iterate() (through toTfDataset() and model.fitDataset),
// and each epoch is a new pass of the pipeline, with its own augmentation (ctx.epoch).
//
//   images -> preprocess (2 replicas) -> batch-images --\
//                                   \-> batch-meta   ---> pair -> [this thread: model.fitDataset]
//
//   npm run example -- train-in-loop [--epochs 6] [--data DIR]
//
// Without --data it generates a small synthetic dataset (3 classes of shapes, as `ringpipe demo`).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Graph, Stream, Transform } from '../../src/index.js';
import { generateDataset, DEMO_CLASSES } from '../../src/demo/dataset.js';
import { batchNamed, imageItems, preprocessImages } from '../../src/image/pipeline.js';
import { loadTf } from '../../src/train/backend.js';
import { toTfDataset } from '../../src/train/tf-dataset.js';
import { toBatch } from './segments.js';

const { values } = parseArgs({ options: { epochs: { type: 'string', default: '6' }, data: { type: 'string' } } });
const epochs = Number(values.epochs);
const size = 24;

const tmp = await mkdtemp(join(tmpdir(), 'ringpipe-train-in-loop-'));
try {
  const dir = values.data ?? join(tmp, 'images');
  if (!values.data) await generateDataset(dir, { perClass: 60, seed: 1 });

  // The data loader: a graph whose last stream the training loop reads.
  const g = new Graph();
  const items = new Stream('items'), images = new Stream('images'), metas = new Stream('metas');
  const imageBatches = new Stream('image-batches'), metaBatches = new Stream('meta-batches'), batches = new Stream('batches');
  g.add(imageItems({ dir, shuffle: true, seed: 7 }), { out: items });
  g.add(preprocessImages({ size, crop: 'random', flip: true, seed: 7 }), { in: items, out: [images, metas], workers: 2 });
  g.add(batchNamed(32, 'batch-images'), { in: images, out: imageBatches });
  g.add(batchNamed(32, 'batch-meta'), { in: metas, out: metaBatches });
  g.add(new Transform(toBatch, { name: 'pair' }), { in: [imageBatches, metaBatches], out: batches });

  // The model, in this thread (tfjs-node-gpu, tfjs-node, or tfjs + wasm: whichever is installed).
  const { tf, description } = await loadTf();
  console.log(`backend: ${description}`);
  const model = tf.sequential();
  model.add(tf.layers.flatten({ inputShape: [size, size, 3] }));
  model.add(tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }));
  model.add(tf.layers.dense({ units: DEMO_CLASSES.length, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }));
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });

  // Each pass of the dataset runs the pipeline once more (epoch 0, 1, ...: new crops and flips).
  const dataset = toTfDataset((o) => g.iterate(batches, o), { tf });
  const t0 = Date.now();
  await model.fitDataset(dataset, {
    epochs,
    verbose: 0,
    callbacks: { onEpochEnd: (e, logs) => console.log(`epoch ${e + 1}/${epochs}: loss ${logs!.loss!.toFixed(3)}, accuracy ${logs!.acc!.toFixed(3)}`) },
  });
  console.log(`trained ${epochs} epochs in ${((Date.now() - t0) / 1000).toFixed(1)} s (chance accuracy ${(1 / DEMO_CLASSES.length).toFixed(3)})`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
