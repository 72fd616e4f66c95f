/** Formatting shared by the console table, the CSV and the chart. */
import type { Params } from './space.js';

/** A number in at most `digits` significant digits, without trailing zeros. */
export function num(v: unknown, digits = 4): string {
  if (typeof v !== 'number') return v === undefined || v === null ? '' : String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return String(Number(v.toPrecision(digits)));
}

/** `k=v k=v` for a parameter set, sorted by key. */
export function paramString(params: Params, sep = ' '): string {
  return Object.keys(params)
    .sort()
    .map((k) => `${k}=${typeof params[k] === 'number' ? num(params[k], 3) : typeof params[k] === 'string' ? params[k] : JSON.stringify(params[k])}`)
    .join(sep);
}
