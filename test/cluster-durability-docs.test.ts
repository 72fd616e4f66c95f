// docs/cluster.md section 13 says how the server syncs to disk and what to set where it can be set.
// Its claims about the setting are checked against the installed nats-server: before 2.10 the
// server refuses `sync_interval` (it has no such setting), from 2.10 it takes the documented block.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers/cluster-agents.js';
import { ensureServer } from './helpers/nats.js';

const dir = mkdtempSync(join(tmpdir(), 'rp-durability-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const docs = readFileSync(join(repoRoot, 'docs', 'cluster.md'), 'utf8');
const section = docs.slice(docs.indexOf('## 13. Durability'));
/** The documented jetstream {} block, with its store directory made a temporary one. */
const block = /```conf\n\s*(jetstream \{[\s\S]*?\n\s*\})\n\s*```/.exec(section)?.[1]?.replace(/store_dir: \S+/, `store_dir: ${JSON.stringify(join(dir, 'js'))}`);

/** `nats-server -t` on a configuration: its exit code and what it said. */
function check(name: string, text: string): { code: number | null; out: string } {
  const file = join(dir, name);
  writeFileSync(file, `listen: "127.0.0.1:4999"\n${text}\n`);
  const r = spawnSync(ensureServer(), ['-c', file, '-t'], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('docs/cluster.md, durability', () => {
  it("the documented sync_interval block: refused by servers before 2.10 (they have no setting), taken by 2.10 and newer", () => {
    expect(section).toMatch(/every 2 minutes/);
    expect(block).toMatch(/sync_interval: always/);
    const version = /v?(\d+)\.(\d+)\.(\d+)/.exec(spawnSync(ensureServer(), ['--version'], { encoding: 'utf8' }).stdout)!;
    const [major, minor] = [Number(version[1]), Number(version[2])];
    const withSync = check('sync.conf', block!);
    const without = check('plain.conf', block!.replace(/^\s*#?\s*sync_interval:.*$/gm, ''));
    expect(without.code, without.out).toBe(0);
    if (major === 2 && minor < 10) {
      expect(withSync.code).not.toBe(0);
      expect(withSync.out).toMatch(/unknown field "sync_interval"/);
    } else {
      expect(withSync.code, withSync.out).toBe(0);
    }
  });
});
