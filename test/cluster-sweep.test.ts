// A distributed sweep on a real nats-server: the sweep's trials run on two agents (child
// processes, trainer processes on tfjs wasm); one agent is SIGKILLed mid-trial; its trial resumes on
// the other agent from its last epoch checkpoint; all 6 trials complete, each result recorded once;
// the submitter shows the same live lines (each epoch once) and writes the same results (JSON, CSV,
// chart, best model) as a local sweep; running it again re-attaches.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, clusterDataPath, type WorkEvent } from '../src/cluster/index.js';
import { codeRoots } from '../src/cluster/trust.js';
import { runSweepItem, type SweepItemResult } from '../src/cluster/sweep.js';
import type { EpochReport } from '../src/train/trainer.js';
import { sweep } from '../src/sweep/sweep.js';
import { cleanupStaleRegions } from '../src/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from './helpers/cluster-agents.js';

const fx = (f: string) => resolve(repoRoot, 'test/fixtures/train', f);
const trainer = {
  module: fx('blobs-model.mjs'),
  validation: { module: fx('blobs.mjs'), args: { n: 90, seed: 2 } },
  test: { module: fx('blobs.mjs'), args: { n: 90, seed: 3 } },
};
const N = 240, EPOCHS = 5;
let server: TestServer;
const tmp = mkdtempSync(join(tmpdir(), 'rp-csweep-'));

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await killAgents();
  // The SIGKILLed agent's trainer rings: removed as the engine does for killed owners.
  cleanupStaleRegions();
  await stopAll();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('distributed sweep', () => {
  it('6 trials on two agents, one SIGKILLed mid-trial: its trial resumes from its checkpoint; every trial completes once; same table and files as a local sweep; a re-run re-attaches', async () => {
    const project = 'csweep';
    const agentArgs = ['--nats', server.url, '--project', project, '--slots', '1', '--ack-wait', '4', '--heartbeat', '1', '--idle-exit', '120'];
    const a = spawnAgent('sw-a', agentArgs);
    const b = spawnAgent('sw-b', agentArgs);
    const events: WorkEvent[] = [];
    let killed: string | undefined;
    const data = clusterDataPath({
      servers: server.url,
      project,
      build: `${join(repoRoot, 'test/helpers/cluster-sweep.ts')}#build`,
      args: { n: N, epochs: EPOCHS, batchSize: 40 },
      ackWait: 4_000,
      timeout: 240_000,
      onWorkEvent: (e) => {
        events.push(e);
        // SIGKILL agent sw-a once it has checkpointed an epoch of a trial: mid-trial.
        if (!killed && e.agent === 'sw-a' && e.type === 'checkpoint') {
          killed = e.id;
          a.kill('SIGKILL');
        }
      },
    });
    const lines: string[] = [];
    const out = join(tmp, 'out');
    const grid = { units: [8, 16, 24], learningRate: [0.01, 0.03] };
    const r = await sweep({ grid, trainer, data, metric: 'val_acc', concurrency: 6, out, console: 'lines', consoleStream: { write: (s: string) => void lines.push(s) } });

    expect(killed).toBeDefined();
    expect(await a.exited).toBe('SIGKILL');
    expect(r.trials).toHaveLength(6);
    for (const t of r.trials) {
      expect(t.state).toBe('completed');
      expect(t.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5]);
      expect(t.history[0]!.samples).toBe(N);
      expect(t.backend).toBe('wasm');
      expect(t.testAccuracy).toBeGreaterThan(0.5);
    }
    // The killed item was redelivered and finished on sw-b.
    const starts = events.filter((e) => e.id === killed && e.type === 'started');
    expect(starts.map((e) => e.agent)).toEqual(expect.arrayContaining(['sw-a', 'sw-b']));
    const conn = await ClusterConnection.open({ servers: server.url, project });
    const result = await (await conn.kv('results')).get(killed!).then((e) => e!.json<{ agent: string; attempt: number; value: SweepItemResult }>());
    expect(result).toMatchObject({ agent: 'sw-b' });
    expect(result.attempt).toBeGreaterThanOrEqual(2);

    // The killed trial resumed after its last checkpointed epoch: the last attempt trained only the
    // epochs after it (passing over the stream's earlier ones) and kept the first attempt's reports.
    const [trial] = result.value.results;
    const killedEpochs = (attempt: (a: number) => boolean) =>
      events.filter((e) => e.id === killed && e.type === 'progress' && attempt(e.attempt) && (e.data as { kind: string }).kind === 'epoch').map((e) => (e.data as { report: EpochReport }).report);
    const checkpointed = events
      .filter((e) => e.id === killed && e.type === 'checkpoint' && e.attempt === 1)
      .map((e) => (e.data as { epochs: Record<string, number | 'done'> }).epochs[trial!.trialId!]);
    expect(checkpointed.length).toBeGreaterThanOrEqual(1);
    const lastCheckpointed = Math.max(...checkpointed.map(Number));
    const first = killedEpochs((a) => a === 1);
    const resumedFrom = trial!.resumed!.epoch;
    // (a checkpoint can be stored just before the kill, its event not sent: resumedFrom >= what was seen)
    expect(resumedFrom).toBeGreaterThanOrEqual(lastCheckpointed);
    expect(resumedFrom).toBeGreaterThanOrEqual(1);
    expect(resumedFrom).toBeLessThanOrEqual(Math.max(...first.map((r) => r.epoch)));
    expect(killedEpochs((a) => a === result.attempt).map((r) => r.epoch)).toEqual(Array.from({ length: EPOCHS - resumedFrom }, (_, i) => resumedFrom + 1 + i));
    expect(trial!.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4, 5]);
    expect(trial!.history.slice(0, resumedFrom)).toEqual(first.slice(0, resumedFrom));
    expect(trial!.resumed!.skipped).toBe(resumedFrom * (N / 40 + 1)); // batches + marker of each epoch done
    expect(trial!.samples).toBe(EPOCHS * N);
    // The other items ran once, from epoch 1.
    const kv = await conn.kv('results');
    for await (const key of await kv.keys()) {
      if (key !== killed) expect((await kv.get(key))!.json<{ value: SweepItemResult }>().value.results[0]!.resumed).toBeUndefined();
    }
    // Each item's result recorded once.
    expect((await conn.jsm.streams.info(`KV_${conn.names.bucket('results')}`)).state.messages).toBe(6);
    await conn.close();
    // The same live lines and files as a local sweep.
    const text = lines.join('');
    for (const t of r.trials) {
      for (let e = 1; e <= EPOCHS; e++) expect(text.split(`[trial ${t.id}] epoch ${e} loss`)).toHaveLength(2); // each epoch shown once
    }
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.trials).toHaveLength(6);
    expect(json.best.id).toBe(r.best!.id);
    expect(readFileSync(join(out, 'history.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + 6 * EPOCHS);
    expect(existsSync(join(out, 'best-model', 'model.json'))).toBe(true);
    expect(existsSync(join(out, 'best-model', 'weights.bin'))).toBe(true);

    // Running the same sweep again re-attaches: nothing runs again, the same results come back.
    const rerun = clusterDataPath({ servers: server.url, project, build: `${join(repoRoot, 'test/helpers/cluster-sweep.ts')}#build`, args: { n: N, epochs: EPOCHS, batchSize: 40 }, timeout: 30_000 });
    const again = await sweep({ grid, trainer, data: rerun, metric: 'val_acc', concurrency: 6, out, console: 'none' });
    expect(again.trials.map((t) => t.history.map((h) => h.metrics.val_acc))).toEqual(r.trials.map((t) => t.history.map((h) => h.metrics.val_acc)));
    expect(again.trials.map((t) => t.pid)).toEqual(r.trials.map((t) => t.pid));
    b.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  }, 300_000);

  it('a redelivered item does not run again the trials whose result an earlier attempt saved', async () => {
    const saved: SweepItemResult['results'][number] = {
      trialId: 't-done', params: { units: 8 }, status: 'completed', pid: 123, history: [], samples: 1200, steps: 30, drained: 0, seconds: 1,
    };
    const ctx: Parameters<typeof runSweepItem>[1] = {
      id: 'item', label: 'item', job: 'job', attempt: 2, agent: 'test', gpus: [], env: {}, root: repoRoot, roots: codeRoots(repoRoot),
      signal: new AbortController().signal,
      cluster: undefined as never, // nothing runs: no connection needed
      report: async () => undefined,
      checkpoint: {
        save: async () => undefined,
        load: async <T>() => ({ value: { trials: { 't-done': { kind: 'result', result: saved } } } as T, info: {}, attempt: 1, agent: 'gone', savedAt: '' }),
      },
      log: () => undefined,
    };
    const out = await runSweepItem(
      {
        build: `${join(repoRoot, 'test/helpers/cluster-sweep.ts')}#build`, isolation: 'process', wave: 0, control: 'unused',
        // A trainer that would fail at once if it ran.
        trials: [{ trial: { id: 't-done', index: 0, params: { units: 8 } }, trainer: { module: fx('failing-model.mjs') }, saveModel: false }],
      },
      ctx,
    );
    expect(out.results).toEqual([saved]);
  });

  it('early-stopping decisions reach trainers on the agents', async () => {
    const project = 'csweep-stop';
    const agent = spawnAgent('sw-stop', ['--nats', server.url, '--project', project, '--slots', '2', '--idle-exit', '5']);
    const r = await sweep({
      // Learning rate 0 never improves: successive halving stops it at the first rung.
      trials: [{ learningRate: 0.03 }, { learningRate: 0, optimizer: 'sgd' }],
      trainer,
      data: clusterDataPath({ servers: server.url, project, build: `${join(repoRoot, 'test/helpers/cluster-sweep.ts')}#build`, args: { n: N, epochs: 3, batchSize: 40 }, timeout: 120_000 }),
      metric: 'val_loss',
      concurrency: 1, // two waves, one job each: the second trial meets the first one's rung results
      earlyStopping: { rule: 'successive-halving', minEpochs: 1, reductionFactor: 2 },
      console: 'none',
    });
    expect(r.trials[0]!.state).toBe('completed');
    expect(r.trials[1]!.state).toBe('stopped');
    expect(r.trials[1]!.stopReason).toMatch(/successive halving: val_loss .* at rung epoch 1/);
    expect(r.trials[1]!.history).toHaveLength(1);
    expect(await agent.exited).toBe(0);
  }, 180_000);
});
