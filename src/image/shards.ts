/**
 * Preprocessed image shards on disk: a folder with `manifest.json` and one binary file per shard,
 * laid out so that a trainer can memory-map a shard or read it in one call.
 *
 * Format `ringpipe-image-shards`, version 1 (all integers little-endian):
 *
 * - `manifest.json`: `{ format, version, dtype, layout, sampleShape, sampleBytes, count, classes,
 *   spec, shards: [{ file, count, dataOffset, labelsOffset, indicesOffset, bytes }] }`.
 *   `sampleShape` is `[H, W, 3]` for layout `nhwc` or `[3, H, W]` for `nchw`.
 * - `shard-NNNNN.bin`: at `dataOffset` (0), `count` samples of `sampleBytes` each (float32 or
 *   uint8, C order, so the block is the `[count, ...sampleShape]` batch); at `labelsOffset`, `count`
 *   int32 class indices (-1 = unlabelled); at `indicesOffset`, `count` int32 dataset indices.
 *   Every block starts at a multiple of 64 bytes; the gaps are zero.
 *
 * The manifest is written last (through a temporary file and a rename), so a folder without one
 * is an incomplete write.
 *
 * Two ways to write: {@link ShardWriter.writeBatch} makes one shard file per call;
 * {@link ShardWriter.append} streams samples into shards of `shardSize` samples whatever the size
 * of the batches it is given (a batch may straddle two files). Both write the caller's memory (for
 * instance a ring view) straight to the file.
 */
import { mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError, RingpipeError } from '../errors.js';
import type { BatchLayout, ImageBatch } from './batch.js';
import type { ImageDType } from './normalize.js';

/** Identifies the format in `manifest.json`. */
export const SHARD_FORMAT = 'ringpipe-image-shards';
/** The format version this module writes and reads. */
export const SHARD_VERSION = 1;
const ALIGN = 64;
const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** One shard file's entry in the manifest. */
export interface ShardEntry {
  /** File name, relative to the shard folder. */
  file: string;
  /** Samples in this shard. */
  count: number;
  /** Byte offset of the `[count, ...sampleShape]` data block (always 0). */
  dataOffset: number;
  /** Byte offset of the `count` int32 labels (a multiple of 64). */
  labelsOffset: number;
  /** Byte offset of the `count` int32 dataset indices (a multiple of 64). */
  indicesOffset: number;
  /** File size in bytes. */
  bytes: number;
}

/** The contents of `manifest.json`. */
export interface ShardManifest {
  format: typeof SHARD_FORMAT;
  version: number;
  dtype: ImageDType;
  layout: BatchLayout;
  sampleShape: [number, number, number];
  sampleBytes: number;
  /** Total number of samples over all shards. */
  count: number;
  /** Class names by index (may be empty). */
  classes: string[];
  /** Free-form description of how the samples were made (e.g. the preprocess spec). */
  spec: unknown;
  shards: ShardEntry[];
}

/** Options of {@link ShardWriter}. */
export interface ShardWriterOptions {
  /** Element type of the samples. */
  dtype: ImageDType;
  /** Batch layout of the data blocks. */
  layout: BatchLayout;
  /** Sample height in pixels. */
  height: number;
  /** Sample width in pixels. */
  width: number;
  /** Class names by index, stored in the manifest. */
  classes?: readonly string[];
  /** Stored as `manifest.spec`. */
  spec?: unknown;
  /** Samples per shard file for {@link ShardWriter.append}. Default 256. */
  shardSize?: number;
}

/** The samples {@link ShardWriter.append} takes: `count` samples of `data`, C order, in the writer's layout. */
export interface SampleBlock {
  data: Float32Array | Uint8Array;
  /** `[n, ...sampleShape]`. */
  shape: readonly number[];
  dtype: ImageDType | string;
}

/** The shard file {@link ShardWriter.append} is filling. */
interface OpenShard {
  file: string;
  fh: FileHandle;
  count: number;
  labels: number[];
  indices: number[];
}

/** A shard file is malformed or does not match its manifest. */
export class ShardFormatError extends RingpipeError {
  constructor(message: string) {
    super('ERR_SHARD_FORMAT', message);
  }
}

function checkHost() {
  if (endianness() !== 'LE') throw new RingpipeError('ERR_UNSUPPORTED', 'image shards are little-endian; this host is big-endian');
}

/**
 * What follows the data block of a shard of `count` samples: zero padding to 64 bytes, the labels,
 * padding, the indices (int32 little-endian; written through a DataView, since the data block of a
 * uint8 shard may end at any byte).
 */
function tailBlock(dataBytes: number, count: number, labels: ArrayLike<number>, indices: ArrayLike<number>) {
  const labelsOffset = align(dataBytes);
  const indicesOffset = align(labelsOffset + count * 4);
  const bytes = indicesOffset + count * 4;
  const tail = Buffer.alloc(bytes - dataBytes);
  const dv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  for (let i = 0; i < count; i++) {
    dv.setInt32(labelsOffset - dataBytes + 4 * i, labels[i]!, true);
    dv.setInt32(indicesOffset - dataBytes + 4 * i, indices[i]!, true);
  }
  return { tail, labelsOffset, indicesOffset, bytes };
}

/** Writes batches as shard files, then the manifest. Batches are written in call order. */
export class ShardWriter {
  private readonly shards: ShardEntry[] = [];
  private readonly sampleShape: [number, number, number];
  private readonly sampleBytes: number;
  private closed = false;
  private total = 0;
  private open: OpenShard | undefined;
  private readonly shardSize: number;

  constructor(readonly dir: string, private readonly options: ShardWriterOptions) {
    checkHost();
    const { height, width, dtype, layout } = options;
    this.shardSize = options.shardSize ?? 256;
    if (!Number.isInteger(this.shardSize) || this.shardSize < 1) throw new InvalidArgumentError(`ShardWriter: shardSize must be a positive integer, got ${String(options.shardSize)}`);
    if (!Number.isInteger(height) || height < 1 || !Number.isInteger(width) || width < 1) throw new InvalidArgumentError('ShardWriter: height and width must be positive integers');
    if (dtype !== 'float32' && dtype !== 'uint8') throw new InvalidArgumentError(`ShardWriter: bad dtype ${String(dtype)}`);
    if (layout !== 'nhwc' && layout !== 'nchw') throw new InvalidArgumentError(`ShardWriter: bad layout ${String(layout)}`);
    this.sampleShape = layout === 'nhwc' ? [height, width, 3] : [3, height, width];
    this.sampleBytes = height * width * 3 * (dtype === 'float32' ? 4 : 1);
  }

  /** Number of samples written so far. */
  get count(): number {
    return this.total;
  }

  /**
   * Writes the first `count` samples of `batch` (default: all) as the next shard file.
   * @param indices the dataset index of each sample (stored alongside the labels)
   */
  async writeBatch(batch: ImageBatch, indices: ArrayLike<number>, count = batch.shape[0]): Promise<ShardEntry> {
    if (this.closed) throw new InvalidArgumentError('ShardWriter: already closed');
    if (batch.dtype !== this.options.dtype || batch.layout !== this.options.layout) {
      throw new InvalidArgumentError(`ShardWriter: batch is ${batch.dtype}/${batch.layout}, expected ${this.options.dtype}/${this.options.layout}`);
    }
    if (batch.shape.slice(1).join() !== this.sampleShape.join()) throw new InvalidArgumentError(`ShardWriter: batch samples are ${batch.shape.slice(1).join('x')}, expected ${this.sampleShape.join('x')}`);
    if (!Number.isInteger(count) || count < 0 || count > batch.shape[0] || indices.length < count) throw new InvalidArgumentError(`ShardWriter: bad count ${count}`);
    await this.finishOpen();
    if (this.shards.length === 0) await mkdir(this.dir, { recursive: true });
    const dataBytes = count * this.sampleBytes;
    const { tail, labelsOffset, indicesOffset, bytes } = tailBlock(dataBytes, count, batch.labels, indices);
    const file = `shard-${String(this.shards.length).padStart(5, '0')}.bin`;
    const data = Buffer.from(batch.data.buffer, batch.data.byteOffset, dataBytes);
    const fh = await open(join(this.dir, file), 'w');
    try {
      await fh.writev([data, tail]);
    } finally {
      await fh.close();
    }
    const entry: ShardEntry = { file, count, dataOffset: 0, labelsOffset, indicesOffset, bytes };
    this.shards.push(entry);
    this.total += count;
    return entry;
  }

  /**
   * Appends the first `count` samples of `block` (default: all) to the shard being filled, starting
   * a new shard file every `shardSize` samples. The data is written from `block.data` itself (no
   * copy); it may be reused once the returned promise settles.
   *
   * @param labels the class index of each sample (-1 = unlabelled)
   * @param indices the dataset index of each sample
   */
  async append(block: SampleBlock, labels: ArrayLike<number>, indices: ArrayLike<number>, count = block.shape[0] ?? 0): Promise<void> {
    if (this.closed) throw new InvalidArgumentError('ShardWriter: already closed');
    if (block.dtype !== this.options.dtype) throw new InvalidArgumentError(`ShardWriter: samples are ${block.dtype}, expected ${this.options.dtype}`);
    if (block.shape.length !== 4 || block.shape.slice(1).join() !== this.sampleShape.join()) {
      throw new InvalidArgumentError(`ShardWriter: block is [${block.shape.join(', ')}], expected [n, ${this.sampleShape.join(', ')}] (${this.options.layout})`);
    }
    const n = block.shape[0]!;
    if (!Number.isInteger(count) || count < 0 || count > n || labels.length < count || indices.length < count) {
      throw new InvalidArgumentError(`ShardWriter: bad count ${count} for a block of ${n} samples with ${labels.length} labels and ${indices.length} indices`);
    }
    const bytes = Buffer.from(block.data.buffer, block.data.byteOffset, block.data.byteLength);
    if (bytes.length < count * this.sampleBytes) throw new InvalidArgumentError(`ShardWriter: block holds ${bytes.length} bytes, ${count} samples need ${count * this.sampleBytes}`);
    let done = 0;
    while (done < count) {
      const cur = this.open ?? (await this.startShard());
      const take = Math.min(count - done, this.shardSize - cur.count);
      let pos = 0;
      const len = take * this.sampleBytes;
      const src = bytes.subarray(done * this.sampleBytes, done * this.sampleBytes + len);
      while (pos < len) {
        const { bytesWritten } = await cur.fh.write(src, pos, len - pos, cur.count * this.sampleBytes + pos);
        pos += bytesWritten;
      }
      for (let i = done; i < done + take; i++) {
        cur.labels.push(labels[i]!);
        cur.indices.push(indices[i]!);
      }
      cur.count += take;
      this.total += take;
      done += take;
      if (cur.count === this.shardSize) await this.finishOpen();
    }
  }

  private async startShard(): Promise<OpenShard> {
    await mkdir(this.dir, { recursive: true });
    const file = `shard-${String(this.shards.length).padStart(5, '0')}.bin`;
    const fh = await open(join(this.dir, file), 'w');
    return (this.open = { file, fh, count: 0, labels: [], indices: [] });
  }

  /** Writes the label and index blocks of the shard being appended to, and closes it. */
  private async finishOpen(): Promise<void> {
    const cur = this.open;
    if (!cur) return;
    this.open = undefined;
    try {
      const dataBytes = cur.count * this.sampleBytes;
      const { tail, labelsOffset, indicesOffset, bytes } = tailBlock(dataBytes, cur.count, cur.labels, cur.indices);
      let pos = 0;
      while (pos < tail.length) pos += (await cur.fh.write(tail, pos, tail.length - pos, dataBytes + pos)).bytesWritten;
      this.shards.push({ file: cur.file, count: cur.count, dataOffset: 0, labelsOffset, indicesOffset, bytes });
    } finally {
      await cur.fh.close();
    }
  }

  /** Writes `manifest.json` (atomically) and returns it. */
  async close(): Promise<ShardManifest> {
    if (this.closed) throw new InvalidArgumentError('ShardWriter: already closed');
    await this.finishOpen();
    this.closed = true;
    await mkdir(this.dir, { recursive: true });
    const manifest: ShardManifest = {
      format: SHARD_FORMAT,
      version: SHARD_VERSION,
      dtype: this.options.dtype,
      layout: this.options.layout,
      sampleShape: this.sampleShape,
      sampleBytes: this.sampleBytes,
      count: this.total,
      classes: [...(this.options.classes ?? [])],
      spec: this.options.spec ?? null,
      shards: this.shards,
    };
    const tmp = join(this.dir, `.manifest.json.${process.pid}.tmp`);
    await writeFile(tmp, JSON.stringify(manifest, null, 2) + '\n');
    await rename(tmp, join(this.dir, 'manifest.json'));
    return manifest;
  }
}

/** Reads and checks `manifest.json`. */
export async function readManifest(dir: string): Promise<ShardManifest> {
  let m: ShardManifest;
  try {
    m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ShardManifest;
  } catch (e) {
    throw new ShardFormatError(`cannot read the shard manifest in '${dir}': ${(e as Error).message}`);
  }
  if (m?.format !== SHARD_FORMAT) throw new ShardFormatError(`'${dir}/manifest.json' is not a ${SHARD_FORMAT} manifest`);
  if (m.version !== SHARD_VERSION) throw new ShardFormatError(`'${dir}/manifest.json' has version ${m.version}; this reader knows ${SHARD_VERSION}`);
  return m;
}

/** A shard read back: the batch (views over the file's bytes) and each sample's dataset index. */
export interface LoadedShard extends ImageBatch {
  indices: Int32Array;
}

/** Reads shard `i` of a manifest into memory and returns views over it (no per-sample copy). */
export async function readShard(dir: string, manifest: ShardManifest, i: number): Promise<LoadedShard> {
  checkHost();
  const e = manifest.shards[i];
  if (!e) throw new InvalidArgumentError(`readShard: no shard ${i} (have ${manifest.shards.length})`);
  const buf = await readFile(join(dir, e.file));
  if (buf.length !== e.bytes) throw new ShardFormatError(`shard '${e.file}' is ${buf.length} bytes, the manifest says ${e.bytes}`);
  // readFile's buffer may sit at any offset of a pooled ArrayBuffer: copy once if it is not 4-byte aligned.
  const b = buf.byteOffset % 4 === 0 ? buf : Buffer.from(buf);
  const n = e.count;
  const elems = manifest.sampleBytes / (manifest.dtype === 'float32' ? 4 : 1);
  const data = manifest.dtype === 'float32' ? new Float32Array(b.buffer, b.byteOffset + e.dataOffset, n * elems) : new Uint8Array(b.buffer, b.byteOffset + e.dataOffset, n * elems);
  return {
    data,
    shape: [n, ...manifest.sampleShape],
    dtype: manifest.dtype,
    layout: manifest.layout,
    labels: new Int32Array(b.buffer, b.byteOffset + e.labelsOffset, n),
    indices: new Int32Array(b.buffer, b.byteOffset + e.indicesOffset, n),
  };
}
