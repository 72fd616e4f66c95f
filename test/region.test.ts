import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cleanupStaleRegions, createRegion, Ring } from '../src/ring/index.js';

const owner = fileURLToPath(new URL('./helpers/region-owner.ts', import.meta.url));
const shmPath = (name: string) => `/dev/shm${name}`;

/** Runs region-owner.ts; resolves with the region name once the child ended. */
function runOwner(how: string, signal?: NodeJS.Signals): Promise<{ name: string; code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', owner, how], { stdio: ['ignore', 'pipe', 'ignore'] });
    let name = '';
    child.stdout.on('data', (d: Buffer) => {
      name += d.toString();
      if (signal && name.includes('\n')) {
        expect(existsSync(shmPath(name.trim()))).toBe(true);
        child.kill(signal);
      }
    });
    child.on('exit', (code, sig) => resolve({ name: name.trim(), code, signal: sig }));
  });
}

describe('regions', () => {
  it('a private region and a shared one are SharedArrayBuffers', () => {
    const priv = createRegion(8192, false);
    expect(priv.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(priv.name).toBe('');
    const ring = Ring.create({ capacity: 4096, crossProcess: true });
    expect(existsSync(shmPath(ring.name))).toBe(true);
    ring.close();
    expect(existsSync(shmPath(ring.name))).toBe(false);
  });

  it('a region that cannot be allocated fails with ERR_SHM_FULL, leaving nothing behind', () => {
    expect(() => createRegion(2 ** 40, true)).toThrow(expect.objectContaining({ code: 'ERR_SHM_FULL' }));
  });

  for (const [how, signal] of [['exit'], ['throw'], ['hang', 'SIGTERM'], ['hang', 'SIGINT']] as const) {
    it(`is unlinked when its owner ${signal ? `gets ${signal}` : how === 'throw' ? 'throws' : 'exits'}`, async () => {
      const r = await runOwner(how, signal);
      expect(r.name).toMatch(/^\/ringpipe-/);
      expect(existsSync(shmPath(r.name))).toBe(false);
      if (signal) expect(r.signal).toBe(signal);  // still reported as killed by the signal
    });
  }

  it('segments of an owner killed with SIGKILL are removed by the next run', async () => {
    const r = await runOwner('hang', 'SIGKILL');
    expect(existsSync(shmPath(r.name))).toBe(true);
    expect(cleanupStaleRegions()).toBeGreaterThanOrEqual(1);
    expect(existsSync(shmPath(r.name))).toBe(false);
  });
});
