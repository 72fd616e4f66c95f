// The project folder of a pipeline: the folder of its file. Paths a pipeline names (files, folders,
// `run` modules, library module options) and the files a folder links to must stay inside it unless
// the pipeline is loaded with `allowOutside`: a pipeline file from elsewhere should not read /etc or
// run code from another checkout without saying so.
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';

/** Where a pipeline's paths may lead. */
export interface ProjectScope {
  /** The project folder (the pipeline file's folder, or `baseDir` for a pipeline written in code). */
  dir: string;
  /** Paths outside `dir` are allowed. */
  allowOutside: boolean;
}

/** `path` with symbolic links resolved as far as it exists (a missing tail is kept as written). */
export function realPath(path: string): string {
  const abs = resolve(path);
  try {
    return realpathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : join2(realPath(parent), abs.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
  }
}

function join2(dir: string, name: string): string {
  return dir.endsWith(sep) ? dir + name : dir + sep + name;
}

/** Whether `path` (links followed) lies in `dir` (links followed). */
export function isInside(path: string, dir: string): boolean {
  const rel = relative(realPath(dir), realPath(path));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * Why `path` may not be used, or undefined when it may: it leads outside the project folder and
 * the scope does not allow that.
 */
export function outsideProblem(path: string, scope: ProjectScope | undefined): string | undefined {
  if (!scope || scope.allowOutside || isInside(path, scope.dir)) return undefined;
  return `it leads outside the project folder ${scope.dir} (to ${realPath(path)}); pass --allow-outside-project (allowOutside: true) to use it`;
}
