// Argument checks, one place for their wording (as sharp's lib/is.js): each throws
// InvalidArgumentError saying what was wrong, where (`what`, e.g. "segment 'decode': workers"),
// and what was given, the same way everywhere.
import { InvalidArgumentError } from '../errors.js';

/** How a given value reads in a message. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (v === null || typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  try {
    const json = JSON.stringify(v);
    return json.length <= 60 ? json : `${json.slice(0, 57)}...`;
  } catch {
    return 'an object';
  }
}

/** 'a', 'b' or 'c' */
const alternatives = (allowed: readonly unknown[]) =>
  allowed.length === 1 ? shown(allowed[0]) : `${allowed.slice(0, -1).map(shown).join(', ')} or ${shown(allowed.at(-1))}`;

export function fail(what: string, must: string, got: unknown): never {
  throw new InvalidArgumentError(`${what} must be ${must}, got ${shown(got)}`);
}

/** `value` is one of `allowed`. */
export function oneOf<T>(value: unknown, allowed: readonly T[], what: string): T {
  if (!allowed.includes(value as T)) fail(what, alternatives(allowed), value);
  return value as T;
}

/** An integer from `min` to `max`. */
export function intInRange(value: unknown, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail(what, max === Infinity ? `an integer >= ${min}` : `an integer from ${min} to ${max}`, value);
  }
  return value as number;
}

/** A finite number > 0. */
export function positive(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) fail(what, 'a positive number', value);
  return value;
}

/** A function. */
export function func<T extends (...args: never[]) => unknown>(value: unknown, what: string): T {
  if (typeof value !== 'function') fail(what, 'a function', value);
  return value as T;
}

/** `value` when given, else `fallback`, checked by `check`. */
export function optional<T>(value: T | undefined, fallback: T, check: (v: unknown) => T): T {
  return value === undefined ? fallback : check(value);
}
