// What a work item's function sees (WorkContext), built the same way inside the agent and inside an
// item's own process: both hand the context's calls to an ItemHost (the agent itself, or the agent
// over IPC), so reports and checkpoints always go through the agent that holds the item.
import type { ClusterConnection } from './connect.js';
import { packValue, unpackValue } from './frame.js';

/** A saved checkpoint of an item. */
export interface Checkpoint<T = unknown> {
  /** What was saved (any record value: JSON, bytes, tensors, structured values). */
  value: T;
  /** What was said about it (e.g. `{ epoch: 3 }`). */
  info: Record<string, unknown>;
  /** Attempt and agent that saved it, and when. */
  attempt: number;
  agent: string;
  savedAt: string;
}

/** What an item's function gets besides its payload. */
export interface WorkContext {
  /** The item's id and label, and the job that published it. */
  readonly id: string;
  readonly label: string;
  readonly job: string;
  /** Delivery attempt: 1 the first time, more after an agent died or gave it back. */
  readonly attempt: number;
  /** Name of the agent running it. */
  readonly agent: string;
  /** CUDA devices assigned to this item (as many as it asked for). */
  readonly gpus: number[];
  /** Environment for processes the item starts (`CUDA_VISIBLE_DEVICES` set to its GPUs, `-1` for none). */
  readonly env: Record<string, string>;
  /**
   * Aborted when the item passes its `timeout` or the agent stops and gives the item back. Code
   * still running `killGrace` later is terminated (its process tree killed).
   */
  readonly signal: AbortSignal;
  /** A connection to the agent's cluster (same project): for links and the shared cache. */
  readonly cluster: ClusterConnection;
  /** The agent's root directory (the project checkout relative paths refer to). */
  readonly root: string;
  /**
   * Directories the agent takes code from (real paths): its root, then its allowed roots. Code an
   * item names elsewhere is refused (`ERR_WORK_REFUSED`).
   */
  readonly roots: readonly string[];
  /** Streams progress to the submitter (e.g. one epoch's metrics). JSON values. */
  report(data: unknown): Promise<void>;
  /** The item's checkpoint in the object store: the last one saved by any attempt. */
  readonly checkpoint: {
    /** Stores `value` (and `info`) as the item's checkpoint, replacing the last one. */
    save(value: unknown, info?: Record<string, unknown>): Promise<void>;
    /** The last checkpoint any attempt of the item saved, if there is one. */
    load<T = unknown>(): Promise<Checkpoint<T> | undefined>;
  };
  /** A line in the agent's log. */
  log(message: string): void;
}

/** The code of a work item: `(payload, ctx) => result` (JSON). */
export type WorkFunction<P = any, R = unknown> = (payload: P, ctx: WorkContext) => R | Promise<R>;

/** The plain facts of a running item (what crosses to its process as is). */
export interface ItemInfo {
  id: string;
  label: string;
  job: string;
  attempt: number;
  agent: string;
  gpus: number[];
  env: Record<string, string>;
  root: string;
  roots: string[];
}

/** A checkpoint as stored: packed bytes and what was said about them. */
export interface StoredCheckpoint {
  bytes: Uint8Array;
  meta: Omit<Checkpoint, 'value'>;
}

/** The agent's side of a running item's context. */
export interface ItemHost {
  /** Publishes a progress event of the item. */
  report(data: unknown): Promise<void>;
  /** Stores the item's checkpoint. */
  save(bytes: Uint8Array, info: Record<string, unknown>): Promise<void>;
  /** Reads the item's checkpoint. */
  load(): Promise<StoredCheckpoint | undefined>;
  /** Writes a line to the agent's log. */
  log(message: string): void;
}

/** The context of an item whose calls go to `host`. */
export function workContext(info: ItemInfo, host: ItemHost, signal: AbortSignal, cluster: ClusterConnection): WorkContext {
  return {
    ...info,
    signal,
    cluster,
    report: (data) => host.report(data),
    checkpoint: {
      save: (value, meta = {}) => host.save(packValue(value), meta),
      load: async <T>() => {
        const c = await host.load();
        return c ? { ...c.meta, value: unpackValue(c.bytes) as T } : undefined;
      },
    },
    log: (m) => host.log(m),
  };
}
