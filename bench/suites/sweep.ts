// Suite `sweep`: K = 1, 2, 4 trainers fed by one broadcast stream (one source + augmentation,
// ringpipe's sweep) against K independent pipelines, each loading and augmenting its own data for
// its one trainer, in the same run, with the same trials (same model, learning rates, data, epochs,
// augmentation by (epoch, sample) seed). Trainers are processes on the tfjs wasm backend in both.
//
// Reported: trained samples per second of wall time (start-up included on both sides: both start K
// trainer processes), with the preprocessing work each side did and the trainers' data-wait in notes.
import { Pipeline, Sink, Source, Stream, Transform } from '../../src/index.js';
import { locateFashionMnist } from '../../src/data/fashion-mnist.js';
import { engineDataPath } from '../../src/sweep/engine-data-path.js';
import { sweep } from '../../src/sweep/sweep.js';
import { TrainerSink } from '../../src/sweep/trainer-sink.js';
import type { TrainerOptions, TrainerResult } from '../../src/train/trainer.js';
import type { BenchContext } from '../harness.js';
import { Augment, rawBatches, type SweepBenchSource } from './sweep.worker.js';

const MODEL = new URL('./sweep.worker.ts', import.meta.url).href;
const TRAINER_SINK = new URL('../../src/sweep/trainer-sink.ts', import.meta.url).href;
const lrs = [0.001, 0.002, 0.003, 0.004];

interface Outcome {
  seconds: number;
  preprocessed: number;
  trained: number;
  dataWaitPct: number;
}

const trainerOptions = (lr: number): Omit<TrainerOptions, 'params' | 'trialId' | 'onError'> & { params: { learningRate: number } } => ({
  module: MODEL,
  backend: 'wasm',
  params: { learningRate: lr },
});

async function broadcast(k: number, source: SweepBenchSource): Promise<Outcome> {
  let preprocessed = 0;
  const t0 = performance.now();
  const r = await sweep({
    trials: lrs.slice(0, k).map((learningRate) => ({ learningRate })),
    trainer: { module: MODEL, backend: 'wasm' },
    metric: 'loss',
    concurrency: k,
    console: 'none',
    data: engineDataPath({
      build(graph) {
        const raw = new Stream('raw');
        const batches = new Stream('batches');
        graph.add(new Source(rawBatches, { name: 'source', options: source }), { out: raw });
        graph.add(new Transform(Augment, { name: 'augment' }), { in: raw, out: batches });
        return batches;
      },
      run: { handleSigint: false },
      onWaveEnd: (_w, result) => (preprocessed += (result.results.augment![0] as { samples: number }).samples),
    }),
  });
  const seconds = (performance.now() - t0) / 1000;
  const failed = r.trials.find((t) => t.state !== 'completed');
  if (failed) throw new Error(`broadcast: trial ${failed.id} ${failed.state}: ${failed.error?.message ?? ''}`);
  const h = r.trials.flatMap((t) => t.history);
  return { seconds, preprocessed, trained: h.reduce((a, e) => a + e.samples, 0), dataWaitPct: h.reduce((a, e) => a + e.dataWaitPct, 0) / h.length };
}

async function independent(k: number, source: SweepBenchSource): Promise<Outcome> {
  const t0 = performance.now();
  const runs = await Promise.all(
    lrs.slice(0, k).map((lr, i) =>
      new Pipeline()
        .add(new Source(rawBatches, { name: 'source', options: source }))
        .add(new Transform(Augment, { name: 'augment' }))
        .add(new Sink(TrainerSink, { name: 'trainer', options: { trainer: { ...trainerOptions(lr), trialId: `p${i}` } }, module: TRAINER_SINK, export: 'TrainerSink' }), {
          isolation: 'process',
        })
        .run({ handleSigint: false }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const results = runs.map((r) => r.results.trainer![0] as TrainerResult);
  const bad = results.find((t) => t.status !== 'completed');
  if (bad) throw new Error(`independent: ${bad.trialId} ${bad.status}: ${bad.error?.message ?? ''}`);
  const h = results.flatMap((t) => t.history);
  return {
    seconds,
    preprocessed: runs.reduce((a, r) => a + (r.results.augment![0] as { samples: number }).samples, 0),
    trained: h.reduce((a, e) => a + e.samples, 0),
    dataWaitPct: h.reduce((a, e) => a + e.dataWaitPct, 0) / h.length,
  };
}

export default async function sweepSuite(ctx: BenchContext): Promise<void> {
  let data: string | undefined;
  try {
    data = locateFashionMnist();
  } catch {
    ctx.log('Fashion-MNIST not found: using generated 28x28 images');
  }
  const source: SweepBenchSource = { data, samples: ctx.quick ? 4096 : 16_384, epochs: ctx.quick ? 1 : 2, batchSize: 128, seed: 1 };
  const reps = ctx.quick ? 1 : 2;
  for (const k of [1, 2, 4]) {
    let b: Outcome | undefined;
    let ind: Outcome | undefined;
    // Interleaved repetitions, best of each (the machine is shared).
    for (let i = 0; i < reps; i++) {
      const x = await broadcast(k, source);
      const y = await independent(k, source);
      if (!b || x.seconds < b.seconds) b = x;
      if (!ind || y.seconds < ind.seconds) ind = y;
    }
    if (b!.trained !== ind!.trained) throw new Error(`K=${k}: trained ${b!.trained} vs ${ind!.trained} samples`);
    ctx.report({
      name: `K=${k} trainers, one broadcast stream`,
      unit: 'trained samples/s',
      value: b!.trained / b!.seconds,
      baseline: { name: `${k} independent pipeline(s)`, value: ind!.trained / ind!.seconds },
      notes: {
        wallSeconds: { broadcast: round(b!.seconds), independent: round(ind!.seconds) },
        wallTimeRatio: round(ind!.seconds / b!.seconds),
        preprocessedSamples: { broadcast: b!.preprocessed, independent: ind!.preprocessed },
        trainedSamples: b!.trained,
        dataWaitPct: { broadcast: round(b!.dataWaitPct), independent: round(ind!.dataWaitPct) },
        data: data ? 'fashion-mnist' : 'generated',
        samples: source.samples,
        epochs: source.epochs,
      },
    });
  }
}

const round = (v: number) => Math.round(v * 1000) / 1000;
