// `ringpipe cluster gc` on a real nats-server: a finished job's record, results, events, leftover
// checkpoint and models go (listed first with --dry-run); a job with work in flight is kept, and so
// is a finished job's item that the job in flight also lists; recent jobs are kept by default.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { Agent, ClusterConnection, SharedArtifactStore, WorkQueue, collectClusterGarbage, parseDuration, runJob, submitJob, type WorkSpec } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { repoRoot, runClusterCli } from './helpers/cluster-agents.js';

const work = join(repoRoot, 'test', 'helpers', 'cluster-work.ts');
let server: TestServer;
const local = mkdtempSync(join(tmpdir(), 'rp-gc-'));

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await stopAll();
  rmSync(local, { recursive: true, force: true });
}, 60_000);

const waitFor = async (what: string, cond: () => Promise<boolean>, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

describe('cluster gc', () => {
  it('durations', () => {
    expect(parseDuration('7d')).toBe(7 * 24 * 3600_000);
    expect(parseDuration('90')).toBe(90_000);
    expect(parseDuration('1.5h')).toBe(5400_000);
    expect(parseDuration('7 days')).toBeUndefined();
  });

  it('--dry-run lists a finished job and gc removes its data; a job in flight and the items it lists are kept', async () => {
    const opts = { servers: server.url, project: 'gc' };
    const log: string[] = [];
    onTestFailed(() => console.error(`agent and test log:\n${log.join('\n')}`));
    const step = (what: string) => log.push(`${new Date().toISOString()} [test] ${what}`);
    const agent = await Agent.start({ ...opts, name: 'agent-gc', slots: 1, heartbeat: 500, grace: 0, killGrace: 500, root: repoRoot, log: (l) => log.push(`${new Date().toISOString()} ${l}`) });
    const conn = await ClusterConnection.open(opts);
    try {
      const shared: WorkSpec = { run: `${work}#burn`, payload: { n: 10, seed: 1 }, label: 'shared' };
      const own: WorkSpec = { run: `${work}#burn`, payload: { n: 10, seed: 2 }, label: 'own' };
      step('run the finished job');
      const done = await runJob(conn, [shared, own], { name: 'done-job', timeout: 60_000 });
      expect(done.map((r) => r.status)).toEqual(['ok', 'ok']);
      const [sharedId, ownId] = done.map((r) => r.id) as [string, string];
      // A job in flight: its first item is the finished job's shared one, its second one runs.
      step('submit the busy job');
      const busy = await submitJob(conn, [shared, { run: `${work}#nap`, payload: { ms: 60_000, i: 1 }, label: 'long' }], { name: 'busy-job' });
      await waitFor('the long item to run', async () => (await busy.states()).get(busy.items[1]!.id) === 'running');
      // A checkpoint and a saved model left behind by the finished item (put now: the agent deletes
      // an item's checkpoint after recording its result, and it is done with 'own' once it runs 'long').
      await (await conn.objectStore('checkpoints')).putBlob({ name: ownId }, new Uint8Array(8));
      await (await conn.objectStore('models')).putBlob({ name: `${ownId}/trial-1/model.json` }, new TextEncoder().encode('{}'));

      // By default (7 days) nothing is old enough.
      step('gc --dry-run in this process');
      const recent = await collectClusterGarbage(conn, { dryRun: true });
      expect(recent.jobs).toEqual([]);
      expect(recent.kept).toEqual({ unfinished: 1, recent: 1 });

      step('gc --dry-run, CLI');
      const dry = await runClusterCli(['cluster', 'gc', '--nats', server.url, '--project', 'gc', '--older-than', '0s', '--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('done-job');
      expect(dry.stdout).not.toContain('busy-job');
      expect(dry.stdout).toMatch(/would remove 1 job .*1 result, \d+ events, 1 checkpoint, 1 model file/);
      step('open the queue');
      const queue = await WorkQueue.open(conn);
      expect(await queue.result(ownId)).toBeDefined(); // a dry run removes nothing

      step('gc, CLI');
      const real = await runClusterCli(['cluster', 'gc', '--nats', server.url, '--project', 'gc', '--older-than', '0s', '--json']);
      expect(real.code).toBe(0);
      const report = JSON.parse(real.stdout);
      expect(report.jobs.map((j: { name: string }) => j.name)).toEqual(['done-job']);
      expect(report.removed).toMatchObject({ results: 1, checkpoints: 1, models: 1 });
      expect(report.removed.events).toBeGreaterThan(0);
      expect(report.kept).toEqual({ unfinished: 1, recent: 0 });

      // Gone: the finished job, its own item's result, events, checkpoint and model.
      step('check what is gone');
      expect((await queue.jobs.get(report.jobs[0].id))?.operation).not.toBe('PUT');
      expect(await queue.result(ownId)).toBeUndefined();
      const events = await conn.jsm.streams.info(WorkQueue.names(conn).events, { subjects_filter: '>' });
      expect(events.state.subjects?.[WorkQueue.names(conn).eventSubject(ownId)]).toBeUndefined();
      expect((await (await conn.objectStore('checkpoints')).info(ownId))?.deleted ?? true).toBe(true);
      expect((await (await conn.objectStore('models')).list()).filter((o) => !o.deleted)).toEqual([]);
      // Kept: the job in flight, and the shared item it lists (result and events).
      step('check what is kept');
      expect((await queue.jobs.get(busy.id))?.operation).toBe('PUT');
      expect((await queue.result(sharedId))?.status).toBe('ok');
      expect(events.state.subjects?.[WorkQueue.names(conn).eventSubject(sharedId)]).toBeGreaterThan(0);
      expect([...(await busy.states()).values()]).toEqual(['done', 'running']);
      step('close the busy job');
      await busy.close();
    } finally {
      step('stop the agent');
      await agent.stop();
      await conn.close();
    }
  }, 120_000);

  it('--cache removes old shared-cache artifacts, and only while no work is queued or running', async () => {
    const opts = { servers: server.url, project: 'gc-cache' };
    const store = await SharedArtifactStore.open(opts, { local });
    try {
      const w = await store.create('a'.repeat(64));
      await w.append({ data: { n: 1 } });
      await w.commit({ kind: 'stream', stage: 'prep', branch: null, params: {}, seconds: 0.1 });
      expect((await collectClusterGarbage(opts, { cache: true, dryRun: true })).artifacts).toEqual([]); // younger than 7 days
      const job = await submitJob(opts, [{ run: `${work}#burn`, payload: { n: 1, seed: 3 } }], { name: 'waiting' }); // no agent: queued
      const busy = await collectClusterGarbage(opts, { cache: true, olderThan: 0 });
      expect(busy.cacheSkipped).toMatch(/queued or running/);
      expect(await store.remote('a'.repeat(64))).toBeDefined();
      // The queued item is taken off the queue (purged): nothing in flight now.
      await job.queue.conn.jsm.streams.purge(WorkQueue.names(job.queue.conn).work);
      await job.close();
      const dry = await collectClusterGarbage(opts, { cache: true, olderThan: 0, dryRun: true });
      expect(dry.artifacts.map((a) => a.stage)).toEqual(['prep']);
      expect(await store.remote('a'.repeat(64))).toBeDefined();
      await collectClusterGarbage(opts, { cache: true, olderThan: 0 });
      expect(await store.remote('a'.repeat(64))).toBeUndefined();
    } finally {
      await store.close();
    }
  });
});
