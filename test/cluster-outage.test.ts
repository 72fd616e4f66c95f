// The server goes away during a run. The submitter reports the lost connection and each reconnect
// attempt as they happen (onConnection; warning lines in `ringpipe run --cluster`) and gives up
// after its bound (unreachableTimeout, --unreachable-timeout) with ERR_CLUSTER_UNREACHABLE; a server
// back within the bound lets the run complete, and items that finished (or were still running)
// while it was away are recorded late by their agent instead of running a second time.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ClusterConnection, WorkQueue, clusterDataPath, runJob, type ConnectionEvent, type WorkEvent } from '../src/cluster/index.js';
import type { Wave } from '../src/sweep/sweep.js';
import { startServer, stopAll } from './helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from './helpers/cluster-agents.js';
import { cleanupProjects, cliProcess, makeProject } from './fixtures/config/helpers.js';

const work = join(repoRoot, 'test', 'helpers', 'cluster-work.ts');
const dirs: string[] = [];
afterAll(async () => {
  await killAgents();
  await stopAll();
  cleanupProjects();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}, 60_000);

const agentArgs = (url: string, project: string, extra: string[] = []) => ['--nats', url, '--project', project, '--slots', '4', '--ack-wait', '3', '--heartbeat', '1', '--idle-exit', '60', ...extra];
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e) => e as Error & { code: string });
const waitFor = async (what: string, cond: () => boolean, ms = 60_000) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A directory the items log their starts in (napLog), removed at the end. */
const logDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'rp-outage-'));
  dirs.push(d);
  return d;
};
/** The starts each item logged: `<item id>.log` -> lines. */
const startsIn = (log: string) => Object.fromEntries(readdirSync(log).map((f) => [f, readFileSync(join(log, f), 'utf8').trim().split('\n')]));
/** As a server that restarted without its record of deliveries: the work queue's consumer starts over, and items in flight go out again as new. */
async function forgetDeliveries(url: string, project: string): Promise<void> {
  const conn = await ClusterConnection.open({ servers: url, project });
  await conn.jsm.consumers.delete(WorkQueue.names(conn).work, 'cpu');
  await WorkQueue.open(conn);
  await conn.close();
}

describe('the server goes away during a run', () => {
  it('the submitter reports the lost connection and each reconnect attempt at once, and gives up after its bound', async () => {
    const server = await startServer();
    const project = 'outage-lost';
    const agent = spawnAgent('lost-a', agentArgs(server.url, project));
    const seen: (ConnectionEvent & { at: number })[] = [];
    const work$: WorkEvent[] = [];
    const run = runJob(
      { servers: server.url, project, unreachableTimeout: 4_000, onConnection: (e) => seen.push({ ...e, at: Date.now() }) },
      [{ run: `${work}#nap`, payload: { ms: 120_000, i: 1 } }],
      { name: 'lost', onEvent: (e) => work$.push(e) },
    );
    await waitFor('the item to start', () => work$.some((e) => e.type === 'started'));
    const killedAt = Date.now();
    await server.kill('SIGKILL');
    const err = await failure(run);
    const failedAt = Date.now();
    expect(err.code).toBe('ERR_CLUSTER_UNREACHABLE');
    expect(err.message).toContain(server.url);
    expect(err.message).toMatch(/could not reconnect within 4 s \(\d+ attempts\)/);
    expect(failedAt - killedAt).toBeGreaterThanOrEqual(3_900);
    expect(failedAt - killedAt).toBeLessThan(15_000);
    // Told at once: the loss, then attempts, numbered, each as it happened, then the end.
    const lost = seen.find((e) => e.type === 'disconnected');
    expect(lost, JSON.stringify(seen)).toBeDefined();
    expect(lost!.at - killedAt).toBeLessThan(2_000);
    const attempts = seen.filter((e) => e.type === 'reconnecting') as Extract<ConnectionEvent, { type: 'reconnecting' }>[];
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.map((a) => a.attempt)).toEqual(attempts.map((_, i) => i + 1));
    expect(seen[seen.length - 1]!.type).toBe('unreachable');
    agent.kill('SIGKILL');
  }, 90_000);

  it('`ringpipe run --cluster` prints the lost connection and the attempts, and exits 1 after --unreachable-timeout', async () => {
    const server = await startServer();
    const project = 'outage-cli';
    const p = makeProject({
      params: { type: 'parameters', n: 2 },
      delay: { type: 'parameters', ms: 60_000, markAt: -1 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      grid: { type: 'grid_search_parameters', factor: [2, 3] },
      slowed: { run: './steps.mjs#slow', inputs: ['numbers', 'delay', 'grid'] },
    });
    const agent = spawnAgent('cli-a', agentArgs(server.url, project, ['--root', p.dir]));
    const run = cliProcess(['run', p.file, '--cluster', server.url, '--project', project, '--root', p.dir, '--unreachable-timeout', '3']);
    await waitFor('the agent to run an item', () => /running /.test(agent.output()));
    const killedAt = Date.now();
    await server.kill('SIGKILL');
    const r = await run;
    const exitedAt = Date.now();
    expect(r.code, r.stderr).toBe(1);
    expect(exitedAt - killedAt).toBeLessThan(20_000);
    expect(r.stderr).toMatch(new RegExp(`lost the connection to NATS \\(server ${server.url.replace(/\./g, '\\.')}\\)`));
    expect(r.stderr).toMatch(/reconnecting \(attempt \d+, \d+ s without a server, giving up in \d+ s\)/);
    expect(r.stderr).toMatch(/error: .*could not reconnect within 3 s/);
    agent.kill('SIGKILL');
  }, 90_000);

  it('a distributed sweep logs the lost connection and the attempts, and its wave fails after the bound', async () => {
    const server = await startServer();
    const lines: string[] = [];
    const data = clusterDataPath({ servers: server.url, project: 'outage-sweep', build: `${work}#trial`, unreachableTimeout: 3_000 });
    const wave: Wave = { index: 0, trials: [{ trial: { id: 't1', params: { units: 4 } } as Wave['trials'][number]['trial'], trainer: { module: work }, env: {}, slot: { index: 0, gpu: null } }] };
    // No agent: the item stays queued while the server goes away.
    const running = data.runWave(wave, { ready: () => undefined, epoch: () => undefined as never, log: (l) => lines.push(l) });
    const conn = await ClusterConnection.open({ servers: server.url, project: 'outage-sweep' });
    for (let queued = 0; !queued; await sleep(100)) queued = await WorkQueue.open(conn).then((q) => q.counts()).then((c) => c.queued, () => 0);
    await conn.close();
    await server.kill('SIGKILL');
    const err = await failure(running);
    expect(err.code).toBe('ERR_CLUSTER_UNREACHABLE');
    expect(lines.join('\n')).toMatch(/lost the connection to NATS \(server nats:\/\/127\.0\.0\.1:\d+\): reconnecting/);
    expect(lines.join('\n')).toMatch(/reconnecting \(attempt 1, 0 s without a server, giving up in 3 s\)/);
  }, 60_000);

  it('a server back within the bound: the run completes, and no item whose result could be recorded late runs twice', async () => {
    const server = await startServer();
    const project = 'outage-back';
    const log = logDir();
    // Three slots each: the four items spread over both, and each has room to take a redelivered one.
    const agents = [spawnAgent('back-a', agentArgs(server.url, project, ['--slots', '3'])), spawnAgent('back-b', agentArgs(server.url, project, ['--slots', '3']))];
    await waitFor('both agents to pull', () => agents.every((a) => /pulling work/.test(a.output())));
    const seen: ConnectionEvent[] = [];
    const work$: WorkEvent[] = [];
    // Two items end while the server is away, two after it is back (the ack wait, 3 s, is over by then: JetStream redelivers them all).
    const specs = [3_000, 3_000, 14_000, 14_000].map((ms, i) => ({ run: `${work}#napLog`, payload: { ms, i, log }, label: `nap-${i}` }));
    const run = runJob({ servers: server.url, project, unreachableTimeout: 60_000, onConnection: (e) => seen.push(e) }, specs, { name: 'back', onEvent: (e) => work$.push(e) });
    await waitFor('every item to start', () => new Set(work$.filter((e) => e.type === 'started').map((e) => e.id)).size === 4);
    await server.kill('SIGKILL');
    await sleep(8_000);
    await server.restart();
    const results = await run;
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(seen.map((e) => e.type)).toContain('disconnected');
    expect(seen.map((e) => e.type)).toContain('reconnected');
    // Each item started once: none ran again after the server came back.
    const starts = startsIn(log);
    expect(Object.keys(starts)).toHaveLength(4);
    for (const [f, lines] of Object.entries(starts)) expect(lines, `${f}: ${lines.join(' | ')}\n${agents.map((a) => a.output()).join('\n')}`).toHaveLength(1);
    for (const a of agents) a.kill('SIGTERM');
    expect(await Promise.all(agents.map((a) => a.exited)), agents.map((a) => a.output()).join('\n')).toEqual([0, 0]);
  }, 120_000);

  it('an item handed out again while another agent holds it (a server that lost its record of deliveries) is left to that agent', async () => {
    const server = await startServer();
    const project = 'outage-held';
    const log = logDir();
    const a = spawnAgent('held-a', agentArgs(server.url, project, ['--slots', '2']));
    const work$: WorkEvent[] = [];
    const run = runJob({ servers: server.url, project }, [0, 1].map((i) => ({ run: `${work}#napLog`, payload: { ms: 20_000, i, log } })), { name: 'held', onEvent: (e) => work$.push(e) });
    await waitFor('both items to start on held-a', () => work$.filter((e) => e.type === 'started').length === 2);
    const b = spawnAgent('held-b', agentArgs(server.url, project, ['--slots', '2']));
    await waitFor('held-b to pull', () => /pulling work/.test(b.output()));
    await sleep(3_000); // past held-b's first heartbeat and a second (see the next test for what comes before)
    await forgetDeliveries(server.url, project);
    const results = await run;
    expect(results.map((r) => [r.status, r.agent])).toEqual([['ok', 'held-a'], ['ok', 'held-a']]);
    for (const lines of Object.values(startsIn(log))) expect(lines, b.output()).toHaveLength(1);
    expect(b.output()).toMatch(/delivered again \(attempt 1\), but agent held-a holds it .*: leaving it to that agent/);
    expect(b.output()).not.toMatch(/running /);
    for (const x of [a, b]) x.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  }, 90_000);

  it('an agent that has only just connected waits for the others to announce what they hold before it runs an item', async () => {
    const server = await startServer();
    const project = 'outage-fresh';
    const log = logDir();
    const a = spawnAgent('fresh-a', agentArgs(server.url, project, ['--slots', '1', '--heartbeat', '3']));
    const work$: WorkEvent[] = [];
    const run = runJob({ servers: server.url, project }, [{ run: `${work}#napLog`, payload: { ms: 25_000, i: 0, log } }], { name: 'fresh', onEvent: (e) => work$.push(e) });
    await waitFor('the item to start on fresh-a', () => work$.some((e) => e.type === 'started'));
    // As after a long outage: fresh-a's announcement has expired (it announces again within 3 s), and
    // the item goes out again the moment fresh-b connects.
    // fresh-b waits its heartbeat and a second (7 s) after connecting: room for fresh-a's next announcement.
    const b = spawnAgent('fresh-b', agentArgs(server.url, project, ['--slots', '1', '--heartbeat', '6']));
    await waitFor('fresh-b to pull', () => /pulling work/.test(b.output()));
    const conn = await ClusterConnection.open({ servers: server.url, project });
    await (await WorkQueue.open(conn)).agents.delete('fresh-a');
    await conn.close();
    await forgetDeliveries(server.url, project);
    const [r] = await run;
    expect([r!.status, r!.agent]).toEqual(['ok', 'fresh-a']);
    expect(startsIn(log)[`${r!.id}.log`], b.output()).toHaveLength(1);
    expect(b.output()).not.toMatch(/running /);
    for (const x of [a, b]) x.kill('SIGTERM');
    expect(await Promise.all([a.exited, b.exited])).toEqual([0, 0]);
  }, 90_000);
});
