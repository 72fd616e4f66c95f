/** The files a sweep leaves behind: results.json, results.csv (one row per trial), history.csv (one row per epoch). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { num } from './format.js';
import type { Params } from './space.js';
import type { TrialRecord } from './types.js';

/** The best trial, by the sweep's metric. */
export interface BestTrial {
  id: string;
  params: Params;
  /** The sweep's metric and its best value for this trial. */
  metric: string;
  score: number;
  epoch: number;
  testAccuracy: number | null;
  /** Where its model was saved (OUT/best-model), if saved. */
  modelDir?: string;
}

/** Content of results.json. */
export interface SweepResultsFile {
  metric: string;
  mode: 'min' | 'max';
  startedAt: string;
  seconds: number;
  /** How trainers were placed (GPU plan note). */
  placement: string;
  trials: Array<Omit<TrialRecord, 'state' | 'error'> & { status: TrialRecord['state']; error?: { name: string; message: string; code?: string } }>;
  best: BestTrial | null;
}

/** Paths of the files a sweep writes into `out`. */
export interface ResultFiles {
  json: string;
  csv: string;
  historyCsv: string;
}

/** Writes results.json, results.csv and history.csv into `dir`. */
export async function writeResultFiles(dir: string, file: SweepResultsFile): Promise<ResultFiles> {
  await mkdir(dir, { recursive: true });
  const paths = { json: join(dir, 'results.json'), csv: join(dir, 'results.csv'), historyCsv: join(dir, 'history.csv') };
  await writeFile(paths.json, `${JSON.stringify(file, null, 2)}\n`);
  await writeFile(paths.csv, trialsCsv(file));
  await writeFile(paths.historyCsv, historyCsv(file));
  return paths;
}

/** JSON-friendly trial records (errors without stacks). */
export function serializeTrials(trials: readonly TrialRecord[]): SweepResultsFile['trials'] {
  return trials.map(({ state, error, ...t }) => ({
    ...t,
    status: state,
    ...(error ? { error: { name: error.name, message: error.message, ...(error.code ? { code: error.code } : {}) } } : {}),
  }));
}

export function csvCell(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const row = (cells: unknown[]) => `${cells.map(csvCell).join(',')}\n`;

function paramKeys(file: SweepResultsFile): string[] {
  return [...new Set(file.trials.flatMap((t) => Object.keys(t.params)))].sort();
}

function metricKeys(file: SweepResultsFile): string[] {
  return [...new Set(file.trials.flatMap((t) => t.history.flatMap((h) => Object.keys(h.metrics))))].sort();
}

function trialsCsv(file: SweepResultsFile): string {
  const pk = paramKeys(file);
  const tk = [...new Set(file.trials.flatMap((t) => Object.keys(t.test ?? {})))].sort();
  let out = row(['trial', 'status', ...pk, 'epochs', `best_${file.metric}`, 'best_epoch', ...tk, 'backend', 'gpu', 'seconds', 'stop_reason', 'error']);
  for (const t of file.trials) {
    out += row([
      t.id,
      t.status,
      ...pk.map((k) => t.params[k]),
      t.history.length,
      t.score,
      t.bestEpoch,
      ...tk.map((k) => t.test?.[k]),
      t.backend,
      t.gpu === null ? 'cpu' : t.gpu,
      t.seconds === undefined ? '' : num(t.seconds, 6),
      t.stopReason,
      t.error?.message,
    ]);
  }
  return out;
}

function historyCsv(file: SweepResultsFile): string {
  const pk = paramKeys(file);
  const mk = metricKeys(file);
  let out = row(['trial', ...pk, 'epoch', ...mk, 'samples', 'seconds', 'samples_per_sec', 'data_wait_pct', 'eval_seconds']);
  for (const t of file.trials) {
    for (const h of t.history) {
      out += row([t.id, ...pk.map((k) => t.params[k]), h.epoch, ...mk.map((k) => h.metrics[k]), h.samples, h.seconds, h.samplesPerSec, h.dataWaitPct, h.evalSeconds]);
    }
  }
  return out;
}
