// The shared cache (object store + KV index, local cache in front) on a real nats-server: visible
// only when complete, a second machine gets hits for what the first computed, damage is detected,
// projects are isolated; JSON pipelines run against it; `ringpipe:pipeline` work items use it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, SharedArtifactStore, runJob } from '../src/cluster/index.js';
import { JsonPipeline } from '../src/config/pipeline.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, spawnAgent } from './helpers/cluster-agents.js';

let server: TestServer;
const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'rp-shared-'));
  dirs.push(d);
  return d;
};
const key = (c: string) => c.repeat(64);

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

const info = { kind: 'stream' as const, stage: 'prep', branch: null, params: { p: { n: 1 } }, seconds: 0.5 };

async function readAll(store: SharedArtifactStore, k: string) {
  const out = [];
  for await (const r of store.read(k)) out.push(r);
  return out;
}

describe('shared cache', () => {
  it('an artifact is visible to a second machine only once complete, and read from its local cache afterwards', async () => {
    const o = { servers: server.url, project: 'cache-a' };
    const machine1 = await SharedArtifactStore.open(o, { local: tmp() });
    const machine2 = await SharedArtifactStore.open(o, { local: tmp() });
    const w = await machine1.create(key('a'));
    const big = new Float32Array(300_000).map((_, i) => i); // 1.2 MB: several object-store chunks
    await w.append({ data: big, metadata: { loss: 0.5 } });
    await w.append({ data: { label: 'cat', n: 2 } });
    await w.append({ data: Buffer.from('bytes'), metadata: { loss: 0.25 } });
    expect(await machine2.get(key('a'))).toBeUndefined();
    const { manifest, reused } = await w.commit(info);
    expect(reused).toBe(false);
    expect(manifest.records).toBe(3);
    const seen = await machine2.get(key('a'));
    expect(seen?.records).toBe(3);
    expect(seen?.metadata).toEqual({ loss: 0.25 });
    expect(await machine2.local.get(key('a'))).toBeUndefined();
    const recs = await readAll(machine2, key('a'));
    expect(recs.length).toBe(3);
    expect(recs[0]!.data).toEqual(big);
    expect(recs[0]!.metadata).toEqual({ loss: 0.5 });
    expect(recs[1]!.data).toEqual({ label: 'cat', n: 2 });
    expect(Buffer.from(recs[2]!.data as Uint8Array).toString()).toBe('bytes');
    // Now in machine2's local cache.
    expect((await machine2.local.get(key('a')))?.records).toBe(3);
    // An aborted writer leaves nothing anywhere.
    const w2 = await machine1.create(key('b'));
    await w2.append({ data: 1 });
    await w2.abort();
    expect(await machine2.get(key('b'))).toBeUndefined();
    expect(await machine1.get(key('b'))).toBeUndefined();
    await machine1.close();
    await machine2.close();
  });

  it('two machines computing the same artifact: one wins, the other reuses it; one object remains', async () => {
    const o = { servers: server.url, project: 'cache-race' };
    const m1 = await SharedArtifactStore.open(o, { local: tmp() });
    const m2 = await SharedArtifactStore.open(o, { local: tmp() });
    const [w1, w2] = await Promise.all([m1.create(key('c')), m2.create(key('c'))]);
    await w1.append({ data: 'same' });
    await w2.append({ data: 'same' });
    const [r1, r2] = await Promise.all([w1.commit(info), w2.commit(info)]);
    expect([r1.reused, r2.reused].sort()).toEqual([false, true]);
    const conn = await ClusterConnection.open(o);
    const objects = await (await conn.objectStore('artifacts')).list();
    expect(objects.filter((x) => !x.deleted).length).toBe(1);
    await conn.close();
    await m1.close();
    await m2.close();
  });

  it('a damaged artifact is refused with an error naming the server and object; projects do not share a cache', async () => {
    const o = { servers: server.url, project: 'cache-bad' };
    const m1 = await SharedArtifactStore.open(o, { local: tmp() });
    const w = await m1.create(key('d'));
    await w.append({ data: 'precious' });
    await w.commit(info);
    // Replace the object's bytes behind the index's back.
    const entry = (await m1.remote(key('d')))!;
    const conn = await ClusterConnection.open(o);
    const os = await conn.objectStore('artifacts');
    const good = (await os.getBlob(entry.object))!;
    const bad = Uint8Array.from(good);
    bad[bad.length - 2] ^= 0xff;
    await os.putBlob({ name: entry.object }, bad);
    const m2 = await SharedArtifactStore.open(o, { local: tmp() });
    const err = await readAll(m2, key('d')).then(() => undefined, (e) => e);
    expect(err?.code).toBe('ERR_REMOTE_CACHE');
    expect(err.message).toContain(server.url);
    expect(err.message).toContain(entry.object);
    expect(await m2.local.get(key('d'))).toBeUndefined();
    // Another project on the same server does not see it.
    const other = await SharedArtifactStore.open({ servers: server.url, project: 'cache-other' }, { local: tmp() });
    expect(await other.get(key('d'))).toBeUndefined();
    expect(await other.list()).toEqual([]);
    await Promise.all([m1.close(), m2.close(), other.close(), conn.close()]);
  });

  it('a JSON pipeline run on a second machine gets cache hits for everything the first computed', async () => {
    const project = tmp();
    writeFileSync(join(project, 'steps.mjs'), [
      'export function* count(p) { for (let i = 0; i < p.n; i++) yield i; }',
      'export const square = (x) => x * x;',
      'export const sum = (all) => all.reduce((a, b) => a + b, 0);',
    ].join('\n'));
    const spec = {
      params: { type: 'parameters', n: 5 },
      grid: { type: 'grid_search_parameters', k: [1, 2] },
      numbers: { run: './steps.mjs#count', inputs: ['params', 'grid'] },
      squares: { run: './steps.mjs#square', inputs: ['numbers'] },
      total: { run: './steps.mjs#sum', inputs: [{ from: 'squares', as: 'all' }] },
    };
    const o = { servers: server.url, project: 'cache-json' };
    const first = await SharedArtifactStore.open(o, { local: tmp() });
    const p1 = await JsonPipeline.fromSpec(spec, { baseDir: project });
    const r1 = await p1.run({ store: first });
    expect(r1.ok).toBe(true);
    expect(r1.stages.every((s) => s.status === 'computed')).toBe(true);
    const second = await SharedArtifactStore.open(o, { local: tmp() });
    const p2 = await JsonPipeline.fromSpec(spec, { baseDir: project });
    const r2 = await p2.run({ store: second });
    expect(r2.stages.map((s) => s.status)).toEqual(r1.stages.map(() => 'cached'));
    const totals = [];
    for (const branch of [...new Set(r2.stages.filter((s) => s.name === 'total').map((s) => s.branch))]) {
      for await (const r of p2.records('total', branch, { store: second })) totals.push(r.data);
    }
    expect(totals).toEqual([30, 30]);
    await first.close();
    await second.close();
  });

  it('ringpipe:pipeline work items run JSON pipelines on agents with the shared cache', async () => {
    const root = tmp();
    writeFileSync(join(root, 'steps.mjs'), 'export function* count(p) { for (let i = 0; i < p.n; i++) yield i * p.k; }\nexport const sum = (all) => all.reduce((a, b) => a + b, 0);\n');
    writeFileSync(join(root, 'pipe.json'), JSON.stringify({
      params: { type: 'parameters', n: 4, k: 1 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      total: { run: './steps.mjs#sum', inputs: [{ from: 'numbers', as: 'all' }] },
    }));
    const o = { servers: server.url, project: 'cache-work' };
    const agent = spawnAgent('agent-p', ['--nats', server.url, '--project', 'cache-work', '--slots', '2', '--idle-exit', '3', '--root', root]);
    const results = await runJob(o, [
      { run: 'ringpipe:pipeline', payload: { file: 'pipe.json', set: ['params.k=1'] } },
      { run: 'ringpipe:pipeline', payload: { file: 'pipe.json', set: ['params.k=10'] } },
    ], { name: 'pipes', timeout: 60_000 });
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(results.map((r) => (r.value as { ok: boolean }).ok)).toEqual([true, true]);
    // The submitter's machine now gets both pipelines' results from the shared cache.
    const here = await SharedArtifactStore.open(o, { local: tmp() });
    for (const [k, want] of [[1, 6], [10, 60]] as const) {
      const p = await JsonPipeline.load(join(root, 'pipe.json'), { set: [`params.k=${k}`] });
      const r = await p.run({ store: here });
      expect(r.stages.map((s) => s.status)).toEqual(['cached', 'cached']);
      const out = [];
      for await (const rec of p.records('total', null, { store: here })) out.push(rec.data);
      expect(out).toEqual([want]);
    }
    await here.close();
    await agent.exited;
  }, 90_000);
});
