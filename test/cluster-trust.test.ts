// Who can publish a work item chooses the code agents run, so an agent imports code only from files
// under its --root (or an --allow-root): every other form of `run` (data:/http:/node: URLs, built-in
// modules, absolute paths and ../ paths outside, symlinks leading out) and every pipeline file,
// stage module, cache directory or sweep module outside is refused, with ERR_WORK_REFUSED saying
// why, and none of that code runs.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob, type WorkResult, type WorkSpec } from '../src/cluster/index.js';
import { locateWork } from '../src/cluster/resolve.js';
import { codeRoots } from '../src/cluster/trust.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, spawnAgent } from './helpers/cluster-agents.js';

let server: TestServer;
// The agent's checkout, a directory beside it with code the agent must not run, and where code that ran leaves a mark.
const root = realpathSync(mkdtempSync(join(tmpdir(), 'rp trust root-')));
const outside = realpathSync(mkdtempSync(join(tmpdir(), 'rp-trust-out-')));
const marks = realpathSync(mkdtempSync(join(tmpdir(), 'rp-trust-marks-')));

const pipeline = (run: string) => JSON.stringify({ params: { type: 'parameters', n: 2 }, numbers: { run, inputs: ['params'] } });
const marker = (name: string) => `import { writeFileSync } from 'node:fs';
export function mark(p) { writeFileSync(p.file, 'ran'); return 'ran'; }
export function* count() { writeFileSync(${JSON.stringify(join(marks, name))}, 'ran'); yield 1; }
export function build() { writeFileSync(${JSON.stringify(join(marks, `${name}-build`))}, 'ran'); }
`;

beforeAll(async () => {
  writeFileSync(join(root, 'work.mjs'), marker('inside'));
  writeFileSync(join(root, 'pipeline.json'), pipeline('./work.mjs#count'));
  writeFileSync(join(outside, 'evil.mjs'), marker('outside'));
  writeFileSync(join(outside, 'pipeline.json'), pipeline('./evil.mjs#count'));
  symlinkSync(join(outside, 'evil.mjs'), join(root, 'link.mjs'));
  symlinkSync(outside, join(root, 'linkdir'));
  server = await startServer();
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  for (const d of [root, outside, marks]) rmSync(d, { recursive: true, force: true });
}, 60_000);

const agentArgs = (project: string, extra: string[] = []) => ['--nats', server.url, '--project', project, '--slots', '2', '--heartbeat', '1', '--idle-exit', '60', '--root', root, ...extra];
const mark = (name: string) => ({ file: join(marks, name) });
const dataUrl = `data:text/javascript,import{writeFileSync}from'node:fs';export function mark(p){writeFileSync(p.file,'ran')}`;
const sweepItem = (build: string, trainerModule: string) => ({
  build, isolation: 'process', wave: 0, control: 'rp.trust.control.x',
  trials: [{ trial: { id: 't1', params: {} }, trainer: { module: trainerModule }, saveModel: false }],
});

describe('an agent runs code only from under its root', () => {
  it('refuses every other form of run, pipeline file, stage module, cache directory and sweep module, saying why; none of that code runs', async () => {
    const project = 'trust';
    const agent = spawnAgent('trust-a', agentArgs(project));
    const cases: { spec: WorkSpec; why?: RegExp; code?: string }[] = [
      { spec: { run: './work.mjs#mark', payload: mark('ok') } },
      { spec: { run: `${dataUrl}#mark`, payload: mark('data') }, why: /'data:' URL/ },
      { spec: { run: 'http://127.0.0.1:9/evil.mjs#mark', payload: mark('http') }, why: /'http:' URL/ },
      { spec: { run: 'node:child_process#execSync', payload: `touch ${join(marks, 'node')}` }, why: /built-in module/ },
      { spec: { run: 'child_process#execSync', payload: `touch ${join(marks, 'bare')}` }, why: /built-in module/ },
      { spec: { run: `${join(outside, 'evil.mjs')}#mark`, payload: mark('absolute') }, why: /lies outside/ },
      { spec: { run: `../${basename(outside)}/evil.mjs#mark`, payload: mark('dotdot') }, why: /lies outside/ },
      { spec: { run: './link.mjs#mark', payload: mark('symlink') }, why: /\.\/link\.mjs resolves to .*evil\.mjs.* outside/ },
      { spec: { run: './linkdir/evil.mjs#mark', payload: mark('symlinkdir') }, why: /resolves to .* outside/ },
      { spec: { run: 'ringpipe:pipeline', payload: { file: join(outside, 'pipeline.json') } }, why: /pipeline file: .* lies outside/ },
      { spec: { run: 'ringpipe:pipeline', payload: { file: `../${basename(outside)}/pipeline.json` } }, why: /pipeline file: .* lies outside/ },
      { spec: { run: 'ringpipe:pipeline', payload: { file: './linkdir/pipeline.json' } }, why: /pipeline file: .* resolves to .* outside/ },
      // Refused when the pipeline loads, by the project-folder rule, before the agent's own check.
      { spec: { run: 'ringpipe:pipeline', payload: { file: './pipeline.json', set: [`numbers.run=${join(outside, 'evil.mjs')}#count`] } }, why: /'numbers', field 'run': .*evil\.mjs.* leads outside the project folder/, code: 'ERR_CONFIG' },
      { spec: { run: 'ringpipe:pipeline', payload: { file: './pipeline.json', cacheDir: join(outside, 'cache') } }, why: /cache directory: .* lies outside/ },
      { spec: { run: 'ringpipe:sweep-trials', payload: sweepItem(`${join(outside, 'evil.mjs')}#build`, './work.mjs') }, why: /lies outside/ },
      { spec: { run: 'ringpipe:sweep-trials', payload: sweepItem('./work.mjs#build', `${dataUrl}`) }, why: /trainer module .*'data:' URL/ },
    ];
    const results = await runJob({ servers: server.url, project }, cases.map((c) => c.spec), { name: 'trust', timeout: 120_000 });
    const summary = (r: WorkResult) => `${r.status} ${r.error?.code ?? ''} ${r.error?.message ?? ''}`;
    expect(results[0]!.status, summary(results[0]!)).toBe('ok');
    for (const [i, c] of cases.entries()) {
      if (!c.why) continue;
      const r = results[i]!;
      expect(r.status, `${c.spec.run}: ${summary(r)}`).toBe('failed');
      expect(r.error?.code, `${c.spec.run}: ${summary(r)}`).toBe(c.code ?? 'ERR_WORK_REFUSED');
      expect(r.error?.message, c.spec.run).toMatch(c.why);
    }
    // The agent names its root in what it refuses.
    expect(results[5]!.error?.message).toContain(root);
    // Only the item inside the root left a mark; no cache directory appeared outside.
    expect(readdirSync(marks).sort()).toEqual(['ok']);
    expect(existsSync(join(outside, 'cache'))).toBe(false);
    agent.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 180_000);

  it('--allow-root adds a directory code may come from; other schemes stay refused', async () => {
    const project = 'trust-allow';
    const agent = spawnAgent('trust-b', agentArgs(project, ['--allow-root', outside]));
    const results = await runJob({ servers: server.url, project }, [
      { run: `${join(outside, 'evil.mjs')}#mark`, payload: mark('allowed') },
      { run: './link.mjs#mark', payload: mark('allowed-link') },
      { run: `${dataUrl}#mark`, payload: mark('allowed-data') },
    ], { name: 'allow', timeout: 60_000 });
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'failed']);
    expect(results[2]!.error?.code).toBe('ERR_WORK_REFUSED');
    expect(existsSync(join(marks, 'allowed'))).toBe(true);
    expect(existsSync(join(marks, 'allowed-data'))).toBe(false);
    agent.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  }, 120_000);
});

describe('locateWork', () => {
  const refused = (run: string, roots: string[] = [root]) => {
    try {
      locateWork(run, roots);
    } catch (err) {
      return err as Error & { code: string };
    }
    throw new Error(`${run} was not refused`);
  };

  it('takes modules under the roots (paths, file URLs, symlinks that stay inside) and refuses the rest', () => {
    mkdirSync(join(root, 'sub'), { recursive: true });
    writeFileSync(join(root, 'sub', 'inner.mjs'), 'export function f() {}\n');
    symlinkSync(join(root, 'sub', 'inner.mjs'), join(root, 'inner-link.mjs'));
    const real = join(root, 'sub', 'inner.mjs');
    for (const run of ['./sub/inner.mjs#f', `${real}#f`, `${pathToFileURL(real).href}#f`, './inner-link.mjs#f', './sub/../sub/inner.mjs#f']) {
      const w = locateWork(run, [root]);
      expect(w.kind === 'module' && w.url, run).toBe(pathToFileURL(real).href);
    }
    const fileUrl = refused(`${pathToFileURL(join(outside, 'evil.mjs')).href}#mark`);
    expect(fileUrl.code).toBe('ERR_WORK_REFUSED');
    expect(fileUrl.message).toMatch(/lies outside the agent's root/);
    expect(refused('https://example.com/x.mjs#f').message).toMatch(/'https:' URL/);
    expect(refused('blob:nodedata:1234#f').message).toMatch(/'blob:' URL/);
    expect(refused('fs#writeFileSync').message).toMatch(/built-in module 'fs'/);
    // A root given through a symlink is the directory it leads to.
    const viaLink = join(outside, 'root-link');
    symlinkSync(root, viaLink);
    expect(codeRoots(viaLink)).toEqual([root]);
    expect(locateWork('./sub/inner.mjs#f', codeRoots(viaLink)).kind).toBe('module');
    // Registered work types are the agent's own code: not checked against the roots.
    expect(locateWork('ringpipe:pipeline', [outside]).kind).toBe('module');
  });
});
