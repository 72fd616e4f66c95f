/**
 * The one copy after sharp: 8-bit interleaved RGB (sharp's raw output) into the caller's tensor,
 * with per-channel normalisation, HWC or CHW layout, and an optional horizontal flip, in one pass.
 */
import { native } from '../native.js';

/** Tensor memory layout of one image: `[H, W, 3]` (channels last) or `[3, H, W]` (channels first). */
export type Layout = 'hwc' | 'chw';
/** Element type of an image tensor. */
export type ImageDType = 'float32' | 'uint8';
/** Per-channel (R, G, B) values. */
export type Rgb = readonly [number, number, number];

/** torchvision's ImageNet channel means, in [0, 1] units. */
export const IMAGENET_MEAN: Rgb = [0.485, 0.456, 0.406];
/** torchvision's ImageNet channel standard deviations, in [0, 1] units. */
export const IMAGENET_STD: Rgb = [0.229, 0.224, 0.225];

/**
 * Lookup tables from an 8-bit value to its normalised float, one per channel:
 * `lut[c][v] = (v / 255 - mean[c]) / std[c]`, computed in double precision then rounded once.
 * The three tables are consecutive views of one 768-float array, the form the native copy takes.
 */
export function channelLuts(mean: Rgb, std: Rgb): [Float32Array, Float32Array, Float32Array] {
  const all = new Float32Array(768);
  for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) all[c * 256 + v] = (v / 255 - mean[c]) / std[c];
  return [all.subarray(0, 256), all.subarray(256, 512), all.subarray(512, 768)];
}

/** Where and how {@link writeTensor} writes. */
export interface WriteOptions {
  layout: Layout;
  /** Mirror left-right while copying. */
  flip: boolean;
  /** Normalisation tables (see {@link channelLuts}); required for a Float32Array destination. */
  luts?: readonly [Float32Array, Float32Array, Float32Array];
}

/** The three tables as one 768-float array (the native functions' form): a view when they already are (channelLuts'), else a copy. */
export function packLuts(luts: readonly [Float32Array, Float32Array, Float32Array]): Float32Array {
  const [l0, l1, l2] = luts;
  if (l0.length < 256 || l1.length < 256 || l2.length < 256) throw new RangeError('writeTensor: each lookup table needs 256 entries');
  const contiguous = l0.buffer === l1.buffer && l1.buffer === l2.buffer && l1.byteOffset === l0.byteOffset + 1024 && l2.byteOffset === l1.byteOffset + 1024;
  if (contiguous) return new Float32Array(l0.buffer, l0.byteOffset, 768);
  // Copied every call (768 floats, nothing next to an image): tables can change between calls.
  const p = new Float32Array(768);
  p.set(l0.subarray(0, 256), 0);
  p.set(l1.subarray(0, 256), 256);
  p.set(l2.subarray(0, 256), 512);
  return p;
}

/**
 * Writes a `width x height` interleaved RGB image into `out` (length `width * height * 3`): floats
 * through the lookup tables, or bytes unchanged. A single pass over the pixels, in the addon
 * (native/pixels.h): the same loop in JS cost a tenth of a 500x375 JPEG's decode.
 */
export function writeTensor(src: Uint8Array, width: number, height: number, out: Float32Array | Uint8Array, opts: WriteOptions): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || width * height * 3 > 2 ** 32) {
    throw new RangeError(`writeTensor: width and height must be non-negative integers (at most 2^32 elements), got ${width} x ${height}`);
  }
  const n = width * height;
  if (src.length < n * 3 || out.length < n * 3) throw new RangeError(`writeTensor: need ${n * 3} elements, got src ${src.length}, out ${out.length}`);
  if (out instanceof Float32Array) {
    if (!opts.luts) throw new TypeError('writeTensor: float32 output needs lookup tables');
    native.writeRgbTensor(src, width, height, out, opts.layout === 'chw', opts.flip, packLuts(opts.luts));
  } else {
    native.writeRgbTensor(src, width, height, out, opts.layout === 'chw', opts.flip);
  }
}
