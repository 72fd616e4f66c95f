// What a pipeline file may no longer get away with: a key written twice, a stage without inputs, a
// typo in a --set path.
import { afterAll, describe, expect, it } from 'vitest';
import { loadPipelineFile, loadPipelineSpec } from '../src/config/load.js';
import { cleanupProjects, cli, makeProject, parseJsonOutput } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

describe('a key written twice', () => {
  it('at the top: refused, naming the key and both lines', async () => {
    const p = makeProject('{\n  "params": { "type": "parameters", "n": 3 },\n  "numbers": { "run": "./steps.mjs#count", "inputs": ["params"] },\n  "params": { "type": "parameters", "n": 5 }\n}\n');
    const err = await loadPipelineFile(p.file).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONFIG', item: 'params', pointer: '/params' });
    expect(err.message).toContain("the key 'params' is written twice: at line 2 and at line 4");
    const r = await cli(['validate', p.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("the key 'params' is written twice: at line 2 and at line 4");
  });

  it('inside an item or deeper: every one is named with its path; the same key in two objects is fine', async () => {
    const text = [
      '{',
      '  "params": { "type": "parameters", "n": 3,',
      '    "n": 4, "opt": { "a": 1, "b": 2,',
      '      "a": 3 } },',
      '  "other": { "type": "parameters", "n": 3, "opt": { "a": 1 } }',
      '}',
    ].join('\n');
    const err = await loadPipelineFile(makeProject(text).file).catch((e) => e);
    expect(err.issues).toEqual([
      { item: 'params', field: 'n', pointer: '/params/n', message: "the key 'n' is written twice in 'params': at line 2 and at line 3 (JSON would keep the last one silently: remove or rename one)" },
      { item: 'params', field: 'opt.a', pointer: '/params/opt/a', message: "the key 'a' is written twice in 'params.opt': at line 3 and at line 4 (JSON would keep the last one silently: remove or rename one)" },
    ]);
  });
});

describe('a stage without inputs', () => {
  it('is refused by validation (not a TypeError when it runs); [] says it takes none', async () => {
    const p = makeProject({ params: { type: 'parameters', n: 3 }, numbers: { run: './steps.mjs#count' } });
    const err = await loadPipelineFile(p.file).catch((e) => e);
    expect(err).toMatchObject({ code: 'ERR_CONFIG', item: 'numbers', field: 'inputs' });
    expect(err.message).toContain("missing field 'inputs' (the items whose outputs the function takes, in order, e.g. [\"params\"]; write [] for a function that takes none)");
    const r = await cli(['run', p.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/Cannot read properties/);
    p.write({ numbers: { run: './more.mjs#range', inputs: [] } });
    await expect(loadPipelineFile(p.file)).resolves.toBeTruthy();
  });
});

describe('--set paths', () => {
  const spec = () => ({
    model_params: { type: 'parameters', hidden: 100, epochs: 5, opt: { lr: 0.1 } },
    grid: { type: 'grid_search_parameters', lr: [0.1, 0.01] },
    numbers: { run: './steps.mjs#count', inputs: ['model_params'] },
  });
  const base = makeProject({}).dir;
  const fail = (set: string[]) => loadPipelineSpec(spec(), { baseDir: base, set }).catch((e) => e);

  it('a field a parameters or grid item does not have is an error naming its fields', async () => {
    const e = await fail(['model_params.hiden=3']);
    expect(e).toMatchObject({ code: 'ERR_CONFIG_SET', item: 'model_params' });
    expect(e.message).toContain("item 'model_params': --set model_params.hiden=3: no field 'hiden' (fields: hidden, epochs, opt); to add it, use --add model_params.hiden=3");
    expect((await fail(['grid.learning_rate=[1]'])).message).toContain("item 'grid': --set grid.learning_rate=[1]: no field 'learning_rate' (fields: lr)");
    expect((await fail(['model_params.opt.lrr=1'])).message).toContain("no field 'lrr' in 'opt' (fields: lr)");
    expect((await fail(['modle_params.hidden=1'])).message).toContain("no item 'modle_params' (items: model_params, grid, numbers)");
  });

  it('+item.field adds one on purpose, but not one that exists; fields a stage may have are set (the schema checks them)', async () => {
    const r = await loadPipelineSpec(spec(), { baseDir: base, set: ['+model_params.dropout=0.5', '+model_params.opt.momentum=0.9', 'numbers.workers=2', 'model_params.hidden=64'] });
    expect(r.spec.model_params).toEqual({ type: 'parameters', hidden: 64, epochs: 5, dropout: 0.5, opt: { lr: 0.1, momentum: 0.9 } });
    expect((r.spec.numbers as Record<string, unknown>).workers).toBe(2);
    expect((await fail(['+model_params.hidden=1'])).message).toContain("--add model_params.hidden=1: the field 'hidden' exists: use --set to change it");
    const typo = await fail(['numbers.workerz=2']);
    expect(typo).toMatchObject({ code: 'ERR_CONFIG', item: 'numbers', field: 'workerz' });
    expect(typo.message).toContain("unknown field 'workerz' (did you mean 'workers'?)");
  });

  it('the CLI: --set with a typo exits 2 naming the fields; --add adds', async () => {
    const p = makeProject(spec());
    const r = await cli(['validate', p.file, '--set', 'model_params.hiden=3']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no field 'hiden' (fields: hidden, epochs, opt)");
    const ok = await cli(['run', p.file, '--json', '-q', '--add', 'model_params.n=2']);
    expect(ok.code).toBe(0);
    expect(parseJsonOutput(ok.stdout).stages[0]).toMatchObject({ name: 'numbers', records: 2 });
  });
});
