import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { preprocess } from '../src/image/decode.js';
import { jpegHeader } from '../src/image/header.js';

const base = () => sharp({ create: { width: 40, height: 24, channels: 3, background: { r: 9, g: 99, b: 199 } } });

/** An APP1 Exif segment holding only IFD0 with an Orientation tag, in the given byte order. */
function exifSegment(orientation: number, bigEndian: boolean): Buffer {
  const tiff = Buffer.alloc(26);
  const w16 = (v: number, o: number) => (bigEndian ? tiff.writeUInt16BE(v, o) : tiff.writeUInt16LE(v, o));
  const w32 = (v: number, o: number) => (bigEndian ? tiff.writeUInt32BE(v, o) : tiff.writeUInt32LE(v, o));
  tiff.write(bigEndian ? 'MM' : 'II', 0, 'latin1');
  w16(42, 2);
  w32(8, 4); // IFD0 at offset 8
  w16(1, 8); // one entry
  w16(0x0112, 10); // Orientation
  w16(3, 12); // SHORT
  w32(1, 14); // count
  w16(orientation, 18);
  w32(0, 22); // no next IFD
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

async function check(buf: Buffer) {
  const m = await sharp(buf).metadata();
  const h = jpegHeader(buf);
  expect(h).toEqual({ width: m.width, height: m.height, orientation: m.orientation ?? 1 });
}

describe('jpegHeader agrees with sharp.metadata', () => {
  it('orientations 1-8 as written by sharp', async () => {
    for (let o = 1; o <= 8; o++) await check(await base().jpeg().withMetadata({ orientation: o }).toBuffer());
  });

  it('big- and little-endian EXIF spliced in by hand, plus fill bytes', async () => {
    const plain = await base().jpeg().toBuffer();
    for (const be of [false, true]) {
      for (const o of [3, 6, 8]) {
        const buf = Buffer.concat([plain.subarray(0, 2), exifSegment(o, be), plain.subarray(2)]);
        await check(buf);
        expect(jpegHeader(buf)!.orientation).toBe(o);
      }
    }
    const filled = Buffer.concat([plain.subarray(0, 2), Buffer.from([0xff, 0xff]), plain.subarray(2)]);
    expect(jpegHeader(filled)).toEqual({ width: 40, height: 24, orientation: 1 });
  });

  it('progressive, greyscale, CMYK, 4:4:4, no EXIF', async () => {
    await check(await base().jpeg({ progressive: true }).toBuffer());
    await check(await base().toColourspace('b-w').jpeg().toBuffer());
    await check(await base().toColourspace('cmyk').jpeg().toBuffer());
    await check(await base().jpeg({ chromaSubsampling: '4:4:4', quality: 100 }).toBuffer());
    await check(await base().jpeg().toBuffer());
  });

  it('returns undefined for anything it cannot vouch for', async () => {
    const ok = await base().jpeg().toBuffer();
    expect(jpegHeader(ok.subarray(0, 30))).toBeUndefined();
    expect(jpegHeader(await base().png().toBuffer())).toBeUndefined();
    expect(jpegHeader(Buffer.alloc(0))).toBeUndefined();
    expect(jpegHeader(Buffer.from([0xff, 0xd8, 0xff, 0xda, 0, 2]))).toBeUndefined();
    expect(jpegHeader(Buffer.from([0xff, 0xd8, 0x00, 0x00, 0, 2]))).toBeUndefined();
  });

  it('the fast path and sharp.metadata give identical tensors', async () => {
    for (const o of [1, 5, 6, 7]) {
      const buf = await sharp({ create: { width: 64, height: 40, channels: 3, background: { r: 0, g: 0, b: 0 } } })
        .composite([{ input: { create: { width: 16, height: 16, channels: 3, background: { r: 255, g: 0, b: 0 } } }, left: 0, top: 0 }])
        .jpeg()
        .withMetadata({ orientation: o })
        .toBuffer();
      // A buffer goes through jpegHeader; a path with readFile: false goes through sharp.metadata.
      const spec = { size: 32, crop: 'random' as const, dtype: 'uint8' as const };
      const a = await preprocess(buf, spec, undefined, { index: o });
      const dir = await mkdtemp(join(tmpdir(), 'ringpipe-image-header-'));
      try {
        const file = join(dir, 'x.jpg');
        await writeFile(file, buf);
        const b = await preprocess(file, { ...spec, readFile: false }, undefined, { index: o });
        expect(Buffer.from(a.data).equals(Buffer.from(b.data)), `orientation ${o}`).toBe(true);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  });

  const photos = join(import.meta.dirname, '..', '..', 'shared', 'data', 'photos');
  it.skipIf(!existsSync(photos))('real photographs (../shared/data/photos, when present)', async () => {
    for (const f of readdirSync(photos).filter((n) => n.endsWith('.jpg'))) await check(readFileSync(join(photos, f)));
  });
});
