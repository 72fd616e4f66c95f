// The documentation cannot drift: every code block of README.md and docs/*.md runs here, as a user
// would run it, in a project of its own whose node_modules/ringpipe links to this checkout (the
// convention: docs/README.md, "How these pages are tested"; the parser: helpers/doc-blocks.ts).
// Blocks that cannot run here still have their imports from ringpipe's entry points and the
// `ringpipe` commands and flags they use checked. Besides: every error code the sources raise is in
// the error tables, every code in the tables exists, and every relative link leads to a file the npm
// package ships.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRun, outputMatches, parsePage, type DocBlock } from './helpers/doc-blocks.js';
import { ensureServer, startServer, stopAll, type TestServer } from './helpers/nats.js';

const checkout = dirname(dirname(fileURLToPath(import.meta.url)));
const pkg = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
const pages = ['README.md', ...readdirSync(join(checkout, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const parsed = new Map(pages.map((p) => [p, parsePage(readFileSync(join(checkout, p), 'utf8'), p)]));
/** The URL blocks of a `nats` page use; the test's own server takes its place. */
const NATS_DOC_URL = 'nats://localhost:4222';

// A project as a user has it: ringpipe linked (as `npm install <checkout>` does), its dependencies
// beside it (as npm hoists them), the `ringpipe` and `tsx` commands in node_modules/.bin.
const project = mkdtempSync(join(tmpdir(), 'ringpipe docs '));
afterAll(async () => {
  await stopAll();
  rmSync(project, { recursive: true, force: true });
});
beforeAll(() => {
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'docs-project', private: true, type: 'module' }));
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  symlinkSync(checkout, join(modules, 'ringpipe'), 'dir');
  for (const dep of readdirSync(join(checkout, 'node_modules'))) {
    if (!dep.startsWith('.')) symlinkSync(join(checkout, 'node_modules', dep), join(modules, dep), 'dir');
  }
  const bin = join(modules, '.bin', 'ringpipe');
  writeFileSync(bin, `#!/bin/sh\nexec node ${JSON.stringify(join(checkout, 'dist', 'cli', 'main.js'))} "$@"\n`);
  chmodSync(bin, 0o755);
  symlinkSync(join(checkout, 'node_modules', '.bin', 'tsx'), join(modules, '.bin', 'tsx'));
});

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command in a process group of its own; whatever it leaves running is killed when it exits. */
function runProcess(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((done) => {
    const p = spawn(cmd, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', timedOut = false;
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-p.pid!, signal);
      } catch {
        // the group is gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGKILL');
    }, timeoutMs);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      killGroup('SIGKILL');  // background processes a shell block started
      p.on('close', () => done({ code, signal, stdout, stderr, timedOut }));
    });
  });
}

/** Where a page's blocks run: a folder of its own in the project. */
const folderOf = (page: string) => join(project, page.replace(/\.md$/, '').replace(/\//g, '-'));

/** Runs one block in its page's folder. */
async function runBlock(page: string, b: DocBlock, nats: TestServer | undefined): Promise<void> {
  const dir = folderOf(page);
  const code = nats ? b.code.replaceAll(NATS_DOC_URL, nats.url) : b.code;
  const ext = b.lang === 'sh' ? 'sh' : b.lang === 'js' ? 'mjs' : 'ts';
  const file = join(dir, `_block-line${b.line}.${ext}`);
  writeFileSync(file, code + '\n');
  const bin = join(project, 'node_modules', '.bin');
  const path = [bin, ...(nats ? [dirname(ensureServer())] : []), process.env.PATH].join(':');
  const env = { ...process.env, PATH: path, RINGPIPE_POISON: '1', NO_COLOR: '1' };
  const [cmd, args] = b.lang === 'sh' ? ['bash', ['-e', '-o', 'pipefail', file]] : [join(bin, 'tsx'), [file]];
  const r = await runProcess(cmd, args as string[], dir, env, b.timeoutMs);
  const where = `${page}:${b.line} (${b.lang} block)`;
  const report = `${where}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
  expect(r.timedOut, `${where} ran longer than ${b.timeoutMs / 1000} s\n${report}`).toBe(false);
  expect(r.code, report).toBe(0);
  if (b.expect) expect(outputMatches(b.expect.code, r.stdout), `${where}: its output is not the documented one (${page}:${b.expect.line})\n${report}`).toBe(true);
}

function writeFileBlock(page: string, b: DocBlock, nats: TestServer | undefined): void {
  const target = resolve(folderOf(page), b.file!);
  expect(relative(folderOf(page), target).startsWith('..'), `${page}:${b.line}: file=${b.file} leaves the page's folder`).toBe(false);
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, (nats ? b.code.replaceAll(NATS_DOC_URL, nats.url) : b.code) + '\n');
}

describe.each(pages)('%s', (page) => {
  const { blocks, directives } = parsed.get(page)!;
  let nats: TestServer | undefined;
  beforeAll(async () => {
    mkdirSync(folderOf(page), { recursive: true });
    if (directives.includes('nats')) nats = await startServer();
  });

  // Each run block is a test; the file blocks above it are written first, in page order.
  let written = 0;
  const runs = blocks.filter(isRun);
  for (const b of runs) {
    it(`line ${b.line}: ${b.lang}${b.hidden ? ' (setup)' : ''}`, { timeout: b.timeoutMs + 30_000 }, async () => {
      for (; written < blocks.length && blocks[written]!.line < b.line; written++) {
        const f = blocks[written]!;
        if (f.file) writeFileBlock(page, f, nats);
      }
      await runBlock(page, b, nats);
    });
  }

  it('JSON blocks parse', () => {
    for (const b of blocks.filter((x) => x.lang === 'json')) {
      expect(() => JSON.parse(b.code), `${page}:${b.line}`).not.toThrow();
    }
  });
});

/** Every name each entry point exports (values and types), as a user's TypeScript sees it. */
function entryExports(): Map<string, Set<string>> {
  const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? 'ringpipe' : `ringpipe/${k.slice(2)}`));
  const file = join(project, '_exports.ts');
  writeFileSync(file, entries.map((e, i) => `import * as m${i} from '${e}';`).join('\n') + '\n');
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, noEmit: true, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const out = new Map<string, Set<string>>();
  program.getSourceFile(file)!.statements.forEach((s, i) => {
    const symbol = checker.getSymbolAtLocation((s as ts.ImportDeclaration).moduleSpecifier);
    if (!symbol) throw new Error(`${entries[i]} does not resolve from a project that installed ringpipe`);
    out.set(entries[i]!, new Set(checker.getExportsOfModule(symbol).map((x) => x.name)));
  });
  return out;
}

/** `ringpipe <command> --help`, once per command. */
const helpCache = new Map<string, Promise<string>>();
function help(command: string[]): Promise<string> {
  const key = command.join(' ');
  if (!helpCache.has(key)) {
    helpCache.set(key, runProcess(process.execPath, [join(checkout, 'dist', 'cli', 'main.js'), ...command, '--help'], checkout, process.env, 30_000).then((r) => {
      if (r.code !== 0) throw new Error(`ringpipe ${key} --help failed: ${r.stderr}`);
      return r.stdout;
    }));
  }
  return helpCache.get(key)!;
}

describe('what blocks refer to', () => {
  it("imports from ringpipe's entry points name what they export", () => {
    const exports = entryExports();
    const wrong: string[] = [];
    for (const [page, { blocks }] of parsed) {
      for (const b of blocks.filter((x) => x.lang === 'ts' || x.lang === 'js')) {
        for (const m of b.code.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s+from\s+'(ringpipe(?:\/[\w-]+)?)'/g)) {
          const names = exports.get(m[2]!);
          if (!names) {
            wrong.push(`${page}:${b.line}: '${m[2]}' is not an entry point of ringpipe`);
            continue;
          }
          for (const spec of m[1]!.split(',').map((x) => x.trim().replace(/^type\s+/, '').split(/\s+as\s+/)[0]!).filter(Boolean)) {
            if (!names.has(spec)) wrong.push(`${page}:${b.line}: '${m[2]}' has no export '${spec}'`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('the ringpipe commands and flags in shell blocks exist', async () => {
    const wrong: string[] = [];
    const groups = new Set(['cache', 'cluster']);
    for (const [page, { blocks }] of parsed) {
      for (const b of blocks.filter((x) => x.lang === 'sh')) {
        for (const raw of b.code.replace(/\\\n\s*/g, ' ').split('\n')) {
          const line = raw.replace(/\s#.*$/, '');
          const m = /(?:^|[;&|(]\s*|\s)(?:npx\s+)?ringpipe\s+([a-z][\w-]*)(?:\s+([a-z][\w-]*))?([^;&|]*)/.exec(line);
          if (!m) continue;
          const command = groups.has(m[1]!) && m[2] ? [m[1]!, m[2]] : [m[1]!];
          const text = await help(command).catch((e: Error) => {
            wrong.push(`${page}:${b.line}: ${e.message.split('\n')[0]}`);
            return '';
          });
          for (const flag of line.slice(m.index).match(/\s(--[a-z][\w-]*)/g) ?? []) {
            if (text && !new RegExp(`(^|[\\s,])${flag.trim()}\\b`, 'm').test(text)) wrong.push(`${page}:${b.line}: 'ringpipe ${command.join(' ')}' has no flag ${flag.trim()}`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('error codes', () => {
  const raised = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|cc|h)$/.test(e.name)) for (const m of readFileSync(p, 'utf8').matchAll(/['"](ERR_[A-Z0-9_]+[A-Z0-9])['"]/g)) raised.add(m[1]!);
    }
  };
  walk(join(checkout, 'src'));
  walk(join(checkout, 'native'));
  // Codes of Node and of the clients ringpipe checks for, not its own.
  for (const foreign of ['ERR_MODULE_NOT_FOUND', 'ERR_STREAM_DESTROYED', 'ERR_IPC_CHANNEL_CLOSED']) raised.delete(foreign);
  const tables = readFileSync(join(checkout, 'README.md'), 'utf8') + readFileSync(join(checkout, 'docs', 'errors.md'), 'utf8');
  const documented = new Set([...tables.matchAll(/`(ERR_[A-Z0-9_]+)`/g)].map((m) => m[1]!));

  it('every code the sources raise is documented', () => {
    expect([...raised].filter((c) => !documented.has(c)).sort()).toEqual([]);
  });
  it('every documented code is raised somewhere', () => {
    expect([...documented].filter((c) => !raised.has(c)).sort()).toEqual([]);
  });
});

/** A page without its fenced blocks (fences open and close at the start of a line). */
const prose = (text: string) => text.replace(/^[ \t]*(`{3,}|~{3,})[^\n]*\n[\s\S]*?^[ \t]*\1[ \t]*$/gm, '');

/** GitHub's anchor for a heading. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');

describe('links', () => {
  it('every relative link leads to a file the package ships, and to a heading that exists', () => {
    // What `npm pack` would put in the package (README.md always goes in).
    const packed = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: checkout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = new Set((JSON.parse(packed) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    const shipped = (rel: string) => files.has(rel) || [...files].some((f) => f.startsWith(`${rel}/`));
    const wrong: string[] = [];
    for (const page of pages) {
      const text = prose(readFileSync(join(checkout, page), 'utf8'));
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path ? join(dirname(join(checkout, page)), path) : join(checkout, page);
        const rel = relative(checkout, file);
        if (!existsSync(file)) {
          wrong.push(`${page}: ${target}: no such file`);
          continue;
        }
        if (!shipped(rel)) wrong.push(`${page}: ${target}: not in the npm package (package.json "files")`);
        if (anchor && statSync(file).isFile() && file.endsWith('.md')) {
          const headings = [...prose(readFileSync(file, 'utf8')).matchAll(/^#+\s+(.*)$/gm)].map((h) => slug(h[1]!));
          if (!headings.includes(anchor)) wrong.push(`${page}: ${target}: no heading with that anchor`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
