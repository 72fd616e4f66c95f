// The `ringpipe` commands, run in this process: output formats and exit codes.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleProject } from '../src/cli/templates.js';
import { LIBRARY_STAGE_TYPES } from '../src/config/library.js';
import { cleanupProjects, cli, makeProject, parseJsonOutput, ROOT } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const chain = () => ({
  params: { type: 'parameters', n: 3 },
  numbers: { run: './more.mjs#range', inputs: ['params'] },
  grid: { type: 'grid_search_parameters', factor: [2, 3] },
  scaled: { run: './steps.mjs#times', inputs: ['numbers', 'grid'] },
  total: { run: './more.mjs#total', inputs: [{ from: 'scaled', as: 'all' }] },
});

describe('help and usage', () => {
  it('--help for the program and every command exits 0', async () => {
    for (const args of [['--help'], ['init', '--help'], ['validate', '--help'], ['run', '--help'], ['graph', '--help'], ['results', '--help'], ['bench', '--help'], ['cache', '--help'], ['cache', 'ls', '--help'], ['cache', 'gc', '--help'], ['cache', 'clear', '--help']]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/Usage: ringpipe/);
    }
    const run = await cli(['run', '--help']);
    for (const opt of ['--set', '--dry-run', '--no-cache', '--json', '--cache-dir']) expect(run.stdout).toContain(opt);
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('usage errors exit 2', async () => {
    expect((await cli(['frobnicate'])).code).toBe(2);
    expect((await cli(['run'])).code).toBe(2);
    const bad = await cli(['run', 'x.json', '--no-such-option']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown option/);
    expect((await cli(['graph', 'x.json', '--format', 'png'])).code).toBe(2);
    expect((await cli(['run', 'x.json', '--concurrency', 'zero'])).code).toBe(2);
  });
});

describe('validate', () => {
  it('a valid pipeline exits 0 and says so', async () => {
    const p = makeProject(chain());
    const r = await cli(['validate', p.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/valid \(5 items, 3 stages, 5 stage runs across 2 branches\)/);
    const j = await cli(['validate', p.file, '--json']);
    expect(parseJsonOutput(j.stdout)).toMatchObject({ valid: true, items: 5, stages: 3, branches: 2, stageRuns: 5 });
  });

  it('config errors exit 2 and name item and field', async () => {
    const p = makeProject({ a: { size: 1 }, b: { run: './steps.mjs#nope', inputs: [] }, c: { run: './steps.mjs#square', inputs: ['zz'] } });
    const r = await cli(['validate', p.file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("item 'a', field 'type': missing field 'type'");
    expect(r.stderr).toContain("item 'b', field 'run': module './steps.mjs' has no export 'nope'");
    expect(r.stderr).toContain("item 'c', field 'inputs.0': input 'zz' names no item");
    expect((await cli(['validate', join(p.dir, 'missing.json')])).code).toBe(2);
    expect((await cli(['run', p.file])).code).toBe(2);
    expect((await cli(['validate', makeProject(chain()).file, '--set', 'nope.x=1'])).code).toBe(2);
  });
});

describe('run', () => {
  it('--json prints exactly one JSON object with every stage run, branch by branch; a second run is all cached', async () => {
    const p = makeProject(chain());
    const r = await cli(['run', p.file, '--json']);
    expect(r.code).toBe(0);
    const out = parseJsonOutput(r.stdout);
    expect(Object.keys(out)).toEqual(['stages', 'notRun', 'unusedInputs']);
    expect([out.notRun, out.unusedInputs]).toEqual([[], []]);
    expect(out.stages).toHaveLength(5);
    for (const s of out.stages) {
      expect(Object.keys(s)).toEqual(['name', 'branch', 'status', 'records', 'seconds']);
      expect(s.status).toBe('computed');
      expect(typeof s.seconds).toBe('number');
    }
    expect(out.stages.map((s: { name: string; branch: string | null; records: number }) => [s.name, s.branch === null, s.records])).toEqual([
      ['numbers', true, 3],
      ['scaled', false, 3],
      ['total', false, 1],
      ['scaled', false, 3],
      ['total', false, 1],
    ]);
    // progress went to stderr as plain lines (not a terminal)
    expect(r.stderr).toMatch(/^computed +numbers: 3 records/m);
    const again = parseJsonOutput((await cli(['run', p.file, '--json'])).stdout);
    expect(again.stages.map((s: { status: string }) => s.status)).toEqual(Array(5).fill('cached'));
  });

  it('a failing stage: exit 1, the JSON says which failed and why', async () => {
    const p = makeProject({
      params: { type: 'parameters', n: 4 },
      numbers: { run: './steps.mjs#count', inputs: ['params'] },
      broken: { run: './steps.mjs#boom', inputs: ['numbers'] },
      fine: { run: './steps.mjs#square', inputs: ['numbers'] },
    });
    const r = await cli(['run', p.file, '--json']);
    expect(r.code).toBe(1);
    const out = parseJsonOutput(r.stdout);
    expect(out.stages.map((s: { name: string; status: string }) => [s.name, s.status])).toEqual([
      ['numbers', 'computed'],
      ['broken', 'failed'],
      ['fine', 'computed'],
    ]);
    expect(out.stages[1].error).toMatchObject({ code: 'ERR_STAGE_FAILED', record: 2, message: expect.stringMatching(/boom on 2/) });
    expect(r.stderr).toMatch(/error: stage 'broken': 'boom' failed on record 2: boom on 2/);
  });

  it('a summary table without --json; --dry-run runs nothing; --no-cache writes nothing', async () => {
    const p = makeProject(chain());
    const dry = await cli(['run', p.file, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/5 stage runs: 0 cached, 5 would run/);
    expect(existsSync(join(p.dir, '.ringpipe', 'cache', 'objects'))).toBe(false);
    const none = await cli(['run', p.file, '--no-cache']);
    expect(none.code).toBe(0);
    expect(existsSync(join(p.dir, '.ringpipe'))).toBe(false);
    const r = await cli(['run', p.file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/│ stage +│ branch +│ params +│ status +│ records +│ time +│ metadata/);
    expect(r.stdout).toMatch(/grid\.factor=3/);
    expect(r.stdout).toMatch(/5 stage runs: 5 computed, 0 cached, 0 failed/);
    const dryJson = parseJsonOutput((await cli(['run', p.file, '--dry-run', '--json', '--set', 'grid.factor=[3,4]'])).stdout);
    // branch by branch: numbers, then scaled and total for factor 3 (cached), then for factor 4
    expect(dryJson.stages.map((s: { status: string }) => s.status)).toEqual(['cached', 'cached', 'cached', 'pending', 'pending']);
  });

  it('--set overrides; --cache-dir puts the cache elsewhere', async () => {
    const p = makeProject(chain());
    const dir = join(p.dir, 'elsewhere');
    const r = await cli(['run', p.file, '--json', '--set', 'params.n=5', '--cache-dir', dir]);
    expect(r.code).toBe(0);
    expect(parseJsonOutput(r.stdout).stages[0].records).toBe(5);
    expect(readdirSync(join(dir, 'objects')).length).toBeGreaterThan(0);
    expect(existsSync(join(p.dir, '.ringpipe'))).toBe(false);
  });

  it('a library stage that is not available: a warning, then exit 1 naming it', async () => {
    // Every library type ships now: make one's module go missing, as in a build without it.
    const type = LIBRARY_STAGE_TYPES.image_preprocess as { module: string };
    const module = type.module;
    type.module = './not-built.js';
    try {
      const p = makeProject({ files: { type: 'file_folder', path: './data' }, t: { type: 'image_preprocess', inputs: ['files'] } });
      const r = await cli(['run', p.file, '--json']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/warning: item 't', field 'type': stage type 'image_preprocess' is not available/);
      expect(parseJsonOutput(r.stdout).stages[0]).toMatchObject({ name: 't', status: 'failed', error: { code: 'ERR_NOT_AVAILABLE', message: expect.stringMatching(/not available/) } });
    } finally {
      type.module = module;
    }
  });
});

describe('results and graph', () => {
  it('results as a table, JSON and CSV, with parameters and metadata', async () => {
    const p = makeProject({
      params: { type: 'parameters', n: 3 },
      model: { type: 'parameters', epochs: 2 },
      grid: { type: 'grid_search_parameters', lr: [1, 10] },
      data: { run: './steps.mjs#count', inputs: ['params'] },
      trained: { run: './steps.mjs#train', inputs: [{ from: 'data', as: 'iterable' }, 'model', 'grid'] },
    });
    const before = await cli(['results', p.file, '--json']);
    expect(parseJsonOutput(before.stdout).results.map((r: { status: string }) => r.status)).toEqual(['missing', 'missing']);
    expect((await cli(['run', p.file])).code).toBe(0);
    const j = parseJsonOutput((await cli(['results', p.file, '--json'])).stdout);
    expect(j.results).toHaveLength(2);
    for (const r of j.results) {
      expect(r).toMatchObject({ stage: 'trained', status: 'cached', records: 2, metadata: { epoch: 1, loss: (3 * r.params.grid.lr) / 2, branch: r.branch } });
    }
    const t = await cli(['results', p.file]);
    expect(t.stdout).toMatch(/│ stage +│ branch +│ grid\.lr +│ status +│ records +│ epoch +│ loss +│ branch/);
    const c = (await cli(['results', p.file, '--csv'])).stdout.trim().split('\n');
    expect(c[0]).toBe('stage,branch,grid.lr,status,records,epoch,loss,branch,key');
    expect(c).toHaveLength(3);
    expect(c[1]).toMatch(/^trained,[0-9a-f]{12},1,cached,2,1,1\.5,[0-9a-f]{12},[0-9a-f]{64}$/);
    const all = parseJsonOutput((await cli(['results', p.file, '--json', '--all'])).stdout);
    expect(all.results.map((r: { stage: string }) => r.stage)).toEqual(['data', 'trained', 'trained']);
    const one = parseJsonOutput((await cli(['results', p.file, '--json', '--stage', 'data'])).stdout);
    expect(one.results.map((r: { stage: string }) => r.stage)).toEqual(['data']);
    expect((await cli(['results', p.file, '--stage', 'nope'])).code).toBe(2);
  });

  it('graph prints Mermaid or DOT', async () => {
    const p = makeProject(chain());
    const m = await cli(['graph', p.file]);
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(/^flowchart LR\n/);
    expect(m.stdout).toContain('scaled -->|all| total');
    const d = await cli(['graph', p.file, '--format', 'dot', '--branches']);
    expect(d.stdout).toMatch(/^digraph pipeline \{/);
    expect(d.stdout.match(/"scaled_[0-9a-f]{12}" \[/g)).toHaveLength(2);
  });
});

describe('cache ls, gc, clear', () => {
  it('ls shows entries and sizes; gc keeps what current pipelines reach; clear empties', async () => {
    const p = makeProject(chain());
    expect((await cli(['run', p.file, '-q'])).code).toBe(0);
    const ls = await cli(['cache', 'ls', p.file]);
    expect(ls.stdout).toMatch(/5 entries, [\d.]+ (B|KiB) in /);
    expect(ls.stdout).toMatch(/│ key +│ stage +│ branch +│ records +│ size/);
    const lsj = parseJsonOutput((await cli(['cache', 'ls', p.file, '--json'])).stdout);
    expect(lsj.entries).toHaveLength(5);
    expect(lsj.totalSize).toBe(lsj.entries.reduce((s: number, e: { size: number }) => s + e.size, 0));

    // change a grid value: the old branch's entries are no longer reached by the pipeline file
    expect((await cli(['run', p.file, '-q', '--set', 'grid.factor=[2,4]'])).code).toBe(0);
    expect(parseJsonOutput((await cli(['cache', 'ls', p.file, '--json'])).stdout).entries).toHaveLength(7);
    const dry = parseJsonOutput((await cli(['cache', 'gc', '--cache-dir', join(p.dir, '.ringpipe', 'cache'), '--dry-run', '--json'])).stdout);
    expect(dry.removed).toHaveLength(2); // the factor=4 branch (scaled, total): not what pipeline.json says
    expect(dry.roots).toEqual([p.file]);
    const gc = await cli(['cache', 'gc', p.file]);
    expect(gc.code).toBe(0);
    expect(gc.stdout).toMatch(/removed 2 entries .*; kept 5 /);
    expect(parseJsonOutput((await cli(['run', p.file, '--json'])).stdout).stages.every((s: { status: string }) => s.status === 'cached')).toBe(true);

    // a registered pipeline that no longer validates stops gc (exit 2) unless --force
    p.write({ broken: { size: 1 } });
    const refused = await cli(['cache', 'gc', '--cache-dir', join(p.dir, '.ringpipe', 'cache')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--force/);
    const forced = await cli(['cache', 'gc', '--cache-dir', join(p.dir, '.ringpipe', 'cache'), '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/removed 5 entries/);

    p.write(chain());
    expect((await cli(['run', p.file, '-q'])).code).toBe(0);
    const clear = await cli(['cache', 'clear', p.file]);
    expect(clear.stdout).toMatch(/removed 5 entries/);
    expect((await cli(['cache', 'ls', p.file])).stdout).toMatch(/0 entries, 0 B/);
    // a deleted pipeline file is forgotten by gc
    expect((await cli(['run', p.file, '-q'])).code).toBe(0);
    rmSync(p.file);
    const gone = await cli(['cache', 'gc', '--cache-dir', join(p.dir, '.ringpipe', 'cache')]);
    expect(gone.stderr).toMatch(/forgot .*pipeline\.json/);
    expect(gone.stdout).toMatch(/removed 5 entries/);
  });
});

describe('init', () => {
  it('writes a runnable example project, the same as examples/json-pipeline', async () => {
    const p = makeProject({});
    const dir = join(p.dir, 'new-project');
    const r = await cli(['init', dir]);
    expect(r.code).toBe(0);
    const files = exampleProject('./pipeline.schema.json', `file:${ROOT}`);
    for (const [rel, text] of Object.entries(files)) expect(readFileSync(join(dir, rel), 'utf8')).toBe(text);
    expect(readFileSync(join(dir, 'pipeline.schema.json'), 'utf8')).toBe(readFileSync(join(ROOT, 'schema', 'pipeline.schema.json'), 'utf8'));
    // the checked-in example is what init writes (but for the schema reference)
    const example = join(ROOT, 'examples', 'json-pipeline');
    for (const [rel, text] of Object.entries(exampleProject('../../schema/pipeline.schema.json', 'file:../..'))) {
      expect(readFileSync(join(example, rel), 'utf8'), relative(ROOT, join(example, rel))).toBe(text);
    }
    expect((await cli(['init', dir])).code).toBe(2); // would overwrite
    // it runs, and its results show every branch with its mse
    const run = await cli(['run', join(dir, 'pipeline.json'), '--json']);
    expect(run.code).toBe(0);
    expect(parseJsonOutput(run.stdout).stages.map((s: { status: string }) => s.status)).toEqual(Array(10).fill('computed'));
    const res = parseJsonOutput((await cli(['results', join(dir, 'pipeline.json'), '--json'])).stdout).results;
    expect(res).toHaveLength(4);
    for (const x of res) expect(x.metadata.mse).toBeLessThan(0.1);
  });

  it('makes a project that runs standalone: npm install, then npm start and npm run results', async () => {
    const p = makeProject({});
    const dir = join(p.dir, 'standalone project');
    expect((await cli(['init', dir])).code).toBe(0);
    expect(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).dependencies).toEqual({ ringpipe: `file:${ROOT}` });
    const sh = (args: string[]) => spawnSync('npm', args, { cwd: dir, encoding: 'utf8', timeout: 120_000, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } });
    const install = sh(['install', '--offline', '--ignore-scripts', '--loglevel=error']);
    expect(install.status, install.stderr).toBe(0);
    const start = sh(['start']);
    expect(start.status, start.stderr).toBe(0);
    const results = sh(['run', 'results', '--', '--json']);
    expect(results.status, results.stderr).toBe(0);
    expect(parseJsonOutput(results.stdout.slice(results.stdout.indexOf('{'))).results).toHaveLength(4);
  });
});

describe('graph', () => {
  it('--dot is --format dot', async () => {
    const p = makeProject({});
    const dir = join(p.dir, 'g');
    await cli(['init', dir]);
    const dot = await cli(['graph', join(dir, 'pipeline.json'), '--dot']);
    expect(dot.code).toBe(0);
    expect(dot.stdout).toMatch(/^digraph/m);
    expect((await cli(['graph', join(dir, 'pipeline.json'), '--format', 'dot'])).stdout).toBe(dot.stdout);
  });
});

describe('bench', () => {
  it('lists the suites of the checkout', async () => {
    const r = await cli(['bench', '--list']);
    expect(r.code).toBe(0);
    const suites = readdirSync(join(ROOT, 'bench', 'suites'))
      .filter((f) => f.endsWith('.ts') && !f.includes('.worker') && !f.startsWith('_'))
      .map((f) => f.slice(0, -3))
      .sort();
    expect(r.stdout.trim().split('\n').filter(Boolean)).toEqual(suites);
    const unknown = await cli(['bench', 'no-such-suite']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown bench suite 'no-such-suite'/);
  });
});

describe('progress views', () => {
  it('on a terminal: a bar per running stage with records, rate and ETA; a line per finished stage', async () => {
    const { PassThrough } = await import('node:stream');
    const { BarProgress } = await import('../src/cli/progress.js');
    const stream = Object.assign(new PassThrough(), { isTTY: true, columns: 120, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true });
    let text = '';
    stream.on('data', (c) => (text += c));
    const view = new BarProgress(stream);
    view.event({ type: 'plan', stages: [{ name: 'prep', branch: null, cached: false }] });
    view.event({ type: 'stage-start', name: 'prep', branch: null, total: 10 });
    await new Promise((r) => setTimeout(r, 150));
    view.event({ type: 'stage-progress', name: 'prep', branch: null, consumed: 4, produced: 4, total: 10 });
    await new Promise((r) => setTimeout(r, 250));
    view.event({ type: 'stage-end', result: { name: 'prep', branch: null, params: {}, key: 'k', status: 'computed', records: 10, seconds: 0.4 } });
    view.stop();
    const plain = text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(plain).toMatch(/1 stage run: 0 cached, 1 to compute/);
    expect(plain).toMatch(/prep \|[█░]+\| 4\/10 records \| [\d.]+\/s ETA/);
    expect(plain).toMatch(/computed +prep: 10 records in 0\.40s/);
  });
});
