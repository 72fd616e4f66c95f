// What does not move: the supervisor samples each replica's counters a few times a second.
// - Calls that do not return: a call in progress (STAT_CALL) with the count of records in (STAT_IN)
//   standing still has been running since the first such sample: past a segment's recordTimeoutMs
//   it fails the run; past STUCK_AFTER_MS it is reported in the progress as stuck.
// - Deadlocks: replicas parked for space (STAT_BLOCKED) on rings whose slowest readers are
//   themselves parked for space, all of them, with no record moving for DEADLOCK_AFTER_MS (a
//   feedback loop whose rings all filled).
import { layout as L } from '../native.js';
import type { Ring } from '../ring/ring.js';
import { STAT_BLOCKED, STAT_CALL, STAT_IN, STAT_OUT, STAT_SLOTS, type RunPlan } from './plan.js';

/** A call in a segment's code for longer than STUCK_AFTER_MS (shown in progress and results). */
export interface StuckCall {
  segment: string;
  replica: number;
  /** The record in the call (or, for a source, the record being produced). */
  index: number;
  seconds: number;
}

/** Calls running at least this long are reported as stuck. */
export const STUCK_AFTER_MS = 10_000;
/** Replicas waiting on each other's space this long, with no record moving, are deadlocked. */
export const DEADLOCK_AFTER_MS = 1000;

interface Watched {
  segment: string;
  replica: number;
  statsSlot: number;
  /** Fail the run when one call lasts longer (ms). */
  timeoutMs?: number;
  call: number;
  recordsIn: number;
  since: number;
}

export class Watchdog {
  private readonly watched: Watched[];
  /** The deadlocked set seen in the last samples, and since when (with the counters then). */
  private locked: { members: string; since: number; moved: number } | undefined;

  constructor(
    private readonly view: Float64Array,
    replicas: { segment: string; replica: number; statsSlot: number; timeoutMs?: number }[],
  ) {
    this.watched = replicas.map((r) => ({ ...r, call: 0, recordsIn: -1, since: 0 }));
  }

  /** Takes a sample; returns the first call over its segment's timeout, if any. */
  sample(now = Date.now()): (StuckCall & { timeoutMs: number }) | undefined {
    let over: (StuckCall & { timeoutMs: number }) | undefined;
    for (const w of this.watched) {
      const base = w.statsSlot * STAT_SLOTS;
      const call = this.view[base + STAT_CALL]!, recordsIn = this.view[base + STAT_IN]!;
      if (call === 0 || call !== w.call || recordsIn !== w.recordsIn) {
        w.call = call;
        w.recordsIn = recordsIn;
        w.since = now;
        continue;
      }
      if (!over && w.timeoutMs !== undefined && now - w.since > w.timeoutMs) {
        over = { segment: w.segment, replica: w.replica, index: call - 1, seconds: (now - w.since) / 1000, timeoutMs: w.timeoutMs };
      }
    }
    return over;
  }

  /**
   * Checks for a deadlock (see deadlocked()); returns its members' names once the same replicas
   * have held each other up, with no record in or out, for DEADLOCK_AFTER_MS.
   */
  deadlock(rings: readonly Ring[], waits: RunPlan['waits'], now = Date.now()): string[] | undefined {
    const members = deadlocked(this.view, rings, waits);
    if (!members.length) {
      this.locked = undefined;
      return undefined;
    }
    const key = members.join(',');
    const moved = members.reduce((a, r) => a + this.view[r * STAT_SLOTS + STAT_IN]! + this.view[r * STAT_SLOTS + STAT_OUT]!, 0);
    if (!this.locked || this.locked.members !== key || this.locked.moved !== moved) {
      this.locked = { members: key, since: now, moved };
      return undefined;
    }
    if (now - this.locked.since < DEADLOCK_AFTER_MS) return undefined;
    return members.map((r) => `${this.watched[r]!.segment}${this.watched.filter((w) => w.segment === this.watched[r]!.segment).length > 1 ? ` (replica ${this.watched[r]!.replica})` : ''}`);
  }

  /** Calls in progress for at least STUCK_AFTER_MS, as of the last sample. */
  stuck(now = Date.now()): StuckCall[] {
    return this.watched
      .filter((w) => w.call !== 0 && now - w.since >= STUCK_AFTER_MS)
      .map((w) => ({ segment: w.segment, replica: w.replica, index: w.call - 1, seconds: Math.round((now - w.since) / 100) / 10 }));
  }
}

/**
 * The replicas (indices in `run.replicas`) that wait for space held only by each other, or none.
 * A parked writer waits on the slowest readers of its ring: if one of them is not itself parked
 * (it computes, or waits for input), the writer will move once it does.
 */
export function deadlocked(view: Float64Array, rings: readonly Ring[], waits: RunPlan['waits']): number[] {
  const blocked = new Set<number>();
  waits.outputs.forEach((_, r) => {
    if (view[r * STAT_SLOTS + STAT_BLOCKED]! > 0) blocked.add(r);
  });
  let changed = true;
  while (changed && blocked.size) {
    changed = false;
    for (const r of blocked) {
      const ringIndex = waits.outputs[r]![view[r * STAT_SLOTS + STAT_BLOCKED]! - 1]!;
      if (!slowestReaders(rings[ringIndex]!).every((slot) => blocked.has(waits.readers[ringIndex]![slot] ?? -1))) {
        blocked.delete(r);
        changed = true;
      }
    }
  }
  return [...blocked];
}

/** Reader slots of a ring at the oldest position among its active readers (what a writer waits for). */
function slowestReaders(ring: Ring): number[] {
  const write = Atomics.load(ring.i32, L.offWritePos >> 2);
  let most = -1, slots: number[] = [];
  for (let k = 0; k < ring.readerSlots; k++) {
    const base = (L.offReaders + k * L.line) >> 2;
    if (Atomics.load(ring.i32, base + (L.readerActive >> 2)) === 0) continue;
    const used = (write - Atomics.load(ring.i32, base + (L.readerReadPos >> 2))) >>> 0;
    if (used > most) {
      most = used;
      slots = [k];
    } else if (used === most) slots.push(k);
  }
  return slots;
}
