// Example: a folder of images -> preprocessed, batched shards on disk, with a progress bar.
//
//   npx tsx examples/image-preprocess/main.ts <image-folder> <out-dir> [options]
//
// See README.md for the options and the on-disk format.
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import cliProgress from 'cli-progress';
import { allocBatch, batchSlot } from '../../src/image/batch.js';
import { preprocess, resolveSpec, type PreprocessSpec } from '../../src/image/decode.js';
import { ImageDecodeError } from '../../src/image/errors.js';
import { imageFolder, selectItems, type ImageItem, type LabelSource } from '../../src/image/folder.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/image/normalize.js';
import { ShardWriter, type ShardManifest } from '../../src/image/shards.js';
import { applyThreadPlan, threadPlan } from '../../src/image/threads.js';

export interface PreprocessFolderOptions {
  /** The image folder (class-per-folder unless `labels` says otherwise). */
  input: string;
  /** Where shards and manifest.json are written. */
  output: string;
  spec: PreprocessSpec;
  /** Samples per shard file. Default 256. */
  shardSize?: number;
  /** Images in flight at once (decodes run on libuv's pool). Default: the number of cores. */
  concurrency?: number;
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
  skipped: { path: string; reason: string }[];
  seconds: number;
}

/** Runs the whole conversion; resolves with the manifest and the skipped files. */
export async function preprocessFolder(o: PreprocessFolderOptions): Promise<PreprocessFolderResult> {
  const t0 = performance.now();
  const r = resolveSpec(o.spec);
  const shardSize = o.shardSize ?? 256;
  const onError = o.onError ?? 'skip';
  const concurrency = o.concurrency ?? threadPlan({ replicas: 1 }).cores;
  // One process keeps `concurrency` images in flight: one libvips thread each.
  applyThreadPlan(threadPlan({ replicas: 1, inFlight: concurrency }));

  const ds = await imageFolder(o.input, { ...(o.labels ? { labels: o.labels } : {}) });
  const items = selectItems(ds.items, { shuffle: o.shuffle ?? false, seed: o.seed ?? 0, ...(o.shard ? { shard: o.shard } : {}) });
  const writer = new ShardWriter(o.output, {
    dtype: r.dtype,
    layout: r.layout === 'hwc' ? 'nhwc' : 'nchw',
    height: r.height,
    width: r.width,
    classes: ds.classes,
    spec: { ...o.spec, source: ds.root, shuffle: o.shuffle ?? false, seed: o.seed ?? 0, shard: o.shard ?? null },
  });
  const skipped: { path: string; reason: string }[] = [];
  const bar = (o.progress ?? process.stderr.isTTY)
    ? new cliProgress.SingleBar({ format: 'preprocess [{bar}] {value}/{total} images | {rate} img/s | skipped {skipped} | eta {eta}s', stream: process.stderr }, cliProgress.Presets.shades_classic)
    : undefined;
  bar?.start(items.length, 0, { rate: '0', skipped: 0 });
  let done = 0;

  try {
    for (let start = 0; start < items.length; start += shardSize) {
      const chunk = items.slice(start, start + shardSize);
      const batch = allocBatch(chunk.length, r.height, r.width, { dtype: r.dtype, layout: r.layout === 'hwc' ? 'nhwc' : 'nchw' });
      const ok = new Array<boolean>(chunk.length).fill(false);
      let next = 0;
      // Each sample is decoded straight into its slot of the batch: no copy after sharp's output.
      const workerLoop = async () => {
        for (let k = next++; k < chunk.length; k = next++) {
          const item: ImageItem = chunk[k];
          try {
            await preprocess(item.path!, o.spec, batchSlot(batch, k), { index: item.index });
            batch.labels[k] = item.label;
            ok[k] = true;
          } catch (e) {
            if (!(e instanceof ImageDecodeError) || onError === 'fail') throw e;
            skipped.push({ path: e.path ?? item.path!, reason: e.reason });
          }
          done++;
          bar?.update(done, { rate: (done / ((performance.now() - t0) / 1000)).toFixed(0), skipped: skipped.length });
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, chunk.length) }, workerLoop));
      // Close the gaps left by skipped samples, keeping the order.
      const per = batch.data.length / chunk.length;
      const indices: number[] = [];
      let n = 0;
      for (let k = 0; k < chunk.length; k++) {
        if (!ok[k]) continue;
        if (n !== k) {
          batch.data.copyWithin(n * per, k * per, (k + 1) * per);
          batch.labels[n] = batch.labels[k];
        }
        indices.push(chunk[k].index);
        n++;
      }
      if (n > 0) await writer.writeBatch(batch, indices, n);
    }
  } finally {
    bar?.stop();
  }
  const manifest = await writer.close();
  return { manifest, skipped, seconds: (performance.now() - t0) / 1000 };
}

const USAGE = `usage: npx tsx examples/image-preprocess/main.ts <image-folder> <out-dir> [options]
  --size N            output side (default 224)
  --crop MODE         center | random | resize (default center)
  --flip              random horizontal flip (p = 0.5)
  --layout L          hwc | chw (default hwc -> NHWC shards)
  --dtype T           float32 | uint8 (default float32; float32 is ImageNet-normalised)
  --shard-size N      samples per shard file (default 256)
  --concurrency N     images in flight (default: number of cores)
  --labels L          folder | none | <labels.csv|labels.json> (default folder)
  --shuffle --seed S  seeded shuffle
  --part I/N          write only part I of N of the dataset (0-based)
  --on-error MODE     skip | fail (default skip)`;

async function cli(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      size: { type: 'string', default: '224' },
      crop: { type: 'string', default: 'center' },
      flip: { type: 'boolean', default: false },
      layout: { type: 'string', default: 'hwc' },
      dtype: { type: 'string', default: 'float32' },
      'shard-size': { type: 'string', default: '256' },
      concurrency: { type: 'string' },
      labels: { type: 'string', default: 'folder' },
      shuffle: { type: 'boolean', default: false },
      seed: { type: 'string', default: '0' },
      part: { type: 'string' },
      'on-error': { type: 'string', default: 'skip' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length !== 2) {
    console.error(USAGE);
    return values.help ? 0 : 2;
  }
  const [input, output] = positionals;
  const dtype = values.dtype as 'float32' | 'uint8';
  const spec: PreprocessSpec = {
    size: Number(values.size),
    crop: values.crop as PreprocessSpec['crop'],
    flip: values.flip,
    layout: values.layout as 'hwc' | 'chw',
    dtype,
    seed: Number(values.seed),
    ...(dtype === 'float32' ? { mean: IMAGENET_MEAN, std: IMAGENET_STD } : {}),
  };
  const labels: LabelSource = values.labels === 'folder' || values.labels === 'none' ? values.labels : { file: values.labels! };
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
    shardSize: Number(values['shard-size']),
    ...(values.concurrency ? { concurrency: Number(values.concurrency) } : {}),
    shuffle: values.shuffle,
    seed: Number(values.seed),
    ...(shard ? { shard } : {}),
    onError: values['on-error'] as 'skip' | 'fail',
    progress: true,
  });
  const m = res.manifest;
  console.log(`${m.count} images -> ${m.shards.length} shard(s) in ${output} (${m.dtype} ${m.layout} [N, ${m.sampleShape.join(', ')}], ${m.classes.length} classes)`);
  console.log(`${(m.count / res.seconds).toFixed(1)} images/s over ${res.seconds.toFixed(1)} s`);
  if (res.skipped.length) {
    console.log(`skipped ${res.skipped.length} file(s):`);
    for (const s of res.skipped) console.log(`  ${s.path}: ${s.reason}`);
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
