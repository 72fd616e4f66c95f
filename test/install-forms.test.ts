// The quick start runs however ringpipe was installed: linked (`npm install ../ringpipe`, `file:`,
// workspaces and `npm link` all make node_modules/ringpipe a symlink to the checkout), or copied (as
// from a tarball or the registry), under tsx, --enable-source-maps, and plain node. Locating the
// segments' code must skip ringpipe's own frames in every form (dist/, src/ through source maps, a
// symlinked path), in a project folder whose path has a space in it.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const checkout = dirname(dirname(fileURLToPath(import.meta.url)));
const tsx = join(checkout, 'node_modules', '.bin', 'tsx');
const base = mkdtempSync(join(tmpdir(), 'ringpipe-install-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

const STEPS_TS = `export function* numbers() {
  for (let i = 0; i < 10; i++) yield i;
}
export const square = (x: number) => x * x;
export class Collect {
  items: number[] = [];
  run(x: number) { this.items.push(x); }
  teardown() { return this.items; }
}
`;
const STEPS_JS = STEPS_TS.replace(': number[]', '').replace(/\(x: number\)/g, '(x)');
const MAIN = (steps: string) => `import { Pipeline, Source, Transform, Sink } from 'ringpipe';
import { numbers, square, Collect } from './${steps}';
const result = await new Pipeline()
  .add(new Source(numbers))
  .add(new Transform(square), { workers: 2 })
  .add(new Sink(Collect))
  .run();
console.log(JSON.stringify(result.results.Collect));
`;

/** A project folder with the quick start in TypeScript and JavaScript; `install` puts ringpipe in. */
function project(name: string, install: (dir: string) => void): string {
  const dir = join(base, `${name} project`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: name.replace(/\W/g, '-'), private: true, type: 'module' }));
  writeFileSync(join(dir, 'steps.ts'), STEPS_TS);
  writeFileSync(join(dir, 'main.ts'), MAIN('steps.js'));
  writeFileSync(join(dir, 'steps.mjs'), STEPS_JS);
  writeFileSync(join(dir, 'main.mjs'), MAIN('steps.mjs'));
  install(dir);
  return dir;
}

const SQUARES = JSON.stringify([[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]]);
const runs: [string, (dir: string) => string[]][] = [
  ['tsx main.ts', () => [tsx, 'main.ts']],
  ['node --enable-source-maps main.mjs', () => [process.execPath, '--enable-source-maps', 'main.mjs']],
  ['node main.mjs', () => [process.execPath, 'main.mjs']],
];

function check(dir: string): void {
  for (const [how, cmd] of runs) {
    const [exe, ...args] = cmd(dir);
    const r = spawnSync(exe!, args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr, `${how} in ${dir}`).not.toMatch(/ERR_SEGMENT_NOT_EXPORTED/);
    expect(r.status, `${how}: ${r.stderr}`).toBe(0);
    expect(r.stdout.trim().split('\n').pop(), how).toBe(SQUARES);
  }
}

const npm = (dir: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--ignore-scripts', '--offline', '--loglevel=error'], { cwd: dir, env: { ...process.env, ...env }, stdio: 'pipe' });

describe('the quick start, per install form', () => {
  it('npm install <checkout> (a symlink, as file: and workspaces make)', () => {
    check(project('linked', (dir) => npm(dir, ['install', checkout])));
  });

  it('npm link (a symlink through the global folder)', () => {
    const prefix = join(base, 'global prefix');
    mkdirSync(join(prefix, 'lib', 'node_modules'), { recursive: true });
    check(project('npm-link', (dir) => npm(dir, ['link', checkout], { npm_config_prefix: prefix })));
  });

  it('a copied package (as from a tarball or the registry)', () => {
    check(
      project('copied', (dir) => {
        const pkg = join(dir, 'node_modules', 'ringpipe');
        mkdirSync(pkg, { recursive: true });
        for (const f of ['package.json', 'dist', join('build', 'Release', 'ringpipe.node')]) cpSync(join(checkout, f), join(pkg, f), { recursive: true });
        // Its dependencies, where npm would have installed them.
        symlinkSync(join(checkout, 'node_modules'), join(pkg, 'node_modules'));
      }),
    );
  });
});
