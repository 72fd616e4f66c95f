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

beforeAll(async () => {
  servers = await startCluster(3);
}, 90_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

describe('3-server JetStream cluster, replicas 3', () => {
  it('one server killed mid-run: every work item, link record and artifact is accounted for, exactly once', async () => {
    const urls = servers.map((s) => s.url).join(',');
    const o = { servers: urls, project: 'ha', replicas: 3, timeout: 5_000 };
    const conn = await ClusterConnection.open(o);

    // An artifact in the shared cache before the failure.
    const cacheKey = 'e'.repeat(64);
    const m1 = await SharedArtifactStore.open(conn, { local: mkdtempSync(join(tmpdir(), 'rp-ha-')) });
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
    const m2 = await SharedArtifactStore.open(conn, { local: mkdtempSync(join(tmpdir(), 'rp-ha-')) });
    const recs = [];
    for await (const r of m2.read(cacheKey)) recs.push(r);
    expect(recs.length).toBe(1);
    expect((recs[0]!.data as Float64Array).every((v) => v === 3.5)).toBe(true);
    dirs.push(m1.local.location, m2.local.location);
    await job.close();
    await conn.close();
    for (const a of agents) a.kill('SIGTERM');
    for (const a of agents) expect(await a.exited).toBe(0);
  }, 240_000);
});
