// Suite `cluster`: a segment link over JetStream on loopback (a real nats-server, file storage) against
// the same link over a ring (Source -> Sink in worker threads), for small records and 224x224x3
// float32 tensors; and the wall time of a work set, and of a small distributed sweep (tfjs wasm
// trainers on the agents), with 1 vs 2 agents on this machine.
import { availableParallelism, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { Pipeline, Sink, Source, cleanupStaleRegions } from '../../src/index.js';
import { clusterDataPath, clusterStatus, jetstreamSink, jetstreamSource, runJob, type WorkEvent, type WorkSpec } from '../../src/cluster/index.js';
import { sweep } from '../../src/sweep/sweep.js';
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

/** Starts `agents` agents (1 slot each) on `project` and waits until the cluster lists them all. */
async function startAgents(server: TestServer, agents: number, project: string, idleExit: number) {
  const spawned = Array.from({ length: agents }, (_, i) =>
    spawnAgent(`${project}-${i}`, ['--nats', server.url, '--project', project, '--slots', '1', '--idle-exit', String(idleExit)]),
  );
  const deadline = Date.now() + 60_000;
  while ((await clusterStatus({ servers: server.url, project })).agents.length < agents) {
    if (Date.now() > deadline) throw new Error(`the ${agents} agent(s) did not start: ${spawned.map((a) => a.output()).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return spawned;
}

async function workSet(server: TestServer, agents: number, specs: WorkSpec[]): Promise<number> {
  const project = `bench-work-${agents}-${++run}`;
  const spawned = await startAgents(server, agents, project, 3);
  // The wall time counts from submission to the last result, once the agents are up.
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

// The distributed sweep of test/cluster-sweep.test.ts, smaller: the blobs model (tfjs, wasm backend)
// on synthetic blobs, one trial per work item, every trial submitted at once.
const fx = (f: string) => resolve(repoRoot, 'test/fixtures/train', f);
const sweepTrainer = { module: fx('blobs-model.mjs'), validation: { module: fx('blobs.mjs'), args: { n: 60, seed: 2 } } };
const sweepBuild = `${resolve(repoRoot, 'test/helpers/cluster-sweep.ts')}#build`;

async function sweepOn(server: TestServer, agents: number, trials: number, args: { n: number; epochs: number; batchSize: number }): Promise<number> {
  const project = `bench-sweep-${agents}-${++run}`;
  const spawned = await startAgents(server, agents, project, 60);
  const events: WorkEvent[] = [];
  // From submission to the sweep's result, once the agents are up (trainer start-up, tfjs import included).
  const t0 = performance.now();
  const r = await sweep({
    trials: Array.from({ length: trials }, (_, i) => ({ units: 8 * (1 + (i % 2)), learningRate: i < 2 ? 0.01 : 0.03 })),
    trainer: sweepTrainer,
    data: clusterDataPath({ servers: server.url, project, root: repoRoot, build: sweepBuild, args, timeout: 600_000, onWorkEvent: (e) => events.push(e) }),
    metric: 'val_acc',
    concurrency: trials,
    console: 'none',
  });
  const s = (performance.now() - t0) / 1000;
  const bad = r.trials.filter((t) => t.state !== 'completed' || t.history.length !== args.epochs);
  if (r.trials.length !== trials || bad.length) throw new Error(`sweep: ${r.trials.length} trials, ${bad.length} not completed: ${bad.map((t) => t.error?.message ?? t.state).join('; ')}`);
  const ran = new Set(events.filter((e) => e.type === 'started').map((e) => e.agent));
  if (ran.size !== agents) throw new Error(`sweep: ${ran.size} of ${agents} agents ran trials (${[...ran].join(', ')})`);
  // Stopped now rather than after --idle-exit (a graceful exit: the agent removes its own rings).
  for (const a of spawned) a.kill('SIGTERM');
  const codes = await Promise.all(spawned.map((a) => a.exited));
  if (codes.some((c) => c !== 0)) throw new Error(`sweep: agents exited with ${codes.join(', ')}: ${spawned.map((a) => a.output()).join('\n')}`);
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
    // A distributed sweep: 4 trials (one item each) of the blobs model on tfjs wasm, agents with one slot each.
    const trials = 4;
    const args = q ? { n: 120, epochs: 2, batchSize: 40 } : { n: 480, epochs: 5, batchSize: 40 };
    const one = await sweepOn(server, 1, trials, args);
    const two = await sweepOn(server, 2, trials, args);
    const load = loadavg()[0]!;
    const what = `sweep of ${trials} trials (blobs model, tfjs wasm, ${args.n} samples x ${args.epochs} epochs)`;
    ctx.log(`${what}: 1 agent ${one.toFixed(2)} s, 2 agents ${two.toFixed(2)} s (load average ${load.toFixed(1)} on ${availableParallelism()} cores)`);
    ctx.report({ name: `${what}, 2 agents (1 slot each)`, unit: 'trials/min', value: (trials * 60) / two, baseline: { name: '1 agent', value: (trials * 60) / one }, notes: { wallSeconds: { oneAgent: one, twoAgents: two }, loadAverage: load, ...args } });
  } finally {
    await killAgents();
    // Rings of agents or trainers killed above: removed as the engine does for killed owners.
    cleanupStaleRegions();
    await stopAll();
  }
}
