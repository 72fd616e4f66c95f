/**
 * Segment code for image pipelines on the engine: what runs inside the worker threads or processes.
 * Workers import this module by name (the factories in `./pipeline.ts` point at its exports), so it
 * holds only code and plain-data options, and importing it starts nothing.
 *
 * - {@link imageSource} (re-exported from `./folder.ts`): the dataset source; its options are
 *   plain data (`dir` or `inputs`, labels, shuffle/seed/epoch(s)/shard, limit).
 * - {@link ImagePreprocessor}: decode + crop + resize + flip + normalise, written straight into the
 *   output tensor claimed with `ctx.tensor()` in the next stage's input ring: by the fused JPEG path
 *   in one native call where it applies (`./fused.ts`), else in one native pass over sharp's output
 *   buffer. Its `setup` sizes libvips' threads by the rule in `./threads.ts`; its report counts the
 *   images each decoder made.
 * - {@link ShardWriterSink}: batches (and their labels) into shard files, from the ring's memory.
 * - {@link DigestSink}: a SHA-256 per sample (and the records' shapes), to check that runs are
 *   reproducible, e.g. that two runs with the same seed give byte-identical tensors.
 *
 * How labels travel with tensors: a tensor is zero-copy only as a record of its own (a tensor inside
 * an object goes through structured serialization, a copy). So the preprocessor has two outputs:
 * port 0 the image tensor, port 1 a small {@link SampleMeta} record `{ index, label, epoch }`. Both
 * get one record per sample or none (a skipped file drops both), so the two streams stay aligned:
 * `batch(n)` on each gives `[n, H, W, 3]` / `[n, 3, H, W]` tensors and `SampleMeta[]` arrays of the
 * same samples, and a sink with two inputs receives `(images, metas)` pairs, one of each per call.
 * `meta: false` gives the single tensor output instead (no labels).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import sharp from 'sharp';
import type { SegmentContext } from '../segments/segment.js';
import type { Tensor } from '../codec/types.js';
import { InvalidArgumentError } from '../errors.js';
import { runningAllocator } from './allocator.js';
import { outputShape, preprocess, resolveSpec, type PreprocessSpec } from './decode.js';
import type { ImageItem } from './folder.js';
import { ShardWriter, type ShardManifest, type ShardWriterOptions } from './shards.js';
import { applyThreadPlan, checkThreadsOption, threadPlan, vipsThreadsAtFirstRecord, type ThreadPlan, type ThreadsOption } from './threads.js';

export { imageSource, ImageSourceSegment } from './folder.js';

/** What travels beside each image tensor (port 1 of the preprocessor). */
export interface SampleMeta {
  /** The sample's dataset index (position in the canonical listing). */
  index: number;
  /** Class index, -1 when unlabelled. */
  label: number;
  /** The epoch the sample was drawn in (the source's `epoch` + e). */
  epoch: number;
}

/** Options of {@link ImagePreprocessor} (plain data: they are cloned into every worker). */
export interface ImagePreprocessorOptions {
  /** What to produce; see `PreprocessSpec`. */
  spec: PreprocessSpec;
  /** Two outputs, the tensor and its {@link SampleMeta} (default true), or the tensor alone (false). */
  meta?: boolean;
  /**
   * `'auto'` (default): size libvips' threads per image in `setup` by the rule of `threadPlan`, from
   * this segment's replica count and the cores; a number: that many libvips threads per image, the
   * rest of the plan as 'auto'; `'keep'`: leave sharp's settings alone.
   */
  threads?: ThreadsOption;
  /** Cores the replicas share. Default `os.availableParallelism()`. */
  cores?: number;
}

/** What each replica of {@link ImagePreprocessor} returns from teardown (`result.results[name][replica]`). */
export interface ImagePreprocessorReport {
  /** Images written (skipped ones not counted). */
  images: number;
  /** The images each decoder made (see {@link DecoderCounts}). */
  decoders: DecoderCounts;
  /** The thread plan this replica applied (or would have, with `threads: 'keep'`). */
  plan: ThreadPlan;
  /** `sharp.concurrency()` at the replica's end (process-wide: replicas in threads share it). */
  vipsConcurrency: number;
  /** Whether this replica ran in a process of its own (isolation 'process'). */
  ownProcess: boolean;
  /** `UV_THREADPOOL_SIZE` of the replica's process (libuv's default, 4, when unset). */
  uvThreadpoolSize: number;
  /** The memory allocator of the replica's process (see `imagePipeline`'s `allocator`). */
  allocator: 'jemalloc' | 'system';
}

/** Images by decoder. */
export interface DecoderCounts {
  /** Decoded by the fused JPEG path. */
  fused: number;
  /** Decoded by sharp: not JPEGs the fused path handles, `decoder: 'sharp'`, and the `fusedFailures`. */
  sharp: number;
  /** JPEGs the fused path took but libjpeg failed on, decoded by sharp instead (counted in `sharp` too). */
  fusedFailures: number;
}

const WORKER_MARK = Symbol.for('ringpipe.worker');

/** True in the child process of a replica with isolation 'process'. */
function inOwnProcess(): boolean {
  return isMainThread && Boolean((globalThis as Record<symbol, unknown>)[WORKER_MARK]);
}

/**
 * The preprocessing transform: `ImageItem` in, image tensor (and its {@link SampleMeta}) out. The
 * tensor is claimed in the output ring before decoding and `preprocess` writes the pixels there;
 * if decoding fails the claim is dropped and the error (an `ImageDecodeError` naming the file and
 * the reason) goes to the segment's `onError`.
 *
 * Augmentations are keyed on (spec.seed, item.epoch, item.index): the same whatever the replicas.
 */
export class ImagePreprocessor {
  private spec!: PreprocessSpec;
  private shape!: number[];
  private dtype!: 'float32' | 'uint8';
  private meta = true;
  private images = 0;
  private readonly decoders: DecoderCounts = { fused: 0, sharp: 0, fusedFailures: 0 };
  private report!: Omit<ImagePreprocessorReport, 'images' | 'decoders'>;
  /** Sets the plan's libvips threads again at the first record (see vipsThreadsAtFirstRecord). */
  private atFirstRecord = (): void => {};

  /** Checks the spec and sizes libvips' threads for this replica. */
  setup(options: ImagePreprocessorOptions, ctx: SegmentContext): void {
    if (!options || typeof options !== 'object' || !options.spec) throw new InvalidArgumentError('ImagePreprocessor: options.spec is required');
    const r = resolveSpec(options.spec);
    // A replica's thread does nothing else while an image is read: read on it (see `readFile`).
    this.spec = options.spec.readFile === undefined ? { ...options.spec, readFile: 'sync' } : options.spec;
    this.shape = outputShape(r);
    this.dtype = r.dtype;
    this.meta = options.meta !== false;
    const ownProcess = inOwnProcess();
    // Replicas in threads share one process (one libvips, one libuv pool); processes have their own.
    const threads = options.threads ?? 'auto';
    checkThreadsOption('ImagePreprocessor', threads);
    const rule = threadPlan({ replicas: ctx.replicas, replicasPerProcess: ownProcess ? 1 : ctx.replicas, cores: options.cores ?? availableParallelism() });
    const plan = typeof threads === 'number' ? { ...rule, vipsConcurrency: threads } : rule;
    if (threads !== 'keep') {
      this.atFirstRecord = vipsThreadsAtFirstRecord(plan.vipsConcurrency);
      if (ownProcess || !isMainThread) applyThreadPlan(plan);
      else {
        // Isolation 'local': the user's own main thread; do not touch its environment.
        sharp.concurrency(plan.vipsConcurrency);
        sharp.cache(false);
      }
    }
    const uv = Number(process.env.UV_THREADPOOL_SIZE);
    this.report = { plan, vipsConcurrency: sharp.concurrency(), ownProcess, uvThreadpoolSize: Number.isInteger(uv) && uv > 0 ? uv : 4, allocator: runningAllocator() };
  }

  /** Decodes one item into a tensor claimed in the output ring (and its SampleMeta on the second output). */
  async run(item: ImageItem, ctx: SegmentContext): Promise<Tensor | [Tensor, SampleMeta]> {
    const input = item.path ?? item.buffer;
    if (input === undefined) throw new InvalidArgumentError(`ImagePreprocessor: item ${item.index} has neither path nor buffer`);
    this.atFirstRecord();
    const epoch = item.epoch ?? 0;
    const t = await ctx.tensor(this.shape, this.dtype);
    const made = await preprocess(input, this.spec, t.data as Float32Array | Uint8Array, { index: item.index, epoch });
    this.images++;
    this.decoders[made.decoder]++;
    if (made.fusedFailure !== undefined) this.decoders.fusedFailures++;
    return this.meta ? [t, { index: item.index, label: item.label, epoch }] : t;
  }

  /** How many images this replica made, and with which decoder. */
  teardown(): ImagePreprocessorReport {
    return { images: this.images, decoders: { ...this.decoders }, ...this.report, vipsConcurrency: sharp.concurrency() };
  }
}

/** Options of {@link ShardWriterSink}: where, what shape, and how many samples per file. */
export interface ShardSinkOptions extends ShardWriterOptions {
  /** The shard folder (created if needed). */
  dir: string;
}

/**
 * A sink with two inputs, `(images, metas)`: batches of image tensors (`[n, ...sampleShape]`) and
 * the `SampleMeta[]` of the same samples, as `batch(n)` makes them from the two outputs of
 * {@link ImagePreprocessor}. Samples go to shard files of `shardSize` samples (batches are written
 * from the ring's memory, and may straddle two files); teardown writes `manifest.json` and returns
 * it. A run that fails never reaches teardown, so it leaves no manifest (an incomplete folder).
 *
 * One replica only: the shards are one ordered sequence.
 */
export class ShardWriterSink {
  private writer!: ShardWriter;

  /** Opens the shard writer in `options.dir`. */
  setup(options: ShardSinkOptions, ctx: SegmentContext): void {
    if (ctx.replicas !== 1) throw new InvalidArgumentError('ShardWriterSink: run one replica (the shards are one ordered sequence)');
    const { dir, ...rest } = options;
    this.writer = new ShardWriter(dir, rest);
  }

  /** Writes a batch (or one sample) and its labels. */
  async run(images: Tensor, metas: SampleMeta[] | SampleMeta): Promise<void> {
    const list = Array.isArray(metas) ? metas : [metas];
    const block = images.shape.length === 3 ? { data: images.data as Float32Array | Uint8Array, shape: [1, ...images.shape], dtype: images.dtype } : { data: images.data as Float32Array | Uint8Array, shape: images.shape, dtype: images.dtype };
    if (block.shape[0] !== list.length) throw new InvalidArgumentError(`ShardWriterSink: ${block.shape[0]} images came with ${list.length} labels: the two inputs are not aligned`);
    await this.writer.append(block, list.map((m) => m.label), list.map((m) => m.index));
  }

  /** Closes the last shard and writes the manifest, which it returns. */
  teardown(): Promise<ShardManifest> {
    return this.writer.close();
  }
}

/** One sample as {@link DigestSink} saw it. */
export interface SampleDigest {
  /** Dataset index, label and epoch (from the `SampleMeta`; -1 each without it). */
  index: number;
  label: number;
  epoch: number;
  /** SHA-256 (hex) of the sample's tensor bytes. */
  sha256: string;
}

/** What {@link DigestSink} returns from teardown. */
export interface DigestReport {
  /** Shape and dtype of every record received (a batch or a single sample), in arrival order. */
  records: { shape: number[]; dtype: string }[];
  /** Every sample, in arrival order (batches split into their samples). */
  samples: SampleDigest[];
  /** SHA-256 over the samples' digests in order: one string to compare whole runs. */
  stream: string;
}

const isMeta = (v: unknown): v is SampleMeta =>
  typeof v === 'object' && v !== null && typeof (v as SampleMeta).index === 'number' && typeof (v as SampleMeta).label === 'number' && typeof (v as { tensor?: unknown }).tensor !== 'function';

/**
 * A sink that hashes every sample it receives: `(images)` or `(images, metas)`, single samples
 * (`[H, W, 3]`/`[3, H, W]`) or batches (`[n, ...]` with `SampleMeta[]`). Nothing is kept but the
 * digests, so it measures and verifies without holding ring views past the call.
 */
export class DigestSink {
  private readonly records: DigestReport['records'] = [];
  private readonly samples: SampleDigest[] = [];

  /** Hashes every sample of the record (a batch or one sample), with its metadata when given. */
  run(images: Tensor, second?: unknown): void {
    const metas: (SampleMeta | undefined)[] = Array.isArray(second) ? second : isMeta(second) ? [second] : [];
    const batched = images.shape.length === 4;
    const n = batched ? images.shape[0]! : 1;
    if (metas.length && metas.length !== n) throw new InvalidArgumentError(`DigestSink: ${n} samples came with ${metas.length} labels: the inputs are not aligned`);
    this.records.push({ shape: [...images.shape], dtype: images.dtype });
    const bytes = new Uint8Array(images.data.buffer, images.data.byteOffset, images.data.byteLength);
    const per = bytes.length / n;
    for (let i = 0; i < n; i++) {
      const m = metas[i];
      const sha256 = createHash('sha256').update(bytes.subarray(i * per, (i + 1) * per)).digest('hex');
      this.samples.push({ index: m?.index ?? -1, label: m?.label ?? -1, epoch: m?.epoch ?? -1, sha256 });
    }
  }

  /** Every sample's digest, and one over all of them. */
  teardown(): DigestReport {
    const h = createHash('sha256');
    for (const s of this.samples) h.update(s.sha256);
    return { records: this.records, samples: this.samples, stream: h.digest('hex') };
  }
}
