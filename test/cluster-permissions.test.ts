// docs/cluster-accounts.conf, loaded unchanged into a real nats-server: the administrator creates
// the project once (`ringpipe cluster init`); the submitter's user submits work, sees results and
// progress, runs a JSON pipeline on the cluster and answers trials' questions, but cannot pull work
// or act as an agent; the agent's user runs the work (results, progress, checkpoints, models, the
// shared cache) but cannot publish work items, directly or through a stream of its own.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, WorkQueue, clusterStatus, runJob, submitJob, type ClusterOptions, type WorkEvent } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, runClusterCli, spawnAgent } from './helpers/cluster-agents.js';
import { cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

const PASSWORDS = { admin: 'adm-Pa55word-1', submit: 'sub-Pa55word-2', agent: 'agt-Pa55word-3' };
const work = join(repoRoot, 'test', 'helpers', 'cluster-work.ts');
let server: TestServer;

beforeAll(async () => {
  server = await startServer({
    include: [join(repoRoot, 'docs', 'cluster-accounts.conf')],
    env: { RINGPIPE_ADMIN_PASSWORD: PASSWORDS.admin, RINGPIPE_SUBMIT_PASSWORD: PASSWORDS.submit, RINGPIPE_AGENT_PASSWORD: PASSWORDS.agent },
    login: { user: 'vision-admin', password: PASSWORDS.admin },
  });
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  cleanupProjects();
}, 60_000);

const as = (who: keyof typeof PASSWORDS): ClusterOptions => ({ servers: server.url, project: 'vision', user: `vision-${who}`, password: PASSWORDS[who], timeout: 5_000 });
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e) => e as Error & { code: string });
const flags = (who: keyof typeof PASSWORDS) => ['--nats', server.url, '--project', 'vision', '--user', `vision-${who}`];

describe('docs/cluster-accounts.conf', () => {
  it('nothing runs before the administrator creates the project, and the error says so', async () => {
    const err = await failure(submitJob(as('submit'), [{ run: `${work}#burn`, payload: { n: 1, seed: 1 } }], { name: 'early' }));
    expect(err.code).toBe('ERR_CLUSTER_AUTH');
    expect(err.message).toMatch(/Permissions Violation.*This user may not create or change RP_vision_\w+: .*ringpipe cluster init --project vision/);
    const agent = await runClusterCli(['agent', ...flags('agent'), '--idle-exit', '1'], { NATS_PASSWORD: PASSWORDS.agent });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/ringpipe cluster init/);
  }, 60_000);

  it('the administrator creates it; an agent runs what the submitter submits; the submitter reads it all', async () => {
    const logFrom = server.log().length;
    const init = await runClusterCli(['cluster', 'init', ...flags('admin'), '--link', 'prep', '--json'], { NATS_PASSWORD: PASSWORDS.admin });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(init.stdout).created).toEqual([
      'RP_vision_WORK', 'RP_vision_EVENTS', 'KV_rp_vision_results', 'KV_rp_vision_jobs', 'KV_rp_vision_agents', 'KV_rp_vision_cache',
      'OBJ_rp_vision_checkpoints', 'OBJ_rp_vision_models', 'OBJ_rp_vision_artifacts', 'RP_vision_LINK_prep',
    ]);
    // The agent's checkout holds a JSON pipeline; the test helpers are allowed besides.
    const p = makeProject({
      params: { type: 'parameters', n: 3 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      grid: { type: 'grid_search_parameters', factor: [2, 3] },
      scaled: { run: './steps.mjs#times', inputs: ['numbers', 'grid'] },
    });
    const agent = spawnAgent('perm-agent', [...flags('agent'), '--slots', '2', '--heartbeat', '1', '--idle-exit', '60', '--root', p.dir, '--allow-root', repoRoot], { NATS_PASSWORD: PASSWORDS.agent });

    // Trials' questions come to the submitter (core NATS request/reply), who answers.
    const submitter = await ClusterConnection.open({ ...as('submit'), name: 'perm-submitter' });
    const sub = submitter.nc.subscribe('rp.vision.control.perm', { callback: (_e, m) => m.respond('keep going') });
    const events: WorkEvent[] = [];
    const results = await runJob(submitter, [
      { run: `${work}#trial`, payload: { x: 3, epochs: 2, ms: 50 } },
      { run: `${work}#probe`, payload: { subject: 'rp.vision.control.perm' } },
      { run: `${work}#fails`, payload: { why: 'on purpose' } },
    ], { name: 'perm', root: p.dir, timeout: 60_000, onEvent: (e) => events.push(e) });
    sub.unsubscribe();
    expect(results.map((r) => r.status), JSON.stringify(results.map((r) => r.error))).toEqual(['ok', 'ok', 'failed']);
    expect(results[0]!.value).toMatchObject({ square: 9, acc: 6 });
    expect(results[1]!.value).toEqual({ answer: 'keep going' });
    expect(events.filter((e) => e.type === 'progress')).toHaveLength(2);
    expect(events.filter((e) => e.type === 'checkpoint')).toHaveLength(2);
    // The submitter runs the failed item again (clears its result), and sees the cluster's status.
    const again = await runJob(submitter, [{ run: `${work}#fails`, payload: { why: 'on purpose' } }], { name: 'perm', root: p.dir, retryFailed: true, timeout: 60_000 });
    expect(again[0]!.finishedAt > results[2]!.finishedAt).toBe(true);
    const status = await clusterStatus(submitter);
    expect(status.agents.map((a) => a.name)).toEqual(['perm-agent']);
    await submitter.close();

    // A JSON pipeline, from the submitter's CLI: branches on the agent, artifacts through the shared cache.
    const pw = join(p.dir, 'submit-password');
    writeFileSync(pw, PASSWORDS.submit);
    const r = await cli(['run', p.file, '--cluster', server.url, '--project', 'vision', '--user', 'vision-submit', '--password-file', pw, '--root', p.dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(parseJsonOutput(r.stdout).stages.map((s: { status: string }) => s.status)).toEqual(['computed', 'computed', 'computed']);
    agent.kill('SIGTERM');
    expect(await agent.exited, agent.output()).toBe(0);
    // All of that within the users' permissions: the server refused nothing.
    expect(server.log().slice(logFrom).split('\n').filter((l) => /Permissions Violation/.test(l))).toEqual([]);
  }, 120_000);

  it("the agent's user cannot publish work: not as a job, not directly, not through a stream of its own", async () => {
    const err = await failure(submitJob(as('agent'), [{ run: `${work}#burn`, payload: { n: 1, seed: 2 } }], { name: 'by-agent' }));
    expect(err.code).toBe('ERR_CLUSTER_AUTH');
    expect(err.message).toMatch(/Permissions Violation for Publish to "?\$KV\.rp_vision_jobs/);
    const conn = await ClusterConnection.open(as('agent'));
    try {
      const direct = await failure(conn.js.publish('rp.vision.work.cpu.0123456789', JSON.stringify({ id: 'x', job: 'y', spec: { run: 'data:,#x' } })));
      expect(conn.error(direct, 'publish').code).toBe('ERR_CLUSTER_AUTH');
      const republish = await failure(conn.jsm.streams.add({ name: 'EVIL', subjects: ['evil.>'], republish: { src: 'evil.>', dest: 'rp.vision.work.cpu.evil' } }));
      expect(conn.error(republish, 'create').code).toBe('ERR_CLUSTER_AUTH');
      const purge = await failure(conn.jsm.streams.purge('RP_vision_WORK'));
      expect(conn.error(purge, 'purge').code).toBe('ERR_CLUSTER_AUTH');
    } finally {
      await conn.close();
    }
    // Nothing reached the work queue.
    const admin = await ClusterConnection.open(as('admin'));
    expect(await (await WorkQueue.open(admin)).counts()).toEqual({ queued: 0, running: 0 });
    await admin.close();
  }, 60_000);

  it("the submitter's user cannot pull work or act as an agent", async () => {
    const conn = await ClusterConnection.open(as('submit'));
    try {
      // An item waits in the queue (no agent runs now).
      const job = await submitJob(conn, [{ run: `${work}#burn`, payload: { n: 1, seed: 3 } }], { name: 'waiting' });
      expect(job.published).toBe(1);
      const consumer = await conn.js.consumers.get(WorkQueue.names(conn).work, 'cpu');
      const pulled: string[] = [];
      const asked = Date.now();
      // The server refuses the pull request; the client hears of it apart from the fetch, which only times out.
      await (async () => {
        for await (const m of await consumer.fetch({ max_messages: 1, expires: 2_000 })) pulled.push(m.subject);
      })().catch(() => undefined);
      expect(pulled).toEqual([]);
      const denied = conn.permissionDenied('$JS.API.CONSUMER.MSG.NEXT.RP_vision_WORK.', asked, 'cannot pull work');
      expect(denied?.code).toBe('ERR_CLUSTER_AUTH');
      expect(denied?.message).toMatch(/Permissions Violation for Publish to "?\$JS\.API\.CONSUMER\.MSG\.NEXT\.RP_vision_WORK\.cpu/);
      expect([...(await job.states()).values()]).toEqual(['queued']);
      await job.close();
    } finally {
      await conn.close();
    }
    const agent = await runClusterCli(['agent', ...flags('submit'), '--idle-exit', '5'], { NATS_PASSWORD: PASSWORDS.submit });
    expect(agent.code).toBe(1);
    expect(agent.stderr).toMatch(/Permissions Violation for Publish to "?\$KV\.rp_vision_agents/);
  }, 60_000);

  it('an agent whose user may not pull work stops at once, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rp-perm-'));
    try {
      const conf = join(dir, 'no-pull.conf');
      writeFileSync(conf, `accounts { P: { jetstream: enabled, users: [
        { user: admin, password: "adm-9" }
        { user: half, password: "half-9", permissions: { publish: { allow: [">"], deny: ["$JS.API.CONSUMER.MSG.NEXT.RP_half_WORK.>"] } } }
      ] } }\n`);
      const s = await startServer({ include: [conf], login: { user: 'admin', password: 'adm-9' } });
      const init = await runClusterCli(['cluster', 'init', '--nats', s.url, '--project', 'half', '--user', 'admin'], { NATS_PASSWORD: 'adm-9' });
      expect(init.code, init.stderr).toBe(0);
      const agent = await runClusterCli(['agent', '--nats', s.url, '--project', 'half', '--user', 'half', '--idle-exit', '30'], { NATS_PASSWORD: 'half-9' });
      expect(agent.code).toBe(1);
      expect(agent.stderr).toMatch(/error: cannot pull work \(server .*\): Permissions Violation for Publish to "?\$JS\.API\.CONSUMER\.MSG\.NEXT\.RP_half_WORK\.cpu/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
