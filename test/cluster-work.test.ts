// Work queue and agents on a real nats-server: two agents (child processes) run 6 trial-like items,
// one agent is SIGKILLed mid-item, every result arrives exactly once, the killed item resumes from
// its checkpoint elsewhere; re-submitting re-attaches; failures are results; projects are isolated;
// `cluster status` shows agents and work.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, WorkQueue, clusterStatus, submitJob, runJob, type WorkEvent, type WorkSpec } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, runClusterCli, spawnAgent } from './helpers/cluster-agents.js';

const work = join(repoRoot, 'test', 'helpers', 'cluster-work.ts');
let server: TestServer;
const dirs: string[] = [];

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

const agentArgs = (project: string, extra: string[] = []) => ['--nats', server.url, '--project', project, '--slots', '1', '--ack-wait', '3', '--heartbeat', '1', '--idle-exit', '60', ...extra];
const waitFor = async (what: string, cond: () => boolean | Promise<boolean>, ms = 60_000, detail?: () => string) => {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${detail ? `; ${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('work queue and agents', () => {
  it('two agents run 6 trials; one is SIGKILLed mid-trial; all 6 results arrive exactly once, the killed trial resumes from its checkpoint', async () => {
    const project = 'sweep-kill';
    const log = mkdtempSync(join(tmpdir(), 'rp-work-'));
    dirs.push(log);
    const specs: WorkSpec[] = [1, 2, 3, 4, 5, 6].map((x) => ({ run: `${work}#trial`, payload: { x, epochs: 5, ms: 300, log }, label: `trial-${x}` }));
    const a = spawnAgent('agent-a', agentArgs(project));
    const b = spawnAgent('agent-b', agentArgs(project));
    const events: WorkEvent[] = [];
    const job = await submitJob({ servers: server.url, project }, specs, { name: 'kill-test', ackWait: 3_000 });
    expect(job.published).toBe(6);
    const done = job.wait({ onEvent: (e) => events.push(e), timeout: 120_000 });
    // Kill agent-a once it has checkpointed an epoch of some trial (mid-trial).
    await waitFor('agent-a to checkpoint', () => events.some((e) => e.agent === 'agent-a' && e.type === 'checkpoint'));
    const victim = events.find((e) => e.agent === 'agent-a' && e.type === 'checkpoint')!.id;
    a.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');
    const results = await done;
    await job.close();

    expect(results.map((r) => r.status)).toEqual(Array(6).fill('ok'));
    expect(results.map((r) => (r.value as { square: number }).square)).toEqual([1, 4, 9, 16, 25, 36]);
    expect(results.map((r) => (r.value as { acc: number }).acc)).toEqual([1, 2, 3, 4, 5, 6].map((x) => 5 * x));
    // The killed trial finished on agent-b, on a later delivery, resuming after its last checkpoint.
    const killed = results.find((r) => r.id === victim)!;
    expect(killed.agent).toBe('agent-b');
    expect(killed.attempt).toBeGreaterThanOrEqual(2);
    expect((killed.value as { resumedFrom: number }).resumedFrom).toBeGreaterThanOrEqual(1);
    // It started twice (log lines), but there is one result per trial: the results bucket holds 6 values, each written once.
    const starts = readFileSync(join(log, `${victim}.log`), 'utf8').trim().split('\n');
    expect(starts.length).toBeGreaterThanOrEqual(2);
    expect(starts[0]).toMatch(/^agent-a attempt 1 from 0$/);
    const conn = await ClusterConnection.open({ servers: server.url, project });
    const kvStream = await conn.jsm.streams.info(`KV_${conn.names.bucket('results')}`);
    expect(kvStream.state.messages).toBe(6);
    // Nothing left in the work queue.
    const q = await WorkQueue.open(conn);
    expect(await q.counts()).toEqual({ queued: 0, running: 0 });
    await conn.close();
    expect(readdirSync(log).length).toBe(6);
    // Per-epoch metrics streamed back for every trial.
    for (const r of results) expect(events.filter((e) => e.id === r.id && e.type === 'progress').length).toBeGreaterThanOrEqual(5);
    b.kill('SIGTERM');
    expect(await b.exited).toBe(0);
  }, 150_000);

  it('submitting the same work again re-attaches to it instead of starting over', async () => {
    const project = 'reattach';
    const specs: WorkSpec[] = [10, 20, 30].map((x) => ({ run: `${work}#trial`, payload: { x, epochs: 2, ms: 50 } }));
    const opts = { servers: server.url, project };
    // The submitter "dies" after publishing (no agent yet): submitting again publishes nothing.
    const first = await submitJob(opts, specs, { name: 'again' });
    await first.close();
    const second = await submitJob(opts, specs, { name: 'again' });
    expect(second.id).toBe(first.id);
    expect(second.published).toBe(0);
    expect(second.reattached).toBe(3);
    expect([...(await second.states()).values()]).toEqual(['queued', 'queued', 'queued']);
    const agent = spawnAgent('agent-r', agentArgs(project, ['--idle-exit', '2']));
    const results = await second.wait({ timeout: 60_000 });
    await second.close();
    expect(results.map((r) => (r.value as { square: number }).square)).toEqual([100, 400, 900]);
    // Everything done: a third submit runs nothing and returns the same results at once.
    const third = await submitJob(opts, specs, { name: 'again' });
    expect(third.published).toBe(0);
    const again = await third.wait({ timeout: 10_000 });
    await third.close();
    expect(again.map((r) => r.finishedAt)).toEqual(results.map((r) => r.finishedAt));
    expect(await agent.exited).toBe(0); // --idle-exit
  }, 120_000);

  it('a failing item (an error, a timeout) is a failed result, not retried; retryFailed runs it again', async () => {
    const project = 'fails';
    const opts = { servers: server.url, project };
    const agent = spawnAgent('agent-f', agentArgs(project, ['--idle-exit', '3']));
    const specs: WorkSpec[] = [
      { run: `${work}#fails`, payload: { why: 'test' } },
      { run: `${work}#burn`, payload: { n: 1000, seed: 1 } },
      { run: `${work}#nap`, payload: { ms: 30_000, i: 0 }, timeout: 0.5 },
    ];
    const results = await runJob(opts, specs, { name: 'f', timeout: 60_000 });
    expect(results[2]!.status).toBe('failed');
    expect(results[2]!.error).toMatchObject({ code: 'ERR_WORK_TIMEOUT' });
    expect(results[2]!.seconds).toBeLessThan(5);
    expect(results[0]!.status).toBe('failed');
    expect(results[0]!.error?.message).toBe('failing on purpose: test');
    expect(results[0]!.attempt).toBe(1);
    expect(results[1]!.status).toBe('ok');
    const retried = await submitJob(opts, specs.slice(0, 2), { name: 'f', retryFailed: true });
    expect(retried.published).toBe(1);
    const again = await retried.wait({ timeout: 60_000 });
    await retried.close();
    expect(again[0]!.status).toBe('failed');
    expect(again[0]!.finishedAt > results[0]!.finishedAt).toBe(true);
    await agent.exited;
  }, 120_000);

  it('two projects on one server do not see or consume each other\'s work', async () => {
    const a = { servers: server.url, project: 'team-a' }, b = { servers: server.url, project: 'team-b' };
    const agentA = spawnAgent('agent-ta', agentArgs('team-a', ['--idle-exit', '3']));
    const jobB = await submitJob(b, [{ run: `${work}#burn`, payload: { n: 10, seed: 2 } }], { name: 'b' });
    const resultsA = await runJob(a, [{ run: `${work}#burn`, payload: { n: 10, seed: 3 } }], { name: 'a', timeout: 60_000 });
    expect(resultsA[0]!.agent).toBe('agent-ta');
    await agentA.exited;
    // team-b's item was not taken by team-a's agent: still queued, and team-b sees no agent and none of team-a's jobs.
    const sb = await clusterStatus(b);
    expect(sb.agents).toEqual([]);
    expect(sb.work).toEqual({ queued: 1, running: 0, done: 0, failed: 0 });
    expect(sb.jobs.map((j) => j.name)).toEqual(['b']);
    const sa = await clusterStatus(a);
    expect(sa.jobs.map((j) => j.name)).toEqual(['a']);
    expect(sa.work.done).toBe(1);
    expect([...(await jobB.states()).values()]).toEqual(['queued']);
    await jobB.close();
  }, 120_000);

  it('cluster status shows live agents with capacity and running work', async () => {
    const project = 'status';
    const agent = spawnAgent('agent-s', agentArgs(project, ['--slots', '2', '--idle-exit', '30', '--grace', '0']));
    // 30 s: still running after two CLI runs on a loaded machine; SIGINT ends it long before.
    const job = await submitJob({ servers: server.url, project }, [{ run: `${work}#trial`, payload: { x: 7, epochs: 150, ms: 200 }, label: 'long' }], { name: 's' });
    await waitFor('the item to run', async () => (await job.states()).get(job.items[0]!.id) === 'running', 60_000, () => `agent output: ${agent.output() || '(none)'}`);
    const r = await runClusterCli(['cluster', 'status', '--nats', server.url, '--project', project, '--json']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.agents.map((x: { name: string }) => x.name)).toEqual(['agent-s']);
    expect(s.agents[0].slots).toBe(2);
    expect(s.agents[0].running.map((x: { label: string }) => x.label)).toEqual(['long']);
    expect(s.work.running).toBe(1);
    expect(s.jobs[0]).toMatchObject({ name: 's', items: 1, running: 1, done: 0 });
    const text = await runClusterCli(['cluster', 'status', '--nats', server.url, '--project', project]);
    expect(text.stdout).toContain('agent-s');
    expect(text.stdout).toMatch(/1 running/);
    // Ctrl-C: the agent gives the running item back at once (grace 0) and leaves the status.
    agent.kill('SIGINT');
    expect(await agent.exited).toBe(0);
    const after = await clusterStatus({ servers: server.url, project });
    expect(after.agents).toEqual([]);
    expect(after.work.queued + after.work.running).toBe(1);
    await job.close();
  }, 120_000);

  it('GPU items go only to agents with GPUs, each bound to its own devices', async () => {
    const project = 'gpus';
    const cpuOnly = spawnAgent('agent-cpu', agentArgs(project, ['--slots', '4', '--idle-exit', '4']));
    const gpuAgent = spawnAgent('agent-gpu', agentArgs(project, ['--gpus', '0,1', '--slots', '1', '--idle-exit', '4']));
    const specs: WorkSpec[] = [...Array(4).keys()].map((i) => ({ run: `${work}#gpuProbe`, payload: { ms: 400, i }, gpus: 1 }));
    const results = await runJob({ servers: server.url, project }, specs, { name: 'g', timeout: 60_000 });
    const values = results.map((r) => r.value as { gpus: number[]; cuda: string; agent: string });
    expect(values.every((v) => v.agent === 'agent-gpu')).toBe(true);
    for (const v of values) {
      expect(v.gpus).toHaveLength(1);
      expect(v.cuda).toBe(String(v.gpus[0]));
    }
    // Both devices were used, and never by two items at once (checked through the start/finish times).
    expect(new Set(values.map((v) => v.gpus[0]))).toEqual(new Set([0, 1]));
    for (const g of [0, 1]) {
      const spans = results.filter((_, i) => values[i]!.gpus[0] === g).map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const).sort((a, b) => a[0] - b[0]);
      for (let k = 1; k < spans.length; k++) expect(spans[k]![0]).toBeGreaterThanOrEqual(spans[k - 1]![1] - 50);
    }
    await Promise.all([cpuOnly.exited, gpuAgent.exited]);
  }, 120_000);
});
