import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectGpus, planSlots, resolveGpus, trainerEnv } from '../src/train/gpu.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-gpu-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A stand-in nvidia-smi that checks its arguments and prints `out`. */
function fakeSmi(name: string, out: string, status = 0): string {
  const p = join(tmp, name);
  writeFileSync(
    p,
    `#!/bin/sh\n[ "$1" = "--query-gpu=index" ] && [ "$2" = "--format=csv,noheader" ] || { echo "bad args: $*" >&2; exit 64; }\nprintf '${out}'\n${status ? `echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.' >&2\nexit ${status}\n` : ''}`,
  );
  chmodSync(p, 0o755);
  return p;
}

describe('GPU detection and binding', () => {
  it("'all' lists the devices nvidia-smi reports", () => {
    expect(resolveGpus('all', { nvidiaSmi: fakeSmi('smi-2', '0\\n1\\n') })).toEqual({
      gpus: [0, 1],
      source: 'nvidia-smi',
      note: expect.stringContaining('2 GPU(s) detected'),
    });
  });

  it('no nvidia-smi, a failing one, or none listed: CPU, and says so', () => {
    const missing = detectGpus({ nvidiaSmi: join(tmp, 'no-such-smi') });
    expect(missing.gpus).toEqual([]);
    expect(missing.source).toBe('none');
    expect(missing.note).toMatch(/no-such-smi not found\); trainers run on the CPU/);
    const failing = detectGpus({ nvidiaSmi: fakeSmi('smi-fail', '', 9) });
    expect(failing.gpus).toEqual([]);
    expect(failing.note).toMatch(/could not communicate with the NVIDIA driver/);
    expect(detectGpus({ nvidiaSmi: fakeSmi('smi-empty', '') }).note).toMatch(/lists none/);
    expect(() => detectGpus({ nvidiaSmi: fakeSmi('smi-garbage', 'GPU 0: Tesla\\n') })).toThrow(/unexpected output/);
  });

  it('validates explicit lists', () => {
    expect(resolveGpus([1, 0])).toMatchObject({ gpus: [1, 0], source: 'explicit' });
    expect(resolveGpus([])).toMatchObject({ gpus: [], note: expect.stringContaining('CPU') });
    expect(resolveGpus(undefined).gpus).toEqual([]);
    expect(() => resolveGpus([0, 0])).toThrow(/listed twice/);
    expect(() => resolveGpus([-1])).toThrow(/not a device index/);
    expect(() => resolveGpus('some' as 'all')).toThrow(/array of device indexes/);
  });

  it("'share' spreads more trainers than GPUs round-robin", () => {
    const p = planSlots({ concurrency: 5, gpus: [0, 1] });
    expect(p.concurrency).toBe(5);
    expect(p.slots.map((s) => s.gpu)).toEqual([0, 1, 0, 1, 0]);
    expect(p.note).toContain('GPU 0: 3, GPU 1: 2');
  });

  it("'wait' caps trainers per GPU; the rest wait for a slot", () => {
    const p = planSlots({ concurrency: 5, gpus: [0, 1], sharing: 'wait' });
    expect(p.concurrency).toBe(2);
    expect(p.slots.map((s) => s.gpu)).toEqual([0, 1]);
    expect(p.note).toContain('5 asked');
    expect(planSlots({ concurrency: 5, gpus: [3], sharing: 'wait', trainersPerGpu: 2 }).slots.map((s) => s.gpu)).toEqual([3, 3]);
    expect(planSlots({ concurrency: 1, gpus: [0, 1], sharing: 'wait' }).concurrency).toBe(1);
  });

  it('no GPU: every slot on the CPU', () => {
    const p = planSlots({ concurrency: 3, gpus: [] });
    expect(p.slots).toEqual([
      { index: 0, gpu: null },
      { index: 1, gpu: null },
      { index: 2, gpu: null },
    ]);
    expect(p.note).toBe('3 trainer(s) on the CPU');
    expect(() => planSlots({ concurrency: 0, gpus: [] })).toThrow(/concurrency/);
    expect(() => planSlots({ concurrency: 1, gpus: [0], sharing: 'wait', trainersPerGpu: 0 })).toThrow(/trainersPerGpu/);
  });

  it('trainer environment binds one GPU, or hides all', () => {
    expect(trainerEnv(1, {})).toEqual({ CUDA_VISIBLE_DEVICES: '1', TF_CPP_MIN_LOG_LEVEL: '2' });
    expect(trainerEnv(null, { TF_CPP_MIN_LOG_LEVEL: '0' })).toEqual({ CUDA_VISIBLE_DEVICES: '-1' });
  });
});
