// What an agent lets a work item run. Whoever can publish an item chooses the code agents import,
// so an agent imports code, and reads pipeline files, only from under its root (the project
// checkout) or the roots it was allowed besides; symlinks are followed before the check, so a link
// inside the checkout cannot lead out of it. URLs other than file: (data:, http:, node:, ...) and
// Node's built-in modules are never work code. Refusals are WorkErrors with code ERR_WORK_REFUSED.
import { existsSync, realpathSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkError } from './errors.js';

/** The directories an agent takes code from, as real paths: its root first. */
export function codeRoots(root: string, allow: readonly string[] = []): string[] {
  const out: string[] = [];
  for (const [i, dir] of [root, ...allow].entries()) {
    let real: string;
    try {
      real = realpathSync(resolve(dir));
    } catch (err) {
      throw new WorkError('ERR_WORK_INVALID', `${i === 0 ? 'the agent root' : 'allowed root'} ${dir} cannot be used: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!out.includes(real)) out.push(real);
  }
  return out;
}

const under = (path: string, dir: string) => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
};

function refuse(what: string, reason: string, roots: readonly string[]): never {
  const where = roots.length > 1 ? `the agent's root ${roots[0]} and its allowed roots (${roots.slice(1).join(', ')})` : `the agent's root ${roots[0]}`;
  throw new WorkError('ERR_WORK_REFUSED', `${what}: ${reason}; an agent runs code and reads pipelines only from files under ${where} (agent options root, allowRoots; --root, --allow-root)`);
}

/**
 * `path` (absolute, existing or not) with its existing part's symlinks resolved, checked to lie
 * under `roots`. `what` names it in the refusal, `given` is how the item wrote it.
 */
export function trustedPath(path: string, roots: readonly string[], what: string, given: string = path): string {
  // The part that exists is resolved (symlinks followed); what does not exist yet is appended as is.
  let head = resolve(path);
  const tail: string[] = [];
  while (!existsSync(head) && dirname(head) !== head) {
    tail.unshift(head.slice(dirname(head).length).replace(/^[\\/]/, ''));
    head = dirname(head);
  }
  const real = join(realpathSync(head), ...tail);
  if (!roots.some((r) => under(real, r))) {
    const how = real !== resolve(path) ? `${given} resolves to ${real}, which lies outside` : `${given} lies outside`;
    refuse(what, `${how} the agent's roots`, roots);
  }
  return real;
}

/** URL schemes (`data:`, `http:`, ...), not Windows drive letters. */
const SCHEME = /^([a-z][a-z0-9+.-]+):/i;

/**
 * The file of a module an item names (`./steps.js`, an absolute path, a `file:` URL, or a package
 * name resolved from the agent's root), checked to lie under `roots`. TypeScript sources stand in
 * for `.js`/`.mjs` names (a checkout run through tsx). Throws ERR_WORK_REFUSED for other URLs,
 * built-in modules and files outside; ERR_WORK_INVALID when the file does not exist.
 */
export function trustedModule(spec: string, roots: readonly string[], what: string): string {
  const root = roots[0]!;
  const scheme = SCHEME.exec(spec)?.[1]?.toLowerCase();
  if (scheme && scheme !== 'file') {
    refuse(what, scheme === 'node' ? `${spec} names the Node built-in module '${spec.slice(5)}'` : `${spec.length > 60 ? `${spec.slice(0, 60)}…` : spec} is a '${scheme}:' URL`, roots);
  }
  let path: string;
  if (scheme === 'file' || isAbsolute(spec) || spec.startsWith('.')) {
    path = scheme === 'file' ? fileURLToPath(spec) : resolve(root, spec);
  } else {
    if (isBuiltin(spec)) refuse(what, `${spec} names the Node built-in module '${spec}'`, roots);
    try {
      path = createRequire(join(root, 'package.json')).resolve(spec);
    } catch (err) {
      throw new WorkError('ERR_WORK_INVALID', `${what}: package '${spec}' cannot be found from ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const found = [path, path.replace(/\.js$/, '.ts'), path.replace(/\.mjs$/, '.mts')].find((p) => existsSync(p));
  if (!found) throw new WorkError('ERR_WORK_INVALID', `${what}: ${spec} does not exist under ${root} (agents resolve relative modules against their root)`);
  return trustedPath(found, roots, what, spec);
}
