// The code part of a cache key: a stage's module and every project file it imports, transitively.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { hashValue, sha256 } from './hash.js';

/** One file of a module graph. */
export interface SourceFile {
  /** Path relative to the graph's base directory, with `/` separators. */
  path: string;
  /** sha256 (hex) of its bytes. */
  sha256: string;
}

/** The hash of a module and of the project files it imports. */
export interface ModuleGraphHash {
  /** sha256 over the sorted list of files and their hashes. */
  hash: string;
  /** Every file reached, sorted by path. */
  files: SourceFile[];
  /** Relative imports that name no file (they take part in the hash as missing). */
  missing: string[];
}

const LEXED = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.jsx', '.tsx']);
const TS_FOR_JS: Record<string, string> = { '.js': '.ts', '.mjs': '.mts', '.cjs': '.cts', '.jsx': '.tsx' };
const TRY_EXT = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts', '.json'];
const REQUIRE_RE = /\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g;

/**
 * Hashes `entry` and every file it imports through relative specifiers (`./x.js`, `../lib/y.js`,
 * absolute paths and `file:` URLs): static imports, re-exports, dynamic `import()` of a literal and
 * CommonJS `require()` of a literal. Package imports (`'sharp'`, `'node:fs'`) are not followed.
 * Type-only imports are skipped (they do not reach the running code). Paths in the hash are relative
 * to `base`, so moving a project does not invalidate its cache.
 */
export async function hashModuleGraph(entry: string, base: string): Promise<ModuleGraphHash> {
  await init;
  await init();
  const seen = new Map<string, string>();
  const missing = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch {
      missing.add(rel(base, file));
      continue;
    }
    seen.set(file, sha256(bytes));
    if (!LEXED.has(extname(file))) continue;
    for (const spec of importsOf(bytes.toString('utf8'), file)) {
      const target = resolveSpecifier(spec, file);
      if (target === null) continue; // a package or builtin
      if (target === undefined) missing.add(`${rel(base, file)} -> ${spec}`);
      else queue.push(target);
    }
  }
  const files = [...seen].map(([f, h]) => ({ path: rel(base, f), sha256: h })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const missingList = [...missing].sort();
  return { hash: hashValue({ files, missing: missingList }), files, missing: missingList };
}

function importsOf(source: string, file: string): string[] {
  const out: string[] = [];
  let moduleSyntax = true;
  try {
    const [imports, , , hasModuleSyntax] = parse(source, file);
    moduleSyntax = hasModuleSyntax;
    for (const imp of imports) {
      if (imp.type === 'import-meta') continue;
      if (imp.type === 'dynamic') {
        if (imp.specifier !== undefined && !imp.glob && !imp.probablyTypeOnly) out.push(imp.specifier);
        continue;
      }
      if (!imp.typeOnly) out.push(imp.specifier);
    }
  } catch {
    moduleSyntax = false; // not lexable as a module: fall back to require() scanning below
  }
  if (!moduleSyntax || /\.c[jt]s$/.test(file) || source.includes('require(')) {
    for (const m of source.matchAll(REQUIRE_RE)) out.push(m[2]!);
  }
  return out;
}

/** The file a specifier names, null for a package/builtin, undefined when no file matches. */
export function resolveSpecifier(spec: string, fromFile: string): string | null | undefined {
  let path: string;
  if (spec.startsWith('file:')) {
    try {
      path = fileURLToPath(spec);
    } catch {
      return undefined;
    }
  } else if (spec.startsWith('./') || spec.startsWith('../') || spec === '.' || spec === '..') {
    path = resolve(dirname(fromFile), spec.replace(/[?#].*$/, ''));
  } else if (isAbsolute(spec)) {
    path = spec;
  } else {
    return null;
  }
  return resolveFile(path);
}

/** `path` itself if it is a file, else the file Node/TypeScript conventions map it to. */
export function resolveFile(path: string): string | undefined {
  if (isFile(path)) return path;
  const ext = extname(path);
  const ts = TS_FOR_JS[ext];
  if (ts && isFile(path.slice(0, -ext.length) + ts)) return path.slice(0, -ext.length) + ts;
  if (!ext) {
    for (const e of TRY_EXT) if (isFile(path + e)) return path + e;
  }
  for (const e of TRY_EXT) if (isFile(join(path, `index${e}`))) return join(path, `index${e}`);
  return undefined;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function rel(base: string, file: string): string {
  return relative(base, file).split(sep).join('/');
}
