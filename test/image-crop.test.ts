import { describe, expect, it } from 'vitest';
import { centerCropBox, planResizeExtract, randomResizedCropBox } from '../src/image/crop.js';
import { augmentation, resolveSpec } from '../src/image/decode.js';
import { channelLuts, writeTensor } from '../src/image/normalize.js';
import { hashInts, mix32, permutation, Rng } from '../src/util/random.js';

// Regression pins: a change here changes every shuffle and augmentation of existing pipelines.
const PINNED_U32 = [2195234337, 2997827129, 3303489978];

describe('random', () => {
  it('Rng is deterministic per key and keys are independent', () => {
    const a = new Rng(1, 2, 3);
    const b = new Rng(1, 2, 3);
    const seqA = Array.from({ length: 50 }, () => a.nextU32());
    expect(Array.from({ length: 50 }, () => b.nextU32())).toEqual(seqA);
    const c = new Rng(1, 2, 4);
    expect(Array.from({ length: 50 }, () => c.nextU32())).not.toEqual(seqA);
    expect(hashInts(1, 2)).not.toBe(hashInts(2, 1));
    expect(hashInts(2 ** 40)).not.toBe(hashInts(0));
    expect(mix32(0)).toBe(0);
    expect(mix32(1)).not.toBe(1);
  });

  it('next() is uniform in [0, 1); int() covers its range', () => {
    const r = new Rng(7);
    let sum = 0;
    const buckets = new Array(10).fill(0);
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < 20000; i++) {
      const v = r.next();
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
      sum += v;
      buckets[Math.floor(v * 10)]++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    expect(sum / 20000).toBeCloseTo(0.5, 1);
    for (const k of buckets) expect(k).toBeGreaterThan(1700);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(r.int(3, 8));
    expect([...seen].sort()).toEqual([3, 4, 5, 6, 7]);
  });

  it('permutation is a deterministic permutation, different per seed and epoch', () => {
    const p = permutation(1000, 5);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(permutation(1000, 5))).toEqual(Array.from(p));
    expect(Array.from(permutation(1000, 6))).not.toEqual(Array.from(p));
    expect(Array.from(permutation(1000, 5, 1))).not.toEqual(Array.from(p));
    expect(Array.from(permutation(0, 1))).toEqual([]);
    // Pinned values: the same on every platform and Node version.
    expect(Array.from(permutation(8, 0))).toEqual([3, 6, 2, 5, 4, 0, 7, 1]);
    const r = new Rng(0);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual(PINNED_U32);
  });
});

describe('crop geometry', () => {
  it('centerCropBox: torchvision Resize(256) + CenterCrop(224)', () => {
    // 500x375, fraction 0.875: the box is 0.875 * 375 = 328 px square, centred.
    expect(centerCropBox(500, 375, 224, 224, 0.875)).toEqual({ left: 86, top: 24, width: 328, height: 328 });
    expect(centerCropBox(375, 500, 224, 224, 1)).toEqual({ left: 0, top: 63, width: 375, height: 375 });
    // Non-square output: the largest centred 2:1 box.
    expect(centerCropBox(400, 400, 200, 100, 1)).toEqual({ left: 0, top: 100, width: 400, height: 200 });
  });

  it('randomResizedCropBox: boxes inside the image, with area and ratio in range', () => {
    let fallbacks = 0;
    for (let i = 0; i < 2000; i++) {
      const W = 100 + (i % 7) * 60;
      const H = 80 + (i % 5) * 70;
      const b = randomResizedCropBox(W, H, new Rng(i), [0.08, 1], [3 / 4, 4 / 3]);
      expect(b.left).toBeGreaterThanOrEqual(0);
      expect(b.top).toBeGreaterThanOrEqual(0);
      expect(b.left + b.width).toBeLessThanOrEqual(W);
      expect(b.top + b.height).toBeLessThanOrEqual(H);
      const area = (b.width * b.height) / (W * H);
      const ratio = b.width / b.height;
      if (area > 0.08 * 0.9 && area < 1.02 && ratio > 0.7 && ratio < 1.4) continue;
      fallbacks++;
    }
    expect(fallbacks).toBe(0);
  });

  it('randomResizedCropBox falls back to a centre crop with the ratio clamped', () => {
    // A 4:1 image cannot hold a square box of 99 % of its area: 10 failures, then the fallback.
    expect(randomResizedCropBox(400, 100, new Rng(1), [0.99, 1], [1, 1])).toEqual({ left: 150, top: 0, width: 100, height: 100 });
    expect(randomResizedCropBox(100, 400, new Rng(1), [0.99, 1], [1, 1])).toEqual({ left: 0, top: 150, width: 100, height: 100 });
    expect(randomResizedCropBox(120, 100, new Rng(1), [0.99, 1], [1, 1.5], 0)).toEqual({ left: 0, top: 0, width: 120, height: 100 });
  });

  it('randomResizedCropBox places boxes everywhere', () => {
    const lefts = new Set<number>();
    for (let i = 0; i < 300; i++) lefts.add(randomResizedCropBox(200, 200, new Rng(i), [0.1, 0.1], [1, 1]).left);
    expect(Math.min(...lefts)).toBeLessThan(10);
    expect(Math.max(...lefts)).toBeGreaterThan(125);
  });

  it('planResizeExtract keeps the box within the resized image and near the exact crop', () => {
    for (let i = 0; i < 500; i++) {
      const W = 50 + ((i * 37) % 600);
      const H = 50 + ((i * 53) % 500);
      const box = randomResizedCropBox(W, H, new Rng(i, 9));
      const p = planResizeExtract(W, H, box, 224, 160);
      expect(p.extract.width).toBe(224);
      expect(p.extract.height).toBe(160);
      expect(p.extract.left + 224).toBeLessThanOrEqual(p.width);
      expect(p.extract.top + 160).toBeLessThanOrEqual(p.height);
      // Mapped back to source pixels, the extracted box starts within 1 px of the requested one.
      expect(Math.abs((p.extract.left * box.width) / 224 - box.left)).toBeLessThanOrEqual(1 + box.width / 224);
      expect(Math.abs((p.extract.top * box.height) / 160 - box.top)).toBeLessThanOrEqual(1 + box.height / 160);
    }
    expect(planResizeExtract(300, 200, { left: 0, top: 0, width: 300, height: 200 }, 30, 20)).toEqual({ width: 30, height: 20, extract: { left: 0, top: 0, width: 30, height: 20 } });
  });

  it('augmentation draws depend only on (seed, epoch, index)', () => {
    const r = resolveSpec({ crop: 'random', flip: true, seed: 11 });
    const a = augmentation(r, 500, 375, { index: 17, epoch: 2 });
    expect(augmentation(r, 500, 375, { index: 17, epoch: 2 })).toEqual(a);
    const others = [augmentation(r, 500, 375, { index: 18, epoch: 2 }), augmentation(r, 500, 375, { index: 17, epoch: 3 }), augmentation(resolveSpec({ crop: 'random', flip: true, seed: 12 }), 500, 375, { index: 17, epoch: 2 })];
    for (const o of others) expect(o).not.toEqual(a);
    expect(augmentation(resolveSpec({ crop: 'center' }), 500, 375).flip).toBe(false);
  });
});

describe('writeTensor', () => {
  // A 3x2 image; pixel (x, y) = [10x + y, 100 + 10x + y, 200 + 10x + y].
  const W = 3;
  const H = 2;
  const src = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) src.set([10 * x + y, 100 + 10 * x + y, 200 + 10 * x + y], (y * W + x) * 3);
  const at = (x: number, y: number, c: number) => c * 100 + 10 * x + y;

  it('uint8 HWC / CHW, with and without flip', () => {
    for (const flip of [false, true]) {
      const hwc = new Uint8Array(18);
      writeTensor(src, W, H, hwc, { layout: 'hwc', flip });
      const chw = new Uint8Array(18);
      writeTensor(src, W, H, chw, { layout: 'chw', flip });
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const sx = flip ? W - 1 - x : x;
          for (let c = 0; c < 3; c++) {
            expect(hwc[(y * W + x) * 3 + c]).toBe(at(sx, y, c));
            expect(chw[c * W * H + y * W + x]).toBe(at(sx, y, c));
          }
        }
      }
    }
  });

  it('float32 applies (v / 255 - mean) / std per channel', () => {
    const mean = [0.1, 0.2, 0.3] as const;
    const std = [0.5, 0.25, 2] as const;
    const luts = channelLuts(mean, std);
    for (const layout of ['hwc', 'chw'] as const) {
      for (const flip of [false, true]) {
        const out = new Float32Array(18);
        writeTensor(src, W, H, out, { layout, flip, luts });
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            for (let c = 0; c < 3; c++) {
              const v = at(flip ? W - 1 - x : x, y, c);
              const i = layout === 'hwc' ? (y * W + x) * 3 + c : c * W * H + y * W + x;
              expect(out[i]).toBe(Math.fround((v / 255 - mean[c]) / std[c]));
            }
          }
        }
      }
    }
  });

  it('rejects short buffers and float output without tables', () => {
    expect(() => writeTensor(src, W, H, new Uint8Array(17), { layout: 'hwc', flip: false })).toThrow(RangeError);
    expect(() => writeTensor(src, W, H, new Float32Array(18), { layout: 'hwc', flip: false })).toThrow(TypeError);
  });
});

describe('writeTensor on a larger image', () => {
  it('matches the per-pixel formula for every layout and flip, into shared memory too', () => {
    const W = 37;
    const H = 11;
    const src = new Uint8Array(W * H * 3);
    for (let i = 0; i < src.length; i++) src[i] = (i * 97 + 13) & 255;
    const mean = [0.485, 0.456, 0.406] as const;
    const std = [0.229, 0.224, 0.225] as const;
    const luts = channelLuts(mean, std);
    const loose: [Float32Array, Float32Array, Float32Array] = [luts[0].slice(), luts[1].slice(), luts[2].slice()];
    for (const layout of ['hwc', 'chw'] as const) {
      for (const flip of [false, true]) {
        const f = new Float32Array(new SharedArrayBuffer(W * H * 12 + 8), 8, W * H * 3);
        const f2 = new Float32Array(W * H * 3);
        const b = new Uint8Array(new SharedArrayBuffer(W * H * 3 + 1), 1, W * H * 3);
        writeTensor(src, W, H, f, { layout, flip, luts });
        writeTensor(src, W, H, f2, { layout, flip, luts: loose });
        writeTensor(src, W, H, b, { layout, flip });
        for (let y = 0; y < H; y++) {
          for (let x = 0; x < W; x++) {
            for (let c = 0; c < 3; c++) {
              const v = src[(y * W + (flip ? W - 1 - x : x)) * 3 + c]!;
              const i = layout === 'hwc' ? (y * W + x) * 3 + c : c * W * H + y * W + x;
              expect(b[i]).toBe(v);
              expect(f[i]).toBe(Math.fround((v / 255 - mean[c]) / std[c]));
              expect(f2[i]).toBe(f[i]);
            }
          }
        }
      }
    }
  });
});

describe('writeTensor argument checks', () => {
  it('rejects negative, fractional and overflowing sizes before touching memory (TS and native)', async () => {
    const { native } = await import('../src/native.js');
    const src = new Uint8Array(50_000);
    const out = new Uint8Array(50_000);
    for (const [w, h] of [[-113510, 1431693603], [2.5, 4], [NaN, 3], [3, -1]]) {
      expect(() => writeTensor(src, w!, h!, out, { layout: 'hwc', flip: true }), `${w} x ${h}`).toThrow(RangeError);
      expect(() => native.writeRgbTensor(src, w!, h!, out, false, true), `native ${w} x ${h}`).toThrow(RangeError);
    }
    expect(() => native.writeRgbTensor(src, 65536, 65536, out, false, false)).toThrow(/needs|overflows/);
    expect(() => native.writeRgbTensor(src, 100, 200, out, false, false)).toThrow(/src holds 50000 elements, needs 60000/);
    writeTensor(src, 0, 7, out, { layout: 'hwc', flip: false });  // nothing to write
  });

  it('loose tables are read afresh at every call', () => {
    const src = new Uint8Array([0, 0, 0]);
    const out = new Float32Array(3);
    const l0 = new Float32Array(256).fill(1);
    writeTensor(src, 1, 1, out, { layout: 'hwc', flip: false, luts: [l0, new Float32Array(256).fill(2), new Float32Array(256).fill(3)] });
    expect(Array.from(out)).toEqual([1, 2, 3]);
    writeTensor(src, 1, 1, out, { layout: 'hwc', flip: false, luts: [l0, new Float32Array(256).fill(0.5), new Float32Array(256).fill(0.25)] });
    expect(Array.from(out)).toEqual([1, 0.5, 0.25]);
    l0[0] = 7;
    writeTensor(src, 1, 1, out, { layout: 'hwc', flip: false, luts: [l0, new Float32Array(256), new Float32Array(256)] });
    expect(out[0]).toBe(7);
  });
});
