/**
 * One GPU of a list for a trainer process that picks its own (a JSON pipeline `trainer` stage in its
 * own process): the first GPU no other live process on this machine holds, so branches running at
 * the same time, or other ringpipe runs, spread over the GPUs; when every GPU is held, the trainer
 * shares one. A hold is a lock file `ringpipe-gpu-<index>.lock` (holding the pid) in the OS temp
 * directory, removed on release or at exit; one left by a killed process is taken over.
 */
import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../cache/store.js';

/** A GPU chosen by {@link leaseGpu}. */
export interface GpuLease {
  /** CUDA device index. */
  gpu: number;
  /** True when another process holds it too (every GPU was taken). */
  shared: boolean;
  /** Gives the GPU back (idempotent). */
  release(): void;
}

/** The lock file of a GPU (`dir`: the OS temp directory, or another one in tests). */
export function gpuLockFile(gpu: number, dir = tmpdir()): string {
  return join(dir, `ringpipe-gpu-${gpu}.lock`);
}

/** Takes the first free GPU of `gpus` (non-empty), else shares the one `process.pid` picks. */
export function leaseGpu(gpus: readonly number[], dir = tmpdir()): GpuLease {
  for (const gpu of gpus) {
    const file = gpuLockFile(gpu, dir);
    if (tryLock(file)) {
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        process.off('exit', release);
        if (ownerOf(file) === process.pid) rmQuiet(file);
      };
      process.on('exit', release);
      return { gpu, shared: false, release };
    }
  }
  return { gpu: gpus[process.pid % gpus.length]!, shared: true, release: () => undefined };
}

function tryLock(file: string): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return false;
      const owner = ownerOf(file);
      // Unreadable: being written by its new owner right now.
      if (owner === undefined || processAlive(owner)) return false;
      rmQuiet(file); // its process is gone: take it over
    }
  }
  return false;
}

function ownerOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function rmQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // already gone
  }
}
