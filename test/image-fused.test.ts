// The fused JPEG path (src/image/fused.ts, native/jpeg/): which images take it, how close it is to
// sharp for the same crop box, that it decodes only the region the crop needs, and that broken
// JPEGs are errors naming the file, never a crash.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePreprocess } from '../src/config/image-stage.js';
import { augmentation, preprocess, resolveSpec, type PreprocessSpec } from '../src/image/decode.js';
import { ImageDecodeError } from '../src/image/errors.js';
import { fusedRefusal, hasEndMarker } from '../src/image/fused.js';
import { jpegInfo } from '../src/image/header.js';
import { isSrgbProfile } from '../src/image/icc.js';
import { PixelDiff } from '../src/image/quality.js';
import { IMAGENET_MEAN, IMAGENET_STD, channelLuts, packLuts } from '../src/image/normalize.js';
import { native, type JpegCropResult } from '../src/native.js';
import { findLibjpeg } from '../scripts/libjpeg.mjs';

let dir: string;
const f = (name: string) => join(dir, name);
const bytes: Record<string, Buffer> = {};

/** A photo-like image: smooth colour fields, discs with sharp edges, fine texture and noise. */
function photo(w: number, h: number, k: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  let s = (k * 2654435761 + 1) >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const discs = Array.from({ length: 10 }, () => ({ x: rnd() * w, y: rnd() * h, r: (0.05 + rnd() * 0.3) * Math.min(w, h), c: [rnd() * 255, rnd() * 255, rnd() * 255] }));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let c = [128 + 60 * Math.sin((x / w) * 6 + k), 128 + 60 * Math.cos((y / h) * 5), 128 + 50 * Math.sin(((x + y) / (w + h)) * 9)];
      for (const d of discs) if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r ** 2) c = d.c;
      for (let ch = 0; ch < 3; ch++) b[(y * w + x) * 3 + ch] = Math.max(0, Math.min(255, c[ch]! + (rnd() - 0.5) * 16 + 8 * Math.sin(x * 0.7 + y * 1.3 + ch)));
    }
  }
  return b;
}
const raw = (px: Buffer, w: number, h: number) => sharp(px, { raw: { width: w, height: h, channels: 3 } });

/** The JPEG with its frame's height and width replaced (a header that declares a huge image). */
function withDimensions(jpg: Buffer, width: number, height: number): Buffer {
  const b = Buffer.from(jpg);
  for (let p = 2; p + 9 < b.length; ) {
    const m = b[p + 1]!;
    if (m >= 0xc0 && m <= 0xc2) {
      b.writeUInt16BE(height, p + 5);
      b.writeUInt16BE(width, p + 7);
      return b;
    }
    p += 2 + b.readUInt16BE(p + 2);
  }
  throw new Error('no frame');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringpipe image-fused '));
  const px = photo(320, 240, 1);
  const big = photo(1600, 1200, 2);
  const files: Record<string, Promise<Buffer>> = {
    'baseline.jpg': raw(px, 320, 240).jpeg({ quality: 90 }).toBuffer(),
    'baseline-444.jpg': raw(px, 320, 240).jpeg({ quality: 90, chromaSubsampling: '4:4:4' }).toBuffer(),
    'progressive.jpg': raw(px, 320, 240).jpeg({ quality: 90, progressive: true }).toBuffer(),
    'grey.jpg': raw(px, 320, 240).toColourspace('b-w').jpeg({ quality: 90 }).toBuffer(),
    'large.jpg': raw(big, 1600, 1200).jpeg({ quality: 90 }).toBuffer(),
    'cmyk.jpg': raw(px, 320, 240).toColourspace('cmyk').jpeg({ quality: 90 }).toBuffer(),
    'exif6.jpg': raw(px, 320, 240).jpeg({ quality: 90 }).withMetadata({ orientation: 6 }).toBuffer(),
    'srgb-icc.jpg': raw(px, 320, 240).withIccProfile('srgb').jpeg({ quality: 90 }).toBuffer(),
    'p3-icc.jpg': raw(px, 320, 240).withIccProfile('p3').jpeg({ quality: 90 }).toBuffer(),
    'photo.png': raw(px, 320, 240).png().toBuffer(),
  };
  for (const [name, p] of Object.entries(files)) bytes[name] = await p;
  const good = bytes['baseline.jpg']!;
  bytes['truncated.jpg'] = good.subarray(0, good.length >> 1);
  // Cut in the middle of the scan, then an end-of-image marker: only libjpeg can tell.
  bytes['cut-eoi.jpg'] = Buffer.concat([good.subarray(0, Math.floor(good.length * 0.6)), Buffer.from([0xff, 0xd9])]);
  const junk = Buffer.alloc(3000);
  for (let i = 0; i < junk.length; i++) junk[i] = (i * 7919 + 13) & 0xff;
  bytes['garbage.jpg'] = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00]), junk, Buffer.from([0xff, 0xd9])]);
  bytes['huge.jpg'] = withDimensions(good, 60000, 60000);
  // An Adobe marker saying the 3 components are RGB, not YCbCr: only libjpeg's header read tells.
  const adobe = Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);
  bytes['adobe-rgb.jpg'] = Buffer.concat([good.subarray(0, 2), adobe, good.subarray(2)]);
  bytes['big-declared.jpg'] = withDimensions(good, 12000, 9000); // within the pixel limit, data for 320x240
  for (const [name, b] of Object.entries(bytes)) await writeFile(f(name), b);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const u8: PreprocessSpec = { size: 64, dtype: 'uint8' };
const key = { index: 3, epoch: 1 };

describe('which images take the fused path', () => {
  const table: [string, 'fused' | 'sharp', RegExp | undefined][] = [
    ['baseline.jpg', 'fused', undefined],
    ['baseline-444.jpg', 'fused', undefined],
    ['progressive.jpg', 'fused', undefined],
    ['grey.jpg', 'fused', undefined],
    ['large.jpg', 'fused', undefined],
    ['srgb-icc.jpg', 'fused', undefined],
    ['cmyk.jpg', 'sharp', /4 components/],
    ['exif6.jpg', 'sharp', /EXIF orientation 6/],
    ['p3-icc.jpg', 'sharp', /ICC profile other than sRGB/],
    ['photo.png', 'sharp', /not a JPEG/],
    ['adobe-rgb.jpg', 'sharp', undefined], // the header parse takes it, libjpeg says RGB: sharp, not a failure
  ];
  it.each(table)('%s -> %s', async (name, decoder, reason) => {
    const r = resolveSpec({ ...u8, crop: 'random', seed: 4 });
    const refusal = fusedRefusal(jpegInfo(bytes[name]!), bytes[name]!, r);
    if (reason) expect(refusal).toMatch(reason);
    else expect(refusal).toBeUndefined();
    const t = await preprocess(f(name), { ...u8, crop: 'random', seed: 4 }, undefined, key);
    expect(t.decoder).toBe(decoder);
    expect(t.fusedFailure).toBeUndefined();
    // decoder: 'sharp' forces sharp.
    expect((await preprocess(f(name), { ...u8, crop: 'random', seed: 4, decoder: 'sharp' }, undefined, key)).decoder).toBe('sharp');
  });

  it('refuses what libjpeg-turbo 8-bit cannot decode as libvips would, before decoding', () => {
    const r = resolveSpec(u8);
    const good = bytes['baseline.jpg']!;
    const info = jpegInfo(good)!;
    expect(fusedRefusal({ ...info, precision: 12 }, good, r)).toMatch(/12-bit/);
    expect(fusedRefusal({ ...info, frame: 0xc3 }, good, r)).toMatch(/frame type 0xc3/); // lossless
    expect(fusedRefusal({ ...info, frame: 0xc9 }, good, r)).toMatch(/frame type 0xc9/); // arithmetic
    expect(fusedRefusal(info, good, resolveSpec({ ...u8, kernel: 'nearest' }))).toMatch(/kernel 'nearest'/);
    expect(fusedRefusal(info, good, resolveSpec({ ...u8, limitInputPixels: 1000 }))).toMatch(/limitInputPixels/);
    expect(fusedRefusal({ ...info, orientation: 3 }, good, resolveSpec({ ...u8, autoOrient: false }))).toBeUndefined();
    expect(hasEndMarker(good)).toBe(true);
    expect(hasEndMarker(bytes['truncated.jpg']!)).toBe(false);
    expect(hasEndMarker(Buffer.concat([good, Buffer.alloc(100)]))).toBe(true); // padding after the marker
    expect(() => resolveSpec({ decoder: 'libjpeg' as never })).toThrow(/decoder must be 'auto' or 'sharp'/);
  });

  it('an sRGB ICC profile is recognised by its content; others are not', async () => {
    expect(isSrgbProfile(jpegInfo(bytes['srgb-icc.jpg']!)!.icc!)).toBe(true);
    expect(isSrgbProfile(jpegInfo(bytes['p3-icc.jpg']!)!.icc!)).toBe(false);
    expect(isSrgbProfile(new Uint8Array(200))).toBe(false);
    // sharp applies the sRGB profile as the identity: the fused output matches sharp's (both
    // decoding at full scale here, so that only the resamplers differ).
    const spec: PreprocessSpec = { size: 96, crop: 'center', dtype: 'uint8', fastShrinkOnLoad: false };
    const a = await preprocess(f('srgb-icc.jpg'), spec);
    const b = await preprocess(f('srgb-icc.jpg'), { ...spec, decoder: 'sharp', strategy: 'extract-resize' });
    expect(a.decoder).toBe('fused');
    expect(compare(a.data, b.data).mae).toBeLessThan(0.5);
  });
});

const compare = (a: ArrayLike<number>, b: ArrayLike<number>) => new PixelDiff().add(a, b);
const CROP = 224 * 224 * 3;

describe('the fused output matches sharp for the same crop box', () => {
  // Two corpora, as in the benchmark: ImageNet-sized JPEGs and a large one (DCT-scaled decode).
  const corpora = [
    { name: '500x375', w: 500, h: 375, images: 4, crops: 8, progressive: true },
    { name: '1920x1080', w: 1920, h: 1080, images: 2, crops: 6, progressive: false },
  ];
  it.each(corpora)('$name corpus: mean absolute error and PSNR against sharp (extract the box, then resize)', async (c) => {
    const spec: PreprocessSpec = { size: 224, crop: 'random', flip: true, seed: 9, dtype: 'uint8' };
    const r = resolveSpec(spec);
    // Crops split by what the fused path does with them: decoded at full scale and reduced,
    // decoded at a DCT scale of 1/2 to 1/8 (the box at least twice the output), or enlarged.
    const all = new PixelDiff();
    const full = new PixelDiff();
    const dct = new PixelDiff();
    const enlarged = new PixelDiff();
    for (let k = 0; k < c.images; k++) {
      const jpg = await raw(photo(c.w, c.h, 10 + k), c.w, c.h).jpeg({ quality: 90, progressive: c.progressive && k % 2 === 1 }).toBuffer();
      for (let i = 0; i < c.crops; i++) {
        const sample = { index: i, epoch: k };
        const a = await preprocess(jpg, spec, undefined, sample);
        const b = await preprocess(jpg, { ...spec, decoder: 'sharp', strategy: 'extract-resize' }, undefined, sample);
        expect(a.decoder).toBe('fused');
        expect(b.decoder).toBe('sharp');
        all.add(a.data, b.data);
        const { box } = augmentation(r, c.w, c.h, sample);
        const shrink = Math.min(box.width, box.height) / 224;
        (shrink < 1 ? enlarged : shrink < 2 ? full : dct).add(a.data, b.data);
      }
    }
    console.info(`${c.name}: fused vs sharp, all crops: ${all.text(CROP)}; reduced at full scale: ${full.text(CROP)}; DCT-scaled: ${dct.text(CROP)}; enlarged: ${enlarged.text(CROP)}`);
    // The stated tolerance. Enlarged crops differ most: libvips shifts the image by half an
    // output pixel when it upsamples (its centre convention on upsizing), the fused path does
    // not (as Pillow and torchvision). A DCT-scaled decode is a sharper low-pass than a full
    // decode and a triangle filter: within a grey level on average.
    expect(all.mae).toBeLessThan(2);
    expect(all.psnr).toBeGreaterThan(35);
    if (full.count) {
      expect(full.mae).toBeLessThan(0.3);
      expect(full.psnr).toBeGreaterThan(50);
    }
    if (dct.count) {
      expect(dct.mae).toBeLessThan(1.5);
      expect(dct.psnr).toBeGreaterThan(40);
    }
    expect(full.count + dct.count).toBeGreaterThan(0);
  });

  it('every kernel it implements agrees with sharp on a reduction; the crop lands where sharp puts it', async () => {
    const jpg = bytes['baseline-444.jpg']!;
    const box = { left: 40, top: 30, width: 200, height: 150 };
    for (const kernel of ['linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'] as const) {
      const out = new Uint8Array(100 * 75 * 3);
      // fastShrink false: a full-scale decode, so that only the resamplers differ.
      const res = native.jpegCropDecode(jpg, box.left, box.top, box.width, box.height, 100, 75, ['linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'].indexOf(kernel), false, 2, 0, out, false, false, undefined, false) as JpegCropResult;
      expect(res.status, res.message).toBe(0);
      const ref = await sharp(jpg).extract(box).resize(100, 75, { fit: 'fill', kernel }).raw().toBuffer();
      expect(compare(out, ref).mae, kernel).toBeLessThan(1);
    }
    // Quadrants of four colours: a box inside one quadrant gives that colour only.
    const q = Buffer.alloc(256 * 256 * 3);
    const colours = [[230, 20, 20], [20, 230, 20], [20, 20, 230], [230, 230, 20]];
    for (let y = 0; y < 256; y++) for (let x = 0; x < 256; x++) q.set(colours[(y < 128 ? 0 : 2) + (x < 128 ? 0 : 1)]!, (y * 256 + x) * 3);
    const quad = await raw(q, 256, 256).jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer();
    const out = new Uint8Array(16 * 16 * 3);
    for (const [i, [left, top]] of [[8, 8], [140, 20], [20, 140], [150, 150]].entries()) {
      const res = native.jpegCropDecode(quad, left!, top!, 100, 100, 16, 16, 0, true, 2, 0, out, false, false, undefined, false) as JpegCropResult;
      expect(res.status).toBe(0);
      for (let p = 0; p < out.length; p += 3) for (let ch = 0; ch < 3; ch++) expect(Math.abs(out[p + ch]! - colours[i]![ch]!)).toBeLessThanOrEqual(6);
    }
  });
});

describe('it decodes only what the crop needs', () => {
  it('the DCT scale is the largest that keeps the output size, and only the rows and iMCU columns around the box are decoded', () => {
    const jpg = bytes['large.jpg']!; // 1600x1200, 4:2:0: iMCUs of 16x16 pixels
    const decode = (left: number, top: number, w: number, h: number, ow: number, oh: number, fast = true) =>
      native.jpegCropDecode(jpg, left, top, w, h, ow, oh, 0, fast, 2, 0, new Uint8Array(ow * oh * 3), false, false, undefined, false) as JpegCropResult;
    const r = decode(800, 600, 400, 300, 100, 75);
    expect(r).toMatchObject({ status: 0, scale: 4 });
    // The box is [200, 300) x [150, 225) at 1/4 scale; at that scale an iMCU column is 4 pixels wide.
    expect(r.y).toBe(150);
    expect(r.height).toBe(75);
    expect(r.x).toBeLessThanOrEqual(200);
    expect(r.x + r.width).toBeGreaterThanOrEqual(300);
    expect(r.width).toBeLessThanOrEqual(100 + 8);
    expect(decode(800, 600, 400, 300, 100, 75, false).scale).toBe(2); // fastShrinkOnLoad: false keeps a factor of 2
    expect(decode(0, 0, 1600, 1200, 100, 75).scale).toBe(8);
    expect(decode(0, 0, 1600, 1200, 900, 700).scale).toBe(1);
    expect(decode(0, 0, 1600, 1200, 700, 500).scale).toBe(2);
  });
});

describe('broken JPEGs are errors, never a crash', () => {
  const LUT = packLuts(channelLuts(IMAGENET_MEAN, IMAGENET_STD));
  const call = (b: Uint8Array, opts: { maxPixels?: number; failOn?: number; async?: boolean; box?: [number, number, number, number] } = {}) => {
    const [left, top, w, h] = opts.box ?? [0, 0, 64, 64];
    return native.jpegCropDecode(b, left, top, w, h, 32, 32, 0, true, opts.failOn ?? 2, opts.maxPixels ?? 0, new Float32Array(32 * 32 * 3), false, false, LUT, opts.async ?? false);
  };

  it('the native call returns a status and libjpeg\'s message for truncated, garbage and huge-dimension JPEGs', async () => {
    const truncated = call(bytes['truncated.jpg']!, { box: [0, 0, 320, 240] }) as JpegCropResult;
    expect(truncated.status).toBe(2);
    expect(truncated.message).toMatch(/premature end/i);
    const cut = call(bytes['cut-eoi.jpg']!, { box: [0, 0, 320, 240] }) as JpegCropResult;
    expect(cut.status).toBe(2);
    expect(cut.message.length).toBeGreaterThan(0);
    expect(call(bytes['cut-eoi.jpg']!, { box: [0, 0, 320, 240], failOn: 0 })).toMatchObject({ status: 0 }); // warnings ignored: libjpeg fills in
    expect(call(bytes['garbage.jpg']!)).toMatchObject({ status: 2 });
    expect(call(Buffer.from('not a jpeg at all'))).toMatchObject({ status: 2, message: expect.stringMatching(/not a JPEG/i) });
    expect(call(Buffer.alloc(0))).toMatchObject({ status: 2 });
    expect(call(bytes['huge.jpg']!, { maxPixels: 0x3fff * 0x3fff })).toMatchObject({ status: 1, message: expect.stringMatching(/pixel limit/) });
    // Within the limit but with data for 320x240 only: libjpeg runs out of data, and says so.
    const declared = call(bytes['big-declared.jpg']!, { box: [0, 0, 12000, 9000], maxPixels: 0x3fff * 0x3fff }) as JpegCropResult;
    expect(declared.status).toBe(2);
    expect(call(bytes['baseline.jpg']!, { box: [300, 0, 64, 64] })).toMatchObject({ status: 3, message: expect.stringMatching(/not inside the 320x240 image/) });
    // The decoder is fine afterwards.
    expect(call(bytes['baseline.jpg']!)).toMatchObject({ status: 0 });
  });

  it('on libuv\'s pool too: many broken and good decodes at once all settle', async () => {
    const names = ['truncated.jpg', 'cut-eoi.jpg', 'garbage.jpg', 'huge.jpg', 'baseline.jpg', 'progressive.jpg'];
    const results = await Promise.all(Array.from({ length: 48 }, (_, i) => call(bytes[names[i % names.length]!]!, { async: true, maxPixels: 0x3fff * 0x3fff, box: [0, 0, 320, 240] })));
    results.forEach((r, i) => expect(r.status, names[i % names.length]).toBe(i % names.length >= 4 ? 0 : i % names.length === 3 ? 1 : 2));
  });

  it.each(['truncated.jpg', 'cut-eoi.jpg', 'garbage.jpg', 'huge.jpg', 'big-declared.jpg'])('%s through preprocess: ImageDecodeError naming the file (sharp gives the verdict)', async (name) => {
    for (const readFile of ['sync', 'async'] as const) {
      const err = await preprocess(f(name), { size: 32, crop: 'random', readFile }, undefined, { index: 5 }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ImageDecodeError);
      expect((err as ImageDecodeError).path).toBe(f(name));
      expect((err as ImageDecodeError).index).toBe(5);
      expect((err as ImageDecodeError).message).toContain(f(name));
    }
  });
});

describe('flip, layout, dtype and threads give the same pixels', () => {
  it('flip mirrors, CHW is HWC transposed, float32 is the lookup of uint8; sync, async and repeated runs agree', async () => {
    const spec: PreprocessSpec = { size: [40, 56], crop: 'random', seed: 2 };
    const at = (t: { data: ArrayLike<number> }, layout: 'hwc' | 'chw', x: number, y: number, c: number) => t.data[layout === 'hwc' ? (y * 56 + x) * 3 + c : c * 40 * 56 + y * 56 + x]!;
    const base = await preprocess(f('baseline.jpg'), { ...spec, dtype: 'uint8', readFile: 'sync' }, undefined, key);
    const flipped = await preprocess(f('baseline.jpg'), { ...spec, dtype: 'uint8', flip: 1 }, undefined, key);
    const chw = await preprocess(f('baseline.jpg'), { ...spec, dtype: 'uint8', layout: 'chw' }, undefined, key);
    const float = await preprocess(f('baseline.jpg'), { ...spec, mean: IMAGENET_MEAN, std: IMAGENET_STD, layout: 'chw', flip: 1 }, undefined, key);
    const lut = channelLuts(IMAGENET_MEAN, IMAGENET_STD);
    for (const t of [base, flipped, chw, float]) expect(t.decoder).toBe('fused');
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 56; x++) {
        for (let c = 0; c < 3; c++) {
          const v = at(base, 'hwc', x, y, c);
          expect(at(flipped, 'hwc', 55 - x, y, c)).toBe(v);
          expect(at(chw, 'chw', x, y, c)).toBe(v);
          expect(at(float, 'chw', 55 - x, y, c)).toBe(lut[c]![v]);
        }
      }
    }
    const again = await Promise.all([0, 1, 2, 3].map(() => preprocess(bytes['baseline.jpg']!, { ...spec, dtype: 'uint8', readFile: 'async' }, undefined, key)));
    for (const t of again) expect(Buffer.from(t.data).equals(Buffer.from(base.data))).toBe(true);
  });
});

describe('the JSON image_preprocess stage', () => {
  it("takes the fused path by default and `decoder: 'sharp'` forces sharp", async () => {
    const schema = imagePreprocess.optionsSchema as { properties: Record<string, { enum?: unknown[] }> };
    expect(schema.properties.decoder!.enum).toEqual(['auto', 'sharp']);
    const ctx = { stage: 't', branch: null, params: {}, index: 0, metadata: [], signal: new AbortController().signal };
    const run = (options: object) => imagePreprocess.run(bytes['baseline.jpg']!, { ...ctx, options } as never) as Promise<{ decoder: string }>;
    expect((await run({ size: 16, crop: 'center' })).decoder).toBe('fused');
    expect((await run({ size: 16, crop: 'center', decoder: 'sharp' })).decoder).toBe('sharp');
  });
});

describe('the install step', () => {
  it('finds the libjpeg-turbo the addon was built with', () => {
    const found = findLibjpeg();
    expect(found?.header).toMatch(/jpeglib\.h$/);
    expect(found?.library).toMatch(/libjpeg\.so$/);
  });

  it('where libjpeg is missing and cannot be installed, says so and how to install it', async () => {
    const script = [
      `const { ensureLibjpeg } = await import(${JSON.stringify(new URL('../scripts/libjpeg.mjs', import.meta.url).href)});`,
      "if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }",
      'try { ensureLibjpeg({ find: () => undefined, log: () => {} }); console.log("{}"); }',
      'catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }',
    ].join('\n');
    // The script is imported before the child gives up root: the checkout may be readable by its owner only.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim());
    expect(out.code).toBe('ERR_LIBJPEG_MISSING');
    expect(out.message).toMatch(/not running as root|no apt-get/);
    expect(out.message).toMatch(/apt-get install -y libjpeg62-turbo-dev/);
  });
});
