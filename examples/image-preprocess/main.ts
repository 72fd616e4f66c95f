// Example: a folder of images -> preprocessed, batched shards on disk, on the ringpipe engine.
//
//   images (source) -> preprocess (N replicas, worker threads) -> batch -> shards (sink)
//
// The preprocessing replicas decode straight into the ring that feeds the batcher; the batcher
// writes each batch into the ring that feeds the shard writer, which writes it to disk from there.
//
//   npm run example -- image-preprocess [--data DIR] [--out DIR] [options]
//
// See README.md for the options and the on-disk format.
import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import sharp from 'sharp';
import type { Isolation } from '../../src/runtime/plan.js';
import type { RunResult } from '../../src/runtime/supervisor.js';
import type { PreprocessSpec } from '../../src/image/decode.js';
import { loadDataset, selectItems, type LabelSource } from '../../src/image/folder.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { imagePipeline, skippedImages, unusedImages, writeShards, type SkippedImage } from '../../src/image/pipeline.js';
import type { ShardManifest } from '../../src/image/shards.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The photos shipped next to the repository (absent on a fresh clone). */
export const PHOTOS_DIR = join(here, '..', '..', '..', 'shared', 'data', 'photos');

export interface PreprocessFolderOptions {
  /** The image folder (class-per-folder unless `labels` says otherwise). */
  input: string;
  /** Where shards and manifest.json are written. */
  output: string;
  spec: PreprocessSpec;
  /** Samples per shard file. Default 256. */
  shardSize?: number;
  /** Samples per batch record between the batcher and the shard writer. Default 32. */
  batchSize?: number;
  /** Preprocessing replicas. Default: the number of cores. */
  workers?: number;
  /** Where the preprocessing replicas run (the rest runs in threads). Default 'process'. */
  isolation?: Isolation;
  labels?: LabelSource;
  shuffle?: boolean;
  seed?: number;
  shard?: { index: number; count: number };
  /** `'skip'`: go on and report bad files; `'fail'`: stop at the first one. Default 'skip'. */
  onError?: 'skip' | 'fail';
  /** Show a progress bar on stderr. Default true when stderr is a terminal. */
  progress?: boolean;
}

export interface PreprocessFolderResult {
  manifest: ShardManifest;
  skipped: { path: string | undefined; reason: string }[];
  /** Entries of the folder that are not images of the dataset (hidden, other extensions, dangling links, ...). */
  unused: { path: string; reason: string }[];
  seconds: number;
  /** The engine's result: per-segment stats, skipped records, teardown results. */
  run: RunResult;
}

/** Runs the whole conversion on the engine; resolves with the manifest and the skipped files. */
export async function preprocessFolder(o: PreprocessFolderOptions): Promise<PreprocessFolderResult> {
  const t0 = performance.now();
  const labels = o.labels ?? 'folder';
  const order = { shuffle: o.shuffle ?? false, seed: o.seed ?? 0, ...(o.shard ? { shard: o.shard } : {}) };
  // Listed here too (the source lists it again in its worker) for the class names and the total.
  const ds = await loadDataset({ dir: o.input, labels });
  const total = selectItems(ds.items, order).length;

  const bar = (o.progress ?? process.stderr.isTTY)
    ? new cliProgress.SingleBar(
        { format: 'preprocess [{bar}] {value}/{total} images | {rate} img/s | skipped {skipped} | eta {eta}s', stream: process.stderr, noTTYOutput: true, notTTYSchedule: 2000 },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  bar?.start(total, 0, { rate: '0', skipped: 0 });

  const g = imagePipeline({
    dir: o.input,
    labels,
    ...order,
    spec: o.spec,
    workers: o.workers ?? availableParallelism(),
    batchSize: o.batchSize ?? 32,
    preprocessIsolation: o.isolation ?? 'process',
    onError: o.onError ?? 'skip',
    sink: writeShards({
      dir: o.output,
      spec: o.spec,
      classes: ds.classes,
      shardSize: o.shardSize ?? 256,
      info: { source: ds.root ?? o.input, labels, shuffle: order.shuffle, seed: order.seed, shard: o.shard ?? null },
    }),
  });
  let run: RunResult;
  try {
    run = await g.run({
      onProgress: (p) => {
        const s = p.segments.find((x) => x.name === 'preprocess');
        if (s) bar?.update(s.recordsIn, { rate: s.recordsPerSecond.toFixed(0), skipped: s.skipped });
      },
    });
  } finally {
    bar?.stop();
  }
  const manifest = run.results.shards![0] as ShardManifest;
  const skipped = skippedImages(run).map((s: SkippedImage) => ({ path: s.path, reason: s.reason }));
  return { manifest, skipped, unused: unusedImages(run), seconds: (performance.now() - t0) / 1000, run };
}

/** 'folder' when the folder has sub-folders (classes), else 'none' (an unlabelled folder, like ../shared/data/photos). */
async function guessLabels(dir: string): Promise<LabelSource> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.some((d) => d.isDirectory() && !d.name.startsWith('.')) ? 'folder' : 'none';
}

/**
 * A synthetic dataset for when ../shared/data/photos is absent: 3 classes x 20 JPEGs of 320x240
 * (smooth colour fields plus noise), and one corrupt file to show how bad files are reported.
 * Generated once under the temporary folder.
 */
export async function syntheticFolder(root = join(tmpdir(), 'ringpipe-example-synthetic-images-v1')): Promise<string> {
  if (existsSync(join(root, '.complete'))) return root;
  const classes = ['red', 'green', 'blue'];
  for (const [c, cls] of classes.entries()) {
    await mkdir(join(root, cls), { recursive: true });
    for (let i = 0; i < 20; i++) {
      const w = 320, h = 240, px = Buffer.alloc(w * h * 3);
      let s = (c * 1000 + i) * 2654435761 >>> 0;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          const t = 0.5 + 0.5 * Math.sin(x * (0.01 + i * 0.002) + y * 0.02);
          const o = (y * w + x) * 3;
          for (let k = 0; k < 3; k++) px[o + k] = Math.min(255, (k === c ? 200 : 40) * t + 30 + ((s >>> (8 * k)) & 31));
        }
      }
      await sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toFile(join(root, cls, `img-${String(i).padStart(3, '0')}.jpg`));
    }
  }
  await writeFile(join(root, 'green', 'corrupt.jpg'), 'this is not a JPEG\n');
  await writeFile(join(root, '.complete.tmp'), '');
  await rename(join(root, '.complete.tmp'), join(root, '.complete'));
  return root;
}

const USAGE = `usage: npm run example -- image-preprocess [--data DIR] [--out DIR] [options]
  --data DIR          image folder (default: ../shared/data/photos if present, else a generated synthetic folder)
  --out DIR           output folder (default: <tmpdir>/ringpipe-image-shards)
  --size N            output side (default 224)
  --crop MODE         center | random | resize (default center)
  --flip              random horizontal flip (p = 0.5)
  --layout L          hwc | chw (default hwc -> NHWC shards)
  --dtype T           float32 | uint8 (default float32; float32 is ImageNet-normalised)
  --workers N         preprocessing replicas (default: number of cores)
  --isolation I       process | thread: where the replicas run (default process)
  --batch N           samples per batch between the batcher and the shard writer (default 32)
  --shard-size N      samples per shard file (default 256)
  --labels L          folder | none | <labels.csv|labels.json> (default: folder if DIR has sub-folders, else none)
  --shuffle --seed S  seeded order; augmentations depend only on (seed, sample index)
  --part I/N          write only part I of N of the dataset (0-based)
  --on-error MODE     skip | fail (default skip)`;

const int = (v: string | undefined, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
};

export async function cli(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      size: { type: 'string', default: '224' },
      crop: { type: 'string', default: 'center' },
      flip: { type: 'boolean', default: false },
      layout: { type: 'string', default: 'hwc' },
      dtype: { type: 'string', default: 'float32' },
      workers: { type: 'string' },
      isolation: { type: 'string', default: 'process' },
      batch: { type: 'string', default: '32' },
      'shard-size': { type: 'string', default: '256' },
      labels: { type: 'string' },
      shuffle: { type: 'boolean', default: false },
      seed: { type: 'string', default: '0' },
      part: { type: 'string' },
      'on-error': { type: 'string', default: 'skip' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  let input = values.data;
  if (!input) {
    if (existsSync(PHOTOS_DIR)) {
      input = PHOTOS_DIR;
      console.error(`data: ${PHOTOS_DIR}`);
    } else {
      input = await syntheticFolder();
      console.error(`data: ../shared/data/photos is absent; using a GENERATED SYNTHETIC folder ${input} (3 classes x 20 images, plus one deliberately corrupt file)`);
    }
  }
  const output = values.out ?? join(tmpdir(), 'ringpipe-image-shards');
  const dtype = values.dtype as 'float32' | 'uint8';
  if (dtype !== 'float32' && dtype !== 'uint8') throw new Error(`--dtype must be float32 or uint8, got ${values.dtype}`);
  if (values.isolation !== 'thread' && values.isolation !== 'process') throw new Error(`--isolation must be thread or process, got ${values.isolation}`);
  if (values['on-error'] !== 'skip' && values['on-error'] !== 'fail') throw new Error(`--on-error must be skip or fail, got ${values['on-error']}`);
  const spec: PreprocessSpec = {
    size: int(values.size, 'size'),
    crop: values.crop as PreprocessSpec['crop'],
    flip: values.flip,
    layout: values.layout as 'hwc' | 'chw',
    dtype,
    seed: int(values.seed, 'seed'),
    ...(dtype === 'float32' ? { mean: IMAGENET_MEAN, std: IMAGENET_STD } : {}),
  };
  const labels: LabelSource = values.labels === undefined ? await guessLabels(input) : values.labels === 'folder' || values.labels === 'none' ? values.labels : { file: values.labels };
  let shard: { index: number; count: number } | undefined;
  if (values.part) {
    const m = /^(\d+)\/(\d+)$/.exec(values.part);
    if (!m) throw new Error(`--part must look like 0/4, got ${values.part}`);
    shard = { index: Number(m[1]), count: Number(m[2]) };
  }
  const res = await preprocessFolder({
    input,
    output,
    spec,
    labels,
    shardSize: int(values['shard-size'], 'shard-size'),
    batchSize: int(values.batch, 'batch'),
    ...(values.workers ? { workers: int(values.workers, 'workers') } : {}),
    isolation: values.isolation,
    shuffle: values.shuffle,
    seed: int(values.seed, 'seed'),
    ...(shard ? { shard } : {}),
    onError: values['on-error'],
    progress: true,
  });
  const m = res.manifest;
  const pre = res.run.segments.find((s) => s.name === 'preprocess')!;
  console.log(`${m.count} images -> ${m.shards.length} shard(s) in ${output} (${m.dtype} ${m.layout} [N, ${m.sampleShape.join(', ')}], ${m.classes.length} classes)`);
  console.log(`${(m.count / res.seconds).toFixed(1)} images/s over ${res.seconds.toFixed(1)} s (worker start-up included), ${pre.replicas} preprocessing replica(s) at ${pre.recordsPerSecond.toFixed(1)} images/s; slowest segment: ${res.run.slowest}`);
  if (res.skipped.length) {
    console.log(`skipped ${res.skipped.length} file(s):`);
    for (const s of res.skipped) console.log(`  ${s.path ?? '(buffer)'}: ${s.reason}`);
  }
  if (res.unused.length) {
    console.log(`not used: ${res.unused.length} entr${res.unused.length === 1 ? 'y' : 'ies'} of the folder:`);
    for (const u of res.unused) console.log(`  ${u.path}: ${u.reason}`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  cli(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      console.error(e instanceof Error ? `error: ${e.message}` : e);
      process.exit(1);
    },
  );
}
