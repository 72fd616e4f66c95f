// The sweep's own logic with the in-process data path (no processes), and its control channel.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ControlClient, ControlServer } from '../src/sweep/control.js';
import { inProcessDataPath, sweep, type SweepOptions } from '../src/sweep/sweep.js';
import type { EpochReport } from '../src/train/trainer.js';
// @ts-expect-error plain JS fixture
import { batches, blobs } from './fixtures/train/blobs.mjs';

const fx = (f: string) => resolve('test/fixtures/train', f);
const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-sweep-orch-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const train = blobs({ n: 120, seed: 1 });
const base = (epochs: number): Pick<SweepOptions, 'trainer' | 'data' | 'console'> => ({
  trainer: { module: fx('blobs-model.mjs'), validation: blobs({ n: 60, seed: 2 }), backend: 'wasm' },
  data: inProcessDataPath({ stream: () => batches(train, { batchSize: 40, epochs }) }),
  console: 'none',
});

describe('sweep orchestration (in-process data path)', () => {
  it('median stopping ends the weak trial; saveModels all keeps every model and the best', async () => {
    const out = join(tmp, 'median');
    const r = await sweep({
      ...base(3),
      trials: [{ learningRate: 0.03 }, { learningRate: 0.02 }, { learningRate: 0.05 }, { learningRate: 0, optimizer: 'sgd' }],
      metric: 'val_acc',
      earlyStopping: { rule: 'median', graceEpochs: 1, minTrials: 3 },
      out,
      saveModels: 'all',
    });
    expect(r.trials.slice(0, 3).map((t) => t.state)).toEqual(['completed', 'completed', 'completed']);
    const weak = r.trials[3]!;
    expect(weak.state).toBe('stopped');
    expect(weak.stopReason).toMatch(/^median rule/);
    expect(weak.history).toHaveLength(2);
    expect(r.best!.id).not.toBe(weak.id);
    expect(r.best!.modelDir).toBe(join(out, 'best-model'));
    expect(readdirSync(join(out, 'best-model')).sort()).toEqual(['model.json', 'weights.bin']);
    for (const t of r.trials) expect(existsSync(join(out, 'trials', t.id, 'model', 'model.json'))).toBe(true);
    expect(r.files!.chart).toBe(join(out, 'learning-curves.html'));
  });

  it('the best trial by a loss metric is the lowest; default metric is val_loss with validation', async () => {
    const r = await sweep({ ...base(2), grid: { learningRate: [0.0001, 0.05] } });
    expect(r.metric).toBe('val_loss');
    expect(r.mode).toBe('min');
    const lo = Math.min(...r.trials.map((t) => t.score!));
    expect(r.best!.score).toBe(lo);
    expect(r.best!.params).toEqual({ learningRate: 0.05 });
    expect(r.files).toBeUndefined();
  });

  it('a data path failure fails that wave, and the next wave still runs', async () => {
    let wave = 0;
    const r = await sweep({
      ...base(1),
      data: inProcessDataPath({
        *stream() {
          if (wave++ === 0) {
            yield* [...batches(train, { batchSize: 40, epochs: 1 })].slice(0, 2);
            throw new Error('source broke');
          }
          yield* batches(train, { batchSize: 40, epochs: 1 });
        },
      }),
      grid: { units: [4, 8] },
      concurrency: 1,
    });
    expect(r.trials[0]!.state).toBe('failed');
    expect(r.trials[0]!.error!.message).toBe("data path 'in-process' failed: source broke");
    expect(r.trials[1]!.state).toBe('completed');
    expect(r.best!.id).toBe(r.trials[1]!.id);
  });

  it('refuses what cannot work', async () => {
    await expect(sweep({ ...base(1), grid: { a: [1] }, gpus: [0] })).rejects.toThrow(/GPU binding needs trainer processes/);
    await expect(sweep({ ...base(1) })).rejects.toThrow(/exactly one of grid, random or trials/);
    await expect(sweep({ ...base(1), grid: { a: [1] }, trials: [{}] })).rejects.toThrow(/exactly one/);
    await expect(sweep({ ...base(1), grid: { a: [1] }, data: undefined as never })).rejects.toThrow(/data path/);
    await expect(sweep({ ...base(1), grid: { a: [1] }, saveModels: 'some' as 'all' })).rejects.toThrow(/saveModels/);
    await expect(sweep({ ...base(1), grid: { a: [1] }, concurrency: 0 })).rejects.toThrow(/concurrency/);
  });
});

describe('sweep control channel', () => {
  const report = (epoch: number): EpochReport => ({ trialId: 't', epoch, metrics: { loss: 1 }, samples: 1, steps: 1, seconds: 1, samplesPerSec: 1, dataWaitPct: 0, evalSeconds: 0 });

  it('relays readiness, epochs with decisions, and logs; cleans up its socket', async () => {
    const seen: string[] = [];
    const server = await ControlServer.start({
      ready: (id, info) => void seen.push(`ready ${id} ${info.pid}`),
      epoch: async (id, r) => (r.epoch === 2 ? { stop: true, reason: `stop ${id}` } : 'continue'),
      log: (m) => void seen.push(`log ${m}`),
    });
    const client = await ControlClient.connect(server.address, 't1');
    const ctx = client.context();
    ctx.onReady!({ trialId: 't1', pid: 42, backend: {} as never });
    ctx.log!('hello');
    expect(await ctx.onEpoch!(report(1))).toBe('continue');
    expect(await ctx.onEpoch!(report(2))).toEqual({ stop: true, reason: 'stop t1' });
    expect(seen).toEqual(['ready t1 42', 'log hello']);
    await client.close();
    await server.close();
    if (process.platform !== 'win32') expect(existsSync(server.address)).toBe(false);
  });

  it('a missing reply times out to "continue"; a gone server too', async () => {
    const server = await ControlServer.start({ ready() {}, epoch: () => new Promise(() => {}), log() {} });
    const client = await ControlClient.connect(server.address, 't2', { replyTimeoutMs: 50 });
    expect(await client.epoch(report(1))).toBeUndefined();
    await server.close();
    await new Promise((r) => setTimeout(r, 20));
    expect(await client.epoch(report(2))).toBeUndefined();
    await client.close();
    await expect(ControlClient.connect(server.address, 't3')).rejects.toMatchObject({ code: 'ERR_SWEEP_CONTROL' });
  });
});
