// Showing a run as it goes: a progress bar per running stage on a terminal, plain lines otherwise.
import cliProgress from 'cli-progress';
import type { NotRunGroup, RunEvent, StageResult } from '../config/executor.js';
import type { UnusedInput } from '../config/sources.js';
import { line, seconds } from './format.js';

/** Consumes run events and shows them. */
export interface ProgressView {
  /** Handles one event. */
  event(e: RunEvent): void;
  /** Removes anything live from the screen (before the summary). */
  stop(): void;
}

const label = (name: string, branch: string | null) => (branch ? `${name} [${branch}]` : name);

/** `5 stage runs` and `3 cached, 2 to compute` (only when the run checked every stage run up front). */
export function planText(e: Extract<RunEvent, { type: 'plan' }>): { runs: string; cache?: string } {
  const total = e.total ?? e.stages?.length ?? 0;
  const runs = `${count(total)} stage run${total === 1 ? '' : 's'}`;
  if (!e.stages) return { runs };
  const cached = e.stages.filter((s) => s.cached).length;
  return { runs, cache: `${cached} cached, ${e.stages.length - cached} to compute` };
}

/** A count with thousands separators. */
export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** `not run    score: 999,998 stage runs (the run was cancelled)`. */
export function notRunLine(g: NotRunGroup): string {
  return `not run   ${g.name}: ${count(g.count)} stage run${g.count === 1 ? '' : 's'} (${g.reason})`;
}

/** `unused    raw: images/notes.txt (its extension .txt is not one of .jpg)`. */
export function unusedLine(u: UnusedInput): string {
  return `unused    ${u.item}: ${u.path} (${u.reason})`;
}

/** One line for a finished stage. */
export function resultLine(r: StageResult): string {
  const what = label(r.name, r.branch);
  if (r.status === 'failed') return `${(r.error as { code?: string } | undefined)?.code === 'ERR_ABORTED' ? 'cancelled' : 'failed   '} ${what}: ${r.error?.message ?? 'unknown error'}`;
  const skipped = r.skipped?.length ? `, ${r.skipped.length} skipped` : '';
  return `${r.status.padEnd(9)} ${what}: ${r.records} record${r.records === 1 ? '' : 's'}${skipped}${r.status === 'computed' ? ` in ${seconds(r.seconds)}` : ''}`;
}

/** Plain log lines (not a terminal): one when a stage starts and ends, and a progress line every few seconds. */
export class LineProgress implements ProgressView {
  private lastLine = new Map<string, number>();

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly everyMs = 5000,
  ) {}

  event(e: RunEvent): void {
    switch (e.type) {
      case 'plan': {
        const { runs, cache } = planText(e);
        line(this.stream, `ringpipe: ${runs}${cache ? ` (${cache})` : ''}`);
        break;
      }
      case 'not-run':
        line(this.stream, notRunLine(e.group));
        break;
      case 'unused-input':
        break; // listed in the summary
      case 'stage-start':
        this.lastLine.set(label(e.name, e.branch), Date.now());
        line(this.stream, `started   ${label(e.name, e.branch)}${e.total !== undefined ? ` (${e.total} records)` : ''}`);
        break;
      case 'stage-progress': {
        const k = label(e.name, e.branch);
        const now = Date.now();
        const since = this.lastLine.get(k) ?? 0;
        if (now - since < this.everyMs) break;
        this.lastLine.set(k, now);
        const n = e.total !== undefined ? `${e.consumed}/${e.total} records in` : `${e.produced} records out`;
        line(this.stream, `progress  ${k}: ${n}`);
        break;
      }
      case 'stage-end':
        line(this.stream, resultLine(e.result));
        break;
      case 'warning':
        line(this.stream, `warning: ${e.message}`);
        break;
    }
  }

  stop(): void {}
}

interface BarState {
  bar: cliProgress.SingleBar;
  started: number;
}

/** Progress bars on a terminal: one per running stage (records, rate, ETA); a line per finished stage above them. */
export class BarProgress implements ProgressView {
  private readonly multi: cliProgress.MultiBar;
  private readonly bars = new Map<string, BarState>();

  constructor(private readonly stream: NodeJS.WritableStream) {
    this.multi = new cliProgress.MultiBar(
      {
        stream,
        hideCursor: true,
        clearOnComplete: true,
        fps: 10,
        barsize: 24,
        autopadding: true,
        format: (options, params, payload: { label: string; rate: string; known: boolean }) => {
          if (!payload.known) return `${payload.label} | ${params.value} records | ${payload.rate}/s`;
          const bar = cliProgress.Format.BarFormat(params.progress, options);
          const eta = params.value > 0 && params.value < params.total ? `ETA ${cliProgress.Format.TimeFormat(params.eta, options, 1)}` : '';
          return `${payload.label} |${bar}| ${params.value}/${params.total} records | ${payload.rate}/s ${eta}`;
        },
      },
      cliProgress.Presets.shades_classic,
    );
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case 'plan': {
        const { runs, cache } = planText(e);
        this.log(`${runs}${cache ? `: ${cache}` : ''}\n`);
        break;
      }
      case 'not-run':
        this.log(`${notRunLine(e.group)}\n`);
        break;
      case 'unused-input':
        break; // listed in the summary
      case 'stage-start': {
        const known = e.total !== undefined;
        const bar = this.multi.create(known ? e.total! : 1, 0, { label: label(e.name, e.branch), rate: '0', known });
        this.bars.set(label(e.name, e.branch), { bar, started: Date.now() });
        break;
      }
      case 'stage-progress': {
        const s = this.bars.get(label(e.name, e.branch));
        if (!s) break;
        const known = e.total !== undefined;
        const value = known ? e.consumed : e.produced;
        const rate = value / Math.max(1e-3, (Date.now() - s.started) / 1000);
        s.bar.update(value, { rate: rate >= 100 ? rate.toFixed(0) : rate.toFixed(1) });
        break;
      }
      case 'stage-end': {
        const k = label(e.result.name, e.result.branch);
        const s = this.bars.get(k);
        if (s) {
          this.multi.remove(s.bar);
          this.bars.delete(k);
        }
        this.log(resultLine(e.result) + '\n');
        break;
      }
      case 'warning':
        this.log(`warning: ${e.message}\n`);
        break;
    }
  }

  /** A line above the bars (written at once when no bar is showing). */
  private log(text: string): void {
    if (this.multi.isActive) this.multi.log(text);
    else this.stream.write(text);
  }

  stop(): void {
    if (this.multi.isActive) this.multi.update(); // flush lines logged since the last redraw
    this.multi.stop();
  }
}
