// Entry of a work item's own process (see item-runner.ts). The agent forks it in a process group of
// its own and sends `start`; this process imports the item's code, opens its own connection for
// `ctx.cluster`, runs the function with a context whose reports and checkpoints go back to the agent
// over IPC, sends the outcome and exits. The agent kills the whole group when the item must stop.
import { Worker } from 'node:worker_threads';
import { ClusterConnection, parseServers, redactUrl, retrying } from './connect.js';
import { workContext, type ItemHost, type StoredCheckpoint } from './context.js';
import { WorkError } from './errors.js';
import type { FromItem, StartItem, ToItem } from './item-runner.js';
import { importWork, serializeError } from './resolve.js';

const send = (m: FromItem): Promise<void> =>
  new Promise((resolve, reject) => {
    if (!process.connected) return reject(new WorkError('ERR_WORK_CRASHED', 'the agent is gone'));
    process.send!(m, undefined, {}, (err) => (err ? reject(err) : resolve()));
  });

/** Kills this process and everything it started (its process group). */
function killGroup(): void {
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    process.kill(process.pid, 'SIGKILL');
  }
}

/**
 * When the agent dies, this item must not live on. 'disconnect' covers an item that returns to its
 * event loop; a thread of its own covers code that never does (a synchronous loop).
 */
function watchAgent(): void {
  process.once('disconnect', killGroup);
  const w = new Worker(
    `const { workerData: agent } = require('node:worker_threads');
     setInterval(() => { if (process.ppid !== agent) { try { process.kill(-process.pid, 'SIGKILL'); } catch { process.kill(process.pid, 'SIGKILL'); } } }, 500);`,
    { eval: true, workerData: process.ppid },
  );
  w.unref();
}

async function run(start: StartItem): Promise<void> {
  const controller = new AbortController();
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let next = 0;
  process.on('message', (m: ToItem) => {
    if (m.type === 'abort') controller.abort(new WorkError(m.reason.code ?? 'ERR_CANCELLED', m.reason.message));
    else if (m.type === 'reply') {
      const c = calls.get(m.call);
      calls.delete(m.call);
      if (m.error) c?.reject(Object.assign(new WorkError(m.error.code ?? 'ERR_WORK_CRASHED', m.error.message), { name: m.error.name }));
      else c?.resolve(m.value);
    }
  });
  const call = <T>(m: Extract<FromItem, { type: 'call' }>['op']): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
      send({ type: 'call', call: id, op: m }).catch(reject);
    });
  const host: ItemHost = {
    report: (data) => call<void>({ method: 'report', data }),
    save: (bytes, info) => call<void>({ method: 'save', bytes, info }),
    load: () => call<StoredCheckpoint | undefined>({ method: 'load' }),
    log: (message) => void send({ type: 'log', message }).catch(() => undefined),
  };
  let conn: ClusterConnection | undefined;
  let outcome: FromItem;
  try {
    const [fn, c] = await Promise.all([
      importWork(start.url, start.export, start.module),
      // The agent is connected: a failure here is most likely passing (a server restarting).
      retrying(() => ClusterConnection.open({ ...start.cluster, name: `ringpipe-item ${start.info.label}` }), {
        what: 'cannot connect to NATS', server: () => parseServers(start.cluster.servers).urls.map(redactUrl).join(','), signal: controller.signal,
      }),
    ]);
    conn = c;
    // The item's timeout counts from here: start-up on a loaded machine is not the item's run time.
    await send({ type: 'running' }).catch(() => undefined);
    const value = await fn(start.payload, workContext(start.info, host, controller.signal, conn));
    outcome = { type: 'result', status: 'ok', ...(value !== undefined ? { value: JSON.parse(JSON.stringify(value)) as unknown } : {}) };
  } catch (err) {
    outcome = { type: 'result', status: 'failed', error: serializeError(err) };
  }
  await send(outcome).catch(() => undefined);
  await Promise.race([conn?.close(), new Promise((r) => setTimeout(r, 2_000))]);
  process.exit(0);
}

if (process.send) {
  watchAgent();
  // Ctrl-C in the agent's terminal is the agent's to handle (this process has its own group anyway).
  process.on('SIGINT', () => {});
  process.once('message', (m: ToItem) => {
    if (m.type === 'start') void run(m);
  });
}
