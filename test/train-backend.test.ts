import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTf } from '../src/train/backend.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-backend-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * A project whose node_modules holds the real tfjs and wasm packages plus a tfjs-node-gpu that is
 * installed but broken the way a missing libtensorflow breaks it (its native binding fails to load).
 */
function projectWithBrokenGpuPackage(): string {
  const root = join(tmp, 'project');
  const scope = join(root, 'node_modules', '@tensorflow');
  mkdirSync(join(scope, 'tfjs-node-gpu'), { recursive: true });
  for (const pkg of ['tfjs', 'tfjs-backend-wasm']) {
    symlinkSync(dirname(resolve('node_modules/@tensorflow', pkg, 'package.json')), join(scope, pkg));
  }
  writeFileSync(join(scope, 'tfjs-node-gpu', 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-node-gpu', version: '4.22.0', main: 'index.js' }));
  writeFileSync(
    join(scope, 'tfjs-node-gpu', 'index.js'),
    "throw new Error('libtensorflow.so.2: cannot open shared object file: No such file or directory');\n",
  );
  return root;
}

describe('TensorFlow.js backend resolution', () => {
  it('auto: without tfjs-node(-gpu) installed, uses wasm and says why it skipped the others', async () => {
    const r = await loadTf();
    expect(r.name).toBe('wasm');
    expect(r.package).toBe('@tensorflow/tfjs');
    expect(r.version).toBe('4.22.0');
    expect(r.device).toBe('cpu');
    expect(r.attempts).toEqual([
      { candidate: '@tensorflow/tfjs-node-gpu', reason: 'not installed' },
      { candidate: '@tensorflow/tfjs-node', reason: 'not installed' },
      { candidate: 'wasm' },
    ]);
    expect(r.description).toMatch(/^wasm \(@tensorflow\/tfjs 4\.22\.0, cpu.*skipped tfjs-node-gpu: not installed; tfjs-node: not installed/);
    // The backend computes.
    const s = r.tf.tidy(() => r.tf.tensor([1, 2, 3]).sum());
    expect((await s.data())[0]).toBe(6);
    s.dispose();
    // Resolved once per process.
    expect(await loadTf()).toBe(r);
  });

  it('falls through an installed but broken tfjs-node-gpu, recording the reason', async () => {
    const r = await loadTf({ from: projectWithBrokenGpuPackageOnce() });
    expect(r.name).toBe('wasm');
    expect(r.attempts[0]).toEqual({
      candidate: '@tensorflow/tfjs-node-gpu',
      reason: 'failed to load: libtensorflow.so.2: cannot open shared object file: No such file or directory',
    });
    expect(r.attempts[1]).toEqual({ candidate: '@tensorflow/tfjs-node', reason: 'not installed' });
    expect(r.description).toContain('tfjs-node-gpu: failed to load: libtensorflow.so.2');
  });

  it('an explicit backend that cannot load is an error listing the attempts', async () => {
    await expect(loadTf({ backend: 'tfjs-node' })).rejects.toMatchObject({
      code: 'ERR_BACKEND_UNAVAILABLE',
      name: 'BackendError',
      attempts: [{ candidate: '@tensorflow/tfjs-node', reason: 'not installed' }],
      message: expect.stringContaining('npm install @tensorflow/tfjs-node'),
    });
    await expect(loadTf({ backend: 'tfjs-node-gpu', from: projectWithBrokenGpuPackageOnce() })).rejects.toMatchObject({
      code: 'ERR_BACKEND_UNAVAILABLE',
      message: expect.stringContaining('cannot open shared object file'),
    });
    expect(() => loadTf({ backend: 'webgpu' as 'cpu' })).toThrow(/backend must be one of/);
  });

  it('cpu on request; switching back re-activates the backend a cached result names', async () => {
    const cpu = await loadTf({ backend: 'cpu' });
    expect(cpu.name).toBe('cpu');
    expect(cpu.tf.getBackend()).toBe('cpu');
    const wasm = await loadTf({ backend: 'wasm' });
    expect(wasm.tf.getBackend()).toBe('wasm');
    expect(wasm.attempts).toEqual([{ candidate: 'wasm' }]);
  });
});

let broken: string | undefined;
function projectWithBrokenGpuPackageOnce() {
  return (broken ??= projectWithBrokenGpuPackage());
}
