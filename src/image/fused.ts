/**
 * The fused JPEG path: for a JPEG that libjpeg-turbo decodes to the same pixels libvips would,
 * one native call (native/jpeg/) decodes only the iMCU rows and columns that cover the crop box, at
 * the largest DCT downscale (1/2, 1/4, 1/8) that keeps at least the output size, resamples with an
 * antialiasing filter, and normalises, lays out and flips straight into the output tensor.
 *
 * Why: sharp decodes every pixel of the image, then resizes, then crops; a random-resized crop
 * keeps on average half of the image, and most of the decode was the cost (about 2 of the 3.5 ms
 * of a 500x375 JPEG). The crop box itself is chosen as for sharp (`augmentation` in ./decode.ts), so
 * a sample's region is the same whichever path decodes it.
 *
 * What takes it (everything else goes through sharp, as before): baseline, extended or
 * progressive 8-bit JPEGs in YCbCr or greyscale, without an EXIF rotation to apply, with no ICC
 * profile or an sRGB one (./icc.ts), ending with their end-of-image marker, within
 * `limitInputPixels`, resized with a kernel this path implements (all of sharp's but `nearest`,
 * `mks2013` and `mks2021`), and given to ringpipe as bytes (`readFile` not false). A file the path
 * takes but libjpeg cannot decode cleanly goes to sharp, which decodes it or gives the error.
 *
 * Only the rows down to the crop's bottom are decoded: damage to the entropy-coded data below it
 * goes unnoticed, where sharp (failOn 'warning') would reject the file. A truncated file is caught
 * (no end-of-image marker: sharp).
 */
import { native, type JpegCropResult } from '../native.js';
import type { CropBox } from './crop.js';
import type { ResolvedSpec } from './decode.js';
import type { JpegInfo } from './header.js';
import { isSrgbProfile } from './icc.js';

/** Which decoder `preprocess` uses: `'auto'` the fused JPEG path where it applies, sharp elsewhere; `'sharp'` always sharp. */
export type DecoderChoice = 'auto' | 'sharp';

/** The kernels the native resampler implements, by sharp's names (native/jpeg/resample.h's order). */
const KERNEL_CODES: Readonly<Record<string, number>> = { linear: 0, cubic: 1, mitchell: 2, lanczos2: 3, lanczos3: 4 };
/** sharp's failOn levels as the native path's: 0 warnings ignored, 1 premature end fails, 2 any warning fails. */
const FAIL_ON_CODES: Readonly<Record<ResolvedSpec['failOn'], number>> = { none: 0, error: 0, truncated: 1, warning: 2 };
/** Baseline, extended sequential and progressive Huffman frames. */
const FRAMES = new Set([0xc0, 0xc1, 0xc2]);
/** How far from the end the end-of-image marker may sit (encoders that pad after it). */
const EOI_WINDOW = 256;

/** Whether the JPEG data ends with its end-of-image marker (FF D9), give or take trailing padding. */
export function hasEndMarker(b: Uint8Array): boolean {
  for (let i = b.length - 2, stop = Math.max(2, b.length - EOI_WINDOW); i >= stop; i--) {
    if (b[i] === 0xff && b[i + 1] === 0xd9) return true;
  }
  return false;
}

/** Why the fused path leaves this image to sharp, or undefined when it takes it. */
export function fusedRefusal(info: JpegInfo | undefined, bytes: Uint8Array, r: ResolvedSpec): string | undefined {
  if (r.decoder === 'sharp') return "decoder: 'sharp'";
  if (!info) return 'not a JPEG (or an unusual header)';
  if (KERNEL_CODES[r.kernel] === undefined) return `kernel '${r.kernel}'`;
  if (!FRAMES.has(info.frame)) return `JPEG frame type 0x${info.frame.toString(16)}`;
  if (info.precision !== 8) return `${info.precision}-bit samples`;
  if (info.components !== 1 && info.components !== 3) return `${info.components} components`;
  if (r.autoOrient && info.orientation !== 1) return `EXIF orientation ${info.orientation}`;
  if (info.icc && !isSrgbProfile(info.icc)) return 'an ICC profile other than sRGB';
  if (info.width * info.height > r.limitInputPixels) return 'over limitInputPixels';
  if (!hasEndMarker(bytes)) return 'no end-of-image marker (truncated?)';
  return undefined;
}

/**
 * Runs the fused path for one image into `out` (already checked against the spec). On the calling
 * thread when `sync`, else on libuv's pool. The result's status says whether it wrote `out`.
 */
export function fusedDecode(bytes: Uint8Array, box: CropBox, flip: boolean, r: ResolvedSpec, out: Float32Array | Uint8Array, lut: Float32Array | undefined, sync: boolean): JpegCropResult | Promise<JpegCropResult> {
  return native.jpegCropDecode(
    bytes, box.left, box.top, box.width, box.height, r.width, r.height,
    KERNEL_CODES[r.kernel]!, r.fastShrinkOnLoad, FAIL_ON_CODES[r.failOn], r.limitInputPixels,
    out, r.layout === 'chw', flip, lut, !sync,
  );
}
