// `ringpipe init DIR` and `ringpipe bench SUITE`.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot, packageVersion } from '../../cache/package-root.js';
import { pipelineSchemaPath } from '../../config/schema.js';
import { UsageError } from '../errors.js';
import { line, type Io } from '../format.js';
import { exampleProject } from '../templates.js';

/** `ringpipe init DIR`: writes a runnable example project. */
export async function initCommand(dir: string, opts: { force?: boolean }, io: Io): Promise<number> {
  const root = resolve(dir);
  const files = exampleProject('./pipeline.schema.json', ringpipeDependency());
  const clashes = [...Object.keys(files), 'pipeline.schema.json'].filter((f) => existsSync(join(root, f)));
  if (clashes.length && !opts.force) {
    throw new UsageError(`${root} already has ${clashes.join(', ')}; use --force to overwrite`);
  }
  for (const [rel, text] of Object.entries(files)) {
    const path = join(root, rel);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
  await copyFile(pipelineSchemaPath(), join(root, 'pipeline.schema.json'));
  const shown = relative(process.cwd(), root) || '.';
  line(io.out, `created an example pipeline in ${shown}:`);
  line(io.out, `  cd ${shown}`);
  line(io.out, '  npm install               # ringpipe, from package.json');
  line(io.out, '  npm start                 # ringpipe run pipeline.json');
  line(io.out, '  npm run results           # ringpipe results pipeline.json');
  return 0;
}

/**
 * How the new project depends on ringpipe: the version range of an installed package, or this
 * checkout's folder (`file:`) when ringpipe runs from one (a version would fetch from the registry).
 */
function ringpipeDependency(): string {
  const root = packageRoot();
  return root.split(sep).includes('node_modules') ? `^${packageVersion()}` : `file:${root}`;
}

/** The benchmark suites of a ringpipe checkout (bench/suites/*.ts), or undefined when not in one. */
export function benchSuites(): { root: string; suites: string[] } | undefined {
  const root = packageRoot();
  const dir = join(root, 'bench', 'suites');
  if (!existsSync(join(root, 'bench', 'harness.ts')) || !existsSync(dir)) return undefined;
  const suites = readdirSync(dir)
    .filter((f) => f.endsWith('.ts') && !f.includes('.worker') && !f.startsWith('_'))
    .map((f) => f.slice(0, -3))
    .sort();
  return { root, suites };
}

/**
 * `ringpipe bench SUITE [--quick]`: runs the suite with the bench harness (TypeScript, through tsx)
 * in a child process; its output is passed through.
 */
export async function benchCommand(suite: string | undefined, opts: { quick?: boolean; list?: boolean }, io: Io, signal: AbortSignal): Promise<number> {
  const found = benchSuites();
  if (!found) throw new UsageError('benchmark suites are not part of the installed package; run `ringpipe bench` from a ringpipe checkout');
  if (opts.list || !suite) {
    line(io.out, found.suites.join('\n'));
    return opts.list ? 0 : 2;
  }
  if (!found.suites.includes(suite)) throw new UsageError(`unknown bench suite '${suite}' (have: ${found.suites.join(', ')})`);
  const args = ['--import', 'tsx', join(found.root, 'bench', 'harness.ts'), suite, ...(opts.quick ? ['--quick'] : [])];
  return new Promise<number>((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: found.root, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(io.out as NodeJS.WritableStream, { end: false });
    child.stderr.pipe(io.err as NodeJS.WritableStream, { end: false });
    const onAbort = () => child.kill('SIGINT');
    signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', reject);
    child.on('close', (code, sig) => {
      signal.removeEventListener('abort', onAbort);
      resolvePromise(code ?? (sig ? 1 : 0));
    });
  });
}
