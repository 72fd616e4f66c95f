// Entry of a replica in a worker thread (plan in workerData) or a child process (plan over IPC).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadCode, runReplica } from './runner.js';
import { serializeError, type ReplicaPlan, type RunnerMessage } from './plan.js';

// Lets run() refuse to start a pipeline from inside a worker (a module imported for its segment
// code that also runs a pipeline at import time).
(globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')] = true;

async function main(plan: ReplicaPlan, send: (m: RunnerMessage) => void, go: Promise<void>): Promise<void> {
  let code;
  try {
    code = await loadCode(plan);
  } catch (e) {
    send({ type: 'error', error: serializeError(e), index: null, during: 'load' });
    return;
  }
  await runReplica(plan, code, send, go);
}

/** Resolves on the supervisor's 'go' (every replica is ready). */
function goFrom(on: (listener: (m: unknown) => void) => void, off: (listener: (m: unknown) => void) => void): Promise<void> {
  return new Promise((resolve) => {
    const listener = (m: unknown) => {
      if (m !== 'go') return;
      off(listener);
      resolve();
    };
    on(listener);
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const go = goFrom((l) => port.on('message', l), (l) => port.off('message', l));
  void main((workerData as { plan: ReplicaPlan }).plan, (m) => port.postMessage(m), go);
} else if (process.send) {
  // Orphaned (the supervisor died): nothing left to do.
  process.on('disconnect', () => process.exit(1));
  // Ctrl-C reaches the whole process group: the supervisor decides (it aborts the rings, and
  // this runner then ends cleanly) rather than every segment dying on its own.
  process.on('SIGINT', () => {});
  process.once('message', (msg: { plan: ReplicaPlan }) => {
    const go = goFrom((l) => process.on('message', l), (l) => process.off('message', l));
    void main(
      msg.plan,
      (m) => {
        if (m.type === 'ready') return void process.send!(m);
        // The runner's last word: once it is out, this process is done.
        process.send!(m, () => {
          process.disconnect();
          process.exitCode = 0;
          setImmediate(() => process.exit(0));
        });
      },
      go,
    );
  });
}
