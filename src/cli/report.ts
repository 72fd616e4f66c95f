// What `ringpipe run` reports, gathered from the run's events as they come: memory stays flat
// whatever the number of branches (runs are listed one per row up to a point, then per stage), and
// `--json` streams one stage run per line inside its one JSON object (past the first thousand).
import type { NotRunGroup, RunEvent, StageResult } from '../config/executor.js';
import type { UnusedInput } from '../config/sources.js';
import { cellValue, line, paramsText, seconds, table } from './format.js';
import { count, notRunLine, unusedLine } from './progress.js';

/** `--json` output is held back for this many stage runs, then streamed. */
const JSON_HELD = 1000;
/** Stage runs listed one per row in the summary; beyond, one row per stage. */
export const ROWS_PER_RUN = 50;
/** Failed stage runs whose error is shown in full on stderr; beyond, counted. */
const ERRORS_SHOWN = 10;
/** Skipped records and unused inputs listed per stage run / item in plain output; beyond, counted (`--json` has them all). */
const LISTED = 100;

interface StageTotals {
  name: string;
  runs: number;
  computed: number;
  cached: number;
  failed: number;
  cancelled: number;
  records: number;
  seconds: number;
}

/** A stage run's status as shown: a run stopped by a cancellation is `cancelled`, not `failed`. */
function shownStatus(r: StageResult): StageResult['status'] | 'cancelled' {
  return r.status === 'failed' && (r.error as { code?: string } | undefined)?.code === 'ERR_ABORTED' ? 'cancelled' : r.status;
}

/** Gathers a run's events into its report; with `json`, writes the stage runs as they end. */
export class RunReport {
  private readonly rows: StageResult[] = [];
  private readonly totals = new Map<string, StageTotals>();
  private readonly notRun = new Map<string, NotRunGroup>();
  private readonly unused: UnusedInput[] = [];
  private readonly failures: StageResult[] = [];
  private readonly skippedLines: string[] = [];
  private skippedMore = 0;
  private failedCount = 0;
  private runs = 0;
  private jsonStarted = false;
  private jsonText: string[] = [];

  constructor(private readonly json?: NodeJS.WritableStream) {}

  /** Takes one run event. */
  event(e: RunEvent): void {
    if (e.type === 'unused-input') this.unused.push(e.input);
    else if (e.type === 'not-run') this.addNotRun(e.group);
    else if (e.type === 'stage-end') this.add(e.result);
  }

  /** Whether every stage run was computed or cached. */
  get ok(): boolean {
    return this.failedCount === 0 && this.notRun.size === 0;
  }

  private addNotRun(g: NotRunGroup): void {
    const k = `${g.name}\0${g.code}\0${g.reason}`;
    const found = this.notRun.get(k);
    if (found) found.count += g.count;
    else this.notRun.set(k, { ...g });
  }

  private add(r: StageResult): void {
    const code = (r.error as { code?: string } | undefined)?.code;
    // A cluster run reports stage runs it did not start as failed 'not run: ...': count them as such.
    if (r.status === 'failed' && code === 'ERR_UPSTREAM_FAILED') {
      this.addNotRun({ name: r.name, code, reason: r.error!.message.replace(/^stage '[^']*'(?: \[[0-9a-f]+\])?: (not run: )?/, ''), count: 1 });
      return;
    }
    this.runs++;
    if (this.rows.length <= ROWS_PER_RUN) this.rows.push(r);
    const t = this.totals.get(r.name) ?? { name: r.name, runs: 0, computed: 0, cached: 0, failed: 0, cancelled: 0, records: 0, seconds: 0 };
    const status = shownStatus(r);
    t.runs++;
    t[status]++;
    t.records += r.records;
    t.seconds += r.seconds;
    this.totals.set(r.name, t);
    if (r.status === 'failed') this.failedCount++;
    if (status === 'failed' && this.failures.length < ERRORS_SHOWN) this.failures.push(r);
    const skipped = r.skipped ?? [];
    for (const s of skipped.slice(0, LISTED)) this.skippedLines.push(`skipped   ${label(r)}: record ${s.index}${s.path ? ` ${s.path}` : ''}: ${s.message}`);
    if (skipped.length > LISTED) this.skippedMore += skipped.length - LISTED;
    if (this.json) this.writeJson(jsonStage(r));
  }

  private writeJson(stage: object): void {
    this.jsonText.push(`${this.jsonStarted ? ',' : '{"stages":['}\n${JSON.stringify(stage)}`);
    this.jsonStarted = true;
    // Held back while small (a run killed meanwhile prints nothing); past that, streamed.
    if (this.jsonText.length >= JSON_HELD) this.flushJson();
  }

  private flushJson(): void {
    if (this.jsonText.length) this.json!.write(this.jsonText.join(''));
    this.jsonText = [];
  }

  /** Ends the `--json` object (also after a run that threw: `error` says why). */
  endJson(error?: unknown): void {
    if (!this.json) return;
    const tail = {
      notRun: [...this.notRun.values()],
      unusedInputs: this.unused,
      ...(error === undefined ? {} : { error: jsonError(error) }),
    };
    this.flushJson();
    this.json.write(`${this.jsonStarted ? '\n]' : '{"stages":['}${JSON.stringify(tail).replace(/^\{/, ',')}\n`);
  }

  /** The plain summary: stage runs (one per row, or per stage beyond {@link ROWS_PER_RUN}), skipped records, unused inputs, not run. */
  writeSummary(out: NodeJS.WritableStream, cacheLocation?: string): void {
    if (!this.rows.length) {
      // nothing ran: the counts below say why
    } else if (this.rows.length <= ROWS_PER_RUN) {
      line(out, table(['stage', 'branch', 'params', 'status', 'records', 'time', 'metadata'], this.rows.map(row)));
    } else {
      const rows = [...this.totals.values()].map((t) => [t.name, count(t.runs), count(t.computed), count(t.cached), count(t.failed + t.cancelled), count(t.records), seconds(t.seconds)]);
      line(out, table(['stage', 'runs', 'computed', 'cached', 'failed', 'records', 'time'], rows));
    }
    for (const l of this.skippedLines) line(out, l);
    if (this.skippedMore) line(out, `skipped   ${count(this.skippedMore)} more records (--json lists them all)`);
    const byItem = new Map<string, UnusedInput[]>();
    for (const u of this.unused) byItem.set(u.item, [...(byItem.get(u.item) ?? []), u]);
    for (const [item, list] of byItem) {
      for (const u of list.slice(0, LISTED)) line(out, unusedLine(u));
      if (list.length > LISTED) line(out, `unused    ${item}: ${count(list.length - LISTED)} more (--json lists them all)`);
    }
    for (const g of this.notRun.values()) line(out, notRunLine(g));
    const sum = (k: 'computed' | 'cached' | 'failed' | 'cancelled') => [...this.totals.values()].reduce((n, t) => n + t[k], 0);
    const notRun = [...this.notRun.values()].reduce((n, g) => n + g.count, 0);
    const runs = this.runs + notRun;
    line(
      out,
      `${count(runs)} stage run${runs === 1 ? '' : 's'}: ${count(sum('computed'))} computed, ${count(sum('cached'))} cached, ${count(sum('failed'))} failed${sum('cancelled') ? `, ${count(sum('cancelled'))} cancelled` : ''}${notRun ? `, ${count(notRun)} not run` : ''}${cacheLocation ? ` (cache: ${cacheLocation})` : ''}`,
    );
  }

  /** The errors of failed stage runs, with the record and the stack (the first few; the rest counted). */
  writeErrors(err: NodeJS.WritableStream): void {
    for (const f of this.failures) {
      const e = f.error as (Error & { input?: string; record?: number; functionStack?: string; code?: string }) | undefined;
      if (!e) continue;
      line(err, `error: ${e.message}`);
      if (e.input !== undefined) line(err, `  ${e.record === undefined ? 'input' : `record ${e.record}`}: ${e.input}`);
      const stack = e.functionStack ?? (process.env.RINGPIPE_DEBUG ? ((e.cause as Error | undefined)?.stack ?? e.stack) : undefined);
      if (stack) line(err, indent(stack));
    }
    const more = [...this.totals.values()].reduce((n, t) => n + t.failed, 0) - this.failures.length;
    if (more > 0) line(err, `error: ${count(more)} more stage runs failed (--json lists them all)`);
  }
}

const label = (r: { name: string; branch: string | null }) => (r.branch ? `${r.name} [${r.branch}]` : r.name);

function row(s: StageResult): (string | number)[] {
  return [
    s.name,
    s.branch ?? '',
    paramsText(s.params),
    shownStatus(s),
    s.records,
    s.status === 'computed' ? seconds(s.seconds) : '',
    s.metadata ? Object.entries(s.metadata).map(([k, v]) => `${k}=${cellValue(v)}`).join(' ') : '',
  ];
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** A stage run in `--json` output. */
export function jsonStage(s: StageResult) {
  return {
    name: s.name,
    branch: s.branch,
    status: s.status,
    records: s.records,
    seconds: Math.round(s.seconds * 1000) / 1000,
    ...(s.skipped?.length ? { skipped: s.skipped.map((k) => ({ index: k.index, ...(k.path !== undefined ? { path: k.path } : {}), reason: k.message })) } : {}),
    ...(s.error ? { error: jsonError(s.error) } : {}),
  };
}

/** An error in `--json` output: code, message, and what a stage error says about the failing call. */
export function jsonError(error: unknown) {
  const e = error as Error & { code?: string; record?: number; input?: string; functionStack?: string };
  if (!(e instanceof Error)) return { message: String(error) };
  return {
    ...(e.code ? { code: e.code } : {}),
    message: e.message,
    ...(e.record !== undefined ? { record: e.record } : {}),
    ...(e.input !== undefined ? { input: e.input } : {}),
    ...(e.functionStack ? { stack: e.functionStack } : {}),
  };
}
