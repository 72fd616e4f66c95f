// Validation and test sets, loaded inside each trainer process (passed to the trainers by reference
// to this module, not copied through the pipeline).
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import type { TensorPair } from '../../src/train/records.js';

function toPair(images: Uint8Array, labels: Uint8Array, count: number): TensorPair {
  const xs = new Float32Array(images.length);
  for (let i = 0; i < xs.length; i++) xs[i] = images[i]! / 255;
  return { xs: { data: xs, shape: [count, images.length / count] }, ys: { data: Float32Array.from(labels), shape: [count] } };
}

/** The `size` training examples after the first `from` (held out from training). */
export async function validationSet({ data, from, size }: { data?: string; from: number; size: number }): Promise<TensorPair> {
  const set = await loadFashionMnist('train', { data, limit: from + size });
  const px = set.rows * set.cols;
  const count = set.count - from;
  if (count <= 0) throw new Error(`no validation examples: the training split has ${set.count}`);
  return toPair(set.images.subarray(from * px), set.labels.subarray(from), count);
}

/** The test split (10,000 images), or its first `limit`. */
export async function testSet({ data, limit }: { data?: string; limit?: number }): Promise<TensorPair> {
  const set = await loadFashionMnist('test', { data, limit });
  return toPair(set.images, set.labels, set.count);
}
