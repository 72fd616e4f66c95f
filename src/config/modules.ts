// Resolving `run: "./module.js#export"`, checking the export exists without running the module, and
// loading the function.
import { readFile } from 'node:fs/promises';
import { extname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { resolveFile, resolveSpecifier } from '../cache/source-hash.js';

/** A parsed `run` field. */
export interface RunTarget {
  /** The `run` text as written. */
  spec: string;
  /** The module part as written. */
  module: string;
  /** The export's name (`default` when the text has no `#...`). */
  exportName: string;
}

/** Splits `"./steps.js#train"` into module and export. */
export function parseRun(spec: string): RunTarget {
  const hash = spec.lastIndexOf('#');
  const module = hash < 0 ? spec : spec.slice(0, hash);
  const exportName = hash < 0 ? 'default' : spec.slice(hash + 1);
  return { spec, module, exportName };
}

/** The module file of a run target: relative paths are resolved against `baseDir`; packages are refused. */
export function resolveRunModule(module: string, baseDir: string): { path?: string; problem?: string } {
  if (!(module.startsWith('./') || module.startsWith('../') || isAbsolute(module) || module.startsWith('file:'))) {
    return { problem: `module '${module}' must be a path relative to the pipeline file (starting with ./ or ../) or an absolute path` };
  }
  const candidate = module.startsWith('file:') ? resolveSpecifier(module, resolve(baseDir, 'pipeline.json')) : resolveFile(resolve(baseDir, module));
  if (!candidate) return { problem: `module '${module}' does not exist (looked for ${resolve(baseDir, module)})` };
  return { path: candidate };
}

const TS_EXT = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** Whether a module needs a TypeScript loader. */
export function isTypeScript(path: string): boolean {
  return TS_EXT.has(extname(path));
}

/**
 * The names a module exports, found by lexing (the module is not run). `complete` is false when
 * the list may miss names: a CommonJS module, or `export *` from a package.
 */
export async function staticExports(path: string, seen = new Set<string>()): Promise<{ names: Set<string>; complete: boolean }> {
  await init;
  await init();
  const names = new Set<string>();
  if (seen.has(path)) return { names, complete: true };
  seen.add(path);
  let source: string;
  try {
    source = await readFile(path, 'utf8');
  } catch {
    return { names, complete: false };
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source, path);
  } catch {
    return { names, complete: false };
  }
  const [, exports, , hasModuleSyntax] = parsed;
  if (!hasModuleSyntax || /\.c[jt]s$/.test(path)) return { names, complete: false };
  let complete = true;
  for (const e of exports) {
    if (e.typeOnly) continue;
    if (e.type === 'reexport-all') {
      const target = resolveSpecifier(e.from, path);
      if (!target) {
        complete = false;
        continue;
      }
      const sub = await staticExports(target, seen);
      for (const n of sub.names) if (n !== 'default') names.add(n);
      complete &&= sub.complete;
    } else {
      names.add(e.name);
    }
  }
  return { names, complete };
}

/**
 * Whether `path` exports `name`: lexed when possible, else (CommonJS) by importing the module.
 * Returns the exports found, for error messages.
 */
export async function findExport(path: string, name: string): Promise<{ found: boolean; exports: string[] }> {
  const { names, complete } = await staticExports(path);
  if (names.has(name)) return { found: true, exports: [...names].sort() };
  if (complete) return { found: false, exports: [...names].sort() };
  try {
    const mod = await importModule(path);
    return { found: name in mod, exports: Object.keys(mod).sort() };
  } catch {
    return { found: false, exports: [...names].sort() };
  }
}

let tsxRegistered: Promise<void> | undefined;
const runningUnderTsx = import.meta.url.endsWith('.ts');

/** Imports a module file; TypeScript modules are loaded through tsx. */
export async function importModule(path: string): Promise<Record<string, unknown>> {
  if (isTypeScript(path) && !runningUnderTsx) {
    tsxRegistered ??= import('tsx/esm/api').then(({ register }) => {
      register();
    });
    await tsxRegistered;
  }
  return (await import(pathToFileURL(path).href)) as Record<string, unknown>;
}
