// Starting one replica where its segment runs: in this thread ('local'), in a worker thread, or in
// a child process, and wiring what it reports to the supervisor. Workers load their entry
// (worker.ts) through tsx when any code of the run is TypeScript.
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { runReplica, type ReplicaWatch } from './runner.js';
import type { ReplicaPlan, RunnerMessage, SegmentEntry } from './plan.js';

const here = dirname(fileURLToPath(import.meta.url));
const fromSource = import.meta.url.endsWith('.ts');
const entryFile = join(here, fromSource ? 'worker.ts' : 'worker.js');
const require = createRequire(import.meta.url);
const tsxDir = () => dirname(require.resolve('tsx/package.json'));

/** A replica of a run, as the supervisor tracks it. */
export interface Replica {
  segment: SegmentEntry;
  plan: ReplicaPlan;
  done: boolean;
  ready?: boolean;
  /** Stops it now, whatever it is doing. */
  stop?: () => Promise<void>;
  /** Tells the replica every replica is ready (sources start then). */
  go?: () => void;
  /** Tells the replica the run is stopping: its code's ctx.signal aborts. */
  cancel?: () => void;
}

/** What the supervisor hears from a replica: its messages, its end (`how` it died, or null), a failure to start it. */
export interface ReplicaEvents {
  onMessage(r: Replica, m: RunnerMessage): void;
  onExit(r: Replica, how: string | null): void;
  fail(e: Error): void;
}

/** True when workers must load tsx: ringpipe runs from source, or some code of the run is TypeScript. */
export function needsTsx(plans: ReplicaPlan[]): boolean {
  const ts = (m: string | undefined) => /\.[cm]?ts$/.test(m ?? '');
  return fromSource || plans.some((p) => ts(p.segment.module) || ts(p.onErrorRef?.module));
}

export function start(r: Replica, tsx: boolean, events: ReplicaEvents): void {
  const { onMessage, onExit, fail } = events;
  const iso = r.segment.isolation;
  if (iso === 'local') {
    let go!: () => void;
    const going = new Promise<void>((resolve) => (go = resolve));
    r.go = go;
    const watch: ReplicaWatch = {};
    r.cancel = () => watch.cancel?.('the run is stopping');
    // Later in this tick, so every replica is started before any runs.
    queueMicrotask(() => {
      runReplica(r.plan, r.segment.local!, (m) => onMessage(r, m), going, watch).catch((e) => {
        fail(e as Error);
        onExit(r, null);
      });
    });
    r.stop = async () => onExit(r, null);
    return;
  }
  let gotFinal = false;
  const handle = (m: RunnerMessage) => {
    if (m.type !== 'ready') gotFinal = true;
    onMessage(r, m);
  };
  const env = r.segment.env ? { ...process.env, ...r.segment.env } : undefined;
  if (iso === 'thread') {
    const tsxApi = pathToFileURL(join(tsxDir(), 'dist/esm/api/index.mjs')).href;
    // The timer holds the worker's event loop open while tsx loads the entry: nothing else does
    // until the entry listens on parentPort, and a worker whose loop empties exits with code 0.
    const code = tsx
      ? `const t = setInterval(() => {}, 1000); import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(pathToFileURL(entryFile).href)}); }).finally(() => clearInterval(t))`
      : undefined;
    const worker = code
      ? new Worker(code, { eval: true, workerData: { plan: r.plan }, execArgv: [], env })
      : new Worker(entryFile, { workerData: { plan: r.plan }, execArgv: [], env });
    worker.on('message', (m: RunnerMessage) => {
      handle(m);
      // The runner's last word comes once its pending work settled (worker.ts): what is left is
      // a handle the code holds open.
      if (m.type !== 'ready') void worker.terminate();
    });
    r.go = () => {
      if (!gotFinal) worker.postMessage('go');
    };
    r.cancel = () => {
      if (!gotFinal) worker.postMessage('cancel');
    };
    let error: Error | undefined;
    worker.on('error', (e) => (error = e));
    worker.on('exit', (code) => onExit(r, gotFinal ? null : error ? `uncaught ${error.name}: ${error.message}` : `worker thread exited with code ${code}`));
    r.stop = async () => void (await worker.terminate());
    return;
  }
  const child: ChildProcess = fork(entryFile, [], {
    execArgv: tsx ? ['--import', pathToFileURL(join(tsxDir(), 'dist/loader.mjs')).href] : [],
    env: env ?? process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
  });
  child.on('message', (m: RunnerMessage) => {
    handle(m);
    if (m.type !== 'ready') setTimeout(() => child.kill('SIGKILL'), 2000).unref();  // it exits by itself; this is for stray handles
  });
  const tell = (word: 'go' | 'cancel') => {
    if (gotFinal || !child.connected) return;
    try {
      // A child ending right now (its channel closing) has nothing left to hear: ignore the error.
      child.send(word, () => {});
    } catch {
      // ERR_IPC_CHANNEL_CLOSED: the same.
    }
  };
  r.go = () => tell('go');
  r.cancel = () => tell('cancel');
  child.on('exit', (code, signal) => onExit(r, gotFinal ? null : signal ? `process killed by ${signal}` : `process exited with code ${code}`));
  child.on('error', (e) => fail(e));
  child.send({ plan: r.plan });
  r.stop = async () => void child.kill('SIGKILL');
}
