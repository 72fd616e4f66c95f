import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;
let version: string | undefined;

/** The directory of ringpipe's own package.json (works from `src/` under tsx and from `dist/`). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'ringpipe') {
          root = dir;
          version = pkg.version ?? '0.0.0';
          return dir;
        }
      } catch {
        // not ours; keep walking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('ringpipe: cannot find its own package.json');
    dir = up;
  }
}

/** ringpipe's version, from its package.json. */
export function packageVersion(): string {
  packageRoot();
  return version!;
}
