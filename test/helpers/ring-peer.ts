// Runs one end of a ring in a worker thread or child process: `role` is 'produce' or 'consume'.
// In a thread the spec arrives as workerData; in a process as argv[2] (JSON) and the result goes
// back over IPC.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { consume, produce } from './ring-ends.js';

type Job = { role: 'produce' | 'consume'; ring: { buffer?: SharedArrayBuffer; name: string }; slot?: number; spec: any };

async function runJob(job: Job): Promise<unknown> {
  if (job.role === 'produce') return produce(job.ring, job.spec);
  return consume(job.ring, job.slot ?? 0, job.spec);
}

if (!isMainThread) {
  runJob(workerData as Job).then((r) => parentPort!.postMessage({ ok: r ?? null }), (e) => parentPort!.postMessage({ error: String(e?.stack ?? e) }));
} else if (process.send) {
  runJob(JSON.parse(process.argv[2]!) as Job).then(
    (r) => process.send!({ ok: r ?? null }, () => process.exit(0)),
    (e) => process.send!({ error: String(e?.code ?? '') + ' ' + String(e?.stack ?? e) }, () => process.exit(1)),
  );
}
