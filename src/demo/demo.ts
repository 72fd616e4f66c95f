/**
 * `ringpipe demo` (and `npm start`): an embedded example that runs end to end with no data to provide.
 *
 * 1. **Data**: generates a small labelled image dataset in a temporary folder: three classes
 *    (`circle`, `square`, `stripes`), each with its own shape and a typical but overlapping hue,
 *    random sizes, positions and backgrounds, pixel noise, PNG and JPEG files of 40-88 px, class per
 *    folder; deterministic for a seed (`./dataset.ts`).
 * 2. **Preprocessing on the engine**: `imagePipeline` lists the folder, decodes and resizes every
 *    image to a 24x24x3 float32 tensor normalised to about [-2, 2] in two preprocessing workers
 *    (written in place into the ring), batches them and writes image shards (`ShardWriter`) with
 *    their labels.
 * 3. **Sweep**: a grid of small MLPs (hidden width x learning rate; 4 trials, or 2 with `--quick`),
 *    two trainer processes at a time (TensorFlow.js, the best backend available: tfjs-node(-gpu) or
 *    the wasm fallback). For each wave one source reads the training split back from the shards,
 *    reshuffles it each epoch and its stream is broadcast to the wave's trainers (`engineDataPath`,
 *    `TrainerSink`). Each trial is validated every epoch on a held-out split (20 % of each class) and
 *    tested once on another (20 %) with its best epoch's weights (`./sets.ts`).
 * 4. **Results**: `results.json`, `results.csv`, `history.csv`, `learning-curves.html` and
 *    `best-model/` in the output folder (`out`, or a temporary one that is removed at the end).
 *
 * Everything temporary lives in one `ringpipe-demo-*` folder under `os.tmpdir()`, removed whatever
 * happens; the engine leaves no processes or shared memory behind.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '../errors.js';
import type { PreprocessSpec } from '../image/decode.js';
import { imagePipeline, writeShards } from '../image/pipeline.js';
import type { ShardManifest } from '../image/shards.js';
import type { ImagePreprocessorReport } from '../image/segments.js';
import { CancelledError } from '../runtime/errors.js';
import type { Graph } from '../pipeline/graph.js';
import { Stream } from '../pipeline/stream.js';
import { Source } from '../segments/segment.js';
import { engineDataPath } from '../sweep/engine-data-path.js';
import type { GridSpace } from '../sweep/space.js';
import { sweep, type SweepResult } from '../sweep/sweep.js';
import type { ConsoleMode } from '../sweep/table.js';
import { DEMO_CLASSES, generateDataset, type SyntheticDataset } from './dataset.js';
import type { DemoBatchOptions } from './segments.js';
import { demoBatches } from './segments.js';
import { HOLDOUT, type DemoSetArgs } from './sets.js';

/** Sizes of a demo run. */
export interface DemoConfig {
  /** Generated images per class. */
  perClass: number;
  /** Side of the preprocessed square tensors. */
  size: number;
  /** Training epochs of every trial. */
  epochs: number;
  batchSize: number;
  /** The searched parameters (see `./model.ts`). */
  grid: GridSpace;
  /** Trainers at a time. */
  concurrency: number;
  /** Preprocessing replicas. */
  workers: number;
}

/** The default run: 450 images, 4 trials in 2 waves of 2. */
export const DEMO_CONFIG: DemoConfig = {
  perClass: 150,
  size: 24,
  epochs: 10,
  batchSize: 16,
  grid: { hidden: [16, 128], learningRate: [0.001, 0.01] },
  concurrency: 2,
  workers: 2,
};

/** `--quick`: 180 images, 2 trials in one wave, fewer epochs. */
export const QUICK_DEMO_CONFIG: DemoConfig = {
  perClass: 60,
  size: 24,
  epochs: 6,
  batchSize: 16,
  grid: { hidden: [64], learningRate: [0.001, 0.01] },
  concurrency: 2,
  workers: 2,
};

/**
 * Below this best validation accuracy the demo counts as failed: with three balanced classes chance
 * is 1/3, and every configuration of the grid reaches far more on this data when the pipeline works.
 */
export const DEMO_MIN_ACCURACY = 0.6;

/** The demo's segment module, as workers import it (resolved to `segments.ts` when running from source). */
const DEMO_SEGMENTS = new URL('./segments.js', import.meta.url).href;

/** Absolute path of a module beside this one: `NAME.js` when built, `NAME.ts` when running from source. */
function sibling(name: string): string {
  const js = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (existsSync(js)) return js;
  const ts = `${js.slice(0, -3)}.ts`;
  if (existsSync(ts)) return ts;
  throw new InvalidArgumentError(`demo: cannot find the module ${js} (nor ${ts})`);
}

export interface DemoOptions {
  /** Keep the result files in this folder (created if needed). Default: a temporary folder, removed at the end. */
  out?: string;
  /** The smaller run ({@link QUICK_DEMO_CONFIG}). */
  quick?: boolean;
  /** Seed of the data, the split and the shuffling. Default 1. */
  seed?: number;
  /** Overrides of the chosen configuration. */
  config?: Partial<DemoConfig>;
  /** Cancels the run. */
  signal?: AbortSignal;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** The sweep's live view (a table on a terminal, lines otherwise). Default `'none'`. */
  console?: ConsoleMode;
  consoleStream?: { write(s: string): unknown; isTTY?: boolean };
  /** Where the temporary folder goes. Default `os.tmpdir()`. */
  tmpRoot?: string;
}

/** What the preprocessing step did. */
export interface DemoPreprocessReport {
  images: number;
  shards: number;
  sampleShape: [number, number, number];
  dtype: string;
  workers: number;
  /** Images per preprocessing replica, as each replica reported. */
  perReplica: number[];
  seconds: number;
  imagesPerSecond: number;
  spec: PreprocessSpec;
}

export interface DemoResult {
  config: DemoConfig;
  seed: number;
  dataset: SyntheticDataset;
  preprocess: DemoPreprocessReport;
  /** Samples in each split. */
  split: { train: number; validation: number; test: number };
  sweep: SweepResult;
  /** The searched parameter names (the table's params column). */
  searched: string[];
  /** Where the result files were written. */
  out: string;
  /** False when `out` was the temporary folder (removed before this returns). */
  kept: boolean;
  /** The temporary folder (removed). */
  tmp: string;
  /** Chance accuracy (1 / classes). */
  chance: number;
  seconds: number;
}

/** Runs the demo; see the module comment. Rejects on a failed step (the temporary folder is removed either way). */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = Date.now();
  const base = options.quick ? QUICK_DEMO_CONFIG : DEMO_CONFIG;
  const config: DemoConfig = { ...base, ...(options.config ?? {}) };
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError(`demo: the seed must be a non-negative integer, got ${seed}`);
  const log = options.log ?? (() => {});
  const signal = options.signal;
  const checkAbort = () => {
    if (signal?.aborted) throw new CancelledError(String(signal.reason ?? 'aborted'));
  };
  const secs = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

  const tmp = await mkdtemp(join(options.tmpRoot ?? tmpdir(), 'ringpipe-demo-'));
  try {
    const imagesDir = join(tmp, 'images');
    const shardsDir = join(tmp, 'shards');
    const out = options.out !== undefined ? resolve(options.out) : join(tmp, 'results');

    // 1. Synthetic images.
    let t = Date.now();
    log(`[1/3] generating ${config.perClass * DEMO_CLASSES.length} labelled images (${DEMO_CLASSES.join(', ')}; PNG and JPEG, 40-88 px, noisy) in ${imagesDir}`);
    const dataset = await generateDataset(imagesDir, { perClass: config.perClass, seed });
    log(`      ${dataset.images} files (${dataset.png} PNG, ${dataset.jpeg} JPEG, ${(dataset.bytes / 1024).toFixed(0)} KiB) in ${secs(Date.now() - t)}`);
    checkAbort();

    // 2. Preprocessing on the engine: images -> preprocess (replicas) -> batch -> shard writer.
    t = Date.now();
    const spec: PreprocessSpec = { size: config.size, crop: 'resize', layout: 'hwc', dtype: 'float32', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
    log(`[2/3] preprocessing on the engine: images -> preprocess (${config.workers} workers: decode, resize to ${config.size}x${config.size}, normalise) -> batch -> shards`);
    const graph = imagePipeline({
      dir: imagesDir,
      classes: [...DEMO_CLASSES],
      spec,
      workers: config.workers,
      cores: availableParallelism(),
      batchSize: 32,
      sink: writeShards({ dir: shardsDir, spec, classes: [...DEMO_CLASSES], shardSize: 128, info: { source: 'ringpipe demo', seed } }),
    });
    const pre = await graph.run({ signal, handleSigint: false });
    const manifest = pre.results.shards?.[0] as ShardManifest | undefined;
    if (!manifest || manifest.count !== dataset.images) {
      throw new InvalidArgumentError(`demo: the shard writer stored ${manifest?.count ?? 'no'} samples of ${dataset.images} images`);
    }
    const perReplica = ((pre.results.preprocess ?? []) as ImagePreprocessorReport[]).map((r) => r.images);
    const preSeconds = (Date.now() - t) / 1000;
    const preprocess: DemoPreprocessReport = {
      images: manifest.count,
      shards: manifest.shards.length,
      sampleShape: manifest.sampleShape,
      dtype: manifest.dtype,
      workers: config.workers,
      perReplica,
      seconds: preSeconds,
      imagesPerSecond: manifest.count / Math.max(preSeconds, 1e-3),
      spec,
    };
    log(
      `      ${manifest.count} tensors [${manifest.sampleShape.join(', ')}] ${manifest.dtype} in ${manifest.shards.length} shard file(s) ` +
        `(${perReplica.join(' + ')} images per worker) in ${secs(Date.now() - t)}`,
    );
    checkAbort();

    // 3. The sweep, fed from the shards by one broadcast stream per wave.
    const args: DemoSetArgs = { shards: shardsDir, seed };
    const perClassHeld = (f: number) => Math.round(config.perClass * f) * DEMO_CLASSES.length;
    const split = { validation: perClassHeld(HOLDOUT.validation), test: perClassHeld(HOLDOUT.test), train: 0 };
    split.train = dataset.images - split.validation - split.test;
    const searched = Object.keys(config.grid);
    const trials = Object.values(config.grid).reduce((n, v) => n * v.length, 1);
    log(
      `[3/3] sweep: ${trials} trials (${searched.join(' x ')}), ${config.epochs} epochs, ${split.train} training / ${split.validation} validation / ${split.test} test images; ` +
        `${config.concurrency} trainer processes at a time read one broadcast stream`,
    );
    const setsModule = pathToFileURL(sibling('sets')).href;
    const source: DemoBatchOptions = { ...args, epochs: config.epochs, batchSize: config.batchSize };
    const result = await sweep({
      grid: config.grid,
      params: { size: config.size, classes: DEMO_CLASSES.length, seed },
      trainer: {
        module: sibling('model'),
        validation: { module: setsModule, export: 'validationSet', args },
        test: { module: setsModule, export: 'testSet', args },
        evalBatchSize: 256,
      },
      metric: 'val_acc',
      concurrency: config.concurrency,
      out,
      console: options.console ?? 'none',
      ...(options.consoleStream ? { consoleStream: options.consoleStream } : {}),
      data: engineDataPath({
        build(g: Graph) {
          checkAbort();
          const batches = new Stream('train-batches');
          g.add(new Source(demoBatches, { name: 'shard-reader', options: source, module: DEMO_SEGMENTS, export: 'demoBatches' }), { out: batches });
          return batches;
        },
        run: { signal, handleSigint: false },
      }),
    });
    checkAbort();
    return {
      config,
      seed,
      dataset,
      preprocess,
      split,
      sweep: result,
      searched,
      out,
      kept: options.out !== undefined,
      tmp,
      chance: 1 / DEMO_CLASSES.length,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
