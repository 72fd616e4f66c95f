// Where a work item's code is: `run` (`module#export` or `ringpipe:<type>`) resolved against an
// agent's roots to a module URL (imported in the item's own process) or, for work types registered
// with a loader function, to that loader (run inside the agent). Code an item names must lie under
// the roots (trust.ts); registered work types are the agent's own code and are not checked.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkFunction } from './context.js';
import { WorkError } from './errors.js';
import { builtinWorkType, workTypes } from './registry.js';
import { trustedModule } from './trust.js';

/** Resolved code of an item. */
export type LocatedWork =
  | { kind: 'module'; url: string; export: string; /** as the spec named it, for messages */ module: string }
  | { kind: 'inline'; load: () => Promise<WorkFunction> };

/**
 * Resolves `run` against `roots` (the agent's root first, then the directories it may also take
 * code from; real paths, see {@link codeRoots}) without importing anything. Throws
 * `ERR_WORK_INVALID` (malformed, unknown, missing) or `ERR_WORK_REFUSED` (not under the roots).
 */
export function locateWork(run: string, roots: readonly string[]): LocatedWork {
  if (run.startsWith('ringpipe:')) {
    const code = builtinWorkType(run.slice('ringpipe:'.length));
    if (!code) throw new WorkError('ERR_WORK_INVALID', `unknown work type '${run}' (known: ${workTypes().map((k) => `ringpipe:${k}`).join(', ') || 'none'})`);
    return typeof code === 'string' ? locateRegistered(code, roots[0]!) : { kind: 'inline', load: async () => code() };
  }
  const { mod, exp } = splitRun(run);
  return { kind: 'module', url: pathToFileURL(trustedModule(mod, roots, `work code ${mod}`)).href, export: exp, module: mod };
}

function splitRun(run: string): { mod: string; exp: string } {
  const hash = run.lastIndexOf('#');
  if (hash <= 0 || hash === run.length - 1) throw new WorkError('ERR_WORK_INVALID', `work item run '${run}' must be 'module#export' or 'ringpipe:<type>'`);
  return { mod: run.slice(0, hash), exp: run.slice(hash + 1) };
}

/** The module of a registered work type (a file URL, a path, or a package resolved from `root`). */
function locateRegistered(code: string, root: string): LocatedWork {
  const { mod, exp } = splitRun(code);
  let url: string;
  if (mod.startsWith('file:') || isAbsolute(mod) || mod.startsWith('.')) {
    const path = mod.startsWith('file:') ? fileURLToPath(mod) : resolve(root, mod);
    // A checkout run from source (tsx) has ./x.ts where a build has ./x.js.
    const found = [path, path.replace(/\.js$/, '.ts'), path.replace(/\.mjs$/, '.mts')].find((p) => existsSync(p));
    if (!found) throw new WorkError('ERR_WORK_INVALID', `work type code ${mod} does not exist`);
    url = pathToFileURL(found).href;
  } else {
    try {
      url = pathToFileURL(createRequire(join(root, 'package.json')).resolve(mod)).href;
    } catch {
      url = mod;
    }
  }
  return { kind: 'module', url, export: exp, module: mod };
}

/** Imports a located module's function. Throws `ERR_WORK_INVALID` when it is not one. */
export async function importWork(url: string, exp: string, name: string = url): Promise<WorkFunction> {
  const m = (await import(url)) as Record<string, unknown>;
  const fn = m[exp];
  if (typeof fn !== 'function') throw new WorkError('ERR_WORK_INVALID', `${name} has no function export '${exp}'`);
  return fn as WorkFunction;
}

/** Resolves a `run` spec to its function, in this process (see {@link WorkSpec.run}); `roots` as `locateWork`'s. */
export async function resolveWork(run: string, roots: readonly string[]): Promise<WorkFunction> {
  const w = locateWork(run, roots);
  return w.kind === 'inline' ? w.load() : importWork(w.url, w.export, w.module);
}

/** An error as it is recorded in a result and sent between processes. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** Any thrown value as a {@link SerializedError} (stack cut to 12 lines). */
export function serializeError(err: unknown): SerializedError {
  const e = err as { name?: string; message?: string; code?: unknown; stack?: string };
  return {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(e?.stack ? { stack: e.stack.split('\n').slice(0, 12).join('\n') } : {}),
  };
}
