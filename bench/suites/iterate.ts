// Suite `iterate`: batches of 64 x 224x224x3 float32 consumed in the main thread with iterate()
// (views, and owned copies), against the same pipeline ending in a worker sink, and against a plain
// `for await` over an async generator doing the same work (make each sample, copy it into its
// batch) in one thread.
import { batch, Pipeline, Sink, Source, type Tensor } from '../../src/index.js';
import type { BenchContext } from '../harness.js';
import { bestOf } from '../lib/best.js';
import { BATCH, samples, SHAPE, touch, TouchBatches } from './iterate.segments.js';

const SAMPLE = SHAPE.reduce((a, b) => a * b, 1);
const capacity = 128 << 20;  // holds two 38.5 MB batches

const loader = (count: number) => new Pipeline().add(new Source(samples, { options: { count } }), { capacity: 32 << 20 }).add(batch(BATCH), { capacity });

/** Batches per second read in this thread; timed from the source's first record, as the sink run is. */
async function iterated(count: number, views: boolean): Promise<number> {
  const it = loader(count).iterate<Tensor>({ views, handleSigint: false });
  let n = 0;
  for await (const b of it) {
    touch(b);
    n++;
  }
  const ended = Date.now();
  if (n !== count / BATCH) throw new Error(`lost batches: ${n} of ${count / BATCH}`);
  return n / ((ended - it.runs[0]!.segments[0]!.startedAt) / 1000);
}

async function workerSink(count: number): Promise<number> {
  const r = await loader(count).add(new Sink(TouchBatches)).run({ handleSigint: false });
  if (r.results.TouchBatches![0] !== count / BATCH) throw new Error('lost batches');
  return count / BATCH / ((r.segments.at(-1)!.endedAt - r.segments[0]!.startedAt) / 1000);
}

/** The same work in one thread: each sample made in a reused buffer, then copied into its batch. */
async function plainLoop(count: number): Promise<number> {
  async function* batches() {
    const sample = new Float32Array(SAMPLE);
    for (let i = 0; i < count; i += BATCH) {
      const data = new Float32Array(BATCH * SAMPLE);
      for (let k = 0; k < BATCH; k++) {
        sample[0] = i + k;
        sample[SAMPLE - 1] = i + k;
        data.set(sample, k * SAMPLE);
      }
      yield { data, shape: [BATCH, ...SHAPE], dtype: 'float32' } as Tensor;
    }
  }
  const t0 = performance.now();
  let n = 0;
  for await (const b of batches()) {
    touch(b);
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

export default async function iterate(ctx: BenchContext): Promise<void> {
  const reps = ctx.quick ? 1 : 3;
  const count = BATCH * (ctx.quick ? 20 : 200);
  const sink = await bestOf(reps, () => workerSink(count));
  const views = await bestOf(reps, () => iterated(count, true));
  const owned = await bestOf(reps, () => iterated(count, false));
  const plain = await bestOf(reps, () => plainLoop(count));
  const what = `${BATCH} x 224x224x3 f32 batches`;
  ctx.report({ name: `iterate({ views: true }) in the main thread, ${what}`, unit: 'batches/s', value: views, baseline: { name: 'same pipeline, worker sink', value: sink } });
  ctx.report({ name: `iterate() (owned copies) in the main thread, ${what}`, unit: 'batches/s', value: owned, baseline: { name: 'same pipeline, worker sink', value: sink } });
  ctx.report({ name: `iterate({ views: true }) in the main thread, ${what}`, unit: 'batches/s', value: views, baseline: { name: 'plain for await over an async generator, one thread', value: plain } });
}
