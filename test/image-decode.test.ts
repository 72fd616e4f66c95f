import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, RingpipeError } from '../src/errors.js';
import { outputLength, outputShape, preprocess, preprocessItem, resolveSpec, type PreprocessSpec } from '../src/image/decode.js';
import { ImageDecodeError } from '../src/image/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/image/normalize.js';

let dir: string;
const f = (name: string) => join(dir, name);

/** Raw RGB pixels from a function of (x, y). */
function pixels(w: number, h: number, fn: (x: number, y: number) => [number, number, number]): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set(fn(x, y), (y * w + x) * 3);
  return b;
}
const fromRaw = (b: Buffer, w: number, h: number, channels: 1 | 2 | 3 | 4 = 3) => sharp(b, { raw: { width: w, height: h, channels } });
/** Deterministic noise, so different crops give different tensors. */
const noise = (w: number, h: number) => pixels(w, h, (x, y) => [(x * 7 + y * 13) & 255, (x * x + y * 3) & 255, (x * y + 91) & 255]);
const halves = (w: number, h: number) => pixels(w, h, (x) => (x < w / 2 ? [255, 0, 0] : [0, 0, 255]));

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringpipe-image-decode-'));
  const red = pixels(64, 48, () => [255, 0, 0]);
  await fromRaw(red, 64, 48).png().toFile(f('red.png'));
  await fromRaw(red, 64, 48).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toFile(f('red.jpg'));
  await fromRaw(pixels(64, 48, () => [100, 100, 100]), 64, 48).toColourspace('b-w').jpeg({ quality: 100 }).toFile(f('grey.jpg'));
  await fromRaw(red, 64, 48).toColourspace('cmyk').jpeg({ quality: 100 }).toFile(f('cmyk.jpg'));
  const v16 = new Uint16Array(64 * 48 * 3);
  for (let i = 0; i < v16.length; i += 3) [v16[i], v16[i + 1], v16[i + 2]] = [0xffff, 0x8080, 0];
  await sharp(v16, { raw: { width: 64, height: 48, channels: 3 } }).toColourspace('rgb16').png().toFile(f('rgb16.png'));
  const rgba = Buffer.alloc(64 * 48 * 4);
  for (let i = 0; i < rgba.length; i += 4) rgba.set([0, 0, 255, 128], i);
  await fromRaw(rgba, 64, 48, 4).png().toFile(f('alpha.png'));
  const ga = Buffer.alloc(64 * 48 * 2);
  for (let i = 0; i < ga.length; i += 2) ga.set([200, 255], i);
  await fromRaw(ga, 64, 48, 2).toColourspace('b-w').png().toFile(f('grey-alpha.png'));
  // Stored 64 wide x 48 high, left half red, right half blue; EXIF 6 = display rotated 90 deg clockwise.
  await fromRaw(halves(64, 48), 64, 48).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toFile(f('exif6.jpg'));
  await fromRaw(halves(64, 48), 64, 48).png().toFile(f('halves.png'));
  // Three vertical stripes: 100 px red | 200 px green | 100 px blue.
  await fromRaw(pixels(400, 200, (x) => (x < 100 ? [255, 0, 0] : x < 300 ? [0, 255, 0] : [0, 0, 255])), 400, 200).png().toFile(f('stripes.png'));
  await fromRaw(noise(320, 240), 320, 240).jpeg({ quality: 95 }).toFile(f('noise.jpg'));
  const good = await fromRaw(noise(200, 150), 200, 150).jpeg({ quality: 90 }).toBuffer();
  await writeFile(f('truncated.jpg'), good.subarray(0, good.length >> 1));
  const corrupt = Buffer.from(good);
  for (let i = 600; i < corrupt.length - 10; i += 7) corrupt[i] ^= 0x5a;
  await writeFile(f('corrupt.jpg'), corrupt);
  await writeFile(f('header-only.jpg'), good.subarray(0, 20));
  await writeFile(f('zero.jpg'), Buffer.alloc(0));
  await writeFile(f('text.jpg'), 'this is not an image\n');
  await writeFile(f('noperm.jpg'), good);
  await chmod(f('noperm.jpg'), 0);
  await mkdir(f('folder.jpg'));
});

afterAll(async () => {
  await chmod(f('noperm.jpg'), 0o600).catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

const expected = (v: number, c: number) => Math.fround((v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]);
const imagenet: PreprocessSpec = { mean: IMAGENET_MEAN, std: IMAGENET_STD };

function pixel(t: { data: Float32Array | Uint8Array; shape: number[]; layout: string }, x: number, y: number): number[] {
  if (t.layout === 'hwc') {
    const w = t.shape[1];
    return Array.from(t.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3));
  }
  const [, h, w] = t.shape;
  return [0, 1, 2].map((c) => t.data[c * h * w + y * w + x]);
}

describe('preprocess: shapes, dtypes, normalisation', () => {
  it('a solid red PNG normalises to the exact ImageNet values, in HWC', async () => {
    const t = await preprocess(f('red.png'), { ...imagenet, size: 32 });
    expect(t.shape).toEqual([32, 32, 3]);
    expect(t.dtype).toBe('float32');
    expect(t.layout).toBe('hwc');
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(t.data.length).toBe(32 * 32 * 3);
    const want = [expected(255, 0), expected(0, 1), expected(0, 2)];
    for (let i = 0; i < t.data.length; i++) expect(t.data[i]).toBe(want[i % 3]);
  });

  it('CHW puts each channel in its own plane', async () => {
    const t = await preprocess(f('red.png'), { ...imagenet, size: [16, 24], layout: 'chw' });
    expect(t.shape).toEqual([3, 16, 24]);
    const plane = 16 * 24;
    for (let c = 0; c < 3; c++) {
      const v = expected(c === 0 ? 255 : 0, c);
      for (let p = 0; p < plane; p++) expect(t.data[c * plane + p]).toBe(v);
    }
  });

  it('without mean/std float32 is v / 255; uint8 is the raw sRGB value', async () => {
    const a = await preprocess(f('red.png'), { size: 8 });
    expect(pixel(a, 3, 3)).toEqual([1, 0, 0]);
    const b = await preprocess(f('red.png'), { size: 8, dtype: 'uint8' });
    expect(b.data).toBeInstanceOf(Uint8Array);
    expect(pixel(b, 3, 3)).toEqual([255, 0, 0]);
  });

  it('a JPEG of solid red is within JPEG error of the PNG', async () => {
    const t = await preprocess(f('red.jpg'), { size: 16, dtype: 'uint8' });
    for (let i = 0; i < t.data.length; i += 3) {
      expect(t.data[i]).toBeGreaterThanOrEqual(250);
      expect(t.data[i + 1]).toBeLessThanOrEqual(4);
      expect(t.data[i + 2]).toBeLessThanOrEqual(4);
    }
  });

  it('outputShape and outputLength follow the spec', () => {
    expect(outputShape({})).toEqual([224, 224, 3]);
    expect(outputShape({ size: [10, 20], layout: 'chw' })).toEqual([3, 10, 20]);
    expect(outputLength({ size: [10, 20] })).toBe(600);
  });
});

describe('preprocess: every input kind gives 3-channel 8-bit sRGB', () => {
  it('greyscale JPEG (1 channel) -> three equal channels', async () => {
    const m = await sharp(f('grey.jpg')).metadata();
    expect(m.channels).toBe(1);
    const t = await preprocess(f('grey.jpg'), { size: 16, dtype: 'uint8' });
    expect(t.shape).toEqual([16, 16, 3]);
    for (let i = 0; i < t.data.length; i += 3) {
      expect(t.data[i]).toBe(t.data[i + 1]);
      expect(t.data[i]).toBe(t.data[i + 2]);
      expect(Math.abs(t.data[i] - 100)).toBeLessThanOrEqual(2);
    }
  });

  it('CMYK JPEG -> sRGB (red stays red)', async () => {
    const m = await sharp(f('cmyk.jpg')).metadata();
    expect(m.space).toBe('cmyk');
    expect(m.channels).toBe(4);
    const t = await preprocess(f('cmyk.jpg'), { size: 16, dtype: 'uint8' });
    const [r, g, b] = pixel(t, 8, 8);
    expect(r).toBeGreaterThan(200);
    expect(g).toBeLessThan(40);
    expect(b).toBeLessThan(40);
  });

  it('16-bit PNG -> 8-bit with the right values', async () => {
    const m = await sharp(f('rgb16.png')).metadata();
    expect(m.depth).toBe('ushort');
    const ref = await sharp(f('rgb16.png')).toColourspace('rgb16').raw({ depth: 'ushort' }).toBuffer();
    expect(Array.from(new Uint16Array(ref.buffer, ref.byteOffset, 3))).toEqual([0xffff, 0x8080, 0]);
    const t = await preprocess(f('rgb16.png'), { size: 16, dtype: 'uint8' });
    expect(pixel(t, 5, 5)).toEqual([255, 128, 0]);
  });

  it('RGBA PNG: alpha dropped by default, flattened over a background when asked', async () => {
    expect((await sharp(f('alpha.png')).metadata()).channels).toBe(4);
    const a = await preprocess(f('alpha.png'), { size: 16, dtype: 'uint8' });
    expect(pixel(a, 8, 8)).toEqual([0, 0, 255]);
    const b = await preprocess(f('alpha.png'), { size: 16, dtype: 'uint8', background: [255, 255, 255] });
    const [r, g, bl] = pixel(b, 8, 8);
    expect(Math.abs(r - 127)).toBeLessThanOrEqual(2);
    expect(Math.abs(g - 127)).toBeLessThanOrEqual(2);
    expect(bl).toBe(255);
  });

  it('grey + alpha PNG -> three equal channels', async () => {
    const m = await sharp(f('grey-alpha.png')).metadata();
    expect(m.channels).toBe(2);
    const t = await preprocess(f('grey-alpha.png'), { size: 8, dtype: 'uint8' });
    expect(pixel(t, 4, 4)).toEqual([200, 200, 200]);
  });

  it('EXIF orientation 6 is applied before cropping (and can be turned off)', async () => {
    const m = await sharp(f('exif6.jpg')).metadata();
    expect(m.orientation).toBe(6);
    // Displayed 48 wide x 64 high, the red half on top.
    const t = await preprocess(f('exif6.jpg'), { size: [64, 48], crop: 'resize', dtype: 'uint8' });
    const top = pixel(t, 24, 8);
    const bottom = pixel(t, 24, 56);
    expect(top[0]).toBeGreaterThan(240);
    expect(top[2]).toBeLessThan(15);
    expect(bottom[2]).toBeGreaterThan(240);
    expect(bottom[0]).toBeLessThan(15);
    // A centre crop uses the oriented geometry too.
    const c = await preprocess(f('exif6.jpg'), { size: 16, crop: 'center', dtype: 'uint8' });
    expect(pixel(c, 8, 1)[0]).toBeGreaterThan(240);
    expect(pixel(c, 8, 14)[2]).toBeGreaterThan(240);
    // Stored orientation: red on the left.
    const s = await preprocess(f('exif6.jpg'), { size: [48, 64], crop: 'resize', dtype: 'uint8', autoOrient: false });
    expect(pixel(s, 8, 24)[0]).toBeGreaterThan(240);
    expect(pixel(s, 56, 24)[2]).toBeGreaterThan(240);
  });

  it('reading the file (sync or async) or letting libvips open it gives identical tensors, with either decoder', async () => {
    for (const name of ['noise.jpg', 'exif6.jpg', 'alpha.png', 'cmyk.jpg']) {
      for (const decoder of ['auto', 'sharp'] as const) {
        const spec: PreprocessSpec = { size: 24, crop: 'random', flip: true, ...imagenet, decoder };
        const a = await preprocess(f(name), spec, undefined, { index: 1 });
        expect(a.decoder).toBe(decoder === 'auto' && name === 'noise.jpg' ? 'fused' : 'sharp');
        for (const readFile of ['sync', 'async', true, false] as const) {
          const b = await preprocess(f(name), { ...spec, readFile }, undefined, { index: 1 });
          expect(b.decoder, `${name} readFile ${readFile}`).toBe(a.decoder);
          expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer)), `${name} ${decoder} readFile ${readFile}`).toBe(true);
        }
      }
    }
  });

  it('rejects an unknown readFile mode', () => {
    expect(() => resolveSpec({ readFile: 'mmap' as never })).toThrow(/readFile must be/);
  });

  it('accepts encoded bytes (Buffer and plain Uint8Array) as input', async () => {
    const bytes = await sharp(f('red.png')).png().toBuffer();
    const a = await preprocess(bytes, { size: 8, dtype: 'uint8' });
    const b = await preprocess(new Uint8Array(bytes), { size: 8, dtype: 'uint8' });
    expect(pixel(a, 1, 1)).toEqual([255, 0, 0]);
    expect(Buffer.from(b.data).equals(Buffer.from(a.data))).toBe(true);
  });
});

describe('preprocess: crops and flips', () => {
  it('centre crop keeps the centre (both strategies)', async () => {
    for (const strategy of ['resize-extract', 'extract-resize'] as const) {
      // 400x200 with fraction 1 -> the central 200x200 box, all green.
      const t = await preprocess(f('stripes.png'), { size: 100, crop: 'center', centerFraction: 1, dtype: 'uint8', strategy });
      for (let y = 0; y < 100; y++) for (let x = 2; x < 98; x++) expect(pixel(t, x, y)).toEqual([0, 255, 0]);
    }
    // The default fraction 0.875 keeps a box narrower still: green.
    const d = await preprocess(f('stripes.png'), { size: 50, dtype: 'uint8' });
    expect(pixel(d, 0, 25)).toEqual([0, 255, 0]);
    expect(pixel(d, 49, 25)).toEqual([0, 255, 0]);
  });

  it("crop 'resize' squeezes the whole image (all stripes present)", async () => {
    const t = await preprocess(f('stripes.png'), { size: [20, 40], crop: 'resize', dtype: 'uint8' });
    expect(pixel(t, 2, 10)).toEqual([255, 0, 0]);
    expect(pixel(t, 20, 10)).toEqual([0, 255, 0]);
    expect(pixel(t, 37, 10)).toEqual([0, 0, 255]);
  });

  it('flip mirrors left-right, identically in every layout and dtype', async () => {
    for (const layout of ['hwc', 'chw'] as const) {
      for (const dtype of ['float32', 'uint8'] as const) {
        const spec: PreprocessSpec = { size: [24, 32], crop: 'resize', layout, dtype, ...imagenet };
        const plain = await preprocess(f('noise.jpg'), spec);
        const flipped = await preprocess(f('noise.jpg'), { ...spec, flip: 1 });
        for (let y = 0; y < 24; y++) for (let x = 0; x < 32; x++) expect(pixel(flipped, x, y)).toEqual(pixel(plain, 31 - x, y));
      }
    }
    const h = await preprocess(f('halves.png'), { size: 16, crop: 'resize', dtype: 'uint8', flip: true }, undefined, { index: 0 });
    const g = await preprocess(f('halves.png'), { size: 16, crop: 'resize', dtype: 'uint8', flip: 1 });
    expect(pixel(g, 1, 8)).toEqual([0, 0, 255]); // blue now on the left
    expect(pixel(g, 14, 8)).toEqual([255, 0, 0]);
    expect(['0,0,255', '255,0,0']).toContain(pixel(h, 1, 8).join());
  });

  it('random flip with p = 0.5 flips about half of the samples, deterministically', async () => {
    const bytes = await sharp(f('halves.png')).png().toBuffer();
    const flips: boolean[] = [];
    for (let i = 0; i < 40; i++) {
      const t = await preprocess(bytes, { size: 4, crop: 'resize', dtype: 'uint8', flip: true, seed: 3 }, undefined, { index: i });
      flips.push(t.data[0] === 0);
    }
    const n = flips.filter(Boolean).length;
    expect(n).toBeGreaterThan(8);
    expect(n).toBeLessThan(32);
    const again = await preprocess(bytes, { size: 4, crop: 'resize', dtype: 'uint8', flip: true, seed: 3 }, undefined, { index: 7 });
    expect(again.data[0] === 0).toBe(flips[7]);
  });

  it('the two crop strategies agree closely on a smooth image', async () => {
    const spec: PreprocessSpec = { size: 64, crop: 'random', dtype: 'uint8', seed: 5 };
    const smooth = await fromRaw(pixels(320, 240, (x, y) => [x * 0.7, y, (x + y) * 0.4]), 320, 240).png().toBuffer();
    for (let i = 0; i < 5; i++) {
      const a = await preprocess(smooth, { ...spec, strategy: 'resize-extract' }, undefined, { index: i });
      const b = await preprocess(smooth, { ...spec, strategy: 'extract-resize' }, undefined, { index: i });
      let diff = 0;
      for (let k = 0; k < a.data.length; k++) diff += Math.abs(a.data[k] - b.data[k]);
      expect(diff / a.data.length).toBeLessThan(2.5);
    }
  });
});

describe('preprocess: deterministic augmentation', () => {
  const spec: PreprocessSpec = { size: 48, crop: 'random', flip: true, seed: 42, ...imagenet };

  it('same seed and index -> byte-identical tensors; other index, seed or epoch -> different', async () => {
    const a = await preprocess(f('noise.jpg'), spec, undefined, { index: 3 });
    const b = await preprocess(f('noise.jpg'), spec, undefined, { index: 3 });
    expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    const same = (x: { data: Float32Array | Uint8Array }) => Buffer.from(x.data.buffer).equals(Buffer.from(a.data.buffer));
    expect(same(await preprocess(f('noise.jpg'), spec, undefined, { index: 4 }))).toBe(false);
    expect(same(await preprocess(f('noise.jpg'), { ...spec, seed: 43 }, undefined, { index: 3 }))).toBe(false);
    expect(same(await preprocess(f('noise.jpg'), spec, undefined, { index: 3, epoch: 1 }))).toBe(false);
  });

  it('results do not depend on scheduling: concurrent and reversed runs match a serial run', async () => {
    const idx = Array.from({ length: 12 }, (_, i) => i);
    const serial: Buffer[] = [];
    for (const i of idx) serial.push(Buffer.from((await preprocess(f('noise.jpg'), spec, undefined, { index: i })).data.buffer));
    const concurrent = await Promise.all([...idx].reverse().map((i) => preprocess(f('noise.jpg'), spec, undefined, { index: i })));
    concurrent.reverse().forEach((t, i) => expect(Buffer.from(t.data.buffer).equals(serial[i])).toBe(true));
    expect(new Set(serial.map((b) => b.toString('base64'))).size).toBe(12);
  });

  it('a random spec without a sample key is an error, not a silent constant', async () => {
    await expect(preprocess(f('noise.jpg'), spec)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(preprocess(f('noise.jpg'), { size: 8, flip: 0.3 })).rejects.toThrow(/sample key/);
  });
});

describe('preprocess: caller-provided storage', () => {
  it('writes into out (also a SharedArrayBuffer view) and returns that memory', async () => {
    const sab = new SharedArrayBuffer(4 * (16 * 16 * 3 + 10));
    const out = new Float32Array(sab, 8, 16 * 16 * 3);
    const t = await preprocess(f('red.png'), { size: 16, ...imagenet }, out);
    expect(t.data).toBe(out);
    expect(out[0]).toBe(expected(255, 0));
    const big = new Uint8Array(1000).fill(7);
    const u = await preprocess(f('red.png'), { size: 4, dtype: 'uint8' }, big);
    expect(u.data.buffer).toBe(big.buffer);
    expect(u.data.length).toBe(48);
    expect(Array.from(big.subarray(0, 3))).toEqual([255, 0, 0]);
    expect(big[48]).toBe(7); // nothing written past the tensor
  });

  it('rejects out of the wrong type or size', async () => {
    await expect(preprocess(f('red.png'), { size: 4 }, new Uint8Array(48))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(preprocess(f('red.png'), { size: 4, dtype: 'uint8' }, new Float32Array(48))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(preprocess(f('red.png'), { size: 4 }, new Float32Array(47))).rejects.toThrow(/needs 48/);
  });
});

describe('preprocess: bad input', () => {
  const cases: [string, RegExp][] = [
    ['truncated.jpg', /corrupt or truncated/],
    ['corrupt.jpg', /corrupt or truncated/],
    ['header-only.jpg', /corrupt or truncated/],
    ['zero.jpg', /^empty file \(0 bytes\)$/],
    ['text.jpg', /not an image/],
    ['missing.jpg', /^file not found$/],
    ['folder.jpg', /^not a regular file$/],
  ];
  for (const [name, reason] of cases) {
    it(`${name} -> ImageDecodeError with path and reason`, async () => {
      for (const [crop, readFile] of [['center', 'sync'], ['center', 'async'], ['random', false], ['resize', 'sync'], ['resize', false]] as const) {
        const err = await preprocess(f(name), { size: 32, crop, readFile }, undefined, { index: 9 }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(ImageDecodeError);
        expect(err).toBeInstanceOf(RingpipeError);
        const e = err as ImageDecodeError;
        expect(e.code).toBe('ERR_IMAGE_DECODE');
        expect(e.path).toBe(f(name));
        expect(e.index).toBe(9);
        expect(e.reason).toMatch(reason);
        expect(e.message).toContain(f(name));
        expect(e.reason).not.toContain('\n');
      }
    });
  }

  it('unreadable file -> permission denied', async () => {
    if (process.getuid?.() !== 0) {
      await expect(preprocess(f('noperm.jpg'), { size: 8 })).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE', reason: 'permission denied' });
      return;
    }
    // Root reads anything: check as user `nobody` in a child process instead. The child loads the
    // code (and sharp, by decoding a readable image) as root, then drops to `nobody`: the checkout
    // may live where `nobody` cannot go (a mode-0700 folder), and only the image must be unreadable.
    await chmod(dir, 0o755);
    const childTmp = f('child-tmp');
    await mkdir(childTmp, { mode: 0o777 });
    await chmod(childTmp, 0o777);
    const script = [
      `const { preprocess } = await import(${JSON.stringify(new URL('../src/image/decode.ts', import.meta.url).href)});`,
      `await preprocess(${JSON.stringify(f('noise.jpg'))}, { size: 8 });`,
      'process.setgid(65534); process.setuid(65534);',
      `try { await preprocess(${JSON.stringify(f('noperm.jpg'))}, { size: 8 }); console.log('{"ok":true}'); }`,
      'catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, reason: e.reason })); }',
    ].join('\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, TMPDIR: childTmp },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toEqual({ name: 'ImageDecodeError', code: 'ERR_IMAGE_DECODE', reason: 'permission denied' });
  });

  it('a FIFO is rejected without blocking (in every read mode)', async () => {
    const fifo = f('pipe.jpg');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const readFile of ['sync', 'async', false] as const) {
      await expect(preprocess(fifo, { size: 8, readFile })).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE', reason: 'not a regular file' });
    }
  });

  it('empty and garbage buffers -> ImageDecodeError without a path', async () => {
    await expect(preprocess(Buffer.alloc(0), { size: 8 })).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE', path: undefined, reason: 'empty buffer (0 bytes)' });
    await expect(preprocess(Buffer.from('garbage garbage'), { size: 8 })).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE', reason: expect.stringMatching(/not an image/) });
  });

  it('images over limitInputPixels are rejected', async () => {
    await expect(preprocess(f('noise.jpg'), { size: 8, limitInputPixels: 1000 })).rejects.toMatchObject({ code: 'ERR_IMAGE_DECODE', reason: expect.stringMatching(/pixel limit/) });
  });

  it('many bad inputs at once all settle (no hang, no crash)', async () => {
    const names = [...cases.map((c) => c[0]), 'noise.jpg'];
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => preprocess(f(names[i % names.length]), { size: 16 })));
    results.forEach((r, i) => expect(r.status).toBe(names[i % names.length] === 'noise.jpg' ? 'fulfilled' : 'rejected'));
  });
});

describe('preprocessItem and resolveSpec', () => {
  it('preprocessItem keys on the item and carries its label', async () => {
    const item = { index: 5, path: f('noise.jpg'), label: 2, className: 'cat', epoch: 1 };
    const spec: PreprocessSpec = { size: 16, crop: 'random', seed: 1 };
    const s = await preprocessItem(item, spec);
    expect(s).toMatchObject({ index: 5, label: 2, className: 'cat', epoch: 1, shape: [16, 16, 3] });
    const direct = await preprocess(f('noise.jpg'), spec, undefined, { index: 5, epoch: 1 });
    expect(Array.from(s.data)).toEqual(Array.from(direct.data));
    await expect(preprocessItem({ index: 0, label: 0 }, spec)).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('rejects bad specs with InvalidArgumentError', () => {
    const bad: PreprocessSpec[] = [
      { size: 0 },
      { size: [10] as unknown as [number, number] },
      { crop: 'middle' as never },
      { layout: 'nhwc' as never },
      { dtype: 'float16' as never },
      { std: [1, 0, 1] },
      { mean: [1, 2] as unknown as [number, number, number] },
      { flip: 2 },
      { scale: [0.5, 0.1] },
      { ratio: [0, 1] },
      { kernel: 'box' as never },
      { seed: -1 },
      { centerFraction: 0 },
      { strategy: 'fast' as never },
      { background: [0, 0, 300] },
      { failOn: 'never' as never },
    ];
    for (const s of bad) expect(() => resolveSpec(s), JSON.stringify(s)).toThrow(InvalidArgumentError);
    expect(resolveSpec({}).random).toBe(false);
    expect(resolveSpec({ crop: 'random' }).random).toBe(true);
    expect(resolveSpec({ flip: 1 }).random).toBe(false);
  });
});
