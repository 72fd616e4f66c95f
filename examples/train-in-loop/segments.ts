// Segment code of the example (workers import it): pairs a batch of images with its labels.
import type { SampleMeta } from '../../src/image/segments.js';
import type { Tensor } from '../../src/codec/types.js';

/** Two inputs, one batch of each: the images tensor and its samples' metadata -> { xs, ys }. */
export function toBatch(images: Tensor, metas: SampleMeta[]) {
  // Class indices as float32: what tfjs's sparse categorical cross-entropy takes.
  return { xs: images, ys: { data: Float32Array.from(metas, (m) => m.label), shape: [metas.length], dtype: 'float32' } };
}
