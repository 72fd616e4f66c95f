// Suite `ring`: records and tensors between two threads and two processes, against postMessage
// and memcpy measured in the same run.
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import type { ChildProcess } from 'node:child_process';
import { Ring } from '../../src/ring/index.js';
import type { BenchContext } from '../harness.js';
import { bestOf } from '../lib/best.js';
import { firstMessage, tsProcess, tsWorker } from '../lib/spawn.js';
import type { Job } from './ring.worker.js';

const workerFile = new URL('./ring.worker.ts', import.meta.url);
const TENSOR_BYTES = 224 * 224 * 3 * 4;  // 602,112

type Peer = Worker | ChildProcess;
const send = (p: Peer, m: unknown) => ('postMessage' in p ? p.postMessage(m) : p.send(m as any));

/** Releases two started peers together; returns records/s as seen by the consumer (second). */
async function race(peers: Peer[]): Promise<number> {
  const exited = peers.map((p) => new Promise((r) => p.once('exit', r)));
  await Promise.all(peers.map((p) => firstMessage(p)));  // both say 'ready'
  const done = peers.map((p) => firstMessage<{ n: number; t: number }>(p));
  const t0 = Date.now();
  peers.forEach((p) => send(p, 'go'));
  const [, consumer] = await Promise.all(done);
  const rate = consumer!.n / ((Date.now() - t0) / 1000);
  await Promise.all(exited);
  return rate;
}

async function overRing(kind: 'thread' | 'process', count: number, bytes: number, path: 'view' | 'copy', producer: Job['role'] = 'produce'): Promise<number> {
  const capacity = bytes >= 4096 ? 32 * 1024 * 1024 : 4 * 1024 * 1024;
  const ring = Ring.create({ capacity, crossProcess: kind === 'process' });
  try {
    const job = (role: Job['role']): Job => ({ role, ring: ring.descriptor, count, bytes, path });
    const start = (j: Job): Peer => (kind === 'process' ? tsProcess(workerFile, j) : tsWorker(workerFile, j));
    return await race([start(job(producer)), start(job('consume'))]);
  } finally {
    ring.close();
  }
}

async function overPostMessage(count: number, bytes: number): Promise<number> {
  const { port1, port2 } = new MessageChannel();
  const job = (role: Job['role'], port: MessagePort): Job => ({ role, port, count, bytes, path: 'view' });
  return race([tsWorker(workerFile, job('pm-produce', port1), [port1]), tsWorker(workerFile, job('pm-consume', port2), [port2])]);
}

/** memcpy of `bytes`-sized tensors streaming through 64 MiB (as through a ring, not cache-hot). */
function memcpyGBs(bytes: number, seconds: number): number {
  const slots = Math.ceil((64 << 20) / bytes);
  const src = new Uint8Array(slots * bytes).fill(1);
  const dst = new Uint8Array(slots * bytes);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    for (let k = 0; k < slots; k++, n++) dst.set(src.subarray(k * bytes, (k + 1) * bytes), k * bytes);
  }
  return (n * bytes) / ((performance.now() - t0) / 1000) / 1e9;
}


export default async function ring(ctx: BenchContext): Promise<void> {
  const q = ctx.quick;
  const reps = q ? 1 : 3;
  const smallN = q ? 2_000_000 : 10_000_000, pmSmallN = q ? 200_000 : 1_000_000;
  const tensorN = q ? 20_000 : 100_000, pmTensorN = q ? 2_000 : 5_000, copyN = q ? 3_000 : 10_000;

  const pmSmall = await bestOf(reps, () => overPostMessage(pmSmallN, 64));
  const pmTensor = await bestOf(reps, () => overPostMessage(pmTensorN, TENSOR_BYTES));
  const memcpy = memcpyGBs(TENSOR_BYTES, q ? 0.5 : 2);
  ctx.log(`peers: postMessage ${Math.round(pmSmall)} small/s, ${Math.round(pmTensor)} tensors/s; memcpy ${memcpy.toFixed(2)} GB/s`);

  // The protocol runs in JS because a call into the addon per record costs more than the record:
  // measured here, so the choice stays checked.
  const jsSmall = await bestOf(reps, () => overRing('thread', smallN / 4, 64, 'view'));
  const napiSmall = await bestOf(reps, () => overRing('thread', smallN / 4, 64, 'view', 'napi-produce'));
  ctx.report({ name: 'thread: 64-byte records, one N-API call per record', unit: 'records/s', value: napiSmall, baseline: { name: 'the JS protocol (Atomics over the same memory)', value: jsSmall } });

  for (const kind of ['thread', 'process'] as const) {
    const small = await bestOf(reps, () => overRing(kind, smallN, 64, 'view'));
    ctx.report({ name: `${kind}: 64-byte records`, unit: 'records/s', value: small, baseline: { name: 'postMessage small object (threads)', value: pmSmall } });
    const tensors = await bestOf(reps, () => overRing(kind, tensorN, TENSOR_BYTES, 'view'));
    ctx.report({ name: `${kind}: 224x224x3 f32 tensor hand-off (claim/commit)`, unit: 'hand-offs/s', value: tensors, baseline: { name: 'postMessage Float32Array, cloned (threads)', value: pmTensor } });
    const copy = await bestOf(reps, () => overRing(kind, copyN, TENSOR_BYTES, 'copy'));
    ctx.report({ name: `${kind}: 224x224x3 f32 tensors, copy path (write/read)`, unit: 'GB/s', value: (copy * TENSOR_BYTES) / 1e9, baseline: { name: 'single-thread memcpy, 64 MiB working set', value: memcpy } });
  }
}
