// Benchmark corpora for the image suite.
//
// ImageNet-like: deterministic random crops of the photos in ../shared/data/photos, resized so the
// long side is 500 px and the short side 333-375 px (3 landscape for 1 portrait), re-encoded as
// JPEG quality 90. Image i depends only on (CORPUS_VERSION, i, the photo files), so a bigger
// corpus extends a smaller one. Cached under os.tmpdir()/ringpipe-bench-corpus-<hash> (override
// with RINGPIPE_BENCH_CORPUS); files are generated only when missing.
//
// Without ../shared/data, a synthetic corpus of the same geometry (smooth colour fields plus
// noise, so the JPEGs are of realistic size) is generated instead, and `synthetic` says so.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Rng } from '../../src/util/random.js';

const CORPUS_VERSION = 1;
const here = dirname(fileURLToPath(import.meta.url));
/** The photo folder shipped next to the repository (absent on a fresh clone). */
export const PHOTOS_DIR = join(here, '..', '..', '..', 'shared', 'data', 'photos');

export interface Corpus {
  name: string;
  files: string[];
  /** True when ../shared/data was absent and the images are generated noise fields. */
  synthetic: boolean;
  dir: string;
  totalBytes: number;
}

/** The original photographs (1080p to 5K), or undefined when the folder is absent. */
export function originals(): Corpus | undefined {
  if (!existsSync(PHOTOS_DIR)) return undefined;
  const files = readdirSync(PHOTOS_DIR).filter((f) => /\.jpe?g$/i.test(f)).sort().map((f) => join(PHOTOS_DIR, f));
  if (!files.length) return undefined;
  return { name: 'originals', files, synthetic: false, dir: PHOTOS_DIR, totalBytes: files.reduce((s, f) => s + statSync(f).size, 0) };
}

function geometry(i: number) {
  const rng = new Rng(CORPUS_VERSION, 7, i);
  const portrait = rng.next() < 0.25;
  const short = rng.int(333, 376);
  const [w, h] = portrait ? [short, 500] : [500, short];
  return { rng, w, h };
}

async function photoCrop(raw: Buffer, pw: number, ph: number, i: number): Promise<Buffer> {
  const { rng, w, h } = geometry(i);
  // A crop with the output's aspect ratio covering 15-100 % of the photo's largest such box.
  const maxScale = Math.min(pw / w, ph / h);
  const s = maxScale * Math.sqrt(rng.uniform(0.15, 1));
  const cw = Math.max(w, Math.round(w * s));
  const ch = Math.max(h, Math.round(h * s));
  const left = rng.int(0, pw - Math.min(cw, pw) + 1);
  const top = rng.int(0, ph - Math.min(ch, ph) + 1);
  return sharp(raw, { raw: { width: pw, height: ph, channels: 3 } })
    .extract({ left, top, width: Math.min(cw, pw), height: Math.min(ch, ph) })
    .resize(w, h, { fit: 'fill', kernel: 'lanczos3' })
    .jpeg({ quality: 90 })
    .toBuffer();
}

async function syntheticImage(i: number): Promise<Buffer> {
  const { rng, w, h } = geometry(i);
  const px = Buffer.alloc(w * h * 3);
  const c0 = [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
  const c1 = [rng.int(0, 256), rng.int(0, 256), rng.int(0, 256)];
  const fx = rng.uniform(0.005, 0.05);
  const fy = rng.uniform(0.005, 0.05);
  let noise = rng.nextU32();
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = 0.5 + 0.5 * Math.sin(x * fx + Math.cos(y * fy) * 3);
      for (let c = 0; c < 3; c++) {
        noise = (Math.imul(noise, 1664525) + 1013904223) >>> 0;
        const v = c0[c] * t + c1[c] * (1 - t) + ((noise >>> 24) - 128) * 0.15;
        px[(y * w + x) * 3 + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/**
 * Returns (generating what is missing) an ImageNet-like corpus of `count` JPEGs.
 * @param log progress messages
 */
export async function imagenetLike(count: number, log: (m: string) => void = () => {}): Promise<Corpus> {
  const photos = originals();
  const synthetic = !photos;
  const key = createHash('sha256')
    .update(JSON.stringify({ v: CORPUS_VERSION, synthetic, photos: photos?.files.map((f) => [f.slice(PHOTOS_DIR.length), statSync(f).size]) }))
    .digest('hex')
    .slice(0, 12);
  const dir = process.env.RINGPIPE_BENCH_CORPUS ?? join(tmpdir(), `ringpipe-bench-corpus-${key}`);
  mkdirSync(dir, { recursive: true });
  const files = Array.from({ length: count }, (_, i) => join(dir, `img-${String(i).padStart(5, '0')}.jpg`));
  const missing = files.map((f, i) => (existsSync(f) ? -1 : i)).filter((i) => i >= 0);
  const write = (i: number, buf: Buffer) => {
    const tmp = `${files[i]}.${process.pid}.tmp`;
    writeFileSync(tmp, buf);
    renameSync(tmp, files[i]);
  };
  if (missing.length) {
    const t0 = Date.now();
    log(`generating ${missing.length} ${synthetic ? 'SYNTHETIC ' : ''}corpus images in ${dir}`);
    if (photos) {
      const byPhoto = new Map<number, number[]>();
      for (const i of missing) byPhoto.set(i % photos.files.length, [...(byPhoto.get(i % photos.files.length) ?? []), i]);
      for (const [p, idx] of byPhoto) {
        const { data, info } = await sharp(photos.files[p]).autoOrient().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
        for (const i of idx) write(i, await photoCrop(data, info.width, info.height, i));
      }
    } else {
      for (const i of missing) write(i, await syntheticImage(i));
    }
    log(`generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  return { name: synthetic ? 'synthetic-500x375' : 'imagenet-like-500x375', files, synthetic, dir, totalBytes: files.reduce((s, f) => s + statSync(f).size, 0) };
}
