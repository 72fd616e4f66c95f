// The record file: how a stream of artifact records is stored on disk.
//
// Format (all integers little-endian):
//
//   file   := magic record*
//   magic  := the 8 bytes "RPREC1\n\0"
//   record := metaLength:u32 dataLength:u32 meta[metaLength] data[dataLength]
//
// `data` and `meta` are each one value in V8's serialization format (`v8.serialize`): typed arrays,
// Buffers, Maps, Dates and BigInts keep their type, and binary payloads are stored as raw bytes (no
// JSON or base64 bloat). `metaLength` 0 means "no metadata". Readers that only need metadata skip
// the data bytes without reading them. V8 reads data serialized by older V8 versions, so a cache
// written by an older Node stays readable by a newer one.
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { serialize, deserialize } from 'node:v8';
import { CacheError } from './errors.js';

/** One artifact record: the payload and the metadata that travels with it. */
export interface ArtifactRecord {
  /** The payload: any value V8 can serialize (typed arrays and Buffers are stored as raw bytes). */
  data: unknown;
  /** Small descriptive values kept with the payload (e.g. `{ loss: 0.31, epoch: 4 }`). */
  metadata?: Record<string, unknown>;
}

/** The 8 bytes every record file starts with. */
export const RECORD_FILE_MAGIC = Buffer.from('RPREC1\n\0', 'latin1');
const HEADER = 8;
const MAX_PART = 0xffff_ffff;
const FLUSH_AT = 1 << 20;

/** Totals of a finished record file. */
export interface RecordFileSummary {
  /** Number of records written. */
  records: number;
  /** Size of the file in bytes, magic included. */
  bytes: number;
  /** sha256 (hex) of the whole file. */
  sha256: string;
}

/** Appends records to a new file; {@link RecordFileWriter.finish} flushes, fsyncs and closes it. */
export class RecordFileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private size = 0;
  private closed = false;

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
  ) {}

  /** Creates the file (it must not exist) and writes the magic. */
  static async create(path: string): Promise<RecordFileWriter> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'wx');
    } catch (err) {
      throw new CacheError('ERR_CACHE_IO', `cannot create record file ${path}: ${(err as Error).message}`, { cause: err });
    }
    const w = new RecordFileWriter(fh, path);
    w.push(RECORD_FILE_MAGIC);
    return w;
  }

  /** Number of records appended so far. */
  get records(): number {
    return this.count;
  }

  /** Appends one record. Resolves once it is buffered (and, every megabyte, written). */
  async append(record: ArtifactRecord): Promise<void> {
    if (this.closed) throw new CacheError('ERR_CACHE_IO', `record file ${this.path} is closed`);
    const data = serialize(record.data);
    const meta = record.metadata === undefined ? EMPTY : serialize(record.metadata);
    if (data.length > MAX_PART || meta.length > MAX_PART) {
      throw new CacheError('ERR_RECORD_TOO_LARGE', `record ${this.count} is larger than 4 GiB once serialized`);
    }
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32LE(meta.length, 0);
    head.writeUInt32LE(data.length, 4);
    this.push(head);
    if (meta.length) this.push(meta);
    this.push(data);
    this.count++;
    if (this.pendingBytes >= FLUSH_AT) await this.flush();
  }

  private push(buf: Buffer): void {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    this.hash.update(buf);
    this.size += buf.length;
  }

  private async flush(): Promise<void> {
    if (!this.pending.length) return;
    const bufs = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    await this.fh.writev(bufs);
  }

  /** Writes what is buffered, fsyncs and closes. The file is then complete. */
  async finish(): Promise<RecordFileSummary> {
    await this.flush();
    await this.fh.sync();
    await this.fh.close();
    this.closed = true;
    return { records: this.count, bytes: this.size, sha256: this.hash.digest('hex') };
  }

  /** Closes without finishing (the caller removes the file). */
  async abandon(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    await this.fh.close().catch(() => undefined);
  }
}

const EMPTY = Buffer.alloc(0);

/** Options of {@link readRecordFile}. */
export interface ReadRecordsOptions {
  /** Skip the payloads: every record's `data` is `undefined`. Much faster for large payloads. */
  metadataOnly?: boolean;
}

/**
 * Reads a record file lazily, one record at a time, in the order they were written. Throws
 * {@link CacheError} `ERR_CACHE_FORMAT` on a bad magic or a truncated record.
 */
export async function* readRecordFile(path: string, options: ReadRecordsOptions = {}): AsyncGenerator<ArtifactRecord> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw new CacheError('ERR_CACHE_IO', `cannot open record file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const reader = new ChunkReader(fh, path);
    const magic = await reader.read(HEADER);
    if (!magic || !magic.equals(RECORD_FILE_MAGIC)) throw new CacheError('ERR_CACHE_FORMAT', `${path} is not a ringpipe record file`);
    for (let index = 0; ; index++) {
      const head = await reader.read(8, true);
      if (head === undefined) return;
      const metaLength = head.readUInt32LE(0);
      const dataLength = head.readUInt32LE(4);
      const meta = metaLength ? await reader.read(metaLength) : EMPTY;
      if (meta === undefined) throw truncated(path, index);
      let data: unknown;
      if (options.metadataOnly) {
        if (!(await reader.skip(dataLength))) throw truncated(path, index);
      } else {
        const bytes = await reader.read(dataLength);
        if (bytes === undefined) throw truncated(path, index);
        data = deserialize(bytes);
      }
      const record: ArtifactRecord = { data };
      if (metaLength) record.metadata = deserialize(meta) as Record<string, unknown>;
      yield record;
    }
  } finally {
    await fh.close();
  }
}

function truncated(path: string, index: number): CacheError {
  return new CacheError('ERR_CACHE_FORMAT', `record file ${path} is truncated in record ${index}`);
}

/** Buffered sequential reads from a file handle. */
class ChunkReader {
  private buf = Buffer.alloc(0);
  private pos = 0; // read position in buf
  private filePos = 0;
  private eof = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly path: string,
  ) {}

  private async fill(need: number): Promise<boolean> {
    while (this.buf.length - this.pos < need && !this.eof) {
      const have = this.buf.length - this.pos;
      const size = Math.max(need, FLUSH_AT);
      const next = Buffer.allocUnsafe(size);
      this.buf.copy(next, 0, this.pos);
      const { bytesRead } = await this.fh.read(next, have, size - have, this.filePos);
      this.filePos += bytesRead;
      if (bytesRead === 0) this.eof = true;
      this.buf = next.subarray(0, have + bytesRead);
      this.pos = 0;
    }
    return this.buf.length - this.pos >= need;
  }

  /** `n` bytes, or undefined at a clean end of file (only when `allowEnd` and nothing is left). */
  async read(n: number, allowEnd = false): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (allowEnd && this.buf.length === this.pos) return undefined;
      if (allowEnd) throw new CacheError('ERR_CACHE_FORMAT', `record file ${this.path} ends inside a record header`);
      return undefined;
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Skips `n` bytes without reading them; false if the file is shorter. */
  async skip(n: number): Promise<boolean> {
    const inBuf = this.buf.length - this.pos;
    if (n <= inBuf) {
      this.pos += n;
      return true;
    }
    const rest = n - inBuf;
    const { size } = await this.fh.stat();
    if (this.filePos + rest > size) return false;
    this.filePos += rest;
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    return true;
  }
}
