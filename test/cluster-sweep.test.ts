// A distributed sweep on a real nats-server: the sweep's trials run on two agents (child
// processes, trainer processes on tfjs wasm); one agent is SIGKILLed mid-trial; all 6 trials
// complete, each result recorded once; the submitter shows the same live lines and writes the same
// results (JSON, CSV, chart, best model) as a local sweep; running it again re-attaches.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, clusterDataPath, type WorkEvent } from '../src/cluster/index.js';
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
  it('6 trials on two agents, one SIGKILLed mid-trial: every trial completes once; same table and files as a local sweep; a re-run re-attaches', async () => {
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
        // SIGKILL agent sw-a at its first epoch report: mid-trial.
        if (!killed && e.agent === 'sw-a' && e.type === 'progress' && (e.data as { kind: string }).kind === 'epoch') {
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
    const result = (await conn.kv('results')).get(killed!).then((e) => e!.json<{ agent: string; attempt: number }>());
    expect(await result).toMatchObject({ agent: 'sw-b' });
    expect((await result).attempt).toBeGreaterThanOrEqual(2);
    // Each item's result recorded once.
    expect((await conn.jsm.streams.info(`KV_${conn.names.bucket('results')}`)).state.messages).toBe(6);
    await conn.close();
    // The same live lines and files as a local sweep.
    const text = lines.join('');
    for (const t of r.trials) expect(text).toContain(`[trial ${t.id}] epoch 5 loss`);
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
