// How close the fused JPEG path is to sharp on a benchmark corpus, and which images take it: for
// `count` samples (the runners' crops), the fused tensor against sharp's for the same crop box
// (extract the box, then resize), as 8-bit values, split by what the fused path does with the
// crop: reduce it from a full-scale decode, decode it at a DCT scale of 1/2-1/8 (box at least twice
// the output), or enlarge it (box smaller than the output, where libvips shifts the image by half
// an output pixel and the fused path does not).
import { readFileSync } from 'node:fs';
import { augmentation, preprocess, resolveSpec, type PreprocessSpec } from '../../src/image/decode.js';
import { jpegInfo } from '../../src/image/header.js';
import { PixelDiff } from '../../src/image/quality.js';

export interface FusedQuality {
  /** Images of the corpus that took the fused path, and all of them. */
  fusedImages: number;
  images: number;
  /** Mean absolute error (8-bit levels) and PSNR (dB) over all samples, and per kind of crop. */
  all: ReturnType<PixelDiff['summary']>;
  fullScale: ReturnType<PixelDiff['summary']>;
  dctScaled: ReturnType<PixelDiff['summary']>;
  enlarged: ReturnType<PixelDiff['summary']>;
  text: string;
}

/** Samples k = 0..count-1: files[k % n] with key { index: base + k, epoch: 0 }, `spec`'s crops as uint8. */
export async function fusedQuality(files: string[], spec: PreprocessSpec, count: number, base: number): Promise<FusedQuality> {
  const u8: PreprocessSpec = { ...spec, dtype: 'uint8', mean: undefined, std: undefined, decoder: 'auto' };
  const r = resolveSpec(u8);
  const out = r.width * r.height * 3;
  const diffs = { all: new PixelDiff(), fullScale: new PixelDiff(), dctScaled: new PixelDiff(), enlarged: new PixelDiff() };
  let fusedImages = 0;
  for (const file of files) if ((await preprocess(file, u8, undefined, { index: 0 })).decoder === 'fused') fusedImages++;
  for (let k = 0; k < count; k++) {
    const file = files[k % files.length]!;
    const key = { index: base + k, epoch: 0 };
    const a = await preprocess(file, u8, undefined, key);
    if (a.decoder !== 'fused') continue;
    const b = await preprocess(file, { ...u8, decoder: 'sharp', strategy: 'extract-resize' }, undefined, key);
    const info = jpegInfo(readFileSync(file))!;
    const { box } = augmentation(r, info.width, info.height, key);
    const shrink = Math.min(box.width / r.width, box.height / r.height);
    diffs.all.add(a.data, b.data);
    (shrink < 1 ? diffs.enlarged : shrink < 2 ? diffs.fullScale : diffs.dctScaled).add(a.data, b.data);
  }
  const text = `${fusedImages} of ${files.length} images take the fused path; fused vs sharp, same crop box: all ${diffs.all.text(out)}; reduced at full scale: ${diffs.fullScale.text(out)}; DCT-scaled: ${diffs.dctScaled.text(out)}; enlarged: ${diffs.enlarged.text(out)}`;
  return {
    fusedImages,
    images: files.length,
    all: diffs.all.summary(out),
    fullScale: diffs.fullScale.summary(out),
    dctScaled: diffs.dctScaled.summary(out),
    enlarged: diffs.enlarged.summary(out),
    text,
  };
}
