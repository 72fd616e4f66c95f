/**
 * Crop geometry: where to crop an image (centre crop, torchvision's random-resized crop) and how
 * to turn "crop this box, resize it to W x H" into one sharp pipeline that keeps libvips
 * shrink-on-load.
 */
import type { Rng } from '../util/random.js';

/** A rectangle in whole pixels of the (EXIF-oriented) source image. */
export interface CropBox {
  /** Left edge, pixels from the left of the image. */
  left: number;
  /** Top edge, pixels from the top of the image. */
  top: number;
  /** Width in pixels (>= 1). */
  width: number;
  /** Height in pixels (>= 1). */
  height: number;
}

/**
 * The centre crop of torchvision's evaluation transform `Resize(S / fraction)` +
 * `CenterCrop(S)`, expressed as a box of the source: the image is scaled so that the output covers
 * `fraction` of it along its limiting side, and the central `outWidth x outHeight` is kept.
 * `fraction = 1` keeps the largest centred box with the output's aspect ratio.
 */
export function centerCropBox(width: number, height: number, outWidth: number, outHeight: number, fraction: number): CropBox {
  const s = Math.max(outWidth / (fraction * width), outHeight / (fraction * height));
  const w = Math.max(1, Math.min(width, Math.round(outWidth / s)));
  const h = Math.max(1, Math.min(height, Math.round(outHeight / s)));
  return { left: Math.round((width - w) / 2), top: Math.round((height - h) / 2), width: w, height: h };
}

/**
 * torchvision's `RandomResizedCrop.get_params`: up to `attempts` tries of an area fraction drawn
 * uniformly from `scale` and an aspect ratio drawn log-uniformly from `ratio`; the first box that
 * fits is placed uniformly at random. If none fits, the centre crop with the ratio clamped to
 * `ratio` (the whole image when its ratio is within bounds).
 */
export function randomResizedCropBox(
  width: number,
  height: number,
  rng: Rng,
  scale: readonly [number, number] = [0.08, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
  attempts = 10,
): CropBox {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let i = 0; i < attempts; i++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(targetArea * aspect));
    const h = Math.round(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { left, top, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = Math.round(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = Math.round(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  w = Math.max(1, Math.min(width, w));
  h = Math.max(1, Math.min(height, h));
  return { left: Math.floor((width - w) / 2), top: Math.floor((height - h) / 2), width: w, height: h };
}

/** Resize the whole image to `width x height`, then keep the `extract` box of the result. */
export interface ResizeExtractPlan {
  /** Width to resize the whole image to. */
  width: number;
  /** Height to resize the whole image to. */
  height: number;
  /** The output-sized box to keep, in resized pixels. */
  extract: CropBox;
}

/**
 * Turns "crop `box` of a `srcWidth x srcHeight` image and resize it to `outWidth x outHeight`" into
 * "resize the whole image by the crop's scale factors, then extract the output-sized box".
 *
 * Why: sharp applies JPEG/WebP shrink-on-load only when no extraction precedes the resize, and
 * libvips computes only the pixels the final extraction asks for, so this order keeps the cheap
 * reduced decode and does no extra resampling work. The box lands within half a pixel of the exact
 * crop (the whole-image size is rounded to whole pixels).
 */
export function planResizeExtract(srcWidth: number, srcHeight: number, box: CropBox, outWidth: number, outHeight: number): ResizeExtractPlan {
  const sx = outWidth / box.width;
  const sy = outHeight / box.height;
  const width = Math.max(outWidth, Math.round(srcWidth * sx));
  const height = Math.max(outHeight, Math.round(srcHeight * sy));
  const left = Math.min(width - outWidth, Math.max(0, Math.round(box.left * sx)));
  const top = Math.min(height - outHeight, Math.max(0, Math.round(box.top * sy)));
  return { width, height, extract: { left, top, width: outWidth, height: outHeight } };
}
