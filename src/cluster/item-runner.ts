// Runs one work item's code where the agent can stop it. Module code (`module#export`, and the
// built-in work types) runs in a process of its own, in its own process group: when the item's
// signal is aborted (timeout, agent stopping) and its code has not ended `killGrace` ms later, the
// whole group is SIGKILLed: the item's code, however stuck, and every process it started (trainers,
// pipeline workers). Work types registered with a loader function run inside the agent, where code
// that ignores its signal can only be abandoned.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ClusterOptions } from './connect.js';
import type { ItemHost, ItemInfo, WorkContext, WorkFunction } from './context.js';
import { serializeError, type SerializedError } from './resolve.js';

/** How an item's code ended. `terminated`: it exited without an outcome, or was killed or abandoned. */
export type ItemOutcome =
  | { status: 'ok'; value?: unknown }
  | { status: 'failed'; error: SerializedError }
  | { status: 'terminated'; how: string };

/** First message to an item's process. */
export interface StartItem {
  type: 'start';
  url: string;
  export: string;
  module: string;
  payload: unknown;
  info: ItemInfo;
  /** Connection options for `ctx.cluster` (secrets travel over the IPC pipe only). */
  cluster: ClusterOptions;
}

/** Agent → item process. */
export type ToItem =
  | StartItem
  | { type: 'abort'; reason: SerializedError }
  | { type: 'reply'; call: number; value?: unknown; error?: SerializedError };

/** Item process → agent. */
export type FromItem =
  | {
    type: 'call';
    call: number;
    op: { method: 'report'; data: unknown } | { method: 'save'; bytes: Uint8Array; info: Record<string, unknown> } | { method: 'load' };
  }
  | { type: 'log'; message: string }
  /** Its code is loaded and connected: the function is called now (an item's `timeout` counts from here). */
  | { type: 'running' }
  | { type: 'result'; status: 'ok'; value?: unknown }
  | { type: 'result'; status: 'failed'; error: SerializedError };

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const entry = join(here, fromSource ? 'item-process.ts' : 'item-process.js');
const tsxLoader = () => pathToFileURL(join(dirname(createRequire(import.meta.url).resolve('tsx/package.json')), 'dist/loader.mjs')).href;

/** SIGKILLs a process group (nothing if it is gone already). */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is empty: every process of the item has ended
  }
}

/** Options of {@link runInProcess}: what its process is sent, and the agent's side. */
export interface ProcessItem extends Omit<StartItem, 'type'> {
  host: ItemHost;
  /** Aborted when the item must stop: its code gets `killGrace` ms, then its process group is killed. */
  signal: AbortSignal;
  killGrace: number;
  /** Called once, when the item's function is called (after its process started and loaded its code). */
  onRunning?: () => void;
}

/** Runs an item in its own process group; resolves when every process of the item has ended. */
export function runInProcess(o: ProcessItem): Promise<ItemOutcome> {
  const child = fork(entry, [], {
    detached: true,
    execArgv: fromSource || /\.[cm]?ts$/.test(o.url) ? ['--import', tsxLoader()] : [],
    env: { ...process.env, ...o.info.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  let outcome: ItemOutcome | undefined;
  let killTimer: NodeJS.Timeout | undefined;
  const pending = new Set<Promise<unknown>>();
  const reply = (m: ToItem) => {
    if (child.connected) child.send(m, (err) => void err);
  };
  child.on('message', (m: FromItem) => {
    if (m.type === 'log') o.host.log(m.message);
    else if (m.type === 'running') o.onRunning?.();
    else if (m.type === 'result') {
      outcome = m.status === 'ok' ? { status: 'ok', ...('value' in m ? { value: m.value } : {}) } : { status: 'failed', error: m.error };
      // It exits by itself; this is for handles that keep it alive.
      killTimer ??= setTimeout(() => killGroup(child.pid), 2_000);
    } else if (m.type === 'call') {
      const op = m.op;
      const p = (op.method === 'report' ? o.host.report(op.data) : op.method === 'save' ? o.host.save(op.bytes, op.info) : o.host.load()).then(
        (value) => reply({ type: 'reply', call: m.call, value }),
        (err) => reply({ type: 'reply', call: m.call, error: serializeError(err) }),
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  });
  const onAbort = () => {
    reply({ type: 'abort', reason: serializeError(o.signal.reason) });
    killTimer ??= setTimeout(() => killGroup(child.pid), o.killGrace);
  };
  return new Promise<ItemOutcome>((resolve) => {
    let ended = false;
    const finish = (how: string) => {
      if (ended) return;
      ended = true;
      clearTimeout(killTimer);
      o.signal.removeEventListener('abort', onAbort);
      // What the item started and left running goes with it.
      killGroup(child.pid);
      // Reports and checkpoints it sent before it ended are stored before its outcome.
      void Promise.allSettled([...pending]).then(() => resolve(outcome ?? { status: 'terminated', how }));
    };
    child.once('error', (err) => child.pid === undefined && finish(`its process could not start: ${err.message}`));
    // 'close' (not 'exit'): after the IPC channel too, so its last message has been read.
    child.once('close', (code, signal) => finish(signal ? `its process was killed by ${signal}` : `its process exited with code ${code}`));
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
    const { host: _h, signal: _s, killGrace: _k, onRunning: _r, ...start } = o;
    reply({ type: 'start', ...start });
  });
}

/**
 * Runs an item's function inside the agent (work types registered with a loader). When its signal
 * is aborted it gets `killGrace` ms to end; after that it is abandoned, still running. `onRunning`
 * is called once its code is loaded, as the function is called.
 */
export function runInline(fn: Promise<WorkFunction>, payload: unknown, ctx: WorkContext, killGrace: number, onRunning?: () => void): Promise<ItemOutcome> {
  const ran = (async (): Promise<ItemOutcome> => {
    try {
      const f = await fn;
      onRunning?.();
      const value = await f(payload, ctx);
      return { status: 'ok', ...(value !== undefined ? { value: JSON.parse(JSON.stringify(value)) as unknown } : {}) };
    } catch (err) {
      return { status: 'failed', error: serializeError(err) };
    }
  })();
  const abandoned = new Promise<ItemOutcome>((resolve) => {
    const onAbort = () => {
      const t = setTimeout(() => resolve({ status: 'terminated', how: 'abandoned: it runs inside the agent and ignored its signal' }), killGrace);
      void ran.finally(() => clearTimeout(t));
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([ran, abandoned]);
}
