// Regions: the memory a ring lives in. Private regions are shared by the worker threads of one
// process; shared regions are named POSIX shm that other processes open by name. The process that
// creates a shared region owns it and unlinks it on close, on exit, on an uncaught error and on
// SIGINT/SIGTERM; segments of owners killed with SIGKILL are removed by the next run.
import { isMainThread } from 'node:worker_threads';
import { native } from '../native.js';
import { RegionError } from '../errors.js';

/** A region as it can be sent to a thread (`buffer`) or a process (`name`). */
export interface RegionHandle {
  buffer: SharedArrayBuffer;
  /** POSIX shm name ('' for a private region). */
  name: string;
}

let hooksInstalled = false;
function installExitHooks(): void {
  if (hooksInstalled || !isMainThread) return;  // one process-wide set of hooks, on the main thread
  hooksInstalled = true;
  native.cleanupStaleRegions();
  process.on('exit', () => native.unlinkOwnedRegions());
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      native.unlinkOwnedRegions();
      // Only us listening: restore the default action and re-raise, so the exit status still
      // says "killed by signal". With other listeners the application decides.
      if (process.listenerCount(signal) === 1) {
        process.removeListener(signal, onSignal);
        process.kill(process.pid, signal);
      }
    };
    process.on(signal, onSignal);
  }
}

function regionError(err: unknown): never {
  const e = err as { code?: string; message?: string };
  throw new RegionError(e.code ?? 'ERR_REGION_CREATE', e.message ?? String(err), { cause: err });
}

/** Maps `size` bytes. `shared: true` makes a named shm segment other processes can open. */
export function createRegion(size: number, shared: boolean): RegionHandle {
  if (shared) installExitHooks();
  try {
    return native.createRegion(size, shared);
  } catch (err) {
    regionError(err);
  }
}

/** Maps a shared region created by another process. */
export function openRegion(name: string): RegionHandle {
  try {
    return { buffer: native.openRegion(name), name };
  } catch (err) {
    regionError(err);
  }
}

/** Removes a shared region's name; mappings stay valid until their buffers are collected. */
export function unlinkRegion(name: string): void {
  if (name) native.unlinkRegion(name);
}

/** Removes shm segments left by ringpipe processes of this user that no longer run. */
export function cleanupStaleRegions(): number {
  return native.cleanupStaleRegions();
}
