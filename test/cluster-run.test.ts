// The same sweep or JSON pipeline, run on the cluster by one option: `sweep({ cluster })` gives the
// result set of a local sweep; `ringpipe run --cluster` runs a grid pipeline's branches on an agent
// (shared stages once) and leaves the local run's results; what cannot travel or be distributed is
// refused before anything is submitted; an unreachable server is named, its password is not.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterRunError, type WorkEvent } from '../src/cluster/index.js';
import { engineDataPath } from '../src/sweep/engine-data-path.js';
import { inProcessDataPath, sweep, type SweepResult } from '../src/sweep/sweep.js';
import { freePort, startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, repoRoot, spawnAgent } from './helpers/cluster-agents.js';
import { build } from './helpers/cluster-sweep.js';
import { calls, cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

const fx = (f: string) => resolve(repoRoot, 'test/fixtures/train', f);
const trainer = { module: fx('blobs-model.mjs'), validation: { module: fx('blobs.mjs'), args: { n: 60, seed: 2 } } };
const args = { n: 120, epochs: 2, batchSize: 40 };
const grid = { units: [8, 16] };
const PASSWORD = 'run-Pa55word-4242';
let server: TestServer, withPassword: TestServer;
const tmp = mkdtempSync(join(tmpdir(), 'rp-crun-'));
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e) => e as ClusterRunError);

beforeAll(async () => {
  [server, withPassword] = await Promise.all([startServer(), startServer({ auth: { user: 'alice', password: PASSWORD } })]);
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  cleanupProjects();
  rmSync(tmp, { recursive: true, force: true });
}, 60_000);

/** What must agree between a local and a cluster sweep (metrics differ: weights start at random). */
const resultSet = (r: SweepResult) => r.trials.map((t) => ({ id: t.id, params: t.params, state: t.state, epochs: t.history.map((h) => [h.epoch, h.samples]), metrics: Object.keys(t.history[0]!.metrics).sort() }));

describe('sweep({ cluster })', () => {
  it('runs the trials on an agent, with the same results and files as the local sweep', async () => {
    const local = await sweep({ grid, trainer, data: engineDataPath({ build, args }), metric: 'val_acc', concurrency: 2, out: join(tmp, 'local'), console: 'none' });
    const project = 'crun-sweep';
    spawnAgent('crun-a', ['--nats', server.url, '--project', project, '--slots', '2', '--idle-exit', '30']);
    const events: WorkEvent[] = [];
    const lines: string[] = [];
    const remote = await sweep({
      grid, trainer, metric: 'val_acc', out: join(tmp, 'remote'),
      data: engineDataPath({ build, args }),
      cluster: { servers: server.url, project, timeout: 120_000, onWorkEvent: (e) => events.push(e) },
      console: 'lines', consoleStream: { write: (s: string) => void lines.push(s) },
    });
    expect(resultSet(remote)).toEqual(resultSet(local));
    expect(remote.trials.every((t) => t.state === 'completed')).toBe(true);
    // Both trials ran on the agent, at once (the default concurrency of a cluster sweep), shown live.
    expect(events.filter((e) => e.type === 'started').map((e) => e.agent)).toEqual(['crun-a', 'crun-a']);
    expect(lines.join('')).toMatch(/via cluster \(nats:\/\/127\.0\.0\.1:\d+, project crun-sweep\)/);
    for (const t of remote.trials) expect(lines.join('')).toContain(`[trial ${t.id}] epoch 2 loss`);
    for (const f of ['results.json', 'results.csv', 'history.csv', 'learning-curves.html', 'best-model/model.json']) {
      expect(existsSync(join(tmp, 'remote', f)), f).toBe(true);
    }
    const files = ['local', 'remote'].map((d) => JSON.parse(readFileSync(join(tmp, d, 'results.json'), 'utf8')));
    expect(files[1].trials.map((t: { id: string }) => t.id)).toEqual(files[0].trials.map((t: { id: string }) => t.id));
    expect(Object.keys(files[1]).sort()).toEqual(Object.keys(files[0]).sort());
  }, 240_000);

  it('refuses, before connecting, a data builder agents cannot import and trainer settings JSON cannot carry', async () => {
    const cluster = 'nats://127.0.0.1:1';
    const closure = engineDataPath({ build: (graph, wave) => build(graph, wave, args) });
    const e1 = await failure(sweep({ grid, trainer, data: closure, cluster, console: 'none' }));
    expect(e1).toBeInstanceOf(ClusterRunError);
    expect(e1.code).toBe('ERR_CLUSTER_NOT_SHIPPABLE');
    expect(e1.option).toBe('data.build');
    expect(e1.message).toMatch(/option 'cluster'.*not exported.*cluster\.build/);
    const e2 = await failure(sweep({ grid, trainer, data: inProcessDataPath({ stream: () => [] }), cluster, console: 'none' }));
    expect([e2.code, e2.option]).toEqual(['ERR_CLUSTER_NOT_SHIPPABLE', 'cluster.build']);
    const inline = { ...trainer, validation: { xs: new Float32Array(8), ys: new Float32Array(1) } } as unknown as typeof trainer;
    const e3 = await failure(sweep({ grid, trainer: inline, data: engineDataPath({ build, args }), cluster, console: 'none' }));
    expect([e3.code, e3.option]).toEqual(['ERR_CLUSTER_NOT_SHIPPABLE', 'trainer.validation.xs']);
  });
});

describe('ringpipe run --cluster', () => {
  // `slowed` takes long enough that two branch items computing it would overlap (and both call it).
  const gridPipeline = () => ({
    params: { type: 'parameters', n: 4 },
    delay: { type: 'parameters', ms: 150, markAt: -1 },
    numbers: { run: './steps.mjs#count', inputs: ['params'] },
    slowed: { run: './steps.mjs#slow', inputs: ['numbers', 'delay'] },
    grid: { type: 'grid_search_parameters', factor: [2, 3] },
    scaled: { run: './steps.mjs#times', inputs: ['slowed', 'grid'] },
    total: { run: './more.mjs#total', inputs: [{ from: 'scaled', as: 'all' }] },
  });
  // `--json` lists stage runs in the order they end: compared in a fixed order.
  const rows = (json: { stages: { name: string; branch: string | null; status: string; records: number }[] }) =>
    json.stages.map(({ name, branch, status, records }) => ({ name, branch, status, records })).sort((a, b) => `${a.name}${a.branch}`.localeCompare(`${b.name}${b.branch}`));

  it('a grid pipeline, with credentials: the shared stage once, each branch an item on the agent; the same stages and results as a local run', async () => {
    const local = makeProject(gridPipeline());
    const localRun = parseJsonOutput((await cli(['run', local.file, '--json'])).stdout);
    // The agent's checkout: another copy of the same project (as on another machine).
    const p = makeProject(gridPipeline());
    const checkout = makeProject(gridPipeline());
    const log = checkout.path('agent-calls.log');
    const project = 'crun-json';
    const url = withPassword.url;
    writeFileSync(join(tmp, 'password'), PASSWORD);
    const auth = ['--cluster', url, '--project', project, '--user', 'alice', '--password-file', join(tmp, 'password')];
    spawnAgent('crun-j', ['--nats', url, '--project', project, '--user', 'alice', '--slots', '2', '--idle-exit', '30', '--root', checkout.dir], { RINGPIPE_TEST_CALLS: log, NATS_PASSWORD: PASSWORD });
    const r = await cli(['run', p.file, ...auth, '--root', p.dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    // The agent's progress, shown as a local run shows it.
    expect(r.stderr).toMatch(/^ringpipe: 6 stage runs \(0 cached, 6 to compute\)$/m);
    expect(r.stderr).toMatch(/^computed  numbers: 4 records in /m);
    const run = parseJsonOutput(r.stdout);
    expect(rows(run)).toEqual(rows(localRun));
    expect(rows(run).map((s) => s.status)).toEqual(['computed', 'computed', 'computed', 'computed', 'computed', 'computed']);
    // Computed by the agent: the stages above the grid once (their own item), each record of each branch once.
    const agentCalls = calls(log);
    expect(agentCalls.filter((l) => l.startsWith('count'))).toEqual(['count 4']);
    expect(agentCalls.filter((l) => l.startsWith('slow'))).toHaveLength(4);
    expect(agentCalls.filter((l) => l.startsWith('times'))).toHaveLength(8);
    // The results were copied into the local cache: `ringpipe results` shows what it shows after a local run.
    const results = (f: string) => cli(['results', f, '--json']).then((x) => parseJsonOutput(x.stdout).results.map(({ stage, branch, status, records, metadata }: Record<string, unknown>) => ({ stage, branch, status, records, metadata })));
    expect(await results(p.file)).toEqual(await results(local.file));
    expect((await results(p.file)).every((x: { status: string }) => x.status === 'cached')).toBe(true);

    // Locally only the final stages are cached; the shared cache has them all.
    expect((await cli(['run', p.file, '--dry-run'])).stdout).toMatch(/2 cached, 4 would run/);
    expect((await cli(['run', p.file, '--dry-run', ...auth])).stdout).toMatch(/6 cached, 0 would run/);
    // Run again: everything is a cache hit, nothing is submitted.
    const again = await cli(['run', p.file, ...auth, '--root', p.dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/6 stage runs: 0 computed, 6 cached, 0 failed/);
    expect(again.stdout + again.stderr).not.toContain(PASSWORD);
    expect(calls(log).length).toBe(agentCalls.length);
  }, 120_000);

  it('an agent whose checkout differs refuses the items: their stages fail saying so', async () => {
    const p = makeProject(gridPipeline());
    const checkout = makeProject(gridPipeline(), { 'more.mjs': 'export function total(all) { return -1; }\n' });
    const project = 'crun-differ';
    spawnAgent('crun-d', ['--nats', server.url, '--project', project, '--slots', '2', '--idle-exit', '30', '--root', checkout.dir]);
    const r = await cli(['run', p.file, '--cluster', server.url, '--project', project, '--root', p.dir, '--json']);
    expect(r.code).toBe(1);
    const stages = parseJsonOutput(r.stdout).stages as { name: string; status: string; error?: { message: string } }[];
    // The shared source has the same key on both sides and is computed; the branches' items are refused whole.
    expect(stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'slowed:computed', 'scaled:failed', 'scaled:failed', 'total:failed', 'total:failed']);
    for (const s of stages.slice(2)) expect(s.error!.message).toMatch(/failed on agent crun-d: .*stage run 'total\[[0-9a-f]+\]' has cache key .* the checkouts differ/);
  }, 60_000);

  it('a pipeline without search items is refused, saying what cannot be distributed', async () => {
    const p = makeProject({ params: { type: 'parameters', n: 3 }, numbers: { run: './steps.mjs#count', inputs: ['params'] } });
    const r = await cli(['run', p.file, '--cluster', server.url]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to distribute: the pipeline has no grid_search_parameters or random_search_parameters item/);
  });

  it('an unreachable server fails naming it, never showing the password; a malformed URL is a usage error', async () => {
    const p = makeProject(gridPipeline());
    const port = await freePort();
    const secret = 'pa55-w0rd-never-shown';
    const r = await cli(['run', p.file, '--cluster', `nats://alice:${secret}@127.0.0.1:${port}`, '--project', 'crun-none']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot connect to NATS (server nats://127.0.0.1:${port})`);
    expect(r.stdout + r.stderr).not.toContain(secret);
    const bad = await cli(['run', p.file, '--cluster', 'nats://[::1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/'nats:\/\/\[::1' is not a server URL/);
  });
});
