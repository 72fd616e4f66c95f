// A content-addressed artifact store on the local file system.
//
// Layout of a cache directory:
//
//   FORMAT                       "ringpipe-cache 1"
//   objects/<k0k1>/<key>/        one complete entry: manifest.json + records.bin
//   tmp/<pid>.<host>.<nonce>/    entries being written (and entries being deleted)
//   pipelines/<id>.json          pipeline files that used this cache (the roots `gc` keeps)
//
// An entry is written in its own directory under tmp/, every file fsynced, and only then renamed
// into objects/ in one step. rename(2) of a directory is atomic and refuses to replace a non-empty
// directory, so: a reader sees either no entry or a complete one; a run killed at any moment leaves
// at most a directory under tmp/ (which nothing reads, and `gc`/`clear` remove once its process is
// gone); and when two runs compute the same key at once, the first rename wins and the other run
// drops its copy and uses the winner's.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { CacheError } from './errors.js';
import { hashFile, sha256 } from './hash.js';
import { readRecordFile, RecordFileWriter, type ArtifactRecord, type ReadRecordsOptions } from './records.js';
import { packageVersion } from './package-root.js';

/** Version of the on-disk layout; bumped when an older ringpipe could not read a newer cache. */
export const CACHE_FORMAT = 1;
const FORMAT_TEXT = `ringpipe-cache ${CACHE_FORMAT}\n`;
const KEY_RE = /^[0-9a-f]{64}$/;
/** A temporary directory whose process cannot be checked is considered abandoned after this long. */
const STALE_TMP_MS = 24 * 3600 * 1000;

/** What a stage says about an artifact when it commits it. */
export interface ArtifactInfo {
  /** `value`: the stage produced one value; `stream`: it produced a sequence of records. */
  kind: 'value' | 'stream';
  /** Name of the item that produced it. */
  stage: string;
  /** Branch id (grid/random-search combination), `null` outside any branch. */
  branch: string | null;
  /** The branch's parameters: `{ gridItem: { field: value } }`. */
  params: Record<string, unknown>;
  /** Seconds spent computing it. */
  seconds: number;
  /** Absolute path of the pipeline file, when there is one. */
  pipeline?: string;
}

/** The description of a complete cache entry (`manifest.json`). */
export interface ArtifactManifest extends ArtifactInfo {
  /** Layout version ({@link CACHE_FORMAT}). */
  format: number;
  /** The entry's key (sha256 hex). */
  key: string;
  /** Number of records. */
  records: number;
  /** Size of the record file in bytes. */
  bytes: number;
  /** sha256 (hex) of the record file. */
  sha256: string;
  /** Metadata of the last record (for a value: of the value), as JSON. */
  metadata?: Record<string, unknown>;
  /** When it was committed (ISO 8601). */
  createdAt: string;
  /** ringpipe version that wrote it. */
  ringpipe: string;
  /** Node version that wrote it. */
  node: string;
}

/** A listed cache entry. */
export interface CacheEntry {
  /** The entry's manifest. */
  manifest: ArtifactManifest;
  /** Bytes on disk (record file + manifest). */
  size: number;
}

/** What {@link ArtifactStore.check} found for a key. */
export type EntryCheck =
  /** A complete entry whose record file has the size (and, when `hashed`, the sha256) its manifest says. */
  | { state: 'ok'; manifest: ArtifactManifest; hashed: boolean }
  /** No entry. */
  | { state: 'missing' }
  /** An entry that cannot be trusted: `reason` says why (a size or sha256 that differs, a missing file, ...). */
  | { state: 'damaged'; reason: string; manifest?: ArtifactManifest };

/** Options of {@link ArtifactStore.check}. */
export interface CheckOptions {
  /** Hash the record file and compare it with the manifest's sha256 (default false: sizes only). */
  hash?: boolean;
}

/** Record files up to this many bytes are hashed whenever a run finds them in the cache; larger ones on `verify`. */
export const VERIFY_HASH_BELOW = 64 * 1024 * 1024;

/** What {@link FsArtifactStore.verify} found. */
export interface VerifyReport {
  /** Entries checked. */
  checked: number;
  /** Bytes hashed. */
  bytes: number;
  /** Entries that are damaged, with the reason (removed when asked). */
  damaged: { key: string; reason: string; manifest?: ArtifactManifest; removed: boolean }[];
}

/** Writes one entry; nothing is visible to readers until {@link ArtifactWriter.commit}. */
export interface ArtifactWriter {
  /** The key being written. */
  readonly key: string;
  /** Records appended so far. */
  readonly records: number;
  /** Appends a record. */
  append(record: ArtifactRecord): Promise<void>;
  /**
   * Makes the entry visible, complete. `reused` is true when another writer committed the same key
   * first: its entry is kept and this one dropped.
   */
  commit(info: ArtifactInfo): Promise<{ manifest: ArtifactManifest; reused: boolean }>;
  /** Drops everything written. Safe to call twice and after a failed commit. */
  abort(): Promise<void>;
}

/**
 * Where artifacts live. {@link FsArtifactStore} is the local implementation; a shared store (e.g. an
 * object store on a cluster) implements the same contract: an entry is visible only when complete.
 */
export interface ArtifactStore {
  /** Human-readable location (a directory, a URL). */
  readonly location: string;
  /** The manifest of a complete entry, or undefined. */
  get(key: string): Promise<ArtifactManifest | undefined>;
  /** Starts writing an entry. */
  create(key: string): Promise<ArtifactWriter>;
  /** Reads a complete entry's records, in order. */
  read(key: string, options?: ReadRecordsOptions): AsyncIterable<ArtifactRecord>;
  /** Every complete entry. */
  list(): Promise<CacheEntry[]>;
  /** Removes an entry; false if there was none. */
  remove(key: string): Promise<boolean>;
  /**
   * Checks an entry: its manifest, the size of its record file, and with `hash` the file's sha256.
   * Stores that cannot check leave it out (callers then use {@link get}).
   */
  check?(key: string, options?: CheckOptions): Promise<EntryCheck>;
}

/** Result of {@link FsArtifactStore.cleanTemp} and {@link FsArtifactStore.clear}. */
export interface RemovalSummary {
  /** Entries (or temporary directories) removed. */
  removed: number;
  /** Bytes freed. */
  bytes: number;
}

/** The local file-system store. See the layout at the top of this file. */
export class FsArtifactStore implements ArtifactStore {
  /** The cache directory. */
  readonly location: string;
  private prepared?: Promise<void>;

  /** @param dir the cache directory; created on first write. */
  constructor(dir: string) {
    this.location = dir;
  }

  private objectDir(key: string): string {
    checkKey(key);
    return join(this.location, 'objects', key.slice(0, 2), key);
  }

  private async prepare(): Promise<void> {
    this.prepared ??= (async () => {
      await mkdir(join(this.location, 'tmp'), { recursive: true });
      await mkdir(join(this.location, 'objects'), { recursive: true });
      const formatFile = join(this.location, 'FORMAT');
      if (existsSync(formatFile)) {
        const text = await readFile(formatFile, 'utf8');
        const found = Number(/^ringpipe-cache (\d+)/.exec(text)?.[1]);
        if (found !== CACHE_FORMAT) {
          throw new CacheError('ERR_CACHE_FORMAT', `${this.location} is a ringpipe cache of format ${found || '?'}; this ringpipe reads format ${CACHE_FORMAT} (clear it with 'ringpipe cache clear')`);
        }
      } else {
        await atomicWrite(join(this.location, 'tmp'), formatFile, FORMAT_TEXT);
      }
    })();
    try {
      await this.prepared;
    } catch (err) {
      this.prepared = undefined;
      throw err;
    }
  }

  async get(key: string): Promise<ArtifactManifest | undefined> {
    return readEntry(this.objectDir(key), key);
  }

  async check(key: string, options: CheckOptions = {}): Promise<EntryCheck> {
    return inspectEntry(this.objectDir(key), key, options.hash === true);
  }

  /**
   * Hashes every entry's record file and compares it with its manifest (what `ringpipe cache
   * verify` does). With `remove`, damaged entries are removed, so the next run computes them again.
   */
  async verify(options: { remove?: boolean } = {}): Promise<VerifyReport> {
    const report: VerifyReport = { checked: 0, bytes: 0, damaged: [] };
    const objects = join(this.location, 'objects');
    for (const shard of (await readdirOrEmpty(objects)).sort()) {
      for (const key of (await readdirOrEmpty(join(objects, shard))).sort()) {
        if (!KEY_RE.test(key)) continue;
        const found = await inspectEntry(join(objects, shard, key), key, true);
        report.checked++;
        if (found.state === 'ok') report.bytes += found.manifest.bytes;
        if (found.state !== 'damaged') continue;
        const removed = options.remove ? await this.remove(key) : false;
        report.damaged.push({ key, reason: found.reason, ...(found.manifest ? { manifest: found.manifest } : {}), removed });
      }
    }
    return report;
  }

  async create(key: string): Promise<ArtifactWriter> {
    checkKey(key);
    await this.prepare();
    const dir = join(this.location, 'tmp', tempName());
    await mkdir(dir);
    let file: RecordFileWriter;
    try {
      file = await RecordFileWriter.create(join(dir, 'records.bin'));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    return new FsWriter(this, key, dir, file);
  }

  /** @internal moves a finished temporary entry into place. */
  async publish(key: string, tmpDir: string): Promise<{ manifest: ArtifactManifest; reused: boolean }> {
    const target = this.objectDir(key);
    for (let attempt = 0; ; attempt++) {
      await mkdir(join(target, '..'), { recursive: true });
      try {
        await rename(tmpDir, target);
        await syncDir(join(target, '..'));
        const manifest = await readEntry(target, key);
        if (!manifest) throw new CacheError('ERR_CACHE_IO', `entry ${key} vanished right after it was written (a concurrent 'cache clear'?)`);
        return { manifest, reused: false };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && attempt < 3) continue; // the shard directory was removed under us (clear): retry
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw wrapIo(err, `cannot publish cache entry ${key}`);
        const existing = await readEntry(target, key);
        if (existing) {
          await rm(tmpDir, { recursive: true, force: true });
          return { manifest: existing, reused: true };
        }
        if (attempt >= 3) throw new CacheError('ERR_CACHE_IO', `cannot publish cache entry ${key}: ${target} is in the way and not a valid entry`);
        await this.discardDir(target); // damaged from outside: move it away, then retry
      }
    }
  }

  read(key: string, options?: ReadRecordsOptions): AsyncIterable<ArtifactRecord> {
    return readRecordFile(join(this.objectDir(key), 'records.bin'), options);
  }

  async list(): Promise<CacheEntry[]> {
    const out: CacheEntry[] = [];
    const objects = join(this.location, 'objects');
    for (const shard of await readdirOrEmpty(objects)) {
      for (const key of await readdirOrEmpty(join(objects, shard))) {
        if (!KEY_RE.test(key)) continue;
        const dir = join(objects, shard, key);
        const manifest = await readEntry(dir, key);
        if (!manifest) continue;
        const size = manifest.bytes + (await sizeOf(join(dir, 'manifest.json')));
        out.push({ manifest, size });
      }
    }
    out.sort((a, b) => a.manifest.createdAt.localeCompare(b.manifest.createdAt) || a.manifest.key.localeCompare(b.manifest.key));
    return out;
  }

  async remove(key: string): Promise<boolean> {
    const dir = this.objectDir(key);
    if (!existsSync(dir)) return false;
    await this.discardDir(dir);
    return true;
  }

  /** Renames a directory into tmp/ (so it disappears from objects/ at once), then deletes it. */
  private async discardDir(dir: string): Promise<void> {
    await mkdir(join(this.location, 'tmp'), { recursive: true });
    const trash = join(this.location, 'tmp', `${tempName()}.deleted`);
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw wrapIo(err, `cannot remove ${dir}`);
    }
    await rm(trash, { recursive: true, force: true });
  }

  /**
   * Removes temporary directories left by runs that were killed: those of processes of this host
   * that no longer exist, and any older than a day.
   */
  async cleanTemp(): Promise<RemovalSummary> {
    const tmp = join(this.location, 'tmp');
    const host = safeHost();
    let removed = 0;
    let bytes = 0;
    for (const name of await readdirOrEmpty(tmp)) {
      const m = /^(\d+)\.([^.]*)\./.exec(name);
      const path = join(tmp, name);
      let stale = false;
      if (m && m[2] === host) stale = !processAlive(Number(m[1]));
      if (!stale) {
        const st = await stat(path).catch(() => undefined);
        stale = !!st && Date.now() - st.mtimeMs > STALE_TMP_MS;
      }
      if (!stale) continue;
      bytes += await du(path);
      await rm(path, { recursive: true, force: true });
      removed++;
    }
    return { removed, bytes };
  }

  /** Removes every entry (and abandoned temporary directories). */
  async clear(): Promise<RemovalSummary> {
    let removed = 0;
    let bytes = 0;
    for (const { manifest, size } of await this.list()) {
      if (await this.remove(manifest.key)) {
        removed++;
        bytes += size;
      }
    }
    const t = await this.cleanTemp();
    return { removed, bytes: bytes + t.bytes };
  }

  /** Records that the pipeline file `path` uses this cache (the roots `gc` keeps). */
  async registerPipeline(path: string): Promise<void> {
    await this.prepare();
    const dir = join(this.location, 'pipelines');
    await mkdir(dir, { recursive: true });
    const id = sha256(path).slice(0, 16);
    await atomicWrite(join(this.location, 'tmp'), join(dir, `${id}.json`), JSON.stringify({ path, lastRun: new Date().toISOString() }) + '\n');
  }

  /** Pipeline files registered by {@link registerPipeline}, with the id of their registration. */
  async pipelines(): Promise<{ id: string; path: string }[]> {
    const dir = join(this.location, 'pipelines');
    const out: { id: string; path: string }[] = [];
    for (const name of await readdirOrEmpty(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const { path } = JSON.parse(await readFile(join(dir, name), 'utf8')) as { path: string };
        if (typeof path === 'string') out.push({ id: name.slice(0, -5), path });
      } catch {
        // a damaged registration is ignored
      }
    }
    return out.sort((a, b) => a.path.localeCompare(b.path));
  }

  /** Forgets a registered pipeline (e.g. its file was deleted). */
  async unregisterPipeline(id: string): Promise<void> {
    await rm(join(this.location, 'pipelines', `${id}.json`), { force: true });
  }
}

class FsWriter implements ArtifactWriter {
  private done = false;
  /** Metadata of the last appended record, for the manifest. */
  private lastMeta: Record<string, unknown> | undefined;

  constructor(
    private readonly store: FsArtifactStore,
    readonly key: string,
    private readonly dir: string,
    private readonly file: RecordFileWriter,
  ) {}

  get records(): number {
    return this.file.records;
  }

  append(record: ArtifactRecord): Promise<void> {
    this.lastMeta = record.metadata;
    return this.file.append(record);
  }

  async commit(info: ArtifactInfo): Promise<{ manifest: ArtifactManifest; reused: boolean }> {
    if (this.done) throw new CacheError('ERR_CACHE_IO', `writer for ${this.key} is already closed`);
    this.done = true;
    try {
      const summary = await this.file.finish();
      const manifest: ArtifactManifest = {
        format: CACHE_FORMAT,
        key: this.key,
        ...info,
        records: summary.records,
        bytes: summary.bytes,
        sha256: summary.sha256,
        ...(this.lastMeta !== undefined ? { metadata: jsonSafe(this.lastMeta) as Record<string, unknown> } : {}),
        createdAt: new Date().toISOString(),
        ringpipe: packageVersion(),
        node: process.version,
      };
      const fh = await open(join(this.dir, 'manifest.json'), 'wx');
      try {
        await fh.writeFile(JSON.stringify(manifest, null, 2) + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await syncDir(this.dir);
      return await this.store.publish(this.key, this.dir);
    } catch (err) {
      await rm(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  async abort(): Promise<void> {
    this.done = true;
    await this.file.abandon();
    await rm(this.dir, { recursive: true, force: true });
  }
}
/** Converts metadata to plain JSON for the manifest (typed arrays become short descriptions). */
export function jsonSafe(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (depth > 8) return '[deep]';
  if (ArrayBuffer.isView(value)) return `[${value.constructor.name} ${value.byteLength} bytes]`;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Map) return jsonSafe(Object.fromEntries(value), depth + 1);
  if (value instanceof Set) return jsonSafe([...value], depth + 1);
  if (Array.isArray(value)) return value.map((v) => jsonSafe(v, depth + 1) ?? null);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as object)) {
    const j = jsonSafe(v, depth + 1);
    if (j !== undefined) out[k] = j;
  }
  return out;
}

async function readEntry(dir: string, key: string): Promise<ArtifactManifest | undefined> {
  const found = await inspectEntry(dir, key, false);
  return found.state === 'ok' ? found.manifest : undefined;
}

/** Checks an entry's directory: manifest, record file size, and with `hash` the record file's sha256. */
async function inspectEntry(dir: string, key: string, hash: boolean): Promise<EntryCheck> {
  if (!existsSync(dir)) return { state: 'missing' }; // the common case, answered without a failed open
  let manifest: ArtifactManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ArtifactManifest;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return existsSync(dir) ? { state: 'damaged', reason: 'its manifest.json is missing' } : { state: 'missing' };
    return { state: 'damaged', reason: code ? `its manifest.json cannot be read (${code})` : 'its manifest.json is not valid JSON' };
  }
  if (!manifest || typeof manifest !== 'object') return { state: 'damaged', reason: 'its manifest.json is not an object' };
  if (manifest.format !== CACHE_FORMAT) return { state: 'damaged', reason: `its manifest is of cache format ${String(manifest.format)}; this ringpipe reads format ${CACHE_FORMAT}`, manifest };
  if (manifest.key !== key) return { state: 'damaged', reason: `its manifest is for another key (${String(manifest.key).slice(0, 12)}…)`, manifest };
  const records = join(dir, 'records.bin');
  const size = await sizeOf(records);
  if (size < 0) return { state: 'damaged', reason: 'its records.bin is missing', manifest };
  if (size !== manifest.bytes) return { state: 'damaged', reason: `its records.bin has ${size} bytes; its manifest says ${manifest.bytes}`, manifest };
  if (!hash) return { state: 'ok', manifest, hashed: false };
  let actual: string;
  try {
    actual = await hashFile(records);
  } catch (err) {
    return { state: 'damaged', reason: `its records.bin cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, manifest };
  }
  if (actual !== manifest.sha256) return { state: 'damaged', reason: `the sha256 of its records.bin is ${actual.slice(0, 12)}…; its manifest says ${String(manifest.sha256).slice(0, 12)}…`, manifest };
  return { state: 'ok', manifest, hashed: true };
}

function checkKey(key: string): void {
  if (!KEY_RE.test(key)) throw new CacheError('ERR_CACHE_FORMAT', `not a cache key: '${key}' (64 hex digits expected)`);
}

function safeHost(): string {
  return hostname().replace(/[^A-Za-z0-9-]/g, '_') || 'host';
}

/** Prefix of this process's temporary names: `<pid>.<host>.` (what `cleanTemp` checks). */
export function tempPrefix(): string {
  return `${process.pid}.${safeHost()}.`;
}

function tempName(): string {
  return `${tempPrefix()}${randomBytes(6).toString('hex')}`;
}

/** Whether a process of this host with `pid` exists (one of another user counts). */
export function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw wrapIo(err, `cannot list ${dir}`);
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return -1;
  }
}

async function du(path: string): Promise<number> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await readdirOrEmpty(path)) total += await du(join(path, name));
  return total;
}

async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // some file systems refuse to fsync a directory; the rename is still atomic
  } finally {
    await fh?.close();
  }
}

/** Writes a small file atomically: a temporary file in `tmpDir`, fsync, rename over `path`. */
export async function atomicWrite(tmpDir: string, path: string, text: string): Promise<void> {
  await mkdir(tmpDir, { recursive: true });
  const tmp = join(tmpDir, `${tempName()}.file`);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw wrapIo(err, `cannot write ${path}`);
  }
}

function wrapIo(err: unknown, what: string): Error {
  if (err instanceof CacheError) return err;
  return new CacheError('ERR_CACHE_IO', `${what}: ${(err as Error).message}`, { cause: err });
}
