// A cache entry damaged on disk is not read back: sizes are always checked, hashes where affordable
// (or with verify), damaged entries are computed again with a warning; `ringpipe cache verify`; a cache
// folder that does not exist is an error, not an empty cache.
import { readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsArtifactStore } from '../src/cache/store.js';
import type { RunEvent } from '../src/config/executor.js';
import { JsonPipeline } from '../src/config/pipeline.js';
import { cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const spec = () => ({
  params: { type: 'parameters', n: 5 },
  numbers: { run: './steps.mjs#count', inputs: ['params'] },
  total: { run: './steps.mjs#sum', inputs: [{ from: 'numbers', as: 'all' }] },
});

/** A project whose pipeline ran once; `damage` changes the record file of stage `numbers`. */
async function ranOnce() {
  const p = makeProject(spec());
  const pipeline = await JsonPipeline.load(p.file);
  expect((await pipeline.run()).ok).toBe(true);
  const store = new FsArtifactStore(join(p.dir, '.ringpipe', 'cache'));
  const entry = (await store.list()).find((e) => e.manifest.stage === 'numbers')!;
  const file = join(store.location, 'objects', entry.manifest.key.slice(0, 2), entry.manifest.key, 'records.bin');
  return { p, store, key: entry.manifest.key, file };
}

/** Flips one byte of a record's payload, keeping the size. */
function flipByte(file: string): void {
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] ^= 0x01; // the last record's value
  writeFileSync(file, bytes);
}

async function rerunTotal(p: { file: string }) {
  // `total` must read `numbers` again: drop its own entry.
  const pipeline = await JsonPipeline.load(p.file);
  const plan = await pipeline.plan();
  const store = new FsArtifactStore(join(p.file, '..', '.ringpipe', 'cache'));
  await store.remove(plan.byItem.get('total')![0]!.key);
  const events: RunEvent[] = [];
  const result = await pipeline.run({ onEvent: (e) => events.push(e) });
  const totals = [];
  for await (const r of pipeline.records('total')) totals.push(r.data);
  return { result, events, totals };
}

describe('checking entries', () => {
  it('check: sizes always, the sha256 when asked; verify hashes them all', async () => {
    const { store, key, file } = await ranOnce();
    expect(await store.check(key, { hash: true })).toMatchObject({ state: 'ok', hashed: true });
    flipByte(file);
    expect(await store.check(key)).toMatchObject({ state: 'ok', hashed: false }); // same size
    const found = await store.check(key, { hash: true });
    expect(found).toMatchObject({ state: 'damaged', reason: expect.stringMatching(/^the sha256 of its records\.bin is [0-9a-f]{12}…; its manifest says [0-9a-f]{12}…$/) });
    truncateSync(file, 10);
    expect(await store.check(key)).toMatchObject({ state: 'damaged', reason: expect.stringMatching(/its records\.bin has 10 bytes; its manifest says \d+/) });
    expect(await store.check('0'.repeat(64))).toEqual({ state: 'missing' });
    const report = await store.verify();
    expect(report.checked).toBe(2);
    expect(report.damaged).toEqual([{ key, reason: expect.stringMatching(/has 10 bytes/), manifest: expect.objectContaining({ stage: 'numbers' }), removed: false }]);
  });
});

describe('a run with a damaged entry', () => {
  it('a flipped byte (same size) is found by its hash: a warning, the stage computed again, the right data', async () => {
    const { p, file } = await ranOnce();
    flipByte(file);
    const { result, events, totals } = await rerunTotal(p);
    expect(result.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'total:computed']);
    expect(events.filter((e) => e.type === 'warning').map((e) => e.type === 'warning' && e.message)).toEqual([
      expect.stringMatching(/^cache entry of stage 'numbers' \(key [0-9a-f]{12}\) is damaged: the sha256 of its records\.bin is .*; computing it again$/),
    ]);
    expect(totals).toEqual([0 + 1 + 2 + 3 + 4]);
  });

  it('a truncated record file is found by its size', async () => {
    const { p, file } = await ranOnce();
    truncateSync(file, 12);
    const { result, events, totals } = await rerunTotal(p);
    expect(result.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'total:computed']);
    expect(events.some((e) => e.type === 'warning' && /has 12 bytes/.test(e.message))).toBe(true);
    expect(totals).toEqual([10]);
  });

  it('over the hashing size only the size is checked, unless verify; the CLI warns on stderr with --verify', async () => {
    const { p, file } = await ranOnce();
    flipByte(file);
    const { VERIFY_HASH_BELOW } = await import('../src/cache/store.js');
    expect(VERIFY_HASH_BELOW).toBe(64 * 1024 * 1024);
    const unhashed = await (await JsonPipeline.load(p.file)).run({ verifyHashBelow: 10 });
    expect(unhashed.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:cached', 'total:cached']);
    const hashed = await (await JsonPipeline.load(p.file)).run({ verifyHashBelow: 10, verify: true });
    expect(hashed.stages.map((s) => `${s.name}:${s.status}`)).toEqual(['numbers:computed', 'total:cached']);
    flipByte(file);
    const r = await cli(['run', p.file, '--verify', '--json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: cache entry of stage 'numbers' .* is damaged: the sha256/);
    expect(parseJsonOutput(r.stdout).stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`).sort()).toEqual(['numbers:computed', 'total:cached']);
  });
});

describe('ringpipe cache verify', () => {
  it('exit 0 when intact; exit 1 naming the damaged entries; --remove removes them', async () => {
    const { p, store, key, file } = await ranOnce();
    const ok = await cli(['cache', 'verify', p.file]);
    expect([ok.code, ok.stdout]).toEqual([0, expect.stringMatching(/^2 entries verified \(.* hashed\): all intact in /m)]);
    flipByte(file);
    const bad = await cli(['cache', 'verify', p.file]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/│ [0-9a-f]{12} │ numbers │ +│ the sha256 of its records\.bin/);
    expect(bad.stdout).toMatch(/2 entries verified .*: 1 damaged \(remove them with --remove/);
    const json = parseJsonOutput((await cli(['cache', 'verify', p.file, '--json'])).stdout);
    expect(json).toMatchObject({ checked: 2, damaged: [{ key, stage: 'numbers', branch: null, removed: false }] });
    const removed = await cli(['cache', 'verify', p.file, '--remove']);
    expect(removed.code).toBe(1);
    expect(removed.stdout).toMatch(/1 damaged, 1 removed/);
    expect(await store.check(key)).toEqual({ state: 'missing' });
    expect((await cli(['cache', 'verify', p.file])).code).toBe(0);
  });
});

describe('a cache folder that does not exist', () => {
  it('cache ls / gc / verify / clear exit 2 naming the folder', async () => {
    for (const cmd of ['ls', 'gc', 'verify', 'clear']) {
      const r = await cli(['cache', cmd, '--cache-dir', '/nonexistent/cache']);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr, cmd).toContain('error: no cache at /nonexistent/cache (--cache-dir): the folder does not exist');
      expect(r.stdout, cmd).toBe('');
    }
    const p = makeProject(spec());
    const beside = await cli(['cache', 'ls', p.file]);
    expect(beside.code).toBe(2);
    expect(beside.stderr).toMatch(/no cache at .*\.ringpipe\/cache \(the cache of .*pipeline\.json\): the folder does not exist \(nothing has run with it yet\?\)/);
    const notCache = await cli(['cache', 'ls', '--cache-dir', p.dir]);
    expect(notCache.code).toBe(2);
    expect(notCache.stderr).toMatch(/is not a ringpipe cache/);
  });
});
