/**
 * The demo's synthetic dataset: small labelled pictures of three kinds of shape, written as PNG and
 * JPEG files in a class-per-folder layout (`DIR/<class>/<class>-NNN.png|jpg`), the layout
 * `imageFolder` reads.
 *
 * Each class has its own shape and a typical hue, but hues overlap between classes, sizes, positions,
 * backgrounds and brightness vary, and every pixel gets noise; images have different sizes and
 * aspect ratios. Everything derives from the seed (`Rng` of `src/image/random.ts`), so the same seed
 * gives the same files.
 *
 * Runs in the calling thread (it uses sharp to encode; the demo loads sharp in the main thread before
 * any worker thread does, as sharp requires).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { InvalidArgumentError } from '../errors.js';
import { Rng } from '../util/random.js';

/** Class names, in label order (also their sorted order, as `imageFolder` assigns labels). */
export const DEMO_CLASSES = ['circle', 'square', 'stripes'] as const;

/** Typical hue of each class (degrees); each image draws its hue within `HUE_SPREAD` of it. */
const HUES = [10, 130, 250];
/** Half-width of the hue range of a class: wider than half the gap between classes (60), so hues overlap and colour alone does not tell the classes apart. */
const HUE_SPREAD = 70;
/** A stream tag for {@link Rng}, distinct from the image module's. */
const STREAM_DEMO = 0xde30;

export interface SyntheticDatasetOptions {
  /** Images per class. */
  perClass: number;
  /** Seed of everything drawn. */
  seed: number;
  /** Smallest and largest side of the generated images, in pixels. Default [40, 88]. */
  sides?: readonly [number, number];
  /** Images encoded at a time. Default 8. */
  concurrency?: number;
}

export interface SyntheticDataset {
  dir: string;
  classes: string[];
  /** Files written, by class. */
  counts: Record<string, number>;
  images: number;
  /** Of which PNG / JPEG. */
  png: number;
  jpeg: number;
  /** Total bytes of the encoded files. */
  bytes: number;
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const hh = (((h % 360) + 360) % 360) / 60;
  const c = v * s;
  const x = c * (1 - Math.abs((hh % 2) - 1));
  const m = v - c;
  const [r, g, b] = hh < 1 ? [c, x, 0] : hh < 2 ? [x, c, 0] : hh < 3 ? [0, c, x] : hh < 4 ? [0, x, c] : hh < 5 ? [x, 0, c] : [c, 0, x];
  return [(r + m) * 255, (g + m) * 255, (b + m) * 255];
}

/** One picture's pixels (RGB, 8-bit, row-major) for class `label`, drawn from `rng`. */
export function drawImage(label: number, rng: Rng, sides: readonly [number, number] = [40, 88]): { data: Buffer; width: number; height: number } {
  if (!Number.isInteger(label) || label < 0 || label >= DEMO_CLASSES.length) throw new InvalidArgumentError(`drawImage: label must be 0..${DEMO_CLASSES.length - 1}, got ${label}`);
  const width = rng.int(sides[0], sides[1] + 1);
  const height = rng.int(sides[0], sides[1] + 1);
  const fg = hsvToRgb(HUES[label]! + rng.uniform(-HUE_SPREAD, HUE_SPREAD), rng.uniform(0.45, 1), rng.uniform(0.55, 1));
  const grey = rng.uniform(25, 190);
  const bg = [0, 1, 2].map(() => grey + rng.uniform(-25, 25));
  const noise = rng.uniform(12, 40);
  const short = Math.min(width, height);

  // The shape, as a predicate on pixel coordinates.
  let inside: (x: number, y: number) => boolean;
  if (label === 0) {
    const r = short * rng.uniform(0.22, 0.38);
    const cx = rng.uniform(r, width - r);
    const cy = rng.uniform(r, height - r);
    inside = (x, y) => (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= r * r;
  } else if (label === 1) {
    const side = short * rng.uniform(0.4, 0.7);
    const x0 = rng.uniform(0, width - side);
    const y0 = rng.uniform(0, height - side);
    inside = (x, y) => x >= x0 && x < x0 + side && y >= y0 && y < y0 + side;
  } else {
    const bands = rng.int(2, 5); // 2-4 coloured bands
    const period = height / bands;
    const phase = rng.uniform(0, period);
    const duty = rng.uniform(0.35, 0.6);
    inside = (_x, y) => ((y + phase) % period) / period < duty;
  }

  const data = Buffer.alloc(width * height * 3);
  let o = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = inside(x, y) ? fg : bg;
      for (let k = 0; k < 3; k++) {
        const v = c[k]! + rng.uniform(-noise, noise);
        data[o++] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
      }
    }
  }
  return { data, width, height };
}

/**
 * Writes `perClass` images of each class of {@link DEMO_CLASSES} under `dir` (created), even
 * samples as PNG and odd ones as JPEG (quality 90). Deterministic for a given seed.
 */
export async function generateDataset(dir: string, options: SyntheticDatasetOptions): Promise<SyntheticDataset> {
  const { perClass, seed } = options;
  if (!Number.isInteger(perClass) || perClass < 1) throw new InvalidArgumentError(`generateDataset: perClass must be a positive integer, got ${perClass}`);
  if (!Number.isInteger(seed) || seed < 0) throw new InvalidArgumentError(`generateDataset: seed must be a non-negative integer, got ${seed}`);
  const sides = options.sides ?? [40, 88];
  const concurrency = options.concurrency ?? 8;
  const jobs: { label: number; i: number }[] = [];
  for (let label = 0; label < DEMO_CLASSES.length; label++) {
    await mkdir(join(dir, DEMO_CLASSES[label]!), { recursive: true });
    for (let i = 0; i < perClass; i++) jobs.push({ label, i });
  }
  const out: SyntheticDataset = { dir, classes: [...DEMO_CLASSES], counts: {}, images: 0, png: 0, jpeg: 0, bytes: 0 };
  let next = 0;
  const work = async () => {
    while (next < jobs.length) {
      const { label, i } = jobs[next++]!;
      const name = DEMO_CLASSES[label]!;
      const img = drawImage(label, new Rng(seed, STREAM_DEMO, label, i), sides);
      const png = i % 2 === 0;
      const file = join(dir, name, `${name}-${String(i).padStart(3, '0')}.${png ? 'png' : 'jpg'}`);
      const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
      const info = await (png ? s.png() : s.jpeg({ quality: 90 })).toFile(file);
      out.counts[name] = (out.counts[name] ?? 0) + 1;
      out.images++;
      out.bytes += info.size;
      if (png) out.png++;
      else out.jpeg++;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, jobs.length)) }, work));
  return out;
}
