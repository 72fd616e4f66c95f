// Calls that do not return: the supervisor samples each replica's current call (STAT_CALL) and its
// count of records in (STAT_IN) a few times a second. A call seen in progress with the count
// standing still has been running since the first such sample: past a segment's recordTimeoutMs it
// fails the run; past STUCK_AFTER_MS it is reported in the progress as stuck.
import { STAT_CALL, STAT_IN, STAT_SLOTS } from './plan.js';

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

  /** Calls in progress for at least STUCK_AFTER_MS, as of the last sample. */
  stuck(now = Date.now()): StuckCall[] {
    return this.watched
      .filter((w) => w.call !== 0 && now - w.since >= STUCK_AFTER_MS)
      .map((w) => ({ segment: w.segment, replica: w.replica, index: w.call - 1, seconds: Math.round((now - w.since) / 100) / 10 }));
  }
}
