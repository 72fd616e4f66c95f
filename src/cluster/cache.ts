// The shared cache: artifacts in a JetStream object store, their index in a KV bucket, a local
// cache (src/cache's FsArtifactStore) in front. It implements the same ArtifactStore contract as
// the local store, so JSON pipelines use it unchanged (`pipeline.run({ store })`).
//
//   KV      rp_<p>_cache      <key> -> RemoteEntry   (the index: what exists, complete)
//   objects rp_<p>_artifacts  <key>.<nonce>          (the record stream, in the record-file format)
//
// Visible only when complete: an artifact is written to the object store under a fresh name, and
// only after the object is complete is its index entry created (first writer wins; a loser deletes
// its own object and uses the winner's). Readers look only at the index. A second machine's `get`
// finds what the first computed; its first `read` downloads the records into the local cache.
import { createHash, randomBytes } from 'node:crypto';
import { deserialize, serialize } from 'node:v8';
import type { KV } from '@nats-io/kv';
import type { ObjectStore } from '@nats-io/obj';
import { RECORD_FILE_MAGIC, type ArtifactRecord, type ReadRecordsOptions } from '../cache/records.js';
import {
  FsArtifactStore, type ArtifactInfo, type ArtifactManifest, type ArtifactStore, type ArtifactWriter, type CacheEntry,
} from '../cache/store.js';
import { useConnection, type ClusterConnection, type ClusterTarget } from './connect.js';
import { ClusterError } from './errors.js';

/** What the index says about an artifact. */
export interface RemoteEntry {
  format: 1;
  key: string;
  /** Name of the object holding its records. */
  object: string;
  /** Bytes of the object and their sha256 (hex). */
  bytes: number;
  sha256: string;
  /** The manifest of the machine that computed it. */
  manifest: ArtifactManifest;
}

/** Options of {@link SharedArtifactStore.open}. */
export interface SharedCacheOptions {
  /** The local cache in front: a directory (an {@link FsArtifactStore} there) or a store. */
  local: string | FsArtifactStore;
}

const KEY_RE = /^[0-9a-f]{64}$/;

/** The shared cache. Open with {@link SharedArtifactStore.open}; close with {@link SharedArtifactStore.close}. */
export class SharedArtifactStore implements ArtifactStore {
  readonly location: string;
  private readonly downloads = new Map<string, Promise<void>>();

  private constructor(
    readonly conn: ClusterConnection,
    private readonly owned: boolean,
    readonly local: FsArtifactStore,
    private readonly index: KV,
    private readonly objects: ObjectStore,
  ) {
    this.location = `${conn.server()}/${conn.names.bucket('cache')} (local: ${local.location})`;
  }

  /** Connects (or uses `target`'s connection) and opens the index bucket and object store. */
  static async open(target: ClusterTarget, options: SharedCacheOptions): Promise<SharedArtifactStore> {
    const { conn, owned } = await useConnection(target);
    try {
      const local = typeof options.local === 'string' ? new FsArtifactStore(options.local) : options.local;
      const [index, objects] = await Promise.all([conn.kv('cache', { history: 1 }), conn.objectStore('artifacts')]);
      return new SharedArtifactStore(conn, owned, local, index, objects);
    } catch (err) {
      if (owned) await conn.close();
      throw err;
    }
  }

  private where(key: string): string {
    return `${this.conn.names.bucket('cache')}/${key}`;
  }

  /** The index entry of `key`, or undefined. */
  async remote(key: string): Promise<RemoteEntry | undefined> {
    checkKey(key);
    const e = await this.conn.retry('cannot read the shared cache index', this.where(key), () => this.index.get(key));
    return e?.operation === 'PUT' ? e.json<RemoteEntry>() : undefined;
  }

  async get(key: string): Promise<ArtifactManifest | undefined> {
    return (await this.local.get(key)) ?? (await this.remote(key))?.manifest;
  }

  async create(key: string): Promise<ArtifactWriter> {
    checkKey(key);
    const inner = await this.local.create(key);
    return {
      key,
      get records() {
        return inner.records;
      },
      append: (record) => inner.append(record),
      abort: () => inner.abort(),
      commit: async (info: ArtifactInfo) => {
        const local = await inner.commit(info);
        let published;
        try {
          published = await this.publish(key, local.manifest);
        } catch (err) {
          // Not shared: drop the local copy too, so the next run computes and shares it.
          await this.local.remove(key).catch(() => undefined);
          throw err;
        }
        return { manifest: published.reused ? published.manifest : local.manifest, reused: local.reused || published.reused };
      },
    };
  }

  /**
   * Uploads a complete local entry, then indexes it. Returns the index's manifest and whether
   * another machine had published the key first (then its artifact stands).
   */
  async publish(key: string, manifest: ArtifactManifest): Promise<{ manifest: ArtifactManifest; reused: boolean }> {
    const existing = await this.remote(key);
    if (existing) return { manifest: existing.manifest, reused: true };
    const object = `${key}.${randomBytes(6).toString('hex')}`;
    const hash = createHash('sha256');
    let bytes = 0;
    const chunks = encodeRecords(this.local.read(key));
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { value, done } = await chunks.next();
        if (done) return controller.close();
        hash.update(value);
        bytes += value.byteLength;
        controller.enqueue(value);
      },
    });
    const where = `${this.conn.names.bucket('artifacts')}/${object}`;
    try {
      await this.objects.put({ name: object, description: `${manifest.stage}${manifest.branch ? ` [${manifest.branch}]` : ''}` }, stream);
    } catch (err) {
      await this.objects.delete(object).catch(() => undefined);
      throw this.conn.error(err, 'cannot upload an artifact to the shared cache', where);
    }
    const entry: RemoteEntry = { format: 1, key, object, bytes, sha256: hash.digest('hex'), manifest };
    const created = await this.conn.retry('cannot index an artifact in the shared cache', this.where(key), async () => {
      try {
        await this.index.create(key, JSON.stringify(entry));
        return true;
      } catch (err) {
        if (/wrong last sequence|key exists/i.test(String((err as Error).message))) return false;
        throw err;
      }
    });
    if (created) return { manifest, reused: false };
    await this.objects.delete(object).catch(() => undefined);
    const winner = await this.remote(key);
    return { manifest: winner?.manifest ?? manifest, reused: true };
  }

  /** Copies a remote artifact into the local cache (once per key at a time; nothing when it is there). */
  download(key: string): Promise<void> {
    let p = this.downloads.get(key);
    if (!p) {
      p = this.fetchInto(key).finally(() => this.downloads.delete(key));
      this.downloads.set(key, p);
    }
    return p;
  }

  private async fetchInto(key: string): Promise<void> {
    if (await this.local.get(key)) return;
    const entry = await this.remote(key);
    if (!entry) throw new ClusterError('ERR_REMOTE_CACHE', `artifact ${key} is not in the shared cache (server ${this.conn.server()}, ${this.where(key)})`, { server: this.conn.server(), subject: this.where(key) });
    const where = `${this.conn.names.bucket('artifacts')}/${entry.object}`;
    const res = await this.conn.retry('cannot download an artifact', where, () => this.objects.get(entry.object));
    if (!res) throw new ClusterError('ERR_REMOTE_CACHE', `artifact ${key} is indexed but its object ${entry.object} is missing (server ${this.conn.server()}, ${where})`, { server: this.conn.server(), subject: where });
    const writer = await this.local.create(key);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const parser = new RecordParser();
      const reader = res.data.getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        hash.update(value);
        bytes += value.byteLength;
        for (const rec of parser.push(value)) await writer.append(rec);
      }
      const error = await res.error;
      if (error) throw error;
      parser.end();
      const digest = hash.digest('hex');
      if (bytes !== entry.bytes || digest !== entry.sha256) {
        throw new ClusterError('ERR_REMOTE_CACHE', `artifact ${key} arrived damaged: ${bytes} bytes with sha256 ${digest.slice(0, 12)}…, the index says ${entry.bytes} bytes, ${entry.sha256.slice(0, 12)}… (server ${this.conn.server()}, ${where})`, { server: this.conn.server(), subject: where });
      }
      const m = entry.manifest;
      await writer.commit({ kind: m.kind, stage: m.stage, branch: m.branch, params: m.params, seconds: m.seconds, ...(m.pipeline ? { pipeline: m.pipeline } : {}) });
    } catch (err) {
      await writer.abort();
      throw err instanceof ClusterError ? err : this.conn.error(err, 'cannot download an artifact', where);
    }
  }

  async *read(key: string, options?: ReadRecordsOptions): AsyncGenerator<ArtifactRecord> {
    if (!(await this.local.get(key))) await this.download(key);
    yield* this.local.read(key, options);
  }

  /** Every artifact in the index, plus local-only entries. */
  async list(): Promise<CacheEntry[]> {
    const out = new Map<string, CacheEntry>();
    for (const e of await this.local.list()) out.set(e.manifest.key, e);
    for (const k of await this.conn.kvKeys('cache')) {
      if (out.has(k)) continue;
      const r = await this.remote(k);
      if (r) out.set(k, { manifest: r.manifest, size: r.bytes });
    }
    return [...out.values()].sort((a, b) => a.manifest.createdAt.localeCompare(b.manifest.createdAt) || a.manifest.key.localeCompare(b.manifest.key));
  }

  /** Removes an artifact from the index, the object store and the local cache. */
  async remove(key: string): Promise<boolean> {
    const r = await this.remote(key);
    if (r) {
      await this.conn.retry('cannot remove an artifact', this.where(key), () => this.index.purge(key));
      await this.objects.delete(r.object).catch(() => undefined);
    }
    const local = await this.local.remove(key);
    return !!r || local;
  }

  /** Closes the connection if this store opened it. */
  async close(): Promise<void> {
    if (this.owned) await this.conn.close();
  }
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new ClusterError('ERR_REMOTE_CACHE', `not a cache key: '${key}' (64 hex digits expected)`);
}

const EMPTY = Buffer.alloc(0);

/** Records in the record-file format (see src/cache/records.ts): magic, then metaLength, dataLength, meta, data. */
async function* encodeRecords(records: AsyncIterable<ArtifactRecord>): AsyncGenerator<Uint8Array> {
  yield RECORD_FILE_MAGIC;
  let pending: Buffer[] = [];
  let size = 0;
  for await (const r of records) {
    const data = serialize(r.data);
    const meta = r.metadata === undefined ? EMPTY : serialize(r.metadata);
    const head = Buffer.allocUnsafe(8);
    head.writeUInt32LE(meta.length, 0);
    head.writeUInt32LE(data.length, 4);
    pending.push(head, meta, data);
    size += 8 + meta.length + data.length;
    if (size >= 1 << 20) {
      yield Buffer.concat(pending);
      pending = [];
      size = 0;
    }
  }
  if (pending.length) yield Buffer.concat(pending);
}

/** Incremental parser of the record-file format; each byte is copied at most twice. */
class RecordParser {
  private chunks: Buffer[] = [];
  private length = 0;
  /** Bytes needed before anything can be parsed. */
  private need = RECORD_FILE_MAGIC.length;
  private sawMagic = false;
  private index = 0;

  push(chunk: Uint8Array): ArtifactRecord[] {
    this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.length += chunk.byteLength;
    const out: ArtifactRecord[] = [];
    if (this.length < this.need) return out;
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.length);
    let pos = 0;
    if (!this.sawMagic) {
      if (!buf.subarray(0, RECORD_FILE_MAGIC.length).equals(RECORD_FILE_MAGIC)) throw new ClusterError('ERR_REMOTE_CACHE', 'a shared-cache object is not a ringpipe record stream');
      this.sawMagic = true;
      pos = RECORD_FILE_MAGIC.length;
    }
    this.need = 8;
    for (;;) {
      if (buf.length - pos < 8) break;
      const metaLength = buf.readUInt32LE(pos);
      const dataLength = buf.readUInt32LE(pos + 4);
      if (buf.length - pos - 8 < metaLength + dataLength) {
        this.need = 8 + metaLength + dataLength;
        break;
      }
      const meta = metaLength ? buf.subarray(pos + 8, pos + 8 + metaLength) : undefined;
      const data = buf.subarray(pos + 8 + metaLength, pos + 8 + metaLength + dataLength);
      const rec: ArtifactRecord = { data: deserialize(data) };
      if (meta) rec.metadata = deserialize(meta) as Record<string, unknown>;
      out.push(rec);
      this.index++;
      pos += 8 + metaLength + dataLength;
    }
    const rest = buf.subarray(pos);
    this.chunks = rest.length ? [Buffer.from(rest)] : [];
    this.length = rest.length;
    return out;
  }

  end(): void {
    if (!this.sawMagic || this.length) throw new ClusterError('ERR_REMOTE_CACHE', `a shared-cache object ends inside record ${this.index}`);
  }
}

/** Opens the shared cache of `target`'s project with a local cache in `localDir` in front. */
export function sharedCache(target: ClusterTarget, localDir: string): Promise<SharedArtifactStore> {
  return SharedArtifactStore.open(target, { local: localDir });
}
