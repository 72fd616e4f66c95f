/**
 * Batches of image tensors: `[N, H, W, 3]` (NHWC, TensorFlow's native layout) or `[N, 3, H, W]`
 * (NCHW, PyTorch's), with an Int32 label per sample.
 *
 * Zero-copy route: {@link allocBatch} then {@link batchSlot} gives each sample's region of the
 * batch, which `preprocess(input, spec, slot)` fills in place. {@link stackBatch} copies
 * separately produced tensors into a batch (transposing when layouts differ).
 */
import { InvalidArgumentError } from '../errors.js';
import type { ImageTensor } from './decode.js';
import type { ImageDType, Layout } from './normalize.js';

/** Batch layout: channels last or channels first. */
export type BatchLayout = 'nhwc' | 'nchw';

/** A batch of `n` images with their labels. */
export interface ImageBatch<T extends Float32Array | Uint8Array = Float32Array | Uint8Array> {
  /** `n * H * W * 3` elements. */
  data: T;
  /** `[n, H, W, 3]` or `[n, 3, H, W]`. */
  shape: [number, number, number, number];
  dtype: ImageDType;
  layout: BatchLayout;
  /** One class index per sample (-1 for unlabelled). */
  labels: Int32Array;
}

const sampleLayout = (b: BatchLayout): Layout => (b === 'nhwc' ? 'hwc' : 'chw');

/**
 * Allocates a batch of `n` images of `height x width`: `options.layout` is `'nhwc'` (default) or
 * `'nchw'`, `options.dtype` `'float32'` (default) or `'uint8'`.
 */
export function allocBatch(n: number, height: number, width: number, options: { dtype?: ImageDType; layout?: BatchLayout } = {}): ImageBatch {
  for (const [k, v] of Object.entries({ n, height, width })) {
    if (!Number.isInteger(v) || v < (k === 'n' ? 0 : 1)) throw new InvalidArgumentError(`allocBatch: ${k} must be a ${k === 'n' ? 'non-negative' : 'positive'} integer, got ${v}`);
  }
  const dtype = options.dtype ?? 'float32';
  const layout = options.layout ?? 'nhwc';
  if (layout !== 'nhwc' && layout !== 'nchw') throw new InvalidArgumentError(`allocBatch: layout must be 'nhwc' or 'nchw', got ${String(layout)}`);
  const len = n * height * width * 3;
  return {
    data: dtype === 'float32' ? new Float32Array(len) : new Uint8Array(len),
    shape: layout === 'nhwc' ? [n, height, width, 3] : [n, 3, height, width],
    dtype,
    layout,
    labels: new Int32Array(n).fill(-1),
  };
}

/** Sample `i`'s region of a batch: a view (no copy) to pass as `out` to `preprocess`. */
export function batchSlot<T extends Float32Array | Uint8Array>(batch: ImageBatch<T>, i: number): T {
  const n = batch.shape[0];
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new InvalidArgumentError(`batchSlot: index ${i} out of range [0, ${n})`);
  const per = batch.data.length / n;
  return batch.data.subarray(i * per, (i + 1) * per) as T;
}

/**
 * Copies image tensors (all the same size and dtype) into one batch, converting HWC <-> CHW when
 * the batch layout differs from the samples'. Labels come from each sample's `label` (default -1).
 * `options.out`: storage for the batch data (at least `n * H * W * 3` elements), e.g. a ring view.
 */
export function stackBatch(samples: readonly (ImageTensor & { label?: number })[], options: { layout?: BatchLayout; out?: Float32Array | Uint8Array } = {}): ImageBatch {
  if (!samples.length) throw new InvalidArgumentError('stackBatch: no samples');
  const first = samples[0];
  const [h, w] = first.layout === 'hwc' ? [first.shape[0], first.shape[1]] : [first.shape[1], first.shape[2]];
  const layout = options.layout ?? (first.layout === 'hwc' ? 'nhwc' : 'nchw');
  if (layout !== 'nhwc' && layout !== 'nchw') throw new InvalidArgumentError(`stackBatch: layout must be 'nhwc' or 'nchw', got ${String(layout)}`);
  const per = h * w * 3;
  const n = samples.length;
  const isFloat = first.dtype === 'float32';
  let data: Float32Array | Uint8Array;
  if (options.out) {
    if (!(isFloat ? options.out instanceof Float32Array : options.out instanceof Uint8Array)) throw new InvalidArgumentError(`stackBatch: out must match dtype '${first.dtype}'`);
    if (options.out.length < n * per) throw new InvalidArgumentError(`stackBatch: out holds ${options.out.length} elements, the batch needs ${n * per}`);
    data = options.out.length === n * per ? options.out : options.out.subarray(0, n * per);
  } else {
    data = isFloat ? new Float32Array(n * per) : new Uint8Array(n * per);
  }
  const labels = new Int32Array(n);
  const want = sampleLayout(layout);
  samples.forEach((s, i) => {
    const [sh, sw] = s.layout === 'hwc' ? [s.shape[0], s.shape[1]] : [s.shape[1], s.shape[2]];
    if (sh !== h || sw !== w || s.dtype !== first.dtype || s.data.length !== per) {
      throw new InvalidArgumentError(`stackBatch: sample ${i} is ${s.shape.join('x')} ${s.dtype}, expected ${h}x${w} images of ${first.dtype}`);
    }
    const dst = data.subarray(i * per, (i + 1) * per);
    if (s.layout === want) dst.set(s.data);
    else if (s.layout === 'hwc') hwcToChw(s.data, dst, h, w);
    else chwToHwc(s.data, dst, h, w);
    labels[i] = s.label ?? -1;
  });
  return { data, shape: layout === 'nhwc' ? [n, h, w, 3] : [n, 3, h, w], dtype: first.dtype, layout, labels };
}

/** Converts one `[H, W, 3]` image to `[3, H, W]`. */
export function hwcToChw(src: ArrayLike<number>, dst: { [i: number]: number }, height: number, width: number): void {
  const plane = height * width;
  for (let p = 0, s = 0; p < plane; p++, s += 3) {
    dst[p] = src[s];
    dst[plane + p] = src[s + 1];
    dst[2 * plane + p] = src[s + 2];
  }
}

/** Converts one `[3, H, W]` image to `[H, W, 3]`. */
export function chwToHwc(src: ArrayLike<number>, dst: { [i: number]: number }, height: number, width: number): void {
  const plane = height * width;
  for (let p = 0, d = 0; p < plane; p++, d += 3) {
    dst[d] = src[p];
    dst[d + 1] = src[plane + p];
    dst[d + 2] = src[2 * plane + p];
  }
}
