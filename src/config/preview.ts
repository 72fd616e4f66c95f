// Values shortened for messages: the record a stage failed on, in one line.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { packageRoot } from '../cache/package-root.js';

/** Longest preview, in characters. */
export const PREVIEW_CHARS = 240;

/**
 * A value in one line, shortened: strings cut at 80 characters, arrays and typed arrays at 8
 * elements, objects at depth 2, and the whole at {@link PREVIEW_CHARS} characters.
 */
export function previewValue(value: unknown, max = PREVIEW_CHARS): string {
  const text = inspect(value, { depth: 2, maxArrayLength: 8, maxStringLength: 80, breakLength: Infinity, compact: true, colors: false });
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The arguments of one call, shortened: the value itself for one argument, `(a, b)` for several. */
export function previewArgs(args: readonly unknown[], max = PREVIEW_CHARS): string {
  if (args.length === 1) return previewValue(args[0], max);
  const text = `(${args.map((a) => previewValue(a, Math.max(40, Math.floor(max / args.length)))).join(', ')})`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The `path` of the first input record that has one in its metadata (a file of a `file_folder`). */
export function pathOf(metas: readonly (Record<string, unknown> | undefined)[]): string | undefined {
  for (const m of metas) if (m && typeof m.path === 'string') return m.path;
  return undefined;
}

/**
 * The stack of an error thrown by a stage function, cut where ringpipe's own frames begin (what
 * called the function): the user's frames, not the runner's.
 */
export function functionStack(stack: string | undefined): string | undefined {
  if (!stack) return undefined;
  const root = packageRoot();
  const own = [join(root, 'src'), join(root, 'dist')].flatMap((d) => [d, pathToFileURL(d).href]);
  const lines = stack.split('\n');
  const cut = lines.findIndex((l, i) => i > 0 && /^\s+at /.test(l) && own.some((d) => l.includes(d)));
  return (cut < 0 ? lines : lines.slice(0, cut)).join('\n');
}
