// Stage functions of pipeline.json. Each gets one argument per input, then a context object
// ({ stage, branch, params, index, metadata, options, signal }).
import { dot, mulberry32 } from './lib/math.js';

// One JSON file holds several samples: yield them one by one (a stream).
export function* flatten(file) {
  for (const s of file.samples) yield s;
}

// Called once per sample (the input streams); parameters are passed whole.
export function featurize(sample, params) {
  const x = new Float64Array(sample.x.length + 1);
  sample.x.forEach((v, i) => (x[i] = v * params.scale));
  x[sample.x.length] = 1; // bias
  return { x, y: sample.y };
}

// Called once per branch of the grid. `features` can be iterated once per epoch.
// Yields the weights after each epoch, with the epoch's loss as metadata.
export async function* train(features, params, sweep) {
  const rand = mulberry32(params.seed);
  let w;
  for (let epoch = 0; epoch < params.epochs; epoch++) {
    let loss = 0;
    let n = 0;
    for await (const { x, y } of features) {
      w ??= Float64Array.from(x, () => (rand() - 0.5) * 0.1);
      const err = dot(w, x) - y;
      for (let i = 0; i < w.length; i++) w[i] -= sweep.learning_rate * (err * x[i] + sweep.l2 * w[i]);
      loss += err * err;
      n++;
    }
    yield { data: Float64Array.from(w), metadata: { epoch, loss: loss / n } };
  }
}

// The last weights of a branch, scored on every sample.
export function evaluate(history, features) {
  const w = history[history.length - 1];
  let se = 0;
  for (const { x, y } of features) se += (dot(w, x) - y) ** 2;
  return { data: { weights: Array.from(w) }, metadata: { mse: se / features.length } };
}
