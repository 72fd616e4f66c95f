// Pipetree's config-error scenarios, and the rest of validation: every error names the item and the field.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { LIBRARY_STAGE_TYPES } from '../src/config/library.js';
import { loadPipelineFile, loadPipelineSpec } from '../src/config/load.js';
import { pipelineSchema } from '../src/config/schema.js';
import { cleanupProjects, makeProject, ROOT } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const project = makeProject({});
const base = project.dir;

async function issues(spec: unknown, set?: string[]) {
  try {
    await loadPipelineSpec(spec as Record<string, unknown>, { baseDir: base, set });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.code).toMatch(/^ERR_CONFIG/);
    return e;
  }
  throw new Error('expected a ConfigError');
}

const stage = (run: string, inputs: unknown[] = []) => ({ run, inputs });

describe('config errors (Pipetree scenarios)', () => {
  it('an item with no type and no run', async () => {
    const e = await issues({ params: { size: 3 } });
    expect(e.issues).toHaveLength(1);
    expect(e.item).toBe('params');
    expect(e.field).toBe('type');
    expect(e.pointer).toBe('/params/type');
    expect(e.message).toMatch(/missing field 'type'/);
  });

  it('names that are not identifiers', async () => {
    const e = await issues({ 'bad-name': { type: 'parameters' }, '1st': { type: 'parameters' }, good_name: { type: 'parameters' } });
    expect(e.issues.map((i) => i.item)).toEqual(['bad-name', '1st']);
    for (const i of e.issues) expect(i.message).toMatch(/not an identifier/);
    expect(e.issues[0]!.pointer).toBe('/bad-name');
  });

  it('inputs that name no item, with a suggestion', async () => {
    const e = await issues({
      numbers: { type: 'parameters', n: 3 },
      counted: stage('./steps.mjs#count', ['numbrs']),
      other: stage('./steps.mjs#square', ['nothing_like_it']),
    });
    expect(e.issues.map((i) => [i.item, i.field, i.pointer])).toEqual([
      ['counted', 'inputs.0', '/counted/inputs/0'],
      ['other', 'inputs.0', '/other/inputs/0'],
    ]);
    expect(e.issues[0]!.message).toBe("input 'numbrs' names no item (did you mean 'numbers'?)");
    expect(e.issues[1]!.message).toBe("input 'nothing_like_it' names no item");
  });

  it('malformed inputs', async () => {
    const e = await issues({ p: { type: 'parameters' }, s: stage('./steps.mjs#square', [3, { from: 'p', as: 'many' }, { from: 'p', extra: 1 }]) });
    expect(e.issues.map((i) => i.field)).toEqual(['inputs.0', 'inputs.1.as', 'inputs.2']);
    const e2 = await issues({ s: { run: './steps.mjs#square', inputs: 'p' } });
    expect(e2.field).toBe('inputs');
    expect(e2.message).toMatch(/must be a list of item names/);
  });

  it('a stage without run', async () => {
    const e = await issues({ s: { type: 'stage', inputs: [] } });
    expect([e.item, e.field]).toEqual(['s', 'run']);
    expect(e.message).toMatch(/missing field 'run'/);
  });

  it('a cycle, named', async () => {
    const e = await issues({
      a: stage('./steps.mjs#square', ['c']),
      b: stage('./steps.mjs#square', ['a']),
      c: stage('./steps.mjs#square', ['b']),
      d: stage('./steps.mjs#square', ['d']),
    });
    expect(e.issues).toHaveLength(1);
    expect(e.field).toBe('inputs');
    expect(e.issues[0]!.message).toBe('the inputs form a cycle: a -> c -> b -> a');
    expect(e.message).toBe("item 'a', field 'inputs': the inputs form a cycle: a -> c -> b -> a");
    const self = await issues({ d: stage('./steps.mjs#square', ['d']) });
    expect(self.issues[0]!.message).toBe('the inputs form a cycle: d -> d');
  });

  it('a module that does not exist, an export that does not exist', async () => {
    const e = await issues({ a: stage('./nope.mjs#f'), b: stage('./steps.mjs#nope'), c: stage('steps.mjs#square'), d: stage('./steps.mjs') });
    const by = Object.fromEntries(e.issues.map((i) => [i.item, i]));
    expect(by.a!.field).toBe('run');
    expect(by.a!.message).toMatch(/module '\.\/nope\.mjs' does not exist \(looked for .*nope\.mjs\)/);
    expect(by.b!.message).toMatch(/module '\.\/steps\.mjs' has no export 'nope' \(it exports: .*square.*\)/);
    expect(by.c!.message).toMatch(/must be a path relative to the pipeline file/);
    expect(by.d!.message).toMatch(/has no export 'default'/);
  });

  it('modules are resolved relative to the pipeline file, not the working directory', async () => {
    const file = project.path('pipeline.json');
    project.write({ a: stage('./steps.mjs#square') });
    const loaded = await loadPipelineFile(file);
    expect(loaded.baseDir).toBe(project.dir);
    expect(process.cwd()).not.toBe(project.dir);
  });

  it('a grid value that is not a list', async () => {
    const e = await issues({ g: { type: 'grid_search_parameters', lr: 0.1, hidden: [], ok: [1, 2], dup: [1, 1] } });
    const by = Object.fromEntries(e.issues.map((i) => [i.field, i]));
    expect(by.lr!.message).toBe('a grid value must be a list of the values to try (got 0.1; write [0.1] for a single value)');
    expect(by.lr!.pointer).toBe('/g/lr');
    expect(by.hidden!.message).toMatch(/non-empty list/);
    expect(by.ok).toBeUndefined();
    const d = await issues({ g: { type: 'grid_search_parameters', dup: [1, { a: 1, b: 2 }, { b: 2, a: 1 }] } });
    expect(d.message).toMatch(/listed twice/);
    const empty = await issues({ g: { type: 'grid_search_parameters' } });
    expect(empty.message).toMatch(/at least one field/);
  });

  it('an unknown type, an unknown field', async () => {
    const e = await issues({ g: { type: 'gird_search' }, s: { run: './steps.mjs#square', inptus: [] }, f: { type: 'file', path: 'data/a.txt', extra: 1 } });
    const by = Object.fromEntries(e.issues.map((i) => [i.item, i]));
    expect(by.g!.field).toBe('type');
    expect(by.g!.message).toMatch(/unknown type "gird_search"; known types: parameters, grid_search_parameters/);
    const typo = e.issues.find((i: { item?: string; field?: string }) => i.item === 's' && i.field === 'inptus');
    expect(typo.message).toMatch(/unknown field 'inptus' \(did you mean 'inputs'\?\)/);
    expect(by.f!.field).toBe('extra');
  });

  it('an item that is not an object, a pipeline that is not an object', async () => {
    const e = await issues({ s: 5 });
    expect(e.item).toBe('s');
    expect(e.message).toMatch(/must be a JSON object/);
    const top = await issues([1, 2]);
    expect(top.item).toBeUndefined();
    expect(top.message).toMatch(/JSON object of named items/);
  });

  it('random search: bad distributions and empty ranges', async () => {
    const e = await issues({ r: { type: 'random_search_parameters', count: 3, lr: { log_uniform: [0, 1] }, h: 5 } });
    expect(e.issues.map((i) => i.field)).toEqual(['lr', 'h']);
    for (const i of e.issues) expect(i.message).toMatch(/a random-search field must be/);
    const r = await issues({ r: { type: 'random_search_parameters', count: 3, k: { int: [5, 1] } } });
    expect([r.field, r.pointer]).toEqual(['k', '/r/k/int']);
    expect(r.message).toMatch(/range \[5, 1\] is empty/);
    const c = await issues({ r: { type: 'random_search_parameters', k: [1] } });
    expect([c.issues.length, c.field]).toEqual([1, 'count']);
    const none = await issues({ r: { type: 'random_search_parameters', count: 2, seed: 1 } });
    expect(none.message).toMatch(/at least one field with a distribution/);
  });

  it('files and folders must exist', async () => {
    const e = await issues({ f: { type: 'file', path: './missing.txt' }, d: { type: 'file_folder', path: './data/a.txt' }, ok: { type: 'file_folder', path: './data' } });
    expect(e.issues.map((i) => [i.item, i.field])).toEqual([
      ['f', 'path'],
      ['d', 'path'],
    ]);
    expect(e.issues[1]!.message).toMatch(/is not a folder/);
  });

  it('parameter items are passed whole: no "as" mode', async () => {
    const e = await issues({ p: { type: 'parameters' }, s: stage('./steps.mjs#square', [{ from: 'p', as: 'all' }]) });
    expect([e.field, e.pointer]).toEqual(['inputs.0.as', '/s/inputs/0/as']);
  });

  it('library stage types: shape checked; no run allowed', async () => {
    const e = await issues({ t: { type: 'trainer', run: './x.js' } });
    expect(e.issues.map((i) => i.field).sort()).toEqual(['inputs', 'run']);
  });

  it('a library type that is not available is a warning, not an error', async () => {
    // Every library type ships now: make one's module go missing, as in a build without it.
    const type = LIBRARY_STAGE_TYPES.image_preprocess as { module: string };
    const module = type.module;
    type.module = './not-built.js';
    try {
      const r = await loadPipelineSpec({ f: { type: 'file_folder', path: '.' }, t: { type: 'image_preprocess', inputs: ['f'], sise: 3 } }, { baseDir: base });
      expect(r.warnings).toHaveLength(1);
      expect(r.warnings[0]).toMatchObject({ item: 't', field: 'type' });
      expect(r.warnings[0]!.message).toMatch(/not available/);
    } finally {
      type.module = module;
    }
  });

  it('reports every problem at once, in file order', async () => {
    const e = await issues({ a: { size: 1 }, 'b-b': { type: 'parameters' }, c: stage('./steps.mjs#square', ['zz']) });
    expect(e.issues.map((i) => i.item)).toEqual(['a', 'b-b', 'c']);
    expect(e.message).toMatch(/3 problems/);
  });

  it('a valid pipeline: items in file order, kinds, inputs with modes', async () => {
    const r = await loadPipelineSpec(
      {
        $schema: './schema.json',
        p: { type: 'parameters', n: 3 },
        g: { type: 'grid_search_parameters', lr: [0.1, 0.2] },
        files: { type: 'file_folder', path: './data', extensions: ['.txt'], read: 'text' },
        s: stage('./steps.mjs#count', ['p']),
        t: { run: './steps.mjs#train', inputs: [{ from: 's', as: 'iterable' }, 'p', 'g'], workers: 2 },
      },
      { baseDir: base },
    );
    expect(r.items.map((i) => [i.name, i.kind])).toEqual([
      ['p', 'parameters'],
      ['g', 'grid'],
      ['files', 'folder'],
      ['s', 'stage'],
      ['t', 'stage'],
    ]);
    expect(r.items[4]!.inputs).toEqual([
      { from: 's', as: 'iterable' },
      { from: 'p', as: 'each' },
      { from: 'g', as: 'each' },
    ]);
  });
});

describe('--set overrides', () => {
  it('sets fields (JSON values, else strings), nested fields too', async () => {
    const r = await loadPipelineSpec(
      { p: { type: 'parameters', n: 3, opt: { a: 1 } }, g: { type: 'grid_search_parameters', lr: [0.1] } },
      { baseDir: base, set: ['p.n=5', '+p.name=hello', 'g.lr=[0.5,0.25]', '+p.opt.b=true'] },
    );
    expect(r.spec.p).toEqual({ type: 'parameters', n: 5, name: 'hello', opt: { a: 1, b: true } });
    expect(r.spec.g).toEqual({ type: 'grid_search_parameters', lr: [0.5, 0.25] });
  });

  it('an override naming no item, or malformed, is an ERR_CONFIG_SET', async () => {
    const e = await issues({ p: { type: 'parameters' } }, ['q.n=1']);
    expect(e.code).toBe('ERR_CONFIG_SET');
    expect(e.message).toMatch(/no item 'q'/);
    expect((await issues({ p: { type: 'parameters' } }, ['p=1'])).code).toBe('ERR_CONFIG_SET');
    expect((await issues({ p: { type: 'parameters' } }, ['p.__proto__.polluted=1'])).code).toBe('ERR_CONFIG_SET');
    expect((await issues({ p: { type: 'parameters' } }, ['constructor.x=1'])).code).toBe('ERR_CONFIG_SET');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('an override that breaks the pipeline is reported like any config error', async () => {
    const e = await issues({ g: { type: 'grid_search_parameters', lr: [0.1] } }, ['g.lr=0.3']);
    expect([e.code, e.item, e.field]).toEqual(['ERR_CONFIG', 'g', 'lr']);
  });
});

describe('reading files', () => {
  it('a JSON syntax error names the line and column', async () => {
    project.write('{\n  "a": { "type": "parameters" },\n  "b": { "type": "parameters" }\n  "c": 1\n}\n');
    const e = await loadPipelineFile(project.file).catch((x) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect(e.code).toBe('ERR_CONFIG_READ');
    expect(e.message).toMatch(/not valid JSON at line 4, column 3/);
  });

  it('a missing file', async () => {
    const e = await loadPipelineFile(join(base, 'nope.json')).catch((x) => x);
    expect(e.code).toBe('ERR_CONFIG_READ');
    expect(e.message).toMatch(/no such file/);
  });
});

describe('the shipped JSON Schema', () => {
  it('is a valid draft-07 schema that compiles in strict mode', () => {
    const schema = JSON.parse(readFileSync(join(ROOT, 'schema', 'pipeline.schema.json'), 'utf8'));
    const ajv = new Ajv({ strict: true, allowMatchingProperties: true, strictTypes: false, strictRequired: false });
    expect(ajv.validateSchema(schema)).toBe(true);
    expect(() => ajv.compile(schema)).not.toThrow();
    expect(pipelineSchema()).toEqual(schema);
  });

  it('accepts the example project and rejects what the validator rejects, on its own (as an editor would use it)', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    const validate = ajv.compile(pipelineSchema());
    const example = JSON.parse(readFileSync(join(ROOT, 'examples', 'json-pipeline', 'pipeline.json'), 'utf8'));
    expect(validate(example)).toBe(true);
    expect(validate({ a: { size: 1 } })).toBe(false);
    expect(validate({ 'a-b': { type: 'parameters' } })).toBe(false);
    expect(validate({ g: { type: 'grid_search_parameters', lr: 0.1 } })).toBe(false);
    expect(validate({ s: { type: 'stage' } })).toBe(false);
    expect(validate({ s: { run: './x.js#f', inputs: ['a', { from: 'b', as: 'all' }], workers: 2, on_error: 'skip' } })).toBe(true);
  });
});
