// The record file format and the file-system artifact store: atomic entries, concurrent writers,
// leftovers of killed writers.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CacheError } from '../src/cache/errors.js';
import { hashValue } from '../src/cache/hash.js';
import { readRecordFile, RecordFileWriter, type ArtifactRecord } from '../src/cache/records.js';
import { FsArtifactStore, type ArtifactInfo } from '../src/cache/store.js';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'ringpipe-cache-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const key = (s: string) => hashValue({ test: s });
const info = (stage = 's'): ArtifactInfo => ({ kind: 'stream', stage, branch: null, params: {}, seconds: 0 });
async function collect(it: AsyncIterable<ArtifactRecord>) {
  const out: ArtifactRecord[] = [];
  for await (const r of it) out.push(r);
  return out;
}

describe('record files', () => {
  it('round-trip values, typed arrays, Buffers and metadata, in order', async () => {
    const path = join(tmp(), 'r.bin');
    const w = await RecordFileWriter.create(path);
    const big = new Float32Array(300_000).map((_, i) => i * 0.5); // 1.2 MB
    const records: ArtifactRecord[] = [
      { data: 1 },
      { data: 'two', metadata: { loss: 0.5 } },
      { data: { nested: [1, 2, { x: null }] } },
      { data: big, metadata: { shape: [300_000] } },
      { data: Buffer.from('bytes') },
      { data: undefined },
      { data: new Map([[1, 2n]]) },
    ];
    for (const r of records) await w.append(r);
    const summary = await w.finish();
    expect(summary.records).toBe(records.length);
    expect(summary.bytes).toBe(statSync(path).size);
    // binary payloads are stored as bytes: 1.2 MB of float32 costs about 1.2 MB, not a JSON text of it
    expect(summary.bytes).toBeLessThan(big.byteLength + 4096);
    const back = await collect(readRecordFile(path));
    expect(back).toHaveLength(records.length);
    expect(back[0]).toEqual({ data: 1 });
    expect(back[1]).toEqual({ data: 'two', metadata: { loss: 0.5 } });
    expect(back[2]).toEqual(records[2]);
    expect(back[3]!.data).toBeInstanceOf(Float32Array);
    const got = back[3]!.data as Float32Array;
    expect(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(big.buffer))).toBe(true);
    expect(back[3]!.metadata).toEqual({ shape: [300_000] });
    expect(Buffer.from(back[4]!.data as Uint8Array).toString()).toBe('bytes');
    expect(back[5]).toEqual({ data: undefined });
    expect(back[6]!.data).toEqual(new Map([[1, 2n]]));
    const metaOnly = await collect(readRecordFile(path, { metadataOnly: true }));
    expect(metaOnly.map((r) => r.metadata)).toEqual(records.map((r) => r.metadata));
    expect(metaOnly.every((r) => r.data === undefined)).toBe(true);
  });

  it('an empty stream, a truncated file, a file that is not a record file', async () => {
    const d = tmp();
    const empty = await RecordFileWriter.create(join(d, 'e.bin'));
    expect((await empty.finish()).records).toBe(0);
    expect(await collect(readRecordFile(join(d, 'e.bin')))).toEqual([]);

    const w = await RecordFileWriter.create(join(d, 't.bin'));
    await w.append({ data: 'a'.repeat(1000) });
    await w.append({ data: 'b'.repeat(1000) });
    const { bytes } = await w.finish();
    truncateSync(join(d, 't.bin'), bytes - 10);
    await expect(collect(readRecordFile(join(d, 't.bin')))).rejects.toMatchObject({ code: 'ERR_CACHE_FORMAT', message: expect.stringMatching(/truncated in record 1/) });
    truncateSync(join(d, 't.bin'), 8 + 4);
    await expect(collect(readRecordFile(join(d, 't.bin')))).rejects.toMatchObject({ code: 'ERR_CACHE_FORMAT' });
    writeFileSync(join(d, 'x.bin'), 'hello, not records');
    await expect(collect(readRecordFile(join(d, 'x.bin')))).rejects.toBeInstanceOf(CacheError);
  });
});

describe('the file-system store', () => {
  it('an entry is invisible until committed; then complete with its manifest', async () => {
    const store = new FsArtifactStore(tmp());
    const k = key('a');
    const w = await store.create(k);
    await w.append({ data: 1, metadata: { step: 1 } });
    await w.append({ data: 2, metadata: { step: 2, loss: 0.1 } });
    expect(await store.get(k)).toBeUndefined();
    expect(await store.list()).toEqual([]);
    const { manifest, reused } = await w.commit({ ...info('stage_a'), branch: 'abc', params: { g: { lr: 1 } }, seconds: 0.5 });
    expect(reused).toBe(false);
    expect(manifest).toMatchObject({ key: k, stage: 'stage_a', branch: 'abc', records: 2, kind: 'stream', metadata: { step: 2, loss: 0.1 }, params: { g: { lr: 1 } } });
    expect(await store.get(k)).toEqual(manifest);
    expect((await collect(store.read(k))).map((r) => r.data)).toEqual([1, 2]);
    const listed = await store.list();
    expect(listed).toHaveLength(1);
    expect(listed[0]!.size).toBeGreaterThan(manifest.bytes);
    // nothing left in tmp/
    expect(readdirSync(join(store.location, 'tmp')).filter((n) => !n.endsWith('.file'))).toEqual([]);
  });

  it('abort leaves nothing behind', async () => {
    const store = new FsArtifactStore(tmp());
    const w = await store.create(key('b'));
    await w.append({ data: 'x' });
    await w.abort();
    expect(await store.get(key('b'))).toBeUndefined();
    expect(readdirSync(join(store.location, 'tmp'))).toEqual([]);
  });

  it('two writers of one key: the first commit wins, the second reuses it', async () => {
    const store = new FsArtifactStore(tmp());
    const k = key('c');
    const w1 = await store.create(k);
    const w2 = await store.create(k);
    await w1.append({ data: 'first' });
    await w2.append({ data: 'second' });
    await w2.append({ data: 'second, more' });
    const c1 = await w1.commit(info());
    const c2 = await w2.commit(info());
    expect(c1.reused).toBe(false);
    expect(c2.reused).toBe(true);
    expect(c2.manifest).toEqual(c1.manifest);
    expect((await collect(store.read(k))).map((r) => r.data)).toEqual(['first']);
    expect(readdirSync(join(store.location, 'tmp')).filter((n) => !n.endsWith('.file'))).toEqual([]);
  });

  it('a damaged entry (record file of the wrong size) is not an entry, and is replaced on the next commit', async () => {
    const store = new FsArtifactStore(tmp());
    const k = key('d');
    const w = await store.create(k);
    await w.append({ data: 'payload' });
    const { manifest } = await w.commit(info());
    const dir = join(store.location, 'objects', k.slice(0, 2), k);
    truncateSync(join(dir, 'records.bin'), manifest.bytes - 1);
    expect(await store.get(k)).toBeUndefined();
    const w2 = await store.create(k);
    await w2.append({ data: 'payload' });
    const c = await w2.commit(info());
    expect(c.reused).toBe(false);
    expect(await store.get(k)).toEqual(c.manifest);
  });

  it('remove, clear; keys are checked', async () => {
    const store = new FsArtifactStore(tmp());
    for (const s of ['e', 'f', 'g']) {
      const w = await store.create(key(s));
      await w.append({ data: s });
      await w.commit(info(s));
    }
    expect(await store.remove(key('e'))).toBe(true);
    expect(await store.remove(key('e'))).toBe(false);
    expect((await store.list()).map((e) => e.manifest.stage).sort()).toEqual(['f', 'g']);
    const r = await store.clear();
    expect(r.removed).toBe(2);
    expect(r.bytes).toBeGreaterThan(0);
    expect(await store.list()).toEqual([]);
    await expect(store.create('not-a-key')).rejects.toMatchObject({ code: 'ERR_CACHE_FORMAT' });
  });

  it('a writer killed mid-entry leaves only a temporary directory, which cleanTemp removes', async () => {
    const dir = tmp();
    const k = key('killed');
    // a child process starts an entry and is killed before committing
    const script = `
      import { FsArtifactStore } from ${JSON.stringify(new URL('../src/cache/store.ts', import.meta.url).href)};
      const store = new FsArtifactStore(${JSON.stringify(dir)});
      const w = await store.create(${JSON.stringify(k)});
      for (let i = 0; i < 100; i++) await w.append({ data: new Float64Array(10000).fill(i) });
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (c) => String(c).includes('ready') && resolve());
      child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    const store = new FsArtifactStore(dir);
    expect(await store.get(k)).toBeUndefined();
    expect(await store.list()).toEqual([]);
    const left = readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith(`${child.pid}.`));
    expect(left).toHaveLength(1);
    // a temporary directory of a live process is kept
    const mine = await store.create(key('live'));
    const r = await store.cleanTemp();
    expect(r.removed).toBe(1);
    expect(r.bytes).toBeGreaterThan(100_000);
    expect(readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith(`${child.pid}.`))).toEqual([]);
    expect(readdirSync(join(dir, 'tmp')).filter((n) => n.startsWith(`${process.pid}.`))).toHaveLength(1);
    await mine.abort();
  });

  it('refuses a cache of another format version', async () => {
    const dir = tmp();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'FORMAT'), 'ringpipe-cache 99\n');
    const store = new FsArtifactStore(dir);
    await expect(store.create(key('h'))).rejects.toMatchObject({ code: 'ERR_CACHE_FORMAT', message: expect.stringMatching(/format 99/) });
  });

  it('registers pipelines for gc', async () => {
    const store = new FsArtifactStore(tmp());
    await store.registerPipeline('/some/where/pipeline.json');
    await store.registerPipeline('/some/where/pipeline.json');
    await store.registerPipeline('/else/p.json');
    const roots = await store.pipelines();
    expect(roots.map((r) => r.path)).toEqual(['/else/p.json', '/some/where/pipeline.json']);
    await store.unregisterPipeline(roots[0]!.id);
    expect((await store.pipelines()).map((r) => r.path)).toEqual(['/some/where/pipeline.json']);
    expect(existsSync(join(store.location, 'FORMAT'))).toBe(true);
    expect(readFileSync(join(store.location, 'FORMAT'), 'utf8')).toBe('ringpipe-cache 1\n');
  });
});
