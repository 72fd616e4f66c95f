// Live stats of a run, read from the replicas' counters (stats.ts) and the rings' positions:
// records in and out, rates, where the time goes per segment, the fill of every stream, and the
// segment that limits throughput.
import { layout as L } from '../native.js';
import { STAT_BUSY, STAT_END, STAT_FORWARDED, STAT_IN, STAT_OUT, STAT_SKIPPED, STAT_SLOTS, STAT_START, STAT_WAIT_IN, STAT_WAIT_OUT, type RunPlan } from './plan.js';
import type { StuckCall, Watchdog } from './watchdog.js';

/** Counters and where the time went, for one segment (all its replicas). */
export interface SegmentStats {
  name: string;
  kind: string;
  replicas: number;
  recordsIn: number;
  recordsOut: number;
  /** Records in per second of the segment's running time. */
  recordsPerSecond: number;
  /** Share of the running time in the segment's code (averaged over replicas). */
  busyPct: number;
  /** Share waiting for input (upstream too slow). */
  waitInputPct: number;
  /** Share waiting for space downstream (backpressure). */
  waitOutputPct: number;
  skipped: number;
  /** Records passed on by reference instead of copied (returned unchanged by a transform). */
  forwarded: number;
  seconds: number;
  /** Epoch ms when the first replica started running (after loading its code) and the last ended. */
  startedAt: number;
  endedAt: number;
}

/** How full a stream's rings are. */
export interface StreamStats {
  name: string;
  /** Fullest ring of the stream, 0..1. */
  fill: number;
}

/** Live stats of a run, given to `onProgress` and carried by the result. */
export interface Progress {
  seconds: number;
  segments: SegmentStats[];
  streams: StreamStats[];
  /** The segment that limits throughput: busiest, and least often waiting for input. */
  slowest: string | undefined;
  /** Calls in a segment's code for 10 s or more (a record stuck in user code), as of now. */
  stuck: StuckCall[];
}

export function snapshot(run: RunPlan, started: number, watchdog: Watchdog): Progress {
  const now = Date.now();
  const view = run.stats.view;
  const segments: SegmentStats[] = run.segments.map((seg, si) => {
    const mine = run.replicas.filter((r) => r.segment === si);
    let recordsIn = 0, recordsOut = 0, busy = 0, waitIn = 0, waitOut = 0, skipped = 0, forwarded = 0, span = 0, startedAt = Infinity, endedAt = 0;
    for (const r of mine) {
      const s = view.subarray(r.plan.statsSlot * STAT_SLOTS, (r.plan.statsSlot + 1) * STAT_SLOTS);
      const start = s[STAT_START] || now;
      const t = (s[STAT_END] || now) - start;
      recordsIn += s[STAT_IN]!;
      recordsOut += s[STAT_OUT]!;
      waitIn += s[STAT_WAIT_IN]!;
      waitOut += s[STAT_WAIT_OUT]!;
      busy += s[STAT_BUSY] || Math.max(0, t - s[STAT_WAIT_IN]! - s[STAT_WAIT_OUT]!);
      skipped += s[STAT_SKIPPED]!;
      forwarded += s[STAT_FORWARDED]!;
      span += t;
      startedAt = Math.min(startedAt, start);
      endedAt = Math.max(endedAt, s[STAT_END] || now);
    }
    const pct = (x: number) => (span > 0 ? Math.min(100, (100 * x) / span) : 0);
    const seconds = span / mine.length / 1000;
    return {
      name: seg.name,
      kind: seg.kind,
      replicas: mine.length,
      recordsIn,
      recordsOut,
      recordsPerSecond: seconds > 0 ? (seg.kind === 'source' ? recordsOut : recordsIn) / seconds : 0,
      busyPct: pct(busy),
      waitInputPct: pct(waitIn),
      waitOutputPct: pct(waitOut),
      skipped,
      forwarded,
      seconds,
      startedAt,
      endedAt,
    };
  });
  const streams: StreamStats[] = run.streams.map((st) => {
    let fill = 0;
    for (const ring of st.rings) {
      const write = Atomics.load(ring.i32, L.offWritePos >> 2) >>> 0;
      let used = 0;
      for (let k = 0; k < ring.readerSlots; k++) {
        const rp = Atomics.load(ring.i32, (L.offReaders + k * L.line) >> 2) >>> 0;
        used = Math.max(used, (write - rp) >>> 0);
      }
      fill = Math.max(fill, used / ring.capacity);
    }
    return { name: st.name, fill };
  });
  // The bottleneck: the most time in its own code per replica (a short burst at 100% is not it).
  let slowest: string | undefined, most = -1;
  for (const s of segments) {
    const busyMs = (s.busyPct / 100) * s.seconds * 1000;
    if (busyMs > most) {
      most = busyMs;
      slowest = s.name;
    }
  }
  return { seconds: (now - started) / 1000, segments, streams, slowest, stuck: watchdog.stuck(now) };
}
