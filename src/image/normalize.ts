/**
 * The one copy after sharp: 8-bit interleaved RGB (sharp's raw output) into the caller's tensor,
 * with per-channel normalisation, HWC or CHW layout, and an optional horizontal flip, in one pass.
 */

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
 */
export function channelLuts(mean: Rgb, std: Rgb): [Float32Array, Float32Array, Float32Array] {
  const make = (c: number) => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v / 255 - mean[c]) / std[c];
    return t;
  };
  return [make(0), make(1), make(2)];
}

/** Where and how {@link writeTensor} writes. */
export interface WriteOptions {
  layout: Layout;
  /** Mirror left-right while copying. */
  flip: boolean;
  /** Normalisation tables (see {@link channelLuts}); required for a Float32Array destination. */
  luts?: readonly [Float32Array, Float32Array, Float32Array];
}

/**
 * Writes a `width x height` interleaved RGB image into `out` (length `width * height * 3`): floats
 * through the lookup tables, or bytes unchanged. A single pass over the pixels.
 */
export function writeTensor(src: Uint8Array, width: number, height: number, out: Float32Array | Uint8Array, opts: WriteOptions): void {
  const n = width * height;
  if (src.length < n * 3 || out.length < n * 3) throw new RangeError(`writeTensor: need ${n * 3} elements, got src ${src.length}, out ${out.length}`);
  if (out instanceof Float32Array) {
    if (!opts.luts) throw new TypeError('writeTensor: float32 output needs lookup tables');
    writeFloat(src, width, height, out, opts.layout, opts.flip, opts.luts);
  } else {
    writeBytes(src, width, height, out, opts.layout, opts.flip);
  }
}

function writeFloat(src: Uint8Array, width: number, height: number, out: Float32Array, layout: Layout, flip: boolean, luts: readonly [Float32Array, Float32Array, Float32Array]): void {
  const [l0, l1, l2] = luts;
  const rowLen = width * 3;
  if (layout === 'hwc') {
    if (!flip) {
      const end = width * height * 3;
      for (let i = 0; i < end; i += 3) {
        out[i] = l0[src[i]];
        out[i + 1] = l1[src[i + 1]];
        out[i + 2] = l2[src[i + 2]];
      }
      return;
    }
    for (let y = 0; y < height; y++) {
      const row = y * rowLen;
      for (let x = 0, s = row + rowLen - 3; x < rowLen; x += 3, s -= 3) {
        out[row + x] = l0[src[s]];
        out[row + x + 1] = l1[src[s + 1]];
        out[row + x + 2] = l2[src[s + 2]];
      }
    }
    return;
  }
  const plane = width * height;
  const g = plane;
  const b = plane * 2;
  if (!flip) {
    for (let p = 0, s = 0; p < plane; p++, s += 3) {
      out[p] = l0[src[s]];
      out[g + p] = l1[src[s + 1]];
      out[b + p] = l2[src[s + 2]];
    }
    return;
  }
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0, s = (row + width - 1) * 3; x < width; x++, s -= 3) {
      out[row + x] = l0[src[s]];
      out[g + row + x] = l1[src[s + 1]];
      out[b + row + x] = l2[src[s + 2]];
    }
  }
}

function writeBytes(src: Uint8Array, width: number, height: number, out: Uint8Array, layout: Layout, flip: boolean): void {
  const rowLen = width * 3;
  if (layout === 'hwc') {
    if (!flip) {
      out.set(src.subarray(0, width * height * 3));
      return;
    }
    for (let y = 0; y < height; y++) {
      const row = y * rowLen;
      for (let x = 0, s = row + rowLen - 3; x < rowLen; x += 3, s -= 3) {
        out[row + x] = src[s];
        out[row + x + 1] = src[s + 1];
        out[row + x + 2] = src[s + 2];
      }
    }
    return;
  }
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const s = (row + (flip ? width - 1 - x : x)) * 3;
      out[row + x] = src[s];
      out[plane + row + x] = src[s + 1];
      out[2 * plane + row + x] = src[s + 2];
    }
  }
}
