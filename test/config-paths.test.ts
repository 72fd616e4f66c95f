// Paths that leave the project folder (the pipeline file's folder) are refused unless allowed.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipelineFile } from '../src/config/load.js';
import { JsonPipeline } from '../src/config/pipeline.js';
import { cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

const outside = mkdtempSync(join(tmpdir(), 'ringpipe-outside-'));
writeFileSync(join(outside, 'mod.mjs'), 'export const f = () => 1;\n');
mkdirSync(join(outside, 'docs'));
writeFileSync(join(outside, 'docs', 'x.txt'), 'outside\n');
afterAll(() => {
  cleanupProjects();
  rmSync(outside, { recursive: true, force: true });
});

describe('paths outside the project folder', () => {
  it('a folder path and a run module outside are refused, naming item and field', async () => {
    const p = makeProject({});
    const up = relative(p.dir, outside);
    p.write({
      etc: { type: 'file_folder', path: '../../../../../../../../etc', recursive: false },
      docs: { type: 'file_folder', path: `${up}/docs` },
      f: { run: `${up}/mod.mjs#f`, inputs: [] },
      inside: { type: 'file_folder', path: './data' },
    });
    const err = await loadPipelineFile(p.file).catch((e) => e);
    expect(err.code).toBe('ERR_CONFIG');
    expect(err.issues.map((i: { item: string; field: string }) => `${i.item}.${i.field}`)).toEqual(['etc.path', 'docs.path', 'f.run']);
    expect(err.issues[0].message).toContain(`'../../../../../../../../etc' is not allowed: it leads outside the project folder ${p.dir} (to /etc); pass --allow-outside-project (allowOutside: true) to use it`);
    const r = await cli(['validate', p.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("item 'f', field 'run'");
  });

  it('allowed with allowOutside / --allow-outside-project', async () => {
    const p = makeProject({});
    const up = relative(p.dir, outside);
    p.write({ docs: { type: 'file_folder', path: `${up}/docs`, read: 'text' }, f: { run: `${up}/mod.mjs#f`, inputs: [] }, n: { run: './steps.mjs#words', inputs: ['docs'] } });
    await expect(loadPipelineFile(p.file, { allowOutside: true })).resolves.toBeTruthy();
    const r = await cli(['run', p.file, '--json', '-q', '--allow-outside-project']);
    expect(r.code).toBe(0);
    expect(parseJsonOutput(r.stdout).stages.map((s: { name: string; status: string }) => `${s.name}:${s.status}`)).toEqual(['f:computed', 'n:computed']);
  });

  it('a link inside a folder that leads outside is not followed, and reported', async () => {
    const p = makeProject({});
    mkdirSync(p.path('docs'));
    writeFileSync(p.path('docs/in.txt'), 'inside\n');
    symlinkSync(join(outside, 'docs', 'x.txt'), p.path('docs/out.txt'));
    symlinkSync(p.path('docs/in.txt'), p.path('docs/alias.txt'));
    p.write({ docs: { type: 'file_folder', path: './docs', read: 'text' }, n: { run: './steps.mjs#words', inputs: ['docs'] } });
    const plan = await (await JsonPipeline.load(p.file)).plan();
    expect(plan.nodes[0]!.files!.map((f) => f.rel)).toEqual(['docs/alias.txt', 'docs/in.txt']);
    expect(plan.unusedInputs).toEqual([{ item: 'docs', path: 'docs/out.txt', reason: expect.stringContaining('not followed: it leads outside the project folder') }]);
    const allowed = await (await JsonPipeline.load(p.file, { allowOutside: true })).plan();
    expect(allowed.nodes[0]!.files!.map((f) => f.rel)).toEqual(['docs/alias.txt', 'docs/in.txt', 'docs/out.txt']);
  });
});
