// Where a work item's code is: `run` (`module#export` or `ringpipe:<type>`) resolved against an
// agent's root to a module URL (imported in the item's own process) or, for work types registered
// with a loader function, to that loader (run inside the agent).
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WorkFunction } from './context.js';
import { WorkError } from './errors.js';
import { builtinWorkType, workTypes } from './registry.js';

/** Resolved code of an item. */
export type LocatedWork =
  | { kind: 'module'; url: string; export: string; /** as the spec named it, for messages */ module: string }
  | { kind: 'inline'; load: () => Promise<WorkFunction> };

/** Resolves `run` against `root` without importing anything. Throws `ERR_WORK_INVALID`. */
export function locateWork(run: string, root: string): LocatedWork {
  if (run.startsWith('ringpipe:')) {
    const code = builtinWorkType(run.slice('ringpipe:'.length));
    if (!code) throw new WorkError('ERR_WORK_INVALID', `unknown work type '${run}' (known: ${workTypes().map((k) => `ringpipe:${k}`).join(', ') || 'none'})`);
    return typeof code === 'string' ? locateWork(code, root) : { kind: 'inline', load: async () => code() };
  }
  const hash = run.lastIndexOf('#');
  if (hash <= 0 || hash === run.length - 1) throw new WorkError('ERR_WORK_INVALID', `work item run '${run}' must be 'module#export' or 'ringpipe:<type>'`);
  const mod = run.slice(0, hash), exp = run.slice(hash + 1);
  let url: string;
  if (mod.startsWith('file:') || isAbsolute(mod) || mod.startsWith('.')) {
    const path = mod.startsWith('file:') ? fileURLToPath(mod) : resolve(root, mod);
    // A checkout run from source (tsx) has ./x.ts where a build has ./x.js.
    const found = [path, path.replace(/\.js$/, '.ts'), path.replace(/\.mjs$/, '.mts')].find((p) => existsSync(p));
    if (!found) throw new WorkError('ERR_WORK_INVALID', `work code ${mod} does not exist under ${root} (agents resolve relative modules against their --root)`);
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

/** Resolves a `run` spec to its function, in this process (see {@link WorkSpec.run}). */
export async function resolveWork(run: string, root: string): Promise<WorkFunction> {
  const w = locateWork(run, root);
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
