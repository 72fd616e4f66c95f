// Live counters of every replica, in one small shared region the supervisor reads while the
// run goes on (a Float64Array row per replica; plain stores: one writer per row).
import type { RingDescriptor } from '../ring/ring.js';
import { createRegion, openRegion, unlinkRegion } from '../ring/region.js';
import { STAT_SLOTS } from './plan.js';

/** The counters of a run: the supervisor reads `view`; replicas attach through `descriptor`. */
export interface StatsRegion {
  descriptor: RingDescriptor;
  view: Float64Array;
  /** Releases the region's name (shared regions). */
  close(): void;
}

export function createStatsRegion(replicas: number, crossProcess: boolean): StatsRegion {
  const r = createRegion(Math.max(4096, replicas * STAT_SLOTS * 8), crossProcess);
  return {
    descriptor: crossProcess ? { name: r.name } : { buffer: r.buffer, name: '' },
    view: new Float64Array(r.buffer),
    close: () => void unlinkRegion(r.name),
  };
}

export function attachStats(d: RingDescriptor, slot: number): Float64Array {
  const buffer = d.buffer ?? openRegion(d.name).buffer;
  return new Float64Array(buffer, slot * STAT_SLOTS * 8, STAT_SLOTS);
}

