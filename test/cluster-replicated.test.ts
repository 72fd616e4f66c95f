// A JetStream cluster of 3 real nats-servers with replicated streams (replicas: 3): one server is
// SIGKILLed mid-run (the leader of the work queue); the work set, a link transfer and the shared
// cache complete with nothing lost and nothing counted twice.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, LinkReader, LinkWriter, SharedArtifactStore, WorkQueue, submitJob, type WorkSpec } from '../src/cluster/index.js';
import { startCluster, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from './helpers/cluster-agents.js';

const work = join(repoRoot, 'test', 'helpers', 'cluster-work.ts');
let servers: TestServer[];
const dirs: string[] = [];

/** A fresh directory, removed after the tests (also when one fails). */
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rp-ha-'));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  servers = await startCluster(3);
  // JetStream answers before every server has joined the meta group: until then a stream with 3
  // replicas cannot be placed ("no suitable peers for placement"). Wait until one can.
  const conn = await ClusterConnection.open({ servers: servers.map((s) => s.url).join(','), project: 'ha-probe', replicas: 3, timeout: 5_000 });
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await conn.jsm.streams.add({ name: 'RP_PLACEMENT_PROBE', subjects: ['rp.placement.probe'], num_replicas: 3 });
        await conn.jsm.streams.delete('RP_PLACEMENT_PROBE');
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await conn.close();
  }
}, 120_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('3-server JetStream cluster, replicas 3', () => {
  it('link messages the consumer delivered but the reader never got (lost with a server) come again at once: every record once, in order', async () => {
    const o = { servers: servers.map((s) => s.url).join(','), project: 'ha-lost', replicas: 3, timeout: 5_000 };
    const record = (i: number) => ({ data: new Float32Array(16_384).fill(i), shape: [16_384], dtype: 'float32' }); // 64 KB: a message each
    const reader = await LinkReader.open(o, { link: 'lost', timeout: 60_000, prefetchBytes: 1 });
    const writer = await LinkWriter.open(o, { link: 'lost', timeout: 60_000 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const got: number[] = [];
    const reading = (async () => {
      for await (const r of reader) {
        got.push((r as { data: Float32Array }).data[0]!);
        if (got.length === 1) await gate; // a slow reader: its pull requests are used up, then expire
      }
    })();
    for (let i = 0; i < 10; i++) await writer.write(record(i));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(got.length).toBe(1);
    // The next messages go to the pull request of another client, which vanishes without
    // acknowledging them: for the consumer they are delivered, as when a server dies with them in
    // its buffers. JetStream would deliver them again only after the ack wait (120 s).
    for (let i = 10; i < 20; i++) await writer.write(record(i));
    const thief = await ClusterConnection.open(o);
    const consumer = await thief.js.consumers.get(thief.names.stream('LINK_lost'), 'reader');
    const stolen: number[] = [];
    for await (const m of await consumer.fetch({ max_messages: 3, expires: 5_000 })) stolen.push(m.seq);
    await thief.close();
    expect(stolen.length).toBe(3);
    for (let i = 20; i < 30; i++) await writer.write(record(i));
    const sent = await writer.end();
    const t0 = Date.now();
    release();
    await reading;
    expect(sent.records).toBe(30);
    expect(got).toEqual([...Array(30).keys()]);
    expect(reader.recoveries).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 120_000);

  it('one server killed mid-run: every work item, link record and artifact is accounted for, exactly once', async () => {
    const urls = servers.map((s) => s.url).join(',');
    const o = { servers: urls, project: 'ha', replicas: 3, timeout: 5_000 };
    const conn = await ClusterConnection.open(o);

    // An artifact in the shared cache before the failure.
    const cacheKey = 'e'.repeat(64);
    const m1 = await SharedArtifactStore.open(conn, { local: tempDir() });
    const w = await m1.create(cacheKey);
    await w.append({ data: new Float64Array(50_000).fill(3.5), metadata: { loss: 0.1 } });
    await w.commit({ kind: 'value', stage: 'prep', branch: null, params: {}, seconds: 1 });

    // Two agents, a work set of 8 trials.
    const args = (name: string) => spawnAgent(name, ['--nats', urls, '--project', 'ha', '--replicas', '3', '--slots', '2', '--ack-wait', '3', '--heartbeat', '1', '--idle-exit', '60']);
    const agents = [args('ha-1'), args('ha-2')];
    const specs: WorkSpec[] = [...Array(8).keys()].map((x) => ({ run: `${work}#trial`, payload: { x, epochs: 6, ms: 250 }, label: `t${x}` }));
    const job = await submitJob(conn, specs, { name: 'ha', ackWait: 3_000 });
    const done = job.wait({ timeout: 150_000 });

    // A link transfer at the same time.
    const count = 600;
    const reader = await LinkReader.open(o, { link: 'ha', timeout: 60_000 });
    const got: number[] = [];
    const reading = (async () => {
      for await (const r of reader) got.push((r as { data: Float32Array }).data[0]!);
    })();
    const writer = await LinkWriter.open(o, { link: 'ha', timeout: 60_000 });
    const writing = (async () => {
      for (let i = 0; i < count; i++) {
        const data = new Float32Array(16_384).fill(i); // 64 KB records
        await writer.write({ data, shape: [16_384], dtype: 'float32' });
        await new Promise((r) => setTimeout(r, 12)); // spread over the failure (~8 s)
      }
      return writer.end();
    })();

    // Kill the work stream's leader once the run is under way.
    const names = WorkQueue.names(conn);
    await new Promise((r) => setTimeout(r, 2_500));
    const leader = (await conn.jsm.streams.info(names.work)).cluster?.leader;
    const victim = servers.find((s) => s.name === leader)!;
    expect(victim).toBeDefined();
    const readAtKill = got.length;
    await victim.kill('SIGKILL');

    const results = await done;
    const sent = await writing;
    await reading;
    expect(results.map((r) => r.status)).toEqual(Array(8).fill('ok'));
    expect(results.map((r) => (r.value as { acc: number }).acc)).toEqual([...Array(8).keys()].map((x) => 6 * x));
    expect(sent.records).toBe(count);
    expect(got).toEqual([...Array(count).keys()]);
    expect(readAtKill).toBeGreaterThan(0); // the link was mid-transfer when the server died
    expect(readAtKill).toBeLessThan(count);

    // Each result written once; nothing left queued; the artifact is intact on another machine.
    const kv = await conn.jsm.streams.info(`KV_${conn.names.bucket('results')}`);
    expect(kv.state.messages).toBe(8);
    expect(kv.config.num_replicas).toBe(3);
    // Results are recorded before items are acknowledged: acknowledgements caught in the failover
    // complete (or the items are redelivered and acknowledged as done) shortly after.
    const q = await WorkQueue.open(conn);
    const deadline = Date.now() + 60_000;
    let counts = await q.counts();
    while ((counts.queued || counts.running) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      counts = await q.counts();
    }
    expect(counts).toEqual({ queued: 0, running: 0 });
    const m2 = await SharedArtifactStore.open(conn, { local: tempDir() });
    const recs = [];
    for await (const r of m2.read(cacheKey)) recs.push(r);
    expect(recs.length).toBe(1);
    expect((recs[0]!.data as Float64Array).every((v) => v === 3.5)).toBe(true);
    await job.close();
    await conn.close();
    for (const a of agents) a.kill('SIGTERM');
    for (const a of agents) expect(await a.exited).toBe(0);
  }, 240_000);
});
