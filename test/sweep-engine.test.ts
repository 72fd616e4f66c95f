// Sweeps over the engine: one source + preprocessing stream broadcast to trainer processes.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, Sink, Source, Stream, Transform, type RunResult } from '../src/index.js';
import { engineDataPath, trainerSegmentName } from '../src/sweep/engine-data-path.js';
import { paramString } from '../src/sweep/format.js';
import { sweep, type Wave } from '../src/sweep/sweep.js';
// @ts-expect-error plain JS fixture
import { Preprocess, PreprocessSplit, blobSource } from './fixtures/train/sweep-segments.mjs';

const fx = (f: string) => resolve('test/fixtures/train', f);
const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-sweep-engine-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const N = 240;
const EPOCHS = 2;
const trainer = {
  module: fx('blobs-model.mjs'),
  validation: { module: fx('blobs.mjs'), args: { n: 90, seed: 2 } },
  test: { module: fx('blobs.mjs'), args: { n: 90, seed: 3 } },
};

function dataPath(waves: { wave: Wave; result: RunResult }[], split = false) {
  return engineDataPath({
    build(graph: Graph) {
      const raw = new Stream('raw');
      graph.add(new Source(blobSource, { name: 'source', options: { n: N, epochs: EPOCHS, batchSize: 40 } }), { out: raw });
      if (!split) {
        const batches = new Stream('batches');
        graph.add(new Transform(Preprocess, { name: 'preprocess' }), { in: raw, out: batches });
        return batches;
      }
      const xs = new Stream('xs');
      const ys = new Stream('ys');
      graph.add(new Transform(PreprocessSplit, { name: 'preprocess' }), { in: raw, out: [xs, ys] });
      return [xs, ys];
    },
    run: { handleSigint: false },
    onWaveEnd: (wave, result) => waves.push({ wave, result }),
  });
}

describe('sweep over the engine', () => {
  it('4 trials, concurrency 2, gpus [0, 1]: preprocessing once per sample, metrics per trial, CUDA_VISIBLE_DEVICES per trainer process', async () => {
    const waves: { wave: Wave; result: RunResult }[] = [];
    const lines: string[] = [];
    const out = join(tmp, 'grid');
    const r = await sweep({
      grid: { units: [8, 16], learningRate: [0.01, 0.03] },
      trainer,
      data: dataPath(waves),
      metric: 'val_acc',
      concurrency: 2,
      gpus: [0, 1],
      out,
      console: 'lines',
      consoleStream: { write: (s: string) => void lines.push(s) },
    });
    expect(r.trials).toHaveLength(4);
    expect(waves).toHaveLength(2);
    for (const { wave, result } of waves) {
      // The preprocessing ran once per sample per epoch for the whole wave, not once per trainer.
      expect(result.results.preprocess![0]).toMatchObject({ samples: N * EPOCHS });
      const pre = result.segments.find((s) => s.name === 'preprocess')!;
      expect(pre.recordsIn).toBe((N / 40 + 1) * EPOCHS);
      for (const wt of wave.trials) {
        expect(result.segments.find((s) => s.name === trainerSegmentName(wt.trial.id))!.recordsIn).toBe((N / 40 + 1) * EPOCHS);
      }
    }
    const pids = new Set<number>();
    for (const t of r.trials) {
      expect(t.state).toBe('completed');
      expect(t.backend).toBe('wasm');
      expect(t.history.map((h) => h.epoch)).toEqual([1, 2]);
      for (const h of t.history) {
        expect(h.samples).toBe(N);
        expect(Object.keys(h.metrics).sort()).toEqual(['acc', 'loss', 'val_acc', 'val_loss']);
        expect(h.samplesPerSec).toBeGreaterThan(0);
      }
      expect(t.testAccuracy).toBeGreaterThan(0.5);
      // Slot i of each wave is bound to GPU i, in the trainer's own process.
      expect(t.gpu).toBe(t.index % 2);
      expect(t.cudaVisibleDevices).toBe(String(t.index % 2));
      expect(t.pid).not.toBe(process.pid);
      pids.add(t.pid!);
    }
    expect(pids.size).toBe(4); // a fresh process per trial
    expect(r.placement).toContain('GPU(s) 0, 1');

    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.trials).toHaveLength(4);
    for (const t of json.trials) expect(Object.keys(t)).toEqual(expect.arrayContaining(['id', 'params', 'backend', 'history', 'testAccuracy']));
    const best = r.trials.reduce((a, b) => (b.score! > a.score! ? b : a));
    expect(json.best).toMatchObject({ id: best.id, params: best.params, testAccuracy: best.testAccuracy });
    expect(readFileSync(join(out, 'results.csv'), 'utf8').split('\n')[0]).toContain('learningRate,units');
    expect(readFileSync(join(out, 'history.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 4 * EPOCHS);
    expect(readFileSync(join(out, 'learning-curves.html'), 'utf8')).toContain('<polyline');
    expect(existsSync(join(out, 'best-model', 'model.json'))).toBe(true);
    expect(existsSync(join(out, 'trials'))).toBe(false);
    const text = lines.join('');
    for (const t of r.trials) {
      expect(text).toContain(`[trial ${t.id}] start (wave ${Math.floor(t.index / 2) + 1}, GPU ${t.index % 2}) ${paramString(t.params)} on wasm (@tensorflow/tfjs 4.22.0, cpu, CUDA_VISIBLE_DEVICES=${t.index % 2})`);
      expect(text).toContain(`[trial ${t.id}] epoch 2 loss`);
    }
  });

  it('a failing trial is reported with its error; the others in its wave finish', async () => {
    const r = await sweep({
      trials: [{ units: 8 }, { units: 8, fail: 'factory' }, { units: 8, fail: 'shape' }],
      trainer,
      data: dataPath([], true), // two tensor streams, paired in the trainer
      metric: 'val_acc',
      concurrency: 3,
      console: 'none',
    });
    const [ok, factory, shape] = r.trials;
    expect(ok!.state).toBe('completed');
    expect(ok!.history).toHaveLength(EPOCHS);
    expect(ok!.history[0]!.samples).toBe(N);
    expect(factory!.state).toBe('failed');
    expect(factory!.error!.message).toBe('boom in the model factory');
    expect(shape!.state).toBe('failed');
    expect(shape!.error!.message).toMatch(/each example has shape \[5\]/);
    expect(r.best!.id).toBe(ok!.id);
  });

  it('a trainer process that dies fails its trial only; the others in its wave finish', async () => {
    const r = await sweep({
      trials: [{ units: 8 }, { units: 8, fail: 'crash' }],
      trainer,
      data: dataPath([], true),
      metric: 'val_acc',
      concurrency: 2,
      console: 'none',
    });
    const [ok, crash] = r.trials;
    expect(ok!.state).toBe('completed');
    expect(ok!.history).toHaveLength(EPOCHS);
    expect(crash!.state).toBe('failed');
    expect(crash!.error!.message).toMatch(/the trainer process died: process killed by SIGKILL/);
  });

  it('early stopping decisions reach the trainer processes', async () => {
    const r = await sweep({
      // Learning rate 0 never improves: successive halving stops it at the first rung.
      trials: [{ learningRate: 0.03 }, { learningRate: 0, optimizer: 'sgd' }],
      trainer,
      data: dataPath([]),
      metric: 'val_loss',
      concurrency: 1,
      earlyStopping: { rule: 'successive-halving', minEpochs: 1, reductionFactor: 2 },
      console: 'none',
    });
    expect(r.trials[0]!.state).toBe('completed');
    expect(r.trials[1]!.state).toBe('stopped');
    expect(r.trials[1]!.stopReason).toMatch(/successive halving: val_loss .* at rung epoch 1/);
    expect(r.trials[1]!.history).toHaveLength(1);
  });
});
