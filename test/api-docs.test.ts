// The API reference (`npm run docs`: TypeDoc over the five entry points, typedoc.json) builds without
// a warning: every exported declaration has a doc comment, every {@link} resolves, every @param names
// a parameter. CI runs `npm test` only, so this is where a new undocumented export fails the build.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const checkout = dirname(dirname(fileURLToPath(import.meta.url)));
const out = mkdtempSync(join(tmpdir(), 'ringpipe-api-docs-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('the API reference', () => {
  it('covers every entry point of package.json and builds without a warning', { timeout: 300_000 }, () => {
    const config = JSON.parse(readFileSync(join(checkout, 'typedoc.json'), 'utf8')) as { entryPoints: string[]; treatWarningsAsErrors: boolean };
    const exports = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8')).exports as Record<string, unknown>;
    const entries = Object.keys(exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? 'src/index.ts' : `src/${k.slice(2)}/index.ts`));
    expect(config.entryPoints.sort()).toEqual(entries.sort());
    expect(config.treatWarningsAsErrors).toBe(true);

    const typedoc = join(checkout, 'node_modules', 'typedoc', 'bin', 'typedoc');
    const r = spawnSync(process.execPath, [typedoc, '--out', out], { cwd: checkout, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const said = `${r.stdout}${r.stderr}`;
    expect(said).not.toMatch(/\[warning\]|\[error\]/);
    expect(r.status, said).toBe(0);
    for (const page of ['index.html', 'modules/index.html', 'modules/image.html', 'modules/train.html', 'modules/json.html', 'modules/cluster.html']) {
      expect(existsSync(join(out, page)), page).toBe(true);
    }
  });
});
