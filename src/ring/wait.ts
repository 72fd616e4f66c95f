// Parking a ring end: spin briefly, then sleep on a futex word until the other side bumps it.
// Private rings park with Atomics.waitAsync/wait (V8's own wait lists); cross-process rings with
// real futexes through the addon, since Atomics.notify cannot reach another process. Parking costs
// tens of microseconds, so the protocol only parks when a spin found nothing, never per record,
// and a parked end asks for a quarter of the ring (records or space) before the other side's hot
// path wakes it: one wake per large chunk, not one per batch of 64 (ring.h, dataWant/spaceWant).
import { layout as L, native } from '../native.js';
import { RingError } from '../errors.js';
import type { RingMemory } from './ring.js';

/** How long one sleep lasts before liveness is checked again. */
const SLICE_MS = 100;
/** Checks before parking (a check is a few loads, ~10 ns): ~20-50 us of spinning, about what one
 * park/wake round trip costs, so a side that would be woken soon never pays for parking. */
export const DEFAULT_SPIN = 4096;

/**
 * Adaptive spinning: a spin that ends in success earns a longer one next time, one that ends in
 * parking a shorter one. With more busy threads than cores a waiter soon stops spinning (it would
 * only steal the core the other side needs); with a core each it keeps the cheap hand-off.
 */
export class SpinBudget {
  current: number;
  constructor(readonly max: number) {
    this.current = max;
  }
  /** Spins up to the budget; true if `ready()` came true meanwhile. */
  spin(ready: () => boolean): boolean {
    for (let i = 0; i < this.current; i++) {
      if (ready()) {
        this.current = Math.min(this.max, Math.max(64, this.current * 2));
        return true;
      }
    }
    // Keep a token spin (~0.2 us), so a budget that fell can find its way back up.
    this.current = Math.max(Math.min(16, this.max), this.current >>> 1);
    return false;
  }
}

const noop = () => {};

export const ABORT_GENERIC = 1;
export const ABORT_PEER_DEAD = 2;

/** Bounds of a wait for data or space. */
export interface WaitOptions {
  /** Give up with ERR_TIMEOUT after this many milliseconds. Default: no limit. */
  timeoutMs?: number;
  /** Give up with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

export function abortedError(mem: RingMemory): RingError {
  return mem.abortCode() === ABORT_PEER_DEAD
    ? new RingError('ERR_PEER_DEAD', 'a process on the other end of the ring died')
    : new RingError('ERR_RING_ABORTED', 'the ring was aborted (a peer failed or the run was cancelled)');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Throws when the ring is aborted, or aborts it when the other side can no longer move: every
 * peer process in `pids()` is gone (one in this process, e.g. a thread, is alive as this one is).
 * A supervised ring leaves that to its creator while the creator lives: it may drop a dead
 * reader's cursor and let the others go on, which an abort here would pre-empt.
 */
function checkPeers(mem: RingMemory, pids: () => number[]): void {
  if (mem.state() === L.stateAborted) throw abortedError(mem);
  if (!mem.crossProcess) return;  // threads of one process: the supervisor watches them
  if (mem.supervised) {
    if (mem.creatorPid === process.pid || alive(mem.creatorPid)) return;
  } else {
    const peers = pids();
    if (peers.length === 0 || peers.includes(process.pid) || peers.some(alive)) return;
  }
  mem.abort(ABORT_PEER_DEAD);
  throw abortedError(mem);
}

/** How long the next sleep may last; throws when the ring was aborted or the wait timed out. */
function nextSlice(mem: RingMemory, deadline: number, timeoutMs: number | undefined, slice: number): number {
  if (mem.state() === L.stateAborted) throw abortedError(mem);
  const ms = Math.min(slice, deadline - Date.now());
  if (ms <= 0) throw new RingError('ERR_TIMEOUT', `timed out after ${timeoutMs} ms waiting on a ring`);
  return ms;
}

/** What a ring end waits for, and on which futex word. */
export interface ParkSpec {
  /** The futex word the other side bumps, and the counter that tells it to. */
  seqOff: number;
  waitingOff: number;
  /** What this end waits for (also what the spin looks for). */
  ready: () => boolean;
  /**
   * Enough once woken (default: `ready`). The other side wakes a waiter early when it is about
   * to stop, and then `ready()` may never come.
   */
  settle?: () => boolean;
  /** After a wake that found nothing: from now on, any progress should wake this end. */
  relax?: () => void;
  /** Length of the first sleep (ms; later ones: SLICE_MS): bounds the wait for a peer that never wakes it early. */
  firstSliceMs?: number;
  /** Peers whose death ends the wait. */
  pids: () => number[];
  spin?: SpinBudget;
}

/** Waits until `spec.ready()` (or, once woken, `spec.settle()`) is true. */
export async function park(mem: RingMemory, spec: ParkSpec, options: WaitOptions = {}): Promise<void> {
  const { ready, settle = ready } = spec;
  if (spec.spin?.spin(ready)) return;
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  const seqIdx = spec.seqOff >> 2, waitingIdx = spec.waitingOff >> 2;
  let slice = spec.firstSliceMs ?? SLICE_MS;
  for (;;) {
    const seq = Atomics.load(mem.i32, seqIdx);
    Atomics.add(mem.i32, waitingIdx, 1);
    try {
      if (ready()) return;
      options.signal?.throwIfAborted();
      const ms = nextSlice(mem, deadline, options.timeoutMs, slice);
      if (mem.crossProcess) {
        await native.futexWaitAsync(mem.buffer, spec.seqOff, seq, ms);
      } else {
        const r = Atomics.waitAsync(mem.i32, seqIdx, seq, ms);
        if (r.async) {
          // A pending waitAsync does not keep Node's event loop alive: without this timer a
          // worker with nothing else to do would exit in the middle of the wait. Its margin is
          // wide (it is cleared as soon as the wait ends): V8 delivers the wait's end through
          // Node's platform tasks, which a loaded machine can run late.
          const keepAlive = setTimeout(noop, ms + 1000);
          await r.value;
          clearTimeout(keepAlive);
        }
      }
    } finally {
      Atomics.sub(mem.i32, waitingIdx, 1);
    }
    if (settle()) return;
    checkPeers(mem, spec.pids);
    spec.relax?.();
    slice = SLICE_MS;
  }
}

/** Blocking form of park(), for worker threads and child processes that have nothing else to do. */
export function parkSync(mem: RingMemory, spec: ParkSpec, timeoutMs = Infinity): void {
  const { ready, settle = ready } = spec;
  if (spec.spin?.spin(ready)) return;
  const deadline = Date.now() + timeoutMs;
  const seqIdx = spec.seqOff >> 2, waitingIdx = spec.waitingOff >> 2;
  let slice = spec.firstSliceMs ?? SLICE_MS;
  for (;;) {
    const seq = Atomics.load(mem.i32, seqIdx);
    Atomics.add(mem.i32, waitingIdx, 1);
    try {
      if (ready()) return;
      const ms = nextSlice(mem, deadline, timeoutMs, slice);
      if (mem.crossProcess) native.futexWait(mem.buffer, spec.seqOff, seq, ms);
      else Atomics.wait(mem.i32, seqIdx, seq, ms);
    } finally {
      Atomics.sub(mem.i32, waitingIdx, 1);
    }
    if (settle()) return;
    checkPeers(mem, spec.pids);
    spec.relax?.();
    slice = SLICE_MS;
  }
}
