import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTf } from '../src/train/backend.js';
import { loadModel } from '../src/train/model-io.js';
import { readCheckpoint, type TrainerCheckpoint } from '../src/train/checkpoint.js';
import { Trainer, type EpochReport, type TrainerOptions } from '../src/train/trainer.js';
// @ts-expect-error plain JS fixture
import { batches, blobs } from './fixtures/train/blobs.mjs';

const fx = (f: string) => resolve('test/fixtures/train', f);
const MODEL = fx('blobs-model.mjs');
const train = blobs({ n: 240, seed: 1 });
const val = blobs({ n: 90, seed: 2 });
const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-train-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function runTrainer(options: TrainerOptions, records: Iterable<unknown>, ctx = {}) {
  const t = new Trainer();
  await t.setup(options, ctx);
  for (const r of records) await t.run(r);
  return t.teardown();
}

describe('Trainer', () => {
  it('trains on batches, validates at epoch markers and reports per-epoch metrics', async () => {
    const seen: EpochReport[] = [];
    const r = await runTrainer(
      { module: MODEL, trialId: 't1', params: { units: 16 }, validation: val },
      batches(train, { batchSize: 32, epochs: 4 }),
      { onEpoch: (rep: EpochReport) => void seen.push(rep) },
    );
    expect(r.status).toBe('completed');
    expect(r.backend?.name).toBe('wasm');
    expect(r.backend?.attempts.map((a) => a.candidate)).toEqual(['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', 'wasm']);
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(seen).toEqual(r.history);
    for (const h of r.history) {
      expect(h.trialId).toBe('t1');
      expect(h.samples).toBe(240);
      expect(h.steps).toBe(8);
      expect(Object.keys(h.metrics).sort()).toEqual(['acc', 'loss', 'val_acc', 'val_loss']);
      expect(h.samplesPerSec).toBeGreaterThan(0);
      expect(h.dataWaitPct).toBeGreaterThanOrEqual(0);
      expect(h.dataWaitPct).toBeLessThanOrEqual(100);
    }
    expect(r.history[3]!.metrics.loss).toBeLessThan(r.history[0]!.metrics.loss!);
    expect(r.history[3]!.metrics.val_acc).toBeGreaterThan(0.9);
    expect(r.samples).toBe(960);
    expect(r.steps).toBe(32);
    expect(r.pid).toBe(process.pid);
    const { tf } = await loadTf({ backend: 'wasm' });
    expect(tf.memory().numTensors).toBe(0); // model, optimizer and sets released
  });

  it('measures data wait: time between run() calls counts against the epoch', async () => {
    const t = new Trainer();
    await t.setup({ module: MODEL, backend: 'wasm' });
    for (const r of batches(train, { batchSize: 120, epochs: 1 })) {
      await new Promise((res) => setTimeout(res, 60));
      await t.run(r);
    }
    const r = await t.teardown();
    // 3 waits of ~60 ms against two tiny steps: most of the epoch is waiting.
    expect(r.history[0]!.dataWaitPct).toBeGreaterThan(50);
    expect(r.history[0]!.seconds).toBeGreaterThan(0.15);
  });

  it('copies batch data: tensors derived from a batch survive the reuse of the record memory', async () => {
    const mod = await import(fx('keep-batch-model.mjs'));
    // The cpu backend keeps a reference to the array a tensor is made from, as tfjs-node does.
    const t = new Trainer();
    await t.setup({ module: fx('keep-batch-model.mjs'), backend: 'cpu' });
    const slot = new Float32Array(32 * 8);
    const labels = new Float32Array(32);
    const originals: Float32Array[] = [];
    for (const rec of batches(train, { batchSize: 32, epochs: 1 })) {
      if ('epochEnd' in rec) {
        await t.run(rec);
        continue;
      }
      // The batch arrives in a reused "ring slot" that is overwritten as soon as run() returns.
      const n = rec.ys.data.length;
      slot.set(rec.xs.data);
      labels.set(rec.ys.data);
      originals.push(rec.xs.data.slice());
      await t.run({ xs: { data: slot.subarray(0, n * 8), shape: [n, 8] }, ys: { data: labels.subarray(0, n), shape: [n] } });
      slot.fill(1e6);
      labels.fill(2);
    }
    const r = await t.teardown();
    expect(r.status).toBe('completed');
    expect(mod.kept).toHaveLength(originals.length);
    for (let i = 0; i < originals.length; i++) {
      expect(Array.from(mod.kept[i].dataSync() as Float32Array)).toEqual(Array.from(originals[i]!));
      mod.kept[i].dispose();
    }
  });

  it('closes an epoch the stream did not mark at teardown', async () => {
    const recs = [...batches(train, { batchSize: 60, epochs: 2 })];
    recs.pop(); // drop the last { epochEnd: 2 }
    const r = await runTrainer({ module: MODEL, backend: 'wasm' }, recs);
    expect(r.history.map((h) => [h.epoch, h.samples])).toEqual([
      [1, 240],
      [2, 240],
    ]);
  });

  it('evaluates validation batches from the stream (split: validation)', async () => {
    const recs: unknown[] = [];
    for (const rec of batches(train, { batchSize: 60, epochs: 1 })) {
      if ('epochEnd' in rec) {
        recs.push({ xs: val.xs, ys: val.ys, split: 'validation' });
      }
      recs.push(rec);
    }
    const r = await runTrainer({ module: MODEL, backend: 'wasm' }, recs);
    expect(r.history).toHaveLength(1);
    expect(r.history[0]!.samples).toBe(240);
    expect(r.history[0]!.metrics.val_acc).toBeGreaterThan(0);
    expect(r.history[0]!.metrics.val_loss).toBeGreaterThan(0);
  });

  it('uses a custom train step and the epoch-end hook of the module', async () => {
    const mod = await import(fx('custom-step-model.mjs'));
    mod.calls.steps = 0;
    mod.calls.epochEnds.length = 0;
    const r = await runTrainer({ module: fx('custom-step-model.mjs'), backend: 'wasm' }, batches(train, { batchSize: 40, epochs: 3 }));
    expect(r.status).toBe('completed');
    expect(mod.calls.steps).toBe(18);
    expect(mod.calls.epochEnds.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2, 3]);
    expect(r.history[0]!.metrics.custom).toBe(1);
    expect(r.history[2]!.metrics.loss).toBeLessThan(r.history[0]!.metrics.loss!);
  });

  it('compiles an uncompiled model from options.compile', async () => {
    const r = await runTrainer(
      { module: MODEL, factory: 'createUncompiled', compile: { optimizer: 'adam', learningRate: 0.02, loss: 'sparseCategoricalCrossentropy' }, backend: 'wasm' },
      batches(train, { batchSize: 60, epochs: 2 }),
    );
    expect(Object.keys(r.history[1]!.metrics).sort()).toEqual(['acc', 'loss']);
    expect(r.history[1]!.metrics.loss).toBeLessThan(r.history[0]!.metrics.loss!);
  });

  it('stops early when the monitored metric stops improving, and drains the rest', async () => {
    // Learning rate 0: the validation loss never improves after epoch 1.
    const r = await runTrainer(
      { module: MODEL, params: { optimizer: 'sgd', learningRate: 0 }, validation: val, earlyStopping: { monitor: 'val_loss', patience: 2 }, backend: 'wasm' },
      batches(train, { batchSize: 60, epochs: 6 }),
    );
    expect(r.status).toBe('stopped');
    expect(r.stopReason).toMatch(/val_loss did not improve for 2 epoch/);
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(r.drained).toBe(3 * 5); // epochs 4..6: 4 batches + 1 marker each
    expect(r.best).toEqual({ epoch: 1, metric: 'val_loss', value: r.history[0]!.metrics.val_loss });
  });

  it('on the engine, a stopped trainer lets go of its stream (ctx.stop) at the record that stopped it', async () => {
    const t = new Trainer();
    await t.setup({ module: MODEL, params: { optimizer: 'sgd', learningRate: 0 }, validation: val, earlyStopping: { monitor: 'val_loss', patience: 2 }, backend: 'wasm' });
    let stops = 0, fed = 0;
    const ctx = { stop: () => void stops++ };
    for (const rec of batches(train, { batchSize: 60, epochs: 6 })) {
      if (stops) break;  // what the engine does after ctx.stop()
      await t.run(rec, ctx);
      fed++;
    }
    const r = await t.teardown();
    expect(r.status).toBe('stopped');
    expect(stops).toBe(1);
    expect(fed).toBe(3 * 5);  // epochs 1..3, the marker of epoch 3 included
    expect(r.drained).toBe(0);
  });

  it('stops when the scheduler says so at an epoch boundary', async () => {
    const r = await runTrainer({ module: MODEL, backend: 'wasm' }, batches(train, { batchSize: 60, epochs: 5 }), {
      onEpoch: (rep: EpochReport) => (rep.epoch === 2 ? { stop: true, reason: 'median rule' } : 'continue'),
    });
    expect(r.status).toBe('stopped');
    expect(r.stopReason).toBe('median rule');
    expect(r.history).toHaveLength(2);
  });

  it('stops after maxEpochs', async () => {
    const r = await runTrainer({ module: MODEL, maxEpochs: 1, backend: 'wasm' }, batches(train, { batchSize: 120, epochs: 3 }));
    expect(r.history).toHaveLength(1);
    expect(r.stopReason).toBe('maxEpochs 1 reached');
  });

  it('restores the best weights before testing, loads sets through a loader module, and saves a loadable model', async () => {
    const dir = join(tmp, 'model-a');
    const loader = { module: fx('blobs.mjs'), args: { n: 90, seed: 2 } };
    const r = await runTrainer(
      // High learning rate so later epochs can be worse than the best one.
      { module: MODEL, params: { learningRate: 0.3 }, validation: loader, test: loader, restoreBest: { monitor: 'val_loss' }, save: dir, backend: 'wasm' },
      batches(train, { batchSize: 30, epochs: 5 }),
    );
    expect(r.status).toBe('completed');
    const best = r.history.reduce((a, b) => (b.metrics.val_loss! < a.metrics.val_loss! ? b : a));
    expect(r.best).toEqual({ epoch: best.epoch, metric: 'val_loss', value: best.metrics.val_loss });
    // Test set == validation set: the restored weights reproduce the best epoch's validation loss.
    expect(r.test!.test_loss).toBeCloseTo(best.metrics.val_loss!, 4);
    expect(r.model).toMatchObject({ dir, handler: 'ringpipe' });
    const json = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    expect(json.format).toBe('layers-model');
    expect(json.weightsManifest[0].paths).toEqual(['./weights.bin']);
    expect(readFileSync(join(dir, 'weights.bin')).length).toBe(r.model!.weightBytes);
    expect(r.model!.weightBytes).toBe(4 * (8 * 16 + 16 + 16 * 3 + 3));
    const { tf } = await loadTf({ backend: 'wasm' });
    const m = await loadModel(tf, dir);
    m.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' });
    const x = tf.tensor(val.xs.data, val.xs.shape);
    const y = tf.tensor(val.ys.data, val.ys.shape);
    const loss = m.evaluate(x, y) as import('@tensorflow/tfjs').Scalar;
    expect((await loss.data())[0]).toBeCloseTo(best.metrics.val_loss!, 4);
    tf.dispose([x, y, loss]);
    m.dispose();
  });

  it('resumes from an epoch checkpoint: epochs, history and totals go on, weights and optimizer state are loaded', async () => {
    const { tf } = await loadTf({ backend: 'wasm' });
    const tensorsBefore = tf.memory().numTensors;
    const root = join(tmp, 'ck-a');
    const saved = join(tmp, 'ck-a-epoch-2');
    const seen: number[] = [];
    // An uninterrupted run of 4 epochs that checkpoints every epoch; epoch 2's checkpoint is kept aside.
    const a = await runTrainer({ module: MODEL, trialId: 'r1', validation: val, checkpoint: root, backend: 'wasm' }, batches(train, { batchSize: 30, epochs: 4 }), {
      onCheckpoint: (ck: TrainerCheckpoint) => {
        seen.push(ck.epoch);
        expect(ck.history!.map((h) => h.epoch)).toEqual(Array.from({ length: ck.epoch }, (_, i) => i + 1));
        if (ck.epoch === 2) cpSync(ck.model, saved, { recursive: true });
      },
    });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(readdirSync(root)).toEqual(['epoch-4']); // earlier checkpoints removed once the next is complete
    expect(readdirSync(saved).sort()).toEqual(['model.json', 'optimizer.bin', 'trainer-state.json', 'weights.bin']);

    // Resume from epoch 2 on the same (whole) stream: epochs 1-2 are passed over, 3-4 trained.
    const ck = await readCheckpoint(saved);
    expect(ck).toMatchObject({ epoch: 2, trialId: 'r1', samples: 480, steps: 16, model: saved });
    const reports: EpochReport[] = [];
    const b = await runTrainer({ module: MODEL, trialId: 'r1', validation: val, resume: ck, backend: 'wasm' }, batches(train, { batchSize: 30, epochs: 4 }), {
      onEpoch: (rep: EpochReport) => void reports.push(rep),
    });
    expect(b.status).toBe('completed');
    expect(reports.map((r) => r.epoch)).toEqual([3, 4]);
    expect(b.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(b.history.slice(0, 2)).toEqual(a.history.slice(0, 2));
    expect(b.resumed).toEqual({ epoch: 2, skipped: 2 * 9 });
    expect(b.samples).toBe(960);
    expect(b.steps).toBe(32);
    // The same weights and optimizer state (Adam's moments): the resumed epochs are the uninterrupted run's.
    for (const e of [2, 3]) {
      for (const k of ['loss', 'acc', 'val_loss', 'val_acc']) expect(b.history[e]!.metrics[k]).toBeCloseTo(a.history[e]!.metrics[k]!, 5);
    }
    expect(tf.memory().numTensors).toBe(tensorsBefore);
  });

  it('a resumed trial counts the epochs already done toward maxEpochs', async () => {
    const ck = await readCheckpoint(join(tmp, 'ck-a-epoch-2'));
    const r = await runTrainer({ module: MODEL, validation: val, maxEpochs: 3, resume: ck, backend: 'wasm' }, batches(train, { batchSize: 30, epochs: 4 }));
    expect(r.history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(r.stopReason).toBe('maxEpochs 3 reached');
    expect(r.drained).toBe(9); // epoch 4
  });

  it('resume restores the best weights and the early-stopping state of the checkpoint', async () => {
    const root = join(tmp, 'ck-b');
    const saved = join(tmp, 'ck-b-epoch-3');
    const loader = { module: fx('blobs.mjs'), args: { n: 90, seed: 2 } };
    // Epochs 3 and later start from noise: the best epoch is 1 or 2, and patience 2 stops the run.
    const options: TrainerOptions = {
      module: fx('sabotage-model.mjs'),
      params: { sabotageFrom: 3 },
      validation: loader,
      test: loader,
      restoreBest: { monitor: 'val_loss' },
      earlyStopping: { monitor: 'val_loss', patience: 2 },
      backend: 'wasm',
    };
    const a = await runTrainer({ ...options, checkpoint: root }, batches(train, { batchSize: 30, epochs: 6 }), {
      onCheckpoint: (ck: TrainerCheckpoint) => void (ck.epoch === 3 && cpSync(ck.model, saved, { recursive: true })),
    });
    expect(a.status).toBe('stopped');
    expect(a.best!.epoch).toBeLessThan(3);
    const ck = await readCheckpoint(saved);
    expect(ck.best).toMatchObject({ epoch: a.best!.epoch, file: 'best.bin' });
    const b = await runTrainer({ ...options, resume: ck }, batches(train, { batchSize: 30, epochs: 6 }));
    expect(b.status).toBe('stopped');
    expect(b.stopReason).toBe(a.stopReason);
    expect(b.history.map((h) => h.epoch)).toEqual(a.history.map((h) => h.epoch));
    expect(b.best).toEqual(a.best);
    // Test set == validation set: the restored best weights reproduce the best epoch's validation loss.
    expect(b.test!.test_loss).toBeCloseTo(a.best!.value, 4);
    expect(b.test!.test_loss).toBeCloseTo(a.test!.test_loss!, 5);
  });

  it('refuses a checkpoint that does not fit the model', async () => {
    const ck = await readCheckpoint(join(tmp, 'ck-a-epoch-2'));
    await expect(new Trainer().setup({ module: MODEL, params: { units: 32 }, resume: ck, backend: 'wasm' })).rejects.toMatchObject({
      code: 'ERR_TRAINER_RESUME',
      message: expect.stringContaining('do not fit the model'),
    });
    await expect(readCheckpoint(join(tmp, 'nowhere'))).rejects.toMatchObject({ code: 'ERR_TRAINER_RESUME' });
    await expect(new Trainer().setup({ module: MODEL, resume: { model: join(tmp, 'nowhere'), epoch: -1 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it("onError 'report': a failing factory yields a failed result and the stream is drained", async () => {
    const recs = [...batches(train, { batchSize: 120, epochs: 1 })];
    const r = await runTrainer({ module: fx('failing-model.mjs'), onError: 'report', trialId: 'bad', backend: 'wasm' }, recs);
    expect(r.status).toBe('failed');
    expect(r.error?.message).toBe('boom in the model factory');
    expect(r.drained).toBe(recs.length);
    expect(r.history).toEqual([]);
    expect(r.backend?.name).toBe('wasm');
  });

  it("onError 'throw' (default): setup rejects with the factory's error", async () => {
    await expect(new Trainer().setup({ module: fx('failing-model.mjs'), backend: 'wasm' })).rejects.toThrow('boom in the model factory');
  });

  it("onError 'report': a bad record mid-stream fails the trial, not the caller", async () => {
    const t = new Trainer();
    await t.setup({ module: MODEL, onError: 'report', backend: 'wasm' });
    await t.run({ xs: { data: new Float32Array(10), shape: [2, 8] }, ys: { data: new Float32Array(2), shape: [2] } });
    await t.run({ epochEnd: 1 });
    const r = await t.teardown();
    expect(r.status).toBe('failed');
    expect(r.error).toMatchObject({ code: 'ERR_TRAINER_RECORD' });
    expect(r.error!.message).toMatch(/shape \[2, 8\] has 16 elements, data has 10/);
    expect(r.drained).toBe(1);
  });

  it('rejects records that are neither batches nor markers', async () => {
    const t = new Trainer();
    await t.setup({ module: MODEL, backend: 'wasm' });
    await expect(t.run({ hello: 1 })).rejects.toMatchObject({ code: 'ERR_TRAINER_RECORD' });
    const r = await t.teardown();
    expect(r.status).toBe('failed');
  });

  it('names the exports when the module has no factory', async () => {
    await expect(new Trainer().setup({ module: MODEL, factory: 'notAFactory', backend: 'wasm' })).rejects.toMatchObject({
      code: 'ERR_TRAINER_MODULE',
      message: expect.stringContaining('createModel, createUncompiled'),
    });
    await expect(new Trainer().setup({ module: fx('missing.mjs'), backend: 'wasm' })).rejects.toMatchObject({ code: 'ERR_TRAINER_MODULE' });
  });

  it('validates options', async () => {
    await expect(new Trainer().setup({ module: '' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(new Trainer().setup({ module: MODEL, maxEpochs: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    const t = new Trainer();
    await expect(t.run({ epochEnd: 1 })).rejects.toMatchObject({ code: 'ERR_TRAINER_STATE' });
  });

  it('does not leave files when not asked to save', () => {
    expect(existsSync(join(tmp, 'model-b'))).toBe(false);
  });
});
