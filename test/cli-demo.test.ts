// `ringpipe demo`: the embedded example end to end as a child process (`node --import tsx
// src/cli/main.ts demo`): the results table, accuracies far above chance, the result files with
// --out, and nothing left behind (temporary folder, processes), also when interrupted.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliProcess, waitFor, type CliRun } from './fixtures/config/helpers.js';

const root = mkdtempSync(join(tmpdir(), 'ringpipe-demo-test-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CHANCE = 1 / 3;
const TAG = 'RINGPIPE_DEMO_TEST_TAG';

/** Pids of live processes whose environment carries `TAG=tag` (the demo and every process it started). */
function taggedProcesses(tag: string): number[] {
  const needle = `${TAG}=${tag}`;
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(needle)) {
        // a zombie has exited; only count processes still running
        const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1];
        if (state !== 'Z') pids.push(Number(d));
      }
    } catch {
      // gone, or not ours
    }
  }
  return pids;
}

interface Row {
  trial: string;
  params: string;
  status: string;
  epochs: number;
  val: number;
  test: number;
  backend: string;
}

/** The rows of the results table printed on stdout. */
function tableRows(stdout: string): Row[] {
  return stdout
    .split('\n')
    .filter((l) => /^│ [0-9a-f]{12} /.test(l))
    .map((l) => {
      const c = l.split('│').slice(1, -1).map((s) => s.trim());
      return { trial: c[0]!, params: c[1]!, status: c[2]!, epochs: Number(c[3]), val: Number(c[4]), test: Number(c[5]), backend: c[6]! };
    });
}

/** Runs the demo with its own TMPDIR and a tag in its environment. */
async function runDemo(args: string[], name: string): Promise<CliRun & { tmp: string; tag: string; seconds: number }> {
  const tmp = join(root, name);
  const tag = randomUUID();
  mkdirSync(tmp, { recursive: true });
  const t0 = Date.now();
  const r = await cliProcess(['demo', ...args], { env: { TMPDIR: tmp, [TAG]: tag } });
  return { ...r, tmp, tag, seconds: (Date.now() - t0) / 1000 };
}

const demoLeftovers = (tmp: string) => readdirSync(tmp).filter((n) => n.startsWith('ringpipe-demo-'));

async function expectNoProcessesLeft(tag: string): Promise<void> {
  // Trainer processes exit on their own once they have reported; give them a moment.
  const until = Date.now() + 10_000;
  while (taggedProcesses(tag).length && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  expect(taggedProcesses(tag), "the demo's processes still running").toEqual([]);
}

describe('ringpipe demo', () => {
  it('--help describes the options; a bad seed is a usage error; the other commands are still there', async () => {
    const help = await cli(['demo', '--help']);
    expect(help.code).toBe(0);
    for (const opt of ['--out <dir>', '--quick', '--seed <n>']) expect(help.stdout).toContain(opt);
    const top = await cli(['--help']);
    for (const c of ['init', 'validate', 'run', 'graph', 'results', 'bench', 'cache', 'demo']) expect(top.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
    expect((await cli(['demo', '--seed', 'x'])).code).toBe(2);
    expect((await cli(['demo', '--bogus'])).code).toBe(2);
  });

  it('--quick --out DIR: a row per trial with accuracies far above chance, the result files kept, no temporary folder or process left', async () => {
    const out = join(root, 'kept');
    const r = await runDemo(['--quick', '--out', out], 'quick');
    expect(r.code, r.stderr).toBe(0);
    console.log(`demo --quick: ${r.seconds.toFixed(1)} s\n${r.stdout}`);

    // the table: both trials of the quick grid, completed, with accuracies
    const rows = tableRows(r.stdout);
    expect(rows.map((x) => x.params).sort()).toEqual(['hidden=64 learningRate=0.001', 'hidden=64 learningRate=0.01']);
    for (const row of rows) {
      expect(row.status).toBe('completed');
      expect(row.epochs).toBe(6);
      expect(row.val).toBeGreaterThan(CHANCE);
      expect(row.test).toBeGreaterThan(0);
      expect(['wasm', 'cpu', 'tensorflow']).toContain(row.backend);
    }
    const bestVal = Math.max(...rows.map((x) => x.val));
    expect(bestVal).toBeGreaterThanOrEqual(0.7);
    expect(Math.max(...rows.map((x) => x.test))).toBeGreaterThanOrEqual(0.6);

    // the files, consistent with the table
    for (const f of ['results.json', 'results.csv', 'history.csv', 'learning-curves.html', 'best-model/model.json', 'best-model/weights.bin']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.metric).toBe('val_acc');
    expect(json.trials.map((t: { id: string }) => t.id).sort()).toEqual(rows.map((x) => x.trial).sort());
    for (const t of json.trials) {
      const row = rows.find((x) => x.trial === t.id)!;
      expect(t.status).toBe('completed');
      expect(t.history).toHaveLength(6);
      expect(t.score).toBeCloseTo(row.val, 3);
      expect(t.testAccuracy).toBeCloseTo(row.test, 3);
    }
    expect(json.best.score).toBeCloseTo(bestVal, 3);
    expect(readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n')).toHaveLength(1 + rows.length);
    expect(readFileSync(join(out, 'learning-curves.html'), 'utf8')).toContain('<svg');
    expect(r.stdout).toContain(`result files: ${out} (`);
    expect(r.stdout).not.toContain('temporary folder');

    // the engine did the preprocessing, in two workers
    expect(r.stderr).toMatch(/\[2\/3\] preprocessing on the engine/);
    expect(r.stdout).toMatch(/preprocessing: 180 images -> \[24, 24, 3\] float32 tensors by 2 engine workers/);

    expect(demoLeftovers(r.tmp)).toEqual([]);
    await expectNoProcessesLeft(r.tag);
  }, 150_000);

  it('the same --seed gives the same trials and the same numbers', async () => {
    const numbers = (stdout: string) => tableRows(stdout).map(({ trial, params, status, epochs, val, test }) => ({ trial, params, status, epochs, val, test }));
    const a = await runDemo(['--quick', '--seed', '5'], 'seed-a');
    const b = await runDemo(['--quick', '--seed', '5'], 'seed-b');
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(numbers(a.stdout)).toHaveLength(2);
    expect(numbers(b.stdout)).toEqual(numbers(a.stdout));
    const best = (stdout: string) => /^best: .*$/m.exec(stdout)?.[0];
    expect(best(b.stdout)).toBeDefined();
    expect(best(b.stdout)).toBe(best(a.stdout));
    await expectNoProcessesLeft(a.tag);
    await expectNoProcessesLeft(b.tag);
  }, 150_000);

  it('the default run (npm start): 4 trials in 2 waves, well under 2 minutes; results in a temporary folder that is removed', async () => {
    const r = await runDemo([], 'full');
    expect(r.code, r.stderr).toBe(0);
    console.log(`demo: ${r.seconds.toFixed(1)} s\n${r.stdout}`);
    expect(r.seconds).toBeLessThan(120);
    const rows = tableRows(r.stdout);
    expect(rows).toHaveLength(4);
    expect(new Set(rows.map((x) => x.params))).toEqual(new Set(['hidden=16 learningRate=0.001', 'hidden=16 learningRate=0.01', 'hidden=128 learningRate=0.001', 'hidden=128 learningRate=0.01']));
    for (const row of rows) {
      expect(row.status).toBe('completed');
      expect(row.epochs).toBe(10);
      expect(Number.isFinite(row.val) && Number.isFinite(row.test)).toBe(true);
    }
    expect(Math.max(...rows.map((x) => x.val))).toBeGreaterThanOrEqual(0.75);
    expect(Math.max(...rows.map((x) => x.test))).toBeGreaterThanOrEqual(0.65);
    expect(r.stderr).toMatch(/sweep: 4 trial\(s\) in 2 wave\(s\)/);
    const where = /result files: (\S+) \(/.exec(r.stdout)?.[1];
    expect(where?.startsWith(join(r.tmp, 'ringpipe-demo-'))).toBe(true);
    expect(r.stdout).toContain('a temporary folder, now removed');
    expect(existsSync(where!)).toBe(false);
    expect(demoLeftovers(r.tmp)).toEqual([]);
    await expectNoProcessesLeft(r.tag);
  }, 150_000);

  it('Ctrl-C during the sweep: exit 1, no temporary folder and no process left', async () => {
    const tmp = join(root, 'interrupted');
    const tag = randomUUID();
    mkdirSync(tmp, { recursive: true });
    const run = cliProcess(['demo'], { env: { TMPDIR: tmp, [TAG]: tag } });
    let stderr = '';
    run.child.stderr!.on('data', (c) => (stderr += c));
    await waitFor(() => /\[trial [0-9a-f]{12}\] (start|epoch)/.test(stderr), 90_000, 'the first trial to start');
    // the check for leftovers sees the running demo: the CLI process and its two trainer processes
    expect(taggedProcesses(tag).length).toBeGreaterThanOrEqual(3);
    run.child.kill('SIGINT');
    const r = await run;
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cancelled|interrupted/);
    expect(demoLeftovers(tmp)).toEqual([]);
    await expectNoProcessesLeft(tag);
  }, 150_000);
});
