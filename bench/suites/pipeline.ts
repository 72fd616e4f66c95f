// Suite `pipeline`: Source -> Transform -> Sink with trivial code, in threads and in processes,
// against the same three stages as worker threads chained by postMessage; and a CPU-bound
// transform with 1 vs 2 replicas.
import { MessageChannel } from 'node:worker_threads';
import { Pipeline, Sink, Source, Transform } from '../../src/index.js';
import type { BenchContext } from '../harness.js';
import { bestOf } from '../lib/best.js';
import { firstMessage, tsWorker } from '../lib/spawn.js';
import * as seg from './pipeline.segments.js';

const peerFile = new URL('./pipeline.worker.ts', import.meta.url);
type Kind = 'small' | 'numbers' | 'tensors' | 'burn';

async function ringpipe(kind: Kind, count: number, isolation: 'thread' | 'process', workers = 1): Promise<number> {
  const source = kind === 'small' ? seg.smallObjects : kind === 'tensors' ? seg.tensors : seg.numbers;
  const transform = kind === 'tensors' ? seg.touchTensor : kind === 'burn' ? seg.burn : seg.identity;
  const r = await new Pipeline()
    .add(new Source(source, { options: { count } }), { isolation, capacity: kind === 'tensors' ? 32 << 20 : 4 << 20 })
    .add(new Transform(transform), { isolation, workers, capacity: kind === 'tensors' ? 32 << 20 : 4 << 20 })
    .add(new Sink(seg.Count), { isolation })
    .run({ handleSigint: false });
  if (r.results.Count![0] !== count) throw new Error(`lost records: ${r.results.Count![0]} of ${count}`);
  // From the source's first record to the sink's last: worker start-up (module loading) is not
  // part of the stream's throughput, as the peer's is measured from 'go' too.
  const seconds = (r.segments.at(-1)!.endedAt - r.segments[0]!.startedAt) / 1000;
  return count / seconds;
}

async function postMessageStages(kind: Kind, count: number): Promise<number> {
  const a = new MessageChannel(), b = new MessageChannel();
  const src = tsWorker(peerFile, { stage: 'source', kind, count, output: a.port1 }, [a.port1]);
  const mid = tsWorker(peerFile, { stage: 'transform', kind, count, input: a.port2, output: b.port1 }, [a.port2, b.port1]);
  const sink = tsWorker(peerFile, { stage: 'sink', kind, count, input: b.port2 }, [b.port2]);
  const all = [src, mid, sink];
  await Promise.all(all.map((w) => firstMessage(w)));
  const got = firstMessage<number>(sink);
  const t0 = performance.now();
  all.forEach((w) => w.postMessage('go'));
  const n = await got;
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(all.map((w) => w.terminate()));
  if (n !== count) throw new Error(`postMessage peer lost records: ${n} of ${count}`);
  return count / seconds;
}


export default async function pipeline(ctx: BenchContext): Promise<void> {
  const q = ctx.quick;
  const reps = q ? 1 : 3;
  const n = { small: q ? 300_000 : 2_000_000, numbers: q ? 500_000 : 4_000_000, tensors: q ? 5_000 : 30_000 };
  // Both sides include start-up (workers, module loading): counts are large enough to dwarf it.
  for (const kind of ['small', 'numbers', 'tensors'] as const) {
    const peer = await bestOf(reps, () => postMessageStages(kind, n[kind]));
    for (const isolation of ['thread', 'process'] as const) {
      const v = await bestOf(reps, () => ringpipe(kind, n[kind], isolation));
      const what = kind === 'small' ? 'small objects' : kind === 'numbers' ? 'numbers' : '224x224x3 f32 tensors made in place';
      ctx.report({ name: `${isolation === 'thread' ? 'threads' : 'processes'}: source -> transform -> sink, ${what}`, unit: 'records/s', value: v, baseline: { name: 'worker_threads + postMessage (tensors transferred)', value: peer } });
    }
  }
  // Long enough that the replicas' start-up skew (each worker loads its code) is lost in the noise.
  const burnN = q ? 10_000 : 100_000;
  const one = await bestOf(reps, () => ringpipe('burn', burnN, 'thread', 1));
  const two = await bestOf(reps, () => ringpipe('burn', burnN, 'thread', 2));
  ctx.report({ name: 'CPU-bound transform, workers: 2', unit: 'records/s', value: two, baseline: { name: 'workers: 1', value: one } });
}
