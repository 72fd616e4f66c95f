// Entry of a replica in a worker thread (plan in workerData) or a child process (plan over IPC).
// It owns what happens around the runner: errors the code raises outside its calls (a throw in a
// timer, an unhandled rejection) fail the run naming the segment; after teardown the replica ends
// only once the callbacks the code left pending have run (or settleTimeoutMs has passed), so a
// failing flush is not lost; and an event loop that empties while a call is still in the code (a
// promise nothing can settle any more) is reported as a stall, not as a crash or a hang.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { loadCode, runReplica, type ReplicaStatus, type ReplicaWatch } from './runner.js';
import { serializeError, type ReplicaPlan, type RunnerMessage } from './plan.js';

// Lets run() refuse to start a pipeline from inside a worker (a module imported for its segment
// code that also runs a pipeline at import time).
(globalThis as Record<symbol, unknown>)[Symbol.for('ringpipe.worker')] = true;

/** How this replica reaches its supervisor. */
interface Channel {
  /** Sends a message; `done` runs once it is out. */
  post(m: RunnerMessage, done?: () => void): void;
  /** Lets the event loop end although the channel is open (the supervisor may still write). */
  unref(): void;
}

async function main(plan: ReplicaPlan, channel: Channel, go: Promise<void>, cancelled: Promise<string>): Promise<void> {
  const watch: ReplicaWatch = {};
  void cancelled.then((reason) => watch.cancel?.(reason));
  let final: RunnerMessage | undefined;
  /** The replica's last word: the first final message wins, later ones are dropped. */
  const finish = (m: RunnerMessage, after?: () => void) => {
    if (final) return;
    final = m;
    channel.post(m, after);
  };
  const status = (): ReplicaStatus => watch.status?.() ?? { phase: 'load', index: 0 };
  const fail = (e: unknown, origin: string) => {
    const s = status();
    const error = serializeError(e);
    error.message = `${origin}: ${error.message}`;
    finish({ type: 'error', error, during: s.phase === 'done' ? 'after-teardown' : s.phase, index: s.phase === 'record' || s.phase === 'produce' ? s.index : null });
  };
  process.on('uncaughtException', (e) => fail(e, 'uncaught exception (thrown outside a call, e.g. in a timer)'));
  process.on('unhandledRejection', (e) => fail(e, 'unhandled rejection (a promise the code did not await)'));

  let done: RunnerMessage | undefined;
  process.on('beforeExit', () => {
    if (done) return finish(done);
    if (final) return;
    // Nothing is left that could move: no timer, no I/O, no ring wait. The code awaits a promise
    // that nothing will ever settle.
    const s = status();
    finish({ type: 'stalled', during: s.phase === 'done' ? 'after-teardown' : s.phase, index: s.index });
  });

  // Once the supervisor's 'go' is in, only the code's own work (and ring waits) keeps the loop
  // alive: an event loop that empties then is a stall, not something to wait for.
  void go.then(() => channel.unref());

  let code;
  try {
    code = await loadCode(plan);
  } catch (e) {
    finish({ type: 'error', error: serializeError(e), index: null, during: 'load' });
    return;
  }
  await runReplica(
    plan,
    code,
    (m) => {
      if (m.type === 'ready') return channel.post(m);
      if (m.type !== 'done') return finish(m);
      // Callbacks the code left pending (an unawaited flush) run first: 'done' goes out when the
      // event loop empties, or after settleTimeoutMs with what still holds it open.
      done = m;
      channel.unref();
      setTimeout(() => finish({ ...m, lingering: process.getActiveResourcesInfo().filter((r) => r !== 'Timeout') }), plan.settleTimeoutMs).unref();
    },
    go,
    watch,
  );
}

/** Resolves on the supervisor's message `word`: 'go' (every replica is ready), 'cancel' (the run is stopping). */
function heard(word: 'go' | 'cancel', on: (listener: (m: unknown) => void) => void, off: (listener: (m: unknown) => void) => void): Promise<string> {
  return new Promise((resolve) => {
    const listener = (m: unknown) => {
      if (m !== word) return;
      off(listener);
      resolve(word === 'cancel' ? 'the run is stopping' : word);
    };
    on(listener);
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const on = (l: (m: unknown) => void) => port.on('message', l), off = (l: (m: unknown) => void) => port.off('message', l);
  const go = heard('go', on, off).then(() => undefined), cancelled = heard('cancel', on, off);
  void main((workerData as { plan: ReplicaPlan }).plan, { post: (m, done) => (port.postMessage(m), done?.()), unref: () => port.unref() }, go, cancelled);
} else if (process.send) {
  // Orphaned (the supervisor died): nothing left to do.
  process.on('disconnect', () => process.exit(1));
  // Ctrl-C reaches the whole process group: the supervisor decides (it aborts the rings, and
  // this runner then ends cleanly) rather than every segment dying on its own.
  process.on('SIGINT', () => {});
  process.once('message', (msg: { plan: ReplicaPlan }) => {
    const on = (l: (m: unknown) => void) => process.on('message', l), off = (l: (m: unknown) => void) => process.off('message', l);
    const go = heard('go', on, off).then(() => undefined), cancelled = heard('cancel', on, off);
    void main(
      msg.plan,
      {
        post: (m, done) => {
          if (m.type === 'ready') return void process.send!(m);
          // The runner's last word: once it is out, this process is done.
          process.send!(m, () => {
            done?.();
            process.disconnect();
            process.exitCode = 0;
            setImmediate(() => process.exit(0));
          });
        },
        unref: () => process.channel?.unref(),
      },
      go,
      cancelled,
    );
  });
}
