// The plan of one replica: everything a runner needs, in a form that can be posted to a worker
// thread (SharedArrayBuffers) or sent to a child process as JSON (shm names).
import { inspect } from 'node:util';
import type { Ring, RingDescriptor } from '../ring/ring.js';
import type { ErrorDecision, SegmentContext, SegmentKind } from '../segments/segment.js';
import type { StatsRegion } from './stats.js';

/** Where a segment's replicas run: a worker thread each, a child process each, or this thread. */
export type Isolation = 'thread' | 'process' | 'local';
export type OnErrorPolicy = 'fail' | 'skip';
/** 'view': records are views into the ring, valid during the call; 'copy': owned copies. */
export type RecordAccess = 'view' | 'copy';
export type PoisonMode = 'off' | 'sole' | 'all';

/** One ring a port reads, and this reader's cursor in it. */
export interface InputRing {
  ring: RingDescriptor;
  slot: number;
  /** Rings the writer may forward records from (its own input rings, in its flat lane order). */
  sources?: RingDescriptor[];
  /**
   * Readers sharing this ring's records (replicas, or segments balancing a stream) claim them one
   * by one with a counter kept in this reader slot; undefined: this reader takes every record.
   */
  claimSlot?: number;
}

/** The rings of one upstream segment feeding a port (one per upstream replica). */
export interface InputGroup {
  rings: InputRing[];
  /** Merge the rings by sequence number (the upstream's replicas), or take what comes first. */
  ordered: boolean;
}

export interface InputPlan {
  groups: InputGroup[];
}

export interface OutputPlan {
  ring: RingDescriptor;
  /** Every reader can map this replica's input rings: pass records through by reference. */
  forward: boolean;
}

export interface SegmentRef {
  kind: SegmentKind;
  name: string;
  /** File URL of the module, and the export, holding the code ('' for local runs). */
  module: string;
  exportName: string;
  isClass: boolean;
  options: unknown;
  onError: OnErrorPolicy | 'function';
  /** What the code gets: views into the ring (zero-copy) or owned copies it may keep. */
  records: RecordAccess;
}

export interface ReplicaPlan {
  segment: SegmentRef;
  /** Where an onError function lives, when there is one. */
  onErrorRef?: { module: string; exportName: string };
  /** Index of the segment in the graph, for stats. */
  segmentIndex: number;
  replica: number;
  replicas: number;
  inputs: InputPlan[];
  outputs: OutputPlan[];
  /** Output records keep their input's seq (1-in transforms) or are numbered afresh. */
  resequence: boolean;
  /** Where this replica's counters live: a stats ring-less region, and the slot in it. */
  stats: RingDescriptor;
  statsSlot: number;
  /**
   * Debug aid: overwrite released input records so a kept view shows garbage at once. 'sole': in
   * rings this replica reads alone ('local' segments by default); 'all': in every ring (a
   * poisoning run, where every reader takes part, see RingReader.lastHolder); 'off'.
   */
  poison: PoisonMode;
  /** Spin before parking: pointless (0) when every segment shares this thread ('local'). */
  spin: number | undefined;
  /** After teardown, how long callbacks the code left pending may run before the replica is stopped (ms). */
  settleTimeoutMs: number;
  /** The run's epoch (SegmentContext.epoch). */
  epoch: number;
}

/** Messages from a runner to the supervisor. */
export type RunnerMessage =
  | { type: 'ready' }
  | { type: 'done'; result: unknown; skipped: SkippedRecord[]; skippedCount: number; lingering?: string[] }
  | { type: 'error'; error: SerializedError; index: number | null; during: SegmentPhase; record?: string }
  | { type: 'aborted' }
  /** The replica's event loop emptied while its code was not done: it awaits what nothing will settle. */
  | { type: 'stalled'; during: SegmentPhase; index: number };

/** Where a segment's code was when it failed. */
export type SegmentPhase = 'load' | 'setup' | 'record' | 'produce' | 'teardown' | 'after-teardown';

/** A record dropped by `onError: 'skip'`: where, its index, and the error. */
export interface SkippedRecord {
  segment: string;
  replica: number;
  index: number;
  error: SerializedError;
}

/** An error as it crosses from a worker: name, message, stack and code, rebuilt on the other side. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

/** A record shortened for an error message: its shape and first values, at most `max` characters. */
export function previewRecord(record: unknown, max = 300): string {
  let text: string;
  try {
    text = inspect(record, { depth: 2, maxArrayLength: 8, maxStringLength: 80, breakLength: Infinity, compact: true });
  } catch {
    text = Object.prototype.toString.call(record);
  }
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack, code: (e as { code?: string }).code };
  return { name: 'Error', message: String(e) };
}

/**
 * Per-replica counters (Float64 slots in the stats region). STAT_CALL is the record whose call is
 * in the segment's code (its index + 1; 0 between calls): the supervisor's watchdog sees a call
 * that does not return from it and STAT_IN standing still, with no clock read per record.
 */
export const STAT_IN = 0, STAT_OUT = 1, STAT_WAIT_IN = 2, STAT_WAIT_OUT = 3, STAT_START = 4, STAT_END = 5, STAT_SKIPPED = 6, STAT_BUSY = 7, STAT_FORWARDED = 8, STAT_CALL = 9;
/** The output port (+ 1) whose ring this replica is parked on, waiting for space; 0 when it is not. */
export const STAT_BLOCKED = 10;
export const STAT_SLOTS = 11;

/** A segment as the supervisor runs it. */
export interface SegmentEntry {
  name: string;
  kind: SegmentKind;
  isolation: Isolation;
  replicas: number;
  /** Environment of its processes. */
  env?: Record<string, string>;
  /** A dying replica fails the run, or (sinks) is reported and dropped. */
  onCrash: 'fail' | 'continue';
  /** Longest call into its code (ms) before the run fails. */
  recordTimeoutMs?: number;
  /** A 'local' segment's code, run in this thread. */
  local?: LoadedCode;
}

/** Code of a segment as loaded in a runner: the function or class, and an onError function. */
export interface LoadedCode {
  impl: ((...args: any[]) => any) | (new () => any);
  onError?: (error: unknown, record: unknown, ctx: SegmentContext) => ErrorDecision;
}

/** What the supervisor runs: compiled from a graph by src/pipeline/compile.ts. */
export interface RunPlan {
  segments: SegmentEntry[];
  /** Every replica, in segment order; `segment` indexes `segments`, `plan.statsSlot` is its position. */
  replicas: { segment: number; plan: ReplicaPlan }[];
  /** Each stream's rings (one per writer replica), for fill stats. */
  streams: { name: string; rings: Ring[] }[];
  /** Every ring of the run: the supervisor releases them when it ends. */
  rings: Ring[];
  stats: StatsRegion;
  /**
   * Who can hold up whom (deadlock detection): `outputs[replica][port]` is the index in `rings` of
   * a replica's output ring; `readers[ring][slot]` the replica reading through that slot (-1: none,
   * or a reader outside the run's replicas).
   */
  waits: { outputs: number[][]; readers: number[][] };
  /** Streams the caller reads in its own thread (iterate()), and how its reader poisons. */
  taps: { plan: InputPlan; poison: PoisonMode }[];
}
