// Finding a segment's code by module and export name, so workers can import it. Checked before
// the run starts: a closure over local state cannot reach a worker, and says so here.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { RingpipeError } from '../errors.js';
/** Anything whose code must be found by module: a segment, or an onError function. */
export interface Locatable {
  readonly impl: unknown;
  readonly name: string;
  readonly declaredIn: string | undefined;
  module: string | undefined;
  exportName: string | undefined;
}

/**
 * ringpipe's own code, which is never where a segment was declared: both src/ and dist/ of the
 * package (a frame shows src/ when source maps are on: tsx, --enable-source-maps), by the path
 * it was loaded from and by its real path (a linked install: npm link, file:, workspaces).
 */
const ownDirs = (() => {
  const root = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
  const roots = new Set([root]);
  try {
    roots.add(realpathSync(root));
  } catch {
    // Gone or unreadable: the path it was loaded from is enough.
  }
  return [...roots].flatMap((r) => [join(r, 'src') + sep, join(r, 'dist') + sep]);
})();

/** The file of the first stack frame outside ringpipe: where a segment was declared. */
export function callerFile(): string | undefined {
  const stack = new Error().stack?.split('\n').slice(1) ?? [];
  for (const line of stack) {
    const m = /\(?((?:file:\/\/)?\/[^():]+):\d+:\d+\)?\s*$/.exec(line);
    if (!m) continue;
    const path = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!;
    if (!ownDirs.some((d) => path.startsWith(d)) && !path.includes('/node_modules/')) return path;
  }
  return undefined;
}

export class SegmentCodeError extends RingpipeError {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out')), ms);
    p.then((v) => (clearTimeout(t), resolve(v)), (e) => (clearTimeout(t), reject(e)));
  });
}

/** Resolves `./x.js` as TypeScript does: the .ts file when only it exists. */
function resolveLocal(spec: string, from: string): string | undefined {
  if (!spec.startsWith('.') && !spec.startsWith('/') && !spec.startsWith('file:')) return undefined;
  const path = fileURLToPath(spec.startsWith('file:') ? spec : new URL(spec, pathToFileURL(from)));
  for (const candidate of [path, path.replace(/\.js$/, '.ts'), path.replace(/\.mjs$/, '.mts'), path + '.ts', path + '.js']) {
    if (existsSync(candidate) && !candidate.endsWith('/')) return candidate;
  }
  return undefined;
}

async function exportOf(path: string, impl: unknown): Promise<string | undefined> {
  const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  for (const [k, v] of Object.entries(mod)) if (v === impl) return k;
  return undefined;
}

/** Sets `segment.module` (a file URL) and `segment.exportName`, or throws naming the segment. */
export async function locate(segment: Locatable): Promise<void> {
  const what = `segment '${segment.name}'`;
  if (segment.module) {
    const path = resolveLocal(segment.module, segment.declaredIn ?? process.cwd() + '/');
    if (!path) throw new SegmentCodeError('ERR_SEGMENT_MODULE', `${what}: module '${segment.module}' does not exist`);
    const found = segment.exportName ?? (await exportOf(path, segment.impl));
    const mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
    if (!found || mod[found] !== segment.impl) {
      throw new SegmentCodeError('ERR_SEGMENT_NOT_EXPORTED', `${what}: ${path} has no export${segment.exportName ? ` '${segment.exportName}'` : ''} that is this segment's code`);
    }
    segment.module = pathToFileURL(path).href;
    segment.exportName = found;
    return;
  }
  const from = segment.declaredIn;
  const candidates: string[] = [];
  let exportsOfDeclaring: { name: string; localName: string | undefined }[] = [];
  if (from && existsSync(from)) {
    await init;
    try {
      const [imports, exports] = parse(readFileSync(from, 'utf8'));
      for (const imp of imports) {
        // Type-only imports are erased: importing them would run modules the program never loads.
        if ((imp.type !== 'static' && imp.type !== 'reexport-star') || imp.typeOnly) continue;
        const p = resolveLocal(imp.specifier, from);
        if (p) candidates.push(p);
      }
      for (const e of exports) {
        if (e.type === 'direct' && !e.typeOnly) exportsOfDeclaring.push({ name: e.name, localName: e.localName });
      }
    } catch {
      // Syntax the lexer does not take: look at the exports below with a plain pattern.
      const src = readFileSync(from, 'utf8');
      for (const m of src.matchAll(/export\s+(?:default\s+)?(?:async\s+)?(?:function\s*\*?|class|const|let|var)\s+([A-Za-z_$][\w$]*)/g)) {
        exportsOfDeclaring.push({ name: m[1]!, localName: m[1]! });
      }
    }
  }
  for (const path of candidates) {
    const name = await withTimeout(exportOf(path, segment.impl), 5000).catch(() => undefined);
    if (name) {
      segment.module = pathToFileURL(path).href;
      segment.exportName = name;
      return;
    }
  }
  // The declaring module itself is still being evaluated (it is running this very code, maybe
  // under a top-level await): importing it would wait forever. Match the code's name against
  // its exports instead; the worker checks what it imports.
  const fnName = (segment.impl as { name?: string }).name;
  const own = fnName ? exportsOfDeclaring.find((e) => (e.localName ?? e.name) === fnName) : undefined;
  if (from && own) {
    segment.module = pathToFileURL(from).href;
    segment.exportName = own.name;
    return;
  }
  throw new SegmentCodeError(
    'ERR_SEGMENT_NOT_EXPORTED',
    `${what}: its code is not exported by ${from ?? 'the declaring module'}${candidates.length ? ' or the modules it imports' : ''}. ` +
      `Worker threads and processes load segment code by importing its module, so a closure or a local function cannot reach them: ` +
      `export it from a module (or pass { module, export }), or use isolation 'local'.`,
  );
}
