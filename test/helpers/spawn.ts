// Starts TypeScript helpers in worker threads and child processes (through tsx), and collects
// their one result message.
import { fork, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';

const tsx = ['--import', 'tsx'];

// `--import tsx` does not reach worker threads on Node 20: register tsx inside the worker instead.
const tsWorker = (file: URL) =>
  `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(file.href)}); })`;

export function inThread<T>(file: URL, data: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(tsWorker(file), { eval: true, workerData: data, execArgv: [] });
    w.once('message', (m: { ok?: T; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.ok as T)));
    w.once('error', reject);
    w.once('exit', (code) => code && reject(new Error(`worker exited with ${code}`)));
  });
}

export function inProcess<T>(file: URL, data: unknown, onStart?: (child: ChildProcess) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(file, [JSON.stringify(data)], { execArgv: tsx, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    onStart?.(child);
    child.once('message', (m: { ok?: T; error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m.ok as T)));
    child.once('exit', (code, signal) => (code || signal) && reject(new Error(`child exited with ${code ?? signal}`)));
  });
}
