// Starts benchmark peers (TypeScript) in worker threads or child processes, through tsx.
import { fork, type ChildProcess } from 'node:child_process';
import { Worker, type TransferListItem } from 'node:worker_threads';

/** A worker thread running `file` (a .ts module); Node 20 needs tsx registered inside the worker. */
export function tsWorker(file: URL, workerData: unknown, transferList: TransferListItem[] = []): Worker {
  const code = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(file.href)}); })`;
  return new Worker(code, { eval: true, workerData, execArgv: [], transferList });
}

/** A child process running `file` with `data` as JSON in argv[2] (and `env` added to this one's). */
export function tsProcess(file: URL, data: unknown, env: Record<string, string> = {}): ChildProcess {
  return fork(file, [JSON.stringify(data)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
}

/** The first message of a worker or child, rejecting if it errs or exits first. */
export function firstMessage<T>(peer: Worker | ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = peer as NodeJS.EventEmitter;
    const done = () => {
      p.off('message', onMessage);
      p.off('error', onError);
      p.off('exit', onExit);
    };
    const onMessage = (m: T) => (done(), resolve(m));
    const onError = (e: Error) => (done(), reject(e));
    const onExit = (code: number | null) => (done(), reject(new Error(`benchmark peer exited (${code}) before reporting`)));
    p.on('message', onMessage);
    p.on('error', onError);
    p.on('exit', onExit);
  });
}
