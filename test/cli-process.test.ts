// The `ringpipe` executable as a child process: exit codes, code changes, a run killed mid-stage and
// resumed, two runs at once on one cache.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../src/cache/store.js';
import { JsonPipeline } from '../src/config/pipeline.js';
import { cleanupProjects, CLI, cliProcess, makeProject, parseJsonOutput, waitFor } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const statusOf = (stdout: string) => parseJsonOutput(stdout).stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`);

/** sha256 of every stage's artifact, by stage name (and branch), read from the cache. */
async function artifacts(file: string): Promise<Record<string, string>> {
  const p = await JsonPipeline.load(file);
  const out: Record<string, string> = {};
  for (const s of await p.status()) out[s.branch ? `${s.name}[${s.branch}]` : s.name] = s.manifest?.sha256 ?? 'missing';
  return out;
}

describe('the executable', () => {
  it('starts with a shebang; exit codes 0, 1 and 2', async () => {
    expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const ok = makeProject({ params: { type: 'parameters', n: 2 }, numbers: { run: './steps.mjs#count', inputs: ['params'] } });
    const r0 = await cliProcess(['run', ok.file, '--json']);
    expect([r0.code, statusOf(r0.stdout)]).toEqual([0, ['numbers:computed']]);
    const failing = makeProject({ params: { type: 'parameters', n: 4 }, numbers: { run: './steps.mjs#count', inputs: ['params'] }, broken: { run: './steps.mjs#boom', inputs: ['numbers'] } });
    const r1 = await cliProcess(['run', failing.file, '--json']);
    expect(r1.code).toBe(1);
    expect(statusOf(r1.stdout)).toEqual(['numbers:computed', 'broken:failed']);
    const bad = makeProject({ a: { size: 1 } });
    const r2 = await cliProcess(['run', bad.file, '--json']);
    expect(r2.code).toBe(2);
    expect(r2.stdout).toBe('');
    expect(r2.stderr).toMatch(/item 'a', field 'type'/);
    expect((await cliProcess(['run', ok.file, '--bogus'])).code).toBe(2);
    expect((await cliProcess(['--help'])).code).toBe(0);
  });

  it("a changed function's code re-runs its stage and what follows, not what precedes", async () => {
    const p = makeProject({
      params: { type: 'parameters', n: 3, factor: 2 },
      numbers: { run: './more.mjs#range', inputs: ['params'] },
      other: { run: './more.mjs#total', inputs: [{ from: 'numbers', as: 'all' }] },
      scaled: { run: './steps.mjs#times', inputs: ['numbers', 'params'] },
      total: { run: './more.mjs#total', inputs: [{ from: 'scaled', as: 'all' }] },
    });
    expect(statusOf((await cliProcess(['run', p.file, '--json'])).stdout)).toEqual(['numbers:computed', 'other:computed', 'scaled:computed', 'total:computed']);
    // steps.mjs imports lib/scale.mjs: changing the helper changes the code of 'scaled'
    writeFileSync(p.path('lib/scale.mjs'), 'export function scale(x, factor) {\n  return x * factor + 1;\n}\n');
    const r = await cliProcess(['run', p.file, '--json']);
    expect(statusOf(r.stdout)).toEqual(['numbers:cached', 'other:cached', 'scaled:computed', 'total:computed']);
    const pipeline = await JsonPipeline.load(p.file);
    const totals = [];
    for await (const rec of pipeline.records('total')) totals.push(rec.data);
    expect(totals).toEqual([0 * 2 + 1 + (1 * 2 + 1) + (2 * 2 + 1)]);
  });
});

describe('interrupted and concurrent runs', () => {
  const slowSpec = (n: number, ms: number, markAt: number) => ({
    params: { type: 'parameters', n, ms, markAt },
    numbers: { run: './steps.mjs#count', inputs: ['params'] },
    slowed: { run: './steps.mjs#slow', inputs: ['numbers', 'params'] },
    after: { run: './steps.mjs#square', inputs: ['slowed'] },
    total: { run: './more.mjs#total', inputs: [{ from: 'after', as: 'all' }] },
  });

  it('a run killed (SIGKILL) mid-stage leaves no entry taken for complete; the next run resumes and gives the same artifacts', async () => {
    const p = makeProject(slowSpec(24, 40, 6));
    const marker = p.path('marker');
    const run = cliProcess(['run', p.file, '--json'], { env: { RINGPIPE_TEST_MARKER: marker } });
    await waitFor(() => existsSync(marker), 30_000, 'the slow stage to reach record 6');
    run.child.kill('SIGKILL');
    const killed = await run;
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.stdout).toBe('');

    const store = new FsArtifactStore(join(p.dir, '.ringpipe', 'cache'));
    const before = await artifacts(p.file);
    expect(before.numbers).not.toBe('missing'); // finished before the kill
    expect(before.slowed).toBe('missing'); // killed mid-stage: not an entry
    expect(before.after).toBe('missing');
    expect((await store.list()).map((e) => e.manifest.stage)).toEqual(['numbers']);
    const leftovers = readdirSync(join(store.location, 'tmp')).filter((n) => n.startsWith(`${run.child.pid}.`));
    expect(leftovers.length).toBeGreaterThan(0); // the partial entry, only in tmp/

    const resumed = await cliProcess(['run', p.file, '--json']);
    expect(resumed.code).toBe(0);
    expect(statusOf(resumed.stdout)).toEqual(['numbers:cached', 'slowed:computed', 'after:computed', 'total:computed']);

    const fresh = makeProject(slowSpec(24, 1, -1));
    fresh.write(slowSpec(24, 40, 6)); // same definition, a different directory and cache
    const clean = await cliProcess(['run', fresh.file, '--json']);
    expect(clean.code).toBe(0);
    expect(await artifacts(p.file)).toEqual(await artifacts(fresh.file));

    // gc removes the dead run's leftovers
    const gc = await cliProcess(['cache', 'gc', p.file]);
    expect(gc.code).toBe(0);
    expect(readdirSync(join(store.location, 'tmp')).filter((n) => n.startsWith(`${run.child.pid}.`))).toEqual([]);
    expect(gc.stdout).toMatch(/removed 0 entries and \d+ abandoned temporary director/);
  });

  it('two runs at once on one cache: both succeed, the cache stays consistent', async () => {
    const p = makeProject(slowSpec(12, 25, -1));
    const [a, b] = await Promise.all([cliProcess(['run', p.file, '--json']), cliProcess(['run', p.file, '--json'])]);
    expect([a.code, b.code]).toEqual([0, 0]);
    for (const r of [a, b]) {
      for (const s of parseJsonOutput(r.stdout).stages) expect(['computed', 'cached']).toContain(s.status);
    }
    const store = new FsArtifactStore(join(p.dir, '.ringpipe', 'cache'));
    const entries = await store.list();
    expect(entries.map((e) => e.manifest.stage).sort()).toEqual(['after', 'numbers', 'slowed', 'total']);
    // every entry reads back whole
    for (const e of entries) {
      let n = 0;
      for await (const _ of store.read(e.manifest.key)) n++;
      expect(n).toBe(e.manifest.records);
    }
    expect(readdirSync(join(store.location, 'tmp')).filter((n) => !n.endsWith('.file'))).toEqual([]);
    const third = await cliProcess(['run', p.file, '--json']);
    expect(statusOf(third.stdout)).toEqual(['numbers:cached', 'slowed:cached', 'after:cached', 'total:cached']);
    const fresh = makeProject(slowSpec(12, 25, -1));
    await cliProcess(['run', fresh.file, '--json']);
    expect(await artifacts(p.file)).toEqual(await artifacts(fresh.file));
  });

  it('SIGINT stops a run cleanly: exit 1, nothing partial cached, no temporary files left', async () => {
    const p = makeProject(slowSpec(40, 40, 3));
    const marker = p.path('marker');
    const run = cliProcess(['run', p.file, '--json'], { env: { RINGPIPE_TEST_MARKER: marker } });
    await waitFor(() => existsSync(marker), 30_000, 'the slow stage to start');
    run.child.kill('SIGINT');
    const r = await run;
    expect(r.code).toBe(1);
    expect(statusOf(r.stdout)).toEqual(['numbers:computed', 'slowed:failed']);
    expect(parseJsonOutput(r.stdout).notRun).toEqual([
      { name: 'after', code: 'ERR_ABORTED', reason: 'the run was cancelled', count: 1 },
      { name: 'total', code: 'ERR_ABORTED', reason: 'the run was cancelled', count: 1 },
    ]);
    expect(r.stderr).toMatch(/interrupted/);
    const store = new FsArtifactStore(join(p.dir, '.ringpipe', 'cache'));
    expect((await store.list()).map((e) => e.manifest.stage)).toEqual(['numbers']);
    expect(readdirSync(join(store.location, 'tmp')).filter((n) => !n.endsWith('.file'))).toEqual([]);
  });
});
