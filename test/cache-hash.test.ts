// Canonical hashing and the code part of cache keys.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { canonicalJson, hashValue } from '../src/cache/hash.js';
import { hashModuleGraph } from '../src/cache/source-hash.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function project(files: Record<string, string>): string {
  const d = mkdtempSync(join(tmpdir(), 'ringpipe-hash-test-'));
  dirs.push(d);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(d, rel, '..'), { recursive: true });
    writeFileSync(join(d, rel), text);
  }
  return d;
}

describe('canonical hashing', () => {
  it('key order does not change a hash, at any depth', () => {
    const a = { lr: 0.1, model: { hidden: [64, 32], act: 'relu' }, tags: ['x', 'y'] };
    const b = { tags: ['x', 'y'], model: { act: 'relu', hidden: [64, 32] }, lr: 0.1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"lr":0.1,"model":{"act":"relu","hidden":[64,32]},"tags":["x","y"]}');
    expect(hashValue(a)).toBe(hashValue(b));
    expect(hashValue(a)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('values differ, hashes differ; array order matters', () => {
    expect(hashValue({ a: 1 })).not.toBe(hashValue({ a: 2 }));
    expect(hashValue({ a: 1 })).not.toBe(hashValue({ a: '1' }));
    expect(hashValue([1, 2])).not.toBe(hashValue([2, 1]));
    expect(hashValue({ a: undefined, b: 1 })).toBe(hashValue({ b: 1 }));
  });

  it('refuses values without an exact JSON form', () => {
    for (const bad of [{ a: NaN }, { a: Infinity }, { f: () => 1 }, { d: new Float32Array(2) }]) {
      expect(() => hashValue(bad)).toThrow(expect.objectContaining({ code: 'ERR_HASH_VALUE' }));
    }
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => hashValue(circular)).toThrow(/circular/);
  });
});

describe('module graph hashing', () => {
  const files = {
    'steps.mjs': "import { a } from './lib/a.mjs';\nimport fs from 'node:fs';\nimport sharp from 'sharp';\nexport * from './lib/re.mjs';\nexport const f = async () => (await import('./lib/dyn.mjs')).x;\n",
    'lib/a.mjs': "export { b as a } from './b.mjs';\n",
    'lib/b.mjs': 'export const b = 1;\n',
    'lib/re.mjs': 'export const r = 2;\n',
    'lib/dyn.mjs': 'export const x = 3;\n',
    'lib/unused.mjs': 'export const u = 4;\n',
    'cjs/main.cjs': "const h = require('./helper.cjs');\nmodule.exports = { run: h };\n",
    'cjs/helper.cjs': 'module.exports = () => 1;\n',
    'ts/main.ts': "import type { T } from './types.js';\nimport { g } from './g.js';\nexport const run = (x: T) => g(x);\n",
    'ts/g.ts': 'export const g = (x: number): number => x;\n',
    'ts/types.ts': 'export type T = number;\n',
  };

  it('follows static, re-exported and dynamic relative imports; not packages or unused files', async () => {
    const d = project(files);
    const h = await hashModuleGraph(join(d, 'steps.mjs'), d);
    expect(h.files.map((f) => f.path)).toEqual(['lib/a.mjs', 'lib/b.mjs', 'lib/dyn.mjs', 'lib/re.mjs', 'steps.mjs']);
    expect(h.missing).toEqual([]);
  });

  it('follows require() in CommonJS and TypeScript .js specifiers to .ts files; skips type-only imports', async () => {
    const d = project(files);
    expect((await hashModuleGraph(join(d, 'cjs/main.cjs'), d)).files.map((f) => f.path)).toEqual(['cjs/helper.cjs', 'cjs/main.cjs']);
    expect((await hashModuleGraph(join(d, 'ts/main.ts'), d)).files.map((f) => f.path)).toEqual(['ts/g.ts', 'ts/main.ts']);
  });

  it('changes when any reached file changes, not when an unreached one does; survives moving the project', async () => {
    const d = project(files);
    const h1 = await hashModuleGraph(join(d, 'steps.mjs'), d);
    writeFileSync(join(d, 'lib/unused.mjs'), 'export const u = 5;\n');
    expect((await hashModuleGraph(join(d, 'steps.mjs'), d)).hash).toBe(h1.hash);
    writeFileSync(join(d, 'lib/b.mjs'), 'export const b = 2;\n');
    const h2 = await hashModuleGraph(join(d, 'steps.mjs'), d);
    expect(h2.hash).not.toBe(h1.hash);
    const moved = mkdtempSync(join(tmpdir(), 'ringpipe-hash-moved-'));
    dirs.push(moved);
    cpSync(d, moved, { recursive: true });
    expect((await hashModuleGraph(join(moved, 'steps.mjs'), moved)).hash).toBe(h2.hash);
  });

  it('records imports that name no file', async () => {
    const d = project({ 'm.mjs': "import './gone.mjs';\nexport const x = 1;\n" });
    const h = await hashModuleGraph(join(d, 'm.mjs'), d);
    expect(h.missing).toEqual(['m.mjs -> ./gone.mjs']);
    writeFileSync(join(d, 'gone.mjs'), '');
    expect((await hashModuleGraph(join(d, 'm.mjs'), d)).hash).not.toBe(h.hash);
  });
});
