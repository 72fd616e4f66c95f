import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { niceTicks, renderLearningCurves } from '../src/sweep/chart.js';
import { csvCell, serializeTrials, writeResultFiles, type SweepResultsFile } from '../src/sweep/results.js';
import { LiveTable } from '../src/sweep/table.js';
import type { TrialRecord } from '../src/sweep/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-sweep-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const epoch = (e: number, loss: number, acc: number) => ({
  epoch: e,
  metrics: { loss, val_acc: acc },
  samples: 100,
  steps: 4,
  seconds: 0.5,
  samplesPerSec: 200,
  dataWaitPct: 12.34,
  evalSeconds: 0.01,
});

function trials(): TrialRecord[] {
  return [
    { id: 'aaaaaaaaaaaa', index: 0, params: { lr: 0.001, units: 64 }, state: 'completed', gpu: null, backend: 'wasm', backendDetail: 'wasm (detail)', history: [epoch(1, 0.9, 0.7), epoch(2, 0.5, 0.82)], score: 0.82, bestEpoch: 2, testAccuracy: 0.81, test: { test_acc: 0.81, test_loss: 0.55 }, seconds: 2 },
    { id: 'bbbbbbbbbbbb', index: 1, params: { lr: 0.1, units: 64 }, state: 'stopped', stopReason: 'median rule: worse', gpu: 1, backend: 'tensorflow', history: [epoch(1, 1.5, 0.4)], score: 0.4, bestEpoch: 1, testAccuracy: null },
    { id: 'cccccccccccc', index: 2, params: { lr: 0.01, units: 'a,"b"' }, state: 'failed', history: [], testAccuracy: null, error: { name: 'Error', message: 'boom <script>', stack: 'at x' } },
  ];
}

function file(): SweepResultsFile {
  const t = trials();
  return {
    metric: 'val_acc',
    mode: 'max',
    startedAt: '2024-01-01T00:00:00.000Z',
    seconds: 3.5,
    placement: 'no GPU requested',
    trials: serializeTrials(t),
    best: { id: t[0]!.id, params: t[0]!.params, metric: 'val_acc', score: 0.82, epoch: 2, testAccuracy: 0.81 },
  };
}

describe('console table', () => {
  it('plain lines when not a terminal', () => {
    const out: string[] = [];
    const table = new LiveTable({ metric: 'val_acc', stream: { write: (s: string) => void out.push(s), isTTY: false } });
    const ts = trials();
    table.start(ts, 'sweep: 3 trials');
    table.update(ts[0]!, 'start');
    table.update(ts[0]!, 'epoch');
    table.update(ts[0]!, 'end');
    table.update(ts[1]!, 'end');
    table.update(ts[2]!, 'end');
    table.finish();
    const text = out.join('');
    expect(text).not.toContain('\x1b[');
    expect(text).toContain('sweep: 3 trials\n');
    expect(text).toContain('[trial aaaaaaaaaaaa] start (wave 1, CPU) lr=0.001 units=64 on wasm (detail)\n');
    expect(text).toContain('[trial aaaaaaaaaaaa] epoch 2 loss 0.5 val_acc 0.82 200 samples/s data-wait 12.3%\n');
    expect(text).toContain('[trial aaaaaaaaaaaa] completed after 2 epoch(s), best val_acc 0.82 test accuracy 0.81\n');
    expect(text).toContain('[trial bbbbbbbbbbbb] stopped after 1 epoch(s), best val_acc 0.4 (median rule: worse)\n');
    expect(text).toContain('[trial cccccccccccc] FAILED: boom <script>\n');
    // The final table has every column.
    for (const h of ['trial', 'params', 'status', 'epoch', 'loss', 'val_acc', 'samples/s', 'data-wait %']) expect(text).toContain(h);
  });

  it('on a terminal, redraws the table in place', () => {
    const out: string[] = [];
    const table = new LiveTable({ metric: 'val_acc', stream: { write: (s: string) => void out.push(s), isTTY: true }, throttleMs: 0 });
    const ts = trials();
    table.start(ts, 'sweep');
    const first = out.at(-1)!;
    const rows = first.trimEnd().split('\n').length;
    table.update(ts[0]!, 'epoch');
    expect(out.at(-2)).toBe(`\x1b[${rows}A\x1b[0J`);
    table.note('a note');
    expect(out.slice(-3, -1)).toEqual([`\x1b[${rows}A\x1b[0J`, 'a note\n']);
    table.finish();
    expect(out.at(-1)).toContain('aaaaaaaaaaaa');
  });

  it("'none' writes nothing", () => {
    const out: string[] = [];
    const table = new LiveTable({ metric: 'acc', mode: 'none', stream: { write: (s: string) => void out.push(s) } });
    table.start(trials(), 'x');
    table.update(trials()[0]!, 'epoch');
    table.finish();
    expect(out).toEqual([]);
  });
});

describe('result files', () => {
  it('JSON, one CSV row per trial and one per epoch', async () => {
    const f = file();
    const p = await writeResultFiles(join(tmp, 'r1'), f);
    const json = JSON.parse(readFileSync(p.json, 'utf8'));
    expect(json.best).toMatchObject({ id: 'aaaaaaaaaaaa', testAccuracy: 0.81 });
    expect(json.trials[2]).toMatchObject({ status: 'failed', error: { name: 'Error', message: 'boom <script>' } });
    expect(json.trials[2].error.stack).toBeUndefined();
    const csv = readFileSync(p.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe('trial,status,lr,units,epochs,best_val_acc,best_epoch,test_acc,test_loss,backend,gpu,seconds,stop_reason,error');
    expect(csv[1]).toBe('aaaaaaaaaaaa,completed,0.001,64,2,0.82,2,0.81,0.55,wasm,cpu,2,,');
    expect(csv[2]).toBe('bbbbbbbbbbbb,stopped,0.1,64,1,0.4,1,,,tensorflow,1,,median rule: worse,');
    expect(csv[3]).toBe('cccccccccccc,failed,0.01,"a,""b""",0,,,,,,,,,boom <script>');
    const hist = readFileSync(p.historyCsv, 'utf8').trim().split('\n');
    expect(hist[0]).toBe('trial,lr,units,epoch,loss,val_acc,samples,seconds,samples_per_sec,data_wait_pct,eval_seconds');
    expect(hist).toHaveLength(4);
    expect(hist[2]).toBe('aaaaaaaaaaaa,0.001,64,2,0.5,0.82,100,0.5,200,12.34,0.01');
  });

  it('CSV cells are quoted when needed', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('line\nbreak')).toBe('"line\nbreak"');
    expect(csvCell(NaN)).toBe('');
    expect(csvCell([1, 2])).toBe('"[1,2]"');
  });
});

describe('learning-curve chart', () => {
  it('a self-contained HTML page with one line per trial and metric', () => {
    const html = renderLearningCurves(file());
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('<figcaption>val_acc</figcaption>');
    expect(html).toContain('<figcaption>loss</figcaption>');
    // Trial a: a polyline per metric; trial b (one epoch): a point per metric; c has no history.
    expect(html.match(/<polyline/g)).toHaveLength(2);
    expect(html.match(/<circle/g)).toHaveLength(2);
    expect(html).toContain('stroke-width="3.5"'); // the best trial is thicker
    expect(html).toContain('boom &lt;script&gt;');
    expect(html).toContain('Best trial <code>aaaaaaaaaaaa</code>');
  });

  it('nice ticks cover the range with round steps', () => {
    expect(niceTicks(0.12, 0.87)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.12, 0.87, 10)).toEqual([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]);
    expect(niceTicks(1, 10, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const flat = niceTicks(0.5, 0.5);
    expect(flat[0]).toBeLessThan(0.5);
    expect(flat.at(-1)).toBeGreaterThan(0.5);
  });
});
