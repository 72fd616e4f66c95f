/**
 * The console view of a running sweep: on a terminal, a table (cli-table3) redrawn in place with one
 * row per trial; elsewhere (CI logs, pipes), one plain line per event.
 */
import Table from 'cli-table3';
import { num, paramString } from './format.js';
import type { TrialRecord } from './types.js';

/** `'auto'`: a table on a TTY, lines otherwise. */
export type ConsoleMode = 'auto' | 'table' | 'lines' | 'none';

export interface LiveTableOptions {
  /** The sweep's metric (a column). */
  metric: string;
  /** Default `'auto'`. */
  mode?: ConsoleMode;
  /** Where to write. Default `process.stderr`. */
  stream?: { write(s: string): unknown; isTTY?: boolean };
  /** Minimum ms between two redraws of the table. Default 200. */
  throttleMs?: number;
}

export class LiveTable {
  private readonly metric: string;
  private readonly mode: 'table' | 'lines' | 'none';
  private readonly stream: { write(s: string): unknown; isTTY?: boolean };
  private readonly throttleMs: number;
  private drawnLines = 0;
  private lastDraw = 0;
  private pending?: NodeJS.Timeout;
  private trials: TrialRecord[] = [];

  constructor(options: LiveTableOptions) {
    this.metric = options.metric;
    this.stream = options.stream ?? process.stderr;
    const mode = options.mode ?? 'auto';
    this.mode = mode === 'auto' ? (this.stream.isTTY ? 'table' : 'lines') : mode;
    this.throttleMs = options.throttleMs ?? 200;
  }

  /** The trials to show (the same objects are read again at each redraw). */
  start(trials: TrialRecord[], header: string): void {
    this.trials = trials;
    if (this.mode === 'none') return;
    this.stream.write(`${header}\n`);
    if (this.mode === 'table') this.draw();
  }

  /** A line for the log (printed above the table on a terminal). */
  note(message: string): void {
    if (this.mode === 'none') return;
    if (this.mode === 'lines') {
      this.stream.write(`${message}\n`);
      return;
    }
    this.clear();
    this.stream.write(`${message}\n`);
    this.draw();
  }

  /** Something changed for `t` (`what`: 'start' | 'epoch' | 'end'). */
  update(t: TrialRecord, what: 'start' | 'epoch' | 'end'): void {
    if (this.mode === 'none') return;
    if (this.mode === 'lines') {
      this.stream.write(`${this.line(t, what)}\n`);
      return;
    }
    const wait = this.throttleMs - (Date.now() - this.lastDraw);
    if (what !== 'epoch' || wait <= 0) {
      this.redraw();
    } else if (!this.pending) {
      this.pending = setTimeout(() => {
        this.pending = undefined;
        this.redraw();
      }, wait);
      this.pending.unref?.();
    }
  }

  /** Final table (also on non-terminals) and stop redrawing. */
  finish(): void {
    if (this.pending) clearTimeout(this.pending);
    this.pending = undefined;
    if (this.mode === 'none') return;
    if (this.mode === 'table') this.clear();
    this.stream.write(`${this.render()}\n`);
    this.drawnLines = 0;
  }

  /** The table as text. */
  render(): string {
    const table = new Table({
      head: ['trial', 'params', 'status', 'epoch', 'loss', this.metric, 'samples/s', 'data-wait %'],
      style: { head: [], border: [] },
      colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
    });
    for (const t of this.trials) {
      const last = t.history.at(-1);
      table.push([
        t.id,
        paramString(t.params),
        t.state === 'failed' ? 'failed' : t.state,
        last ? String(last.epoch) : '',
        num(last?.metrics.loss),
        num(last?.metrics[this.metric]),
        last ? num(Math.round(last.samplesPerSec)) : '',
        last ? last.dataWaitPct.toFixed(1) : '',
      ]);
    }
    return table.toString();
  }

  private line(t: TrialRecord, what: 'start' | 'epoch' | 'end'): string {
    const head = `[trial ${t.id}]`;
    if (what === 'start') {
      const where = t.gpu === null || t.gpu === undefined ? 'CPU' : `GPU ${t.gpu}`;
      return `${head} start (wave ${(t.wave ?? 0) + 1}, ${where}) ${paramString(t.params)}${t.backendDetail ? ` on ${t.backendDetail}` : ''}`;
    }
    if (what === 'epoch') {
      const e = t.history.at(-1)!;
      return (
        `${head} epoch ${e.epoch} loss ${num(e.metrics.loss)} ${this.metric} ${num(e.metrics[this.metric])} ` +
        `${num(Math.round(e.samplesPerSec))} samples/s data-wait ${e.dataWaitPct.toFixed(1)}%`
      );
    }
    if (t.state === 'failed') return `${head} FAILED: ${t.error?.message ?? 'unknown error'}`;
    const test = t.testAccuracy !== null ? ` test accuracy ${num(t.testAccuracy)}` : '';
    const why = t.stopReason ? ` (${t.stopReason})` : '';
    return `${head} ${t.state} after ${t.history.length} epoch(s), best ${this.metric} ${num(t.score)}${test}${why}`;
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }

  private draw(): void {
    const text = this.render();
    this.stream.write(`${text}\n`);
    this.drawnLines = text.split('\n').length;
    this.lastDraw = Date.now();
  }

  private clear(): void {
    if (this.drawnLines) this.stream.write(`\x1b[${this.drawnLines}A\x1b[0J`);
    this.drawnLines = 0;
  }
}
