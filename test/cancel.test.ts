import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('./fixtures/endless-run.ts', import.meta.url));
const twoRuns = fileURLToPath(new URL('./fixtures/two-runs-exit.ts', import.meta.url));

describe('SIGINT', () => {
  it('stops a run cleanly: run() rejects with ERR_CANCELLED, no process or shm left', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const t0 = { at: 0 };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('running') && !t0.at) {
        t0.at = Date.now();
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(out).toContain('ended: ERR_CANCELLED');
    expect(code).toBe(130);
    expect(Date.now() - t0.at).toBeLessThan(3000);
    expect(readdirSync('/dev/shm').filter((n) => n.includes(`-p${child.pid}-`))).toEqual([]);
  });
});

describe('exit', () => {
  it('a process that ran two pipelines at once through the addon exits with code 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', twoRuns], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(out.trim()).toBe('2000 2000');
    expect(code).toBe(0);
  });
});
