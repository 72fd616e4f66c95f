// Text output helpers: tables, CSV, sizes, durations.
import Table from 'cli-table3';

/** Where a command writes. */
export interface Io {
  /** Standard output (results). */
  out: NodeJS.WritableStream;
  /** Standard error (progress, warnings, errors). */
  err: NodeJS.WritableStream;
  /** Whether `err` is a terminal (progress bars) . */
  tty: boolean;
}

/** Writes a line. */
export function line(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(text + '\n');
}

/** A text table (Unicode borders, no colours). */
export function table(head: string[], rows: (string | number)[][]): string {
  const t = new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) t.push(r.map((c) => String(c)));
  return t.toString();
}

/** CSV text (RFC 4180 quoting) with a header row. */
export function csv(head: string[], rows: unknown[][]): string {
  const cell = (v: unknown) => {
    const s = v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [head, ...rows].map((r) => r.map(cell).join(',')).join('\n') + '\n';
}

/** `1.5 MiB`. */
export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

/** `0.42s`, `12.3s`, `4m05s`. */
export function seconds(s: number): string {
  if (s < 10) return `${s.toFixed(2)}s`;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s - m * 60)).padStart(2, '0')}s`;
}

/** A value in a table cell: numbers shortened, objects as compact JSON. */
export function cellValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e6 ? String(+v.toPrecision(6)) : v.toExponential(4);
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** `g.lr=0.1 g.hidden=64` for a branch's parameters. */
export function paramsText(params: Record<string, Record<string, unknown>>): string {
  return Object.entries(flattenParams(params))
    .map(([k, v]) => `${k}=${cellValue(v)}`)
    .join(' ');
}

/** `{ g: { lr: 0.1 } }` to `{ 'g.lr': 0.1 }`. */
export function flattenParams(params: Record<string, Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [item, combo] of Object.entries(params)) for (const [k, v] of Object.entries(combo)) out[`${item}.${k}`] = v;
  return out;
}
