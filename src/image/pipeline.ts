/**
 * Image pipelines on the engine, in a few lines:
 *
 * ```ts
 * const g = imagePipeline({ dir: 'train', spec: { crop: 'random', flip: true, seed: 7 }, workers: 2, batchSize: 64, sink: new Sink(Train) });
 * const result = await g.run({ onProgress });
 * console.log(skippedImages(result)); // [{ path, reason, index }, ...] with onError: 'skip'
 * console.log(unusedImages(result));  // [{ path, reason }, ...]: what the folder holds besides images
 * ```
 *
 * The graph is `images` (source) -> `preprocess` (`workers` replicas, order kept) -> [`batch-images`,
 * `batch-meta`] -> the sink, which receives `(images, metas)`: a `[n, H, W, 3]` (NHWC, layout
 * `'hwc'`) or `[n, 3, H, W]` (NCHW, layout `'chw'`) tensor and the `SampleMeta[]` of the same
 * samples. Why two streams: see `./segments.ts`.
 *
 * The factories name the segment code by module and export (`./segments.ts`), as the built-in
 * regulators do, so the code reaches worker threads and processes wherever the pipeline is declared.
 * This module imports sharp, so sharp is loaded in the main thread before any worker thread loads
 * it (sharp's requirement for worker threads on glibc: otherwise a worker's exit unloads libvips).
 */
import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from '../errors.js';
import { Graph, type NodeOptions } from '../pipeline/graph.js';
import { Stream } from '../pipeline/stream.js';
import type { Isolation, SkippedRecord } from '../runtime/plan.js';
import { batchRegulator, type BatchOptions } from '../segments/regulators.js';
import { Regulator, Sink, Source, Transform } from '../segments/segment.js';
import { outputLength, resolveSpec, type PreprocessSpec } from './decode.js';
import { resolveOrder, type ImageSourceOptions, type ImageSourceReport, type UnusedImageEntry } from './folder.js';
import { DigestSink, ImagePreprocessor, ImageSourceSegment, ShardWriterSink, type ImagePreprocessorOptions, type ShardSinkOptions } from './segments.js';
import { segmentAllocatorEnv, type Allocator } from './allocator.js';
import { checkThreadsOption, threadEnv, threadPlan, type ThreadsOption } from './threads.js';

const SEGMENTS = new URL('./segments.js', import.meta.url).href;
const REGULATORS = new URL('../segments/regulators.js', import.meta.url).href;

/** The source options `imagePipeline` passes on to {@link imageItems}. */
const SOURCE_KEYS = ['dir', 'inputs', 'extensions', 'labels', 'classes', 'followSymlinks', 'includeHidden', 'shuffle', 'seed', 'epoch', 'shard', 'epochs', 'limit'] as const;

function checkCloneable(what: string, value: unknown): void {
  try {
    structuredClone(value);
  } catch (e) {
    throw new InvalidArgumentError(`${what}: options must be plain data (they are cloned into the worker): ${(e as Error).message}`);
  }
}

/**
 * The image dataset as a `Source` (code: `imageSource`): lists the folder or the explicit inputs in
 * its worker and yields `ImageItem`s `{ index, path | buffer, label, className?, epoch }` in the
 * seeded, sharded order. Ordering options are checked here, before anything starts.
 */
export function imageItems(options: ImageSourceOptions, segment: { name?: string } = {}): Source<ImageSourceOptions> {
  if (!options || (options.dir === undefined) === (options.inputs === undefined)) throw new InvalidArgumentError('imageItems: give exactly one of `dir` and `inputs`');
  resolveOrder(options);
  checkCloneable('imageItems', options);
  return new Source<ImageSourceOptions>(ImageSourceSegment, { name: segment.name ?? 'images', options, module: SEGMENTS, export: 'ImageSourceSegment' });
}

/** Options of {@link preprocessImages}: those of `ImagePreprocessor` but the spec, and a name. */
export interface PreprocessImagesOptions extends Omit<ImagePreprocessorOptions, 'spec'> {
  name?: string;
}

/**
 * The preprocessing `Transform` (code: `ImagePreprocessor`): `ImageItem` -> image tensor written in
 * place in the next ring, plus its `SampleMeta` on a second output unless `meta: false`. Give it
 * replicas with `{ workers: n }`; the spec is checked here.
 */
export function preprocessImages(spec: PreprocessSpec, options: PreprocessImagesOptions = {}): Transform<ImagePreprocessorOptions> {
  resolveSpec(spec);
  if (options.threads !== undefined) checkThreadsOption('preprocessImages', options.threads);
  const { name, ...rest } = options;
  const opts: ImagePreprocessorOptions = { ...rest, spec };
  checkCloneable('preprocessImages', opts);
  return new Transform<ImagePreprocessorOptions>(ImagePreprocessor, { name: name ?? 'preprocess', options: opts, module: SEGMENTS, export: 'ImagePreprocessor' });
}

/** `batch(size)` under a name of one's choosing (a graph needs distinct names for its two batchers). */
export function batchNamed(size: number, name: string, options: Omit<BatchOptions, 'size'> = {}): Regulator<BatchOptions> {
  if (!Number.isInteger(size) || size < 1) throw new InvalidArgumentError(`batch size must be a positive integer, got ${size}`);
  return new Regulator<BatchOptions>(batchRegulator, { name, options: { size, ...options }, module: REGULATORS, export: 'batchRegulator' });
}

/** Options of {@link writeShards}. */
export interface WriteShardsOptions {
  /** The shard folder. */
  dir: string;
  /** The spec the samples were made with: gives dtype, layout and size, and is stored in the manifest. */
  spec: PreprocessSpec;
  /** Class names by index, stored in the manifest. */
  classes?: readonly string[];
  /** Samples per shard file. Default 256. */
  shardSize?: number;
  /** Extra plain data stored in `manifest.spec` beside the spec (e.g. the source folder, seed, part). */
  info?: Record<string, unknown>;
  name?: string;
}

/** The shard-writing `Sink` (code: `ShardWriterSink`), reading `(images, metas)`. */
export function writeShards(options: WriteShardsOptions): Sink<ShardSinkOptions> {
  const r = resolveSpec(options.spec);
  const opts: ShardSinkOptions = {
    dir: options.dir,
    dtype: r.dtype,
    layout: r.layout === 'hwc' ? 'nhwc' : 'nchw',
    height: r.height,
    width: r.width,
    classes: [...(options.classes ?? [])],
    spec: { ...options.spec, ...(options.info ?? {}) },
    ...(options.shardSize !== undefined ? { shardSize: options.shardSize } : {}),
  };
  checkCloneable('writeShards', opts);
  return new Sink<ShardSinkOptions>(ShardWriterSink, { name: options.name ?? 'shards', options: opts, module: SEGMENTS, export: 'ShardWriterSink' });
}

/** A `Sink` (code: `DigestSink`) that hashes every sample; `result.results[name][0]` is its `DigestReport`. */
export function digestSink(options: { name?: string } = {}): Sink {
  return new Sink(DigestSink, { name: options.name ?? 'digest', module: SEGMENTS, export: 'DigestSink' });
}

/** Bytes of a ring that holds `records` records of `bytes` (and at least the engine's minimum of twice one). */
export function ringCapacity(bytes: number, records: number): number {
  const need = Math.max(2 * (bytes + 256), records * (bytes + 192), 256 * 1024);
  if (need > 2 ** 30) throw new InvalidArgumentError(`a ring for records of ${bytes} bytes would exceed 1 GiB: use smaller batches`);
  return 2 ** Math.ceil(Math.log2(need));
}

/** Options of {@link imagePipeline}: the dataset (as `imageSource`), the spec, and how to run. */
export interface ImagePipelineOptions extends ImageSourceOptions {
  /** What each sample becomes. Default: centre crop 224, float32, HWC, no normalisation. */
  spec?: PreprocessSpec;
  /**
   * The consumer: with labels (default) a sink of two inputs `(images, metas, ctx)`, without
   * (`meta: false`) of one input `(images, ctx)`. Batched when `batchSize` is set.
   */
  sink: Sink<any>;
  /** Replicas of the preprocessing segment. Default: the number of cores. */
  workers?: number;
  /** Batch into `[batchSize, ...]` tensors (and `SampleMeta[]`); omitted: one sample per record. */
  batchSize?: number;
  /** Emit the last, smaller batch (default true). */
  keepPartial?: boolean;
  /** Carry labels (`SampleMeta`) beside the tensors. Default true. */
  meta?: boolean;
  /** Isolation of the source, the batchers and the sink (see also `sinkOptions`). Default 'thread'. */
  isolation?: Isolation;
  /**
   * Isolation of the preprocessing replicas. Default: `isolation` when it is given, else
   * 'process': each replica then has its own libvips, libuv pool and allocator, which gave 1.4x
   * the images/s of replicas in threads on 500x375 JPEGs (bench/suites/image.ts).
   */
  preprocessIsolation?: Isolation;
  /** What a bad image does: 'fail' (default) stops the run naming the file; 'skip' drops it, see {@link skippedImages}. */
  onError?: NodeOptions['onError'];
  /**
   * libvips threads per image in the preprocessing replicas: 'auto' (default, the rule of
   * `threadPlan`), a number, or 'keep' (sharp's own setting).
   */
  threads?: ThreadsOption;
  /** Cores the replicas share. Default `os.availableParallelism()`. */
  cores?: number;
  /**
   * Memory allocator of the segments' processes under isolation 'process' (see `./allocator.ts`):
   * jemalloc cuts the CPU per 500x375 JPEG by about a tenth. Default 'auto' (jemalloc when installed).
   */
  allocator?: Allocator;
  /** Node options of the sink (e.g. its own isolation). */
  sinkOptions?: Omit<NodeOptions, 'workers'>;
  /**
   * Your own source instead of `dir`/`inputs` (give neither): a `Source` yielding `ImageItem`s
   * `{ index, path | buffer, label, epoch? }`, e.g. items taken from a queue as they come. The
   * ordering options (shuffle, seed, shard, epochs, limit) are then yours to apply.
   */
  source?: Source<any>;
  /** With `source`: the largest encoded image it yields as a `buffer` (default 0: it yields paths). */
  itemBytes?: number;
}

let warnedPool = false;

/**
 * Source -> preprocess (replicas, order kept) -> [batch] -> your sink, as a `Graph` ready to
 * `run()`. Segment names: `images`, `preprocess`, `batch-images`, `batch-meta`, and the sink's.
 */
export function imagePipeline(options: ImagePipelineOptions): Graph {
  if (!options || typeof options !== 'object') throw new InvalidArgumentError('imagePipeline: options are required');
  if (!options.sink || options.sink.kind !== 'sink') throw new InvalidArgumentError('imagePipeline: `sink` must be a Sink');
  const spec = options.spec ?? {};
  const r = resolveSpec(spec);
  const cores = options.cores ?? availableParallelism();
  const workers = options.workers ?? cores;
  const isolation = options.isolation ?? 'thread';
  const preIsolation = options.preprocessIsolation ?? options.isolation ?? 'process';
  const meta = options.meta !== false;
  const batchSize = options.batchSize;
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) throw new InvalidArgumentError(`imagePipeline: batchSize must be a positive integer, got ${batchSize}`);

  const src: ImageSourceOptions = {};
  for (const k of SOURCE_KEYS) if (options[k] !== undefined) (src as Record<string, unknown>)[k] = options[k];
  if (options.source !== undefined) {
    if (options.source?.kind !== 'source') throw new InvalidArgumentError('imagePipeline: `source` must be a Source');
    const given = Object.keys(src);
    if (given.length) throw new InvalidArgumentError(`imagePipeline: with \`source\`, leave out the folder source's options (got ${given.join(', ')})`);
  }
  const itemBytes = options.itemBytes ?? 0;
  if (!Number.isInteger(itemBytes) || itemBytes < 0) throw new InvalidArgumentError(`imagePipeline: itemBytes must be a non-negative integer, got ${options.itemBytes}`);

  const sinkIsolation = options.sinkOptions?.isolation ?? isolation;
  const anyProcess = isolation === 'process' || preIsolation === 'process' || sinkIsolation === 'process';
  const allocEnv = segmentAllocatorEnv(options.allocator ?? 'auto', anyProcess ? 'process' : isolation);
  const envOf = (iso: Isolation, extra: Record<string, string> = {}, user: Record<string, string> = {}) =>
    iso === 'process' ? { env: { ...extra, ...allocEnv, ...user } } : Object.keys(user).length ? { env: user } : {};
  const plan = threadPlan({ replicas: workers, replicasPerProcess: preIsolation === 'process' ? 1 : workers, cores });
  if (preIsolation !== 'process' && options.threads !== 'keep' && !warnedPool) {
    const uv = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    if (uv < plan.uvThreadpoolSize) {
      warnedPool = true;
      process.emitWarning(
        `imagePipeline: ${workers} preprocessing replicas in one process want a libuv pool of ${plan.uvThreadpoolSize} threads, it has ${uv}: ` +
          `start node with UV_THREADPOOL_SIZE=${plan.uvThreadpoolSize}, or use preprocessIsolation 'process'`,
        { code: 'RINGPIPE_UV_POOL' },
      );
    }
  }

  const sampleBytes = outputLength(r) * (r.dtype === 'float32' ? 4 : 1);
  const maxBuffer = Math.max(itemBytes, ...(src.inputs ?? []).map((x) => (x instanceof Uint8Array ? x.byteLength : typeof x === 'object' && x.buffer ? x.buffer.byteLength : 0)));
  const g = new Graph();
  const items = new Stream('items', { capacity: ringCapacity(maxBuffer + 4096, 16) });
  const images = new Stream('images', { capacity: ringCapacity(sampleBytes, 8) });
  const metas = new Stream('metas', { capacity: ringCapacity(256, 256) });
  g.add(options.source ?? imageItems(src), { out: items, isolation, ...envOf(isolation) });
  g.add(preprocessImages(spec, { meta, ...(options.threads !== undefined ? { threads: options.threads } : {}), cores }), {
    in: items,
    out: meta ? [images, metas] : images,
    workers,
    isolation: preIsolation,
    onError: options.onError ?? 'fail',
    ...envOf(preIsolation, threadEnv(plan)),
  });
  // The sink's own env (sinkOptions.env) goes over ringpipe's, not instead of it.
  const sinkOpts: NodeOptions = { isolation, ...(options.sinkOptions ?? {}), ...envOf(sinkIsolation, {}, options.sinkOptions?.env ?? {}) };
  let consumerIn: Stream[] = meta ? [images, metas] : [images];
  if (batchSize !== undefined) {
    const keep = { keepPartial: options.keepPartial ?? true };
    const imageBatches = new Stream('image-batches', { capacity: ringCapacity(sampleBytes * batchSize, 3) });
    g.add(batchNamed(batchSize, 'batch-images', keep), { in: images, out: imageBatches, isolation, ...envOf(isolation) });
    consumerIn = [imageBatches];
    if (meta) {
      const metaBatches = new Stream('meta-batches', { capacity: ringCapacity(96 * batchSize, 16) });
      g.add(batchNamed(batchSize, 'batch-meta', keep), { in: metas, out: metaBatches, isolation, ...envOf(isolation) });
      consumerIn.push(metaBatches);
    }
  }
  g.add(options.sink, { ...sinkOpts, in: consumerIn.length === 1 ? consumerIn[0] : consumerIn });
  return g;
}

/** One image dropped by `onError: 'skip'`, as {@link skippedImages} reads it from a run's result. */
export interface SkippedImage {
  /** The file, or undefined for a buffer input or an error that is not a decode error. */
  path: string | undefined;
  /** Why, e.g. `empty file (0 bytes)`, `not an image, or an unsupported format`, `corrupt or truncated image (...)`. */
  reason: string;
  /** The sample's dataset index, when known. */
  index: number | undefined;
  /** The segment and replica that dropped it, and the record's sequence number there. */
  segment: string;
  replica: number;
  record: number;
  /** The error's code (`ERR_IMAGE_DECODE` for bad images). */
  code: string | undefined;
}

// ImageDecodeError's message: cannot decode image '<path>' (sample <i>): <reason>  (or "buffer input").
const DECODE_WITH_INDEX = /^cannot decode image (?:'([\s\S]*?)'|buffer input) \(sample (\d+)\): ([\s\S]*)$/;
const DECODE = /^cannot decode image (?:'([\s\S]*?)'|buffer input): ([\s\S]*)$/;

/**
 * The folder entries an image pipeline's source did not use (hidden files, other extensions,
 * dangling links, link loops, folders named like images, ...), with the reason, from the report of
 * its source segment (`images` unless named otherwise). Empty for explicit inputs or your own source.
 */
export function unusedImages(result: { results: Record<string, unknown[]> }, segment = 'images'): UnusedImageEntry[] {
  const out: UnusedImageEntry[] = [];
  for (const r of result.results[segment] ?? []) out.push(...((r as Partial<ImageSourceReport> | undefined)?.unused ?? []));
  return out;
}

/**
 * The images a run skipped, with path, reason and dataset index, from `result.skipped` (records
 * the engine dropped under `onError: 'skip'`; it keeps the first 1000 per replica, and
 * `result.skippedCount` counts them all). Sorted by sample index where known.
 */
export function skippedImages(result: { skipped: readonly SkippedRecord[] } | readonly SkippedRecord[]): SkippedImage[] {
  const list = Array.isArray(result) ? (result as readonly SkippedRecord[]) : (result as { skipped: readonly SkippedRecord[] }).skipped;
  const out = list.map((s): SkippedImage => {
    const base = { segment: s.segment, replica: s.replica, record: s.index, code: s.error.code };
    if (s.error.code === 'ERR_IMAGE_DECODE') {
      const m = DECODE_WITH_INDEX.exec(s.error.message);
      if (m) return { ...base, path: m[1], reason: m[3]!, index: Number(m[2]) };
      const m2 = DECODE.exec(s.error.message);
      if (m2) return { ...base, path: m2[1], reason: m2[2]!, index: undefined };
    }
    return { ...base, path: undefined, reason: `${s.error.name}: ${s.error.message}`, index: undefined };
  });
  return out.sort((a, b) => (a.index ?? Infinity) - (b.index ?? Infinity) || a.record - b.record);
}

