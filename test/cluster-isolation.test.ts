// An item that does not stop never keeps running inside an agent, on a real nats-server: past its
// timeout (plus the agent's kill grace) an item that spins synchronously, or one that ignores its
// signal and started a process of its own, is killed with everything it started, recorded as
// failed with ERR_WORK_TIMEOUT, and the agent goes on; the timeout counts from the call of the
// item's function (a slow start is bounded by the agent's start limit); a stopping agent kills what ignores its
// signal and gives it back; the item of a SIGKILLed agent does not outlive it.
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob, submitJob, type WorkEvent, type WorkSpec } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from './helpers/cluster-agents.js';

const work = join(repoRoot, 'test', 'helpers', 'cluster-stubborn.ts');
let server: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'rp-isolation-'));

beforeAll(async () => {
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const agentArgs = (project: string, extra: string[] = []) => ['--nats', server.url, '--project', project, '--slots', '1', '--heartbeat', '1', '--kill-grace', '0.5', ...extra];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
const readMarker = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
const waitFor = async (what: string, cond: () => boolean, ms = 30_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
};
/** The marker file has stopped growing: nothing of the item runs any more. */
const stopsGrowing = async (marker: string) => {
  const before = size(marker);
  await sleep(700);
  expect(size(marker)).toBe(before);
};

describe('items that do not stop', () => {
  it('past its timeout an item is killed with the process it started, recorded as ERR_WORK_TIMEOUT, and the agent runs the next item', async () => {
    const project = 'timeouts';
    const ignoring = join(dir, 'ignore.marker'), spinning = join(dir, 'spin.marker');
    const agent = spawnAgent('agent-t', agentArgs(project, ['--idle-exit', '3']));
    const specs: WorkSpec[] = [
      // 4 s: the child process the item starts must have started (and written) before the kill, on a loaded machine too.
      { run: `${work}#ignore`, payload: { marker: ignoring }, label: 'ignores-signal', timeout: 4 },
      // The timeout counts from the call of the function: it has spun (and written) for 1 s however slow its start.
      { run: `${work}#spin`, payload: { marker: spinning }, label: 'spins', timeout: 1 },
      { run: `${work}#quick`, payload: { x: 7 }, label: 'next' },
    ];
    const results = await runJob({ servers: server.url, project }, specs, { name: 't', timeout: 60_000 });
    for (const [i, r] of results.slice(0, 2).entries()) {
      expect(r.status).toBe('failed');
      expect(r.error?.code).toBe('ERR_WORK_TIMEOUT');
      expect(r.error?.message).toContain(`item ${specs[i]!.label} ran longer than its timeout of ${specs[i]!.timeout} s on agent agent-t`);
      expect(r.seconds).toBeLessThan(12);
    }
    // Both ran (their markers grew, the child process's too) and nothing of them runs now.
    expect(readMarker(ignoring)).toMatch(/c/);
    expect(readMarker(ignoring)).toMatch(/i/);
    expect(size(spinning)).toBeGreaterThan(0);
    await Promise.all([stopsGrowing(ignoring), stopsGrowing(spinning)]);
    // The agent went on: the next item ran after them, in a process of its own.
    expect(results[2]).toMatchObject({ status: 'ok', agent: 'agent-t', value: { x: 7 } });
    expect((results[2]!.value as { pid: number }).pid).not.toBe(agent.process.pid);
    expect(Date.parse(results[2]!.startedAt)).toBeGreaterThanOrEqual(Date.parse(results[1]!.finishedAt) - 50);
    expect(await agent.exited).toBe(0);
  }, 90_000);

  it("an item's timeout counts from the call of its function; its start-up is bounded by the agent's start limit", async () => {
    const slow = join(repoRoot, 'test', 'helpers', 'cluster-slow-start.ts');
    // Loading takes 4 s, more than the 1 s timeout: the item still runs to its result.
    const project = 'slow-start';
    const agent = spawnAgent('agent-l', agentArgs(project, ['--idle-exit', '3']));
    const [r] = await runJob({ servers: server.url, project }, [{ run: `${slow}#quick`, payload: { x: 3 }, label: 'slow-load', timeout: 1 }], { name: 'l', timeout: 60_000 });
    expect(r).toMatchObject({ status: 'ok', value: { x: 3 } });
    expect(r!.seconds).toBeGreaterThan(4);
    expect(await agent.exited).toBe(0);
    // With --start-limit 1 the same item does not get to start: it fails as timed out, saying why.
    const limited = spawnAgent('agent-m', agentArgs('start-limit', ['--idle-exit', '3', '--start-limit', '1']));
    const [f] = await runJob({ servers: server.url, project: 'start-limit' }, [{ run: `${slow}#quick`, payload: { x: 4 }, label: 'slow-load', timeout: 30 }], { name: 'm', timeout: 60_000 });
    expect(f!.status).toBe('failed');
    expect(f!.error?.code).toBe('ERR_WORK_TIMEOUT');
    expect(f!.error?.message).toContain('item slow-load did not start within 1 s on agent agent-m');
    expect(f!.seconds).toBeLessThan(4); // stopped at 1 s (+ the 0.5 s kill grace), before its code had loaded
    expect(await limited.exited).toBe(0);
  }, 90_000);

  it('a stopping agent kills an item that ignores its signal once its grace is over, and gives it back', async () => {
    const project = 'stopping';
    const marker = join(dir, 'stop.marker');
    const agent = spawnAgent('agent-s', agentArgs(project, ['--grace', '0.5']));
    const events: WorkEvent[] = [];
    const job = await submitJob({ servers: server.url, project }, [{ run: `${work}#ignore`, payload: { marker }, label: 'stubborn' }], { name: 's' });
    const watching = new AbortController();
    const waiting = job.wait({ onEvent: (e) => events.push(e), signal: watching.signal }).catch(() => undefined);
    await waitFor('the item to run', () => /c.*i|i.*c/.test(readMarker(marker)));
    const t0 = Date.now();
    agent.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8_000);
    await stopsGrowing(marker);
    await waitFor('the requeued event', () => events.some((e) => e.type === 'requeued'));
    expect([...(await job.states()).values()]).toEqual(['queued']);
    watching.abort();
    await waiting;
    await job.close();
  }, 90_000);

  it('the item of a SIGKILLed agent does not outlive it, even when it spins', async () => {
    const project = 'orphans';
    const marker = join(dir, 'orphan.marker');
    const agent = spawnAgent('agent-k', agentArgs(project));
    const job = await submitJob({ servers: server.url, project }, [{ run: `${work}#spin`, payload: { marker }, label: 'orphan' }], { name: 'k' });
    await waitFor('the item to run', () => size(marker) > 0);
    agent.kill('SIGKILL');
    expect(await agent.exited).toBe('SIGKILL');
    await sleep(1_200); // the item's watchdog looks every 500 ms
    await stopsGrowing(marker);
    await job.close();
  }, 90_000);
});
