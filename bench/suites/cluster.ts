// Suite `cluster`: a segment link over JetStream on loopback (a real nats-server, file storage) against
// the same link over a ring (Source -> Sink in worker threads), for small records and 224x224x3
// float32 tensors; and the wall time of a work set with 1 vs 2 agents on this machine.
import { availableParallelism, loadavg } from 'node:os';
import { Pipeline, Sink, Source } from '../../src/index.js';
import { clusterStatus, jetstreamSink, jetstreamSource, runJob, type WorkSpec } from '../../src/cluster/index.js';
import type { BenchContext } from '../harness.js';
import { startServer, stopAll, type TestServer } from '../../test/helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from '../../test/helpers/cluster-agents.js';
import { CountRecords, smallRecords, tensorRecords } from './cluster.segments.js';

type Kind = 'small' | 'tensors';
const SHAPE = [224, 224, 3];
const TENSOR_BYTES = 224 * 224 * 3 * 4;

const source = (kind: Kind, count: number) =>
  kind === 'small' ? new Source(smallRecords, { options: { count } }) : new Source(tensorRecords, { options: { count, shape: SHAPE } });

interface Measure {
  recordsPerSec: number;
  mbPerSec: number;
}

function check(r: { count: number; outOfOrder: number }, count: number, what: string) {
  if (r.count !== count || r.outOfOrder) throw new Error(`${what}: ${r.count} of ${count} records, ${r.outOfOrder} out of order`);
}

async function overRing(kind: Kind, count: number): Promise<Measure> {
  const t0 = performance.now();
  const r = await new Pipeline()
    .add(source(kind, count), { capacity: 32 << 20 })
    .add(new Sink(CountRecords))
    .run({ handleSigint: false });
  const s = (performance.now() - t0) / 1000;
  const res = r.results.CountRecords![0] as { count: number; bytes: number; outOfOrder: number };
  check(res, count, 'ring');
  return { recordsPerSec: count / s, mbPerSec: res.bytes / s / 1e6 };
}

let run = 0;
async function overJetStream(server: TestServer, kind: Kind, count: number, storage: 'file' | 'memory'): Promise<Measure> {
  const link = { servers: server.url, project: 'bench', link: `l${++run}`, storage, timeout: 120_000, window: 64 << 20 };
  const t0 = performance.now();
  const consumer = new Pipeline().add(jetstreamSource(link)).add(new Sink(CountRecords)).run({ handleSigint: false });
  await new Pipeline().add(source(kind, count), { capacity: 32 << 20 }).add(jetstreamSink(link)).run({ handleSigint: false });
  const r = await consumer;
  const s = (performance.now() - t0) / 1000;
  const res = r.results.CountRecords![0] as { count: number; bytes: number; outOfOrder: number };
  check(res, count, 'JetStream link');
  return { recordsPerSec: count / s, mbPerSec: res.bytes / s / 1e6 };
}

async function workSet(server: TestServer, agents: number, specs: WorkSpec[]): Promise<number> {
  const items = specs.length;
  const project = `bench-work-${agents}-${++run}`;
  const spawned = Array.from({ length: agents }, (_, i) =>
    spawnAgent(`bench-${agents}-${i}`, ['--nats', server.url, '--project', project, '--slots', '1', '--idle-exit', '3']),
  );
  // The wall time counts from submission to the last result, once the agents are up.
  const deadline = Date.now() + 60_000;
  while ((await clusterStatus({ servers: server.url, project })).agents.length < agents) {
    if (Date.now() > deadline) throw new Error(`the ${agents} agent(s) did not start: ${spawned.map((a) => a.output()).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const t0 = performance.now();
  const results = await runJob({ servers: server.url, project }, specs, { name: 'bench', timeout: 600_000 });
  const s = (performance.now() - t0) / 1000;
  if (results.some((r) => r.status !== 'ok')) throw new Error(`work set: ${results.filter((r) => r.status !== 'ok').length} item(s) failed`);
  const perAgent = new Map<string, number>();
  for (const r of results) perAgent.set(r.agent, (perAgent.get(r.agent) ?? 0) + 1);
  if (perAgent.size !== agents) throw new Error(`work set: ${perAgent.size} of ${agents} agents ran items (${[...perAgent].join(', ')})`);
  await Promise.all(spawned.map((a) => a.exited));
  return s;
}

export default async function cluster(ctx: BenchContext): Promise<void> {
  const q = ctx.quick;
  const server = await startServer({ maxFileStore: 8 * 1024 ** 3 });
  try {
    const counts = { small: q ? 200_000 : 1_000_000, tensors: q ? 300 : 2_000 };
    for (const kind of ['small', 'tensors'] as const) {
      const what = kind === 'small' ? 'small JSON records' : '224x224x3 f32 tensors';
      const ring = await overRing(kind, counts[kind]);
      for (const storage of ['file', 'memory'] as const) {
        const js = await overJetStream(server, kind, counts[kind], storage);
        ctx.report({ name: `link over JetStream (${storage} storage), ${what}`, unit: 'records/s', value: js.recordsPerSec, baseline: { name: 'same link over a ring (threads)', value: ring.recordsPerSec }, notes: { count: counts[kind] } });
        ctx.report({ name: `link over JetStream (${storage} storage), ${what}`, unit: 'MB/s', value: js.mbPerSec, baseline: { name: 'same link over a ring (threads)', value: ring.mbPerSec } });
      }
    }
    // Work sets, agents with one slot each: CPU-bound items (~1 s of arithmetic each on an idle
    // core; on this 2-core machine, shared with other work, two agents compete for the cores), and
    // latency-bound items (0.5 s waits: what distribution alone gives).
    const items = q ? 8 : 16;
    const w = `${repoRoot}/test/helpers/cluster-work.ts`;
    const sets = {
      'CPU-bound': (run: number) => Array.from({ length: items }, (_, i) => ({ run: `${w}#burn`, payload: { n: 40_000_000, seed: i + 1000 * run } })),
      'latency-bound (0.5 s)': (run: number) => Array.from({ length: items }, (_, i) => ({ run: `${w}#nap`, payload: { ms: 500, i: i + 1000 * run } })),
    };
    for (const [what, make] of Object.entries(sets)) {
      const one = await workSet(server, 1, make(1));
      const two = await workSet(server, 2, make(2));
      const load = loadavg()[0]!;
      ctx.log(`work set of ${items} ${what} items: 1 agent ${one.toFixed(2)} s, 2 agents ${two.toFixed(2)} s (load average ${load.toFixed(1)} on ${availableParallelism()} cores)`);
      ctx.report({ name: `work set of ${items} ${what} items, 2 agents (1 slot each)`, unit: 'items/s', value: items / two, baseline: { name: '1 agent', value: items / one }, notes: { wallSeconds: { oneAgent: one, twoAgents: two }, loadAverage: load } });
    }
  } finally {
    await killAgents();
    await stopAll();
  }
}
