// One end of a ring benchmark, in a worker thread (workerData) or a child process (argv[2]).
// Roles: produce / consume over a ring (zero-copy or copy path), and the postMessage peers.
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { RingReader, RingWriter, END, attachRing, type RingDescriptor } from '../../src/ring/index.js';
import { layout, native } from '../../src/native.js';

export interface Job {
  role: 'produce' | 'napi-produce' | 'consume' | 'pm-produce' | 'pm-consume';
  ring?: RingDescriptor;
  port?: MessagePort;
  count: number;
  /** Payload bytes per record. */
  bytes: number;
  /** 'view': claim/commit and read in place; 'copy': write(src) and read() copies. */
  path: 'view' | 'copy';
}

const TENSOR = 2;

async function produce(job: Job): Promise<number> {
  const w = new RingWriter(job.ring!, { publishEvery: job.bytes >= 4096 ? 1 : 64 });
  const u32 = new Uint32Array(w.bytes.buffer);
  const align = job.bytes >= 4096 ? 64 : 16;
  if (job.path === 'copy') {
    const src = new Float32Array(job.bytes / 4).fill(1);
    for (let i = 0; i < job.count; i++) {
      src[0] = i;
      await w.write(src, TENSOR, i);
    }
  } else if (job.bytes <= 64) {
    // 64-byte records: 16 words written in place.
    for (let i = 0; i < job.count; i++) {
      let off = w.claim(job.bytes, 1, i);
      if (off < 0) off = await w.claimAsync(job.bytes, 1, i);
      const q = off >> 2;
      for (let k = 0; k < 16; k++) u32[q + k] = i + k;
      w.commit();
    }
  } else {
    // Tensors "made in place": the producer writes a sentinel at both ends; making the data
    // costs the same with any transport, the benchmark measures the hand-off.
    const last = job.bytes / 4 - 1;
    for (let i = 0; i < job.count; i++) {
      let off = w.claim(job.bytes, TENSOR, i, align);
      if (off < 0) off = await w.claimAsync(job.bytes, TENSOR, i, align);
      const f32 = new Float32Array(w.bytes.buffer, off, job.bytes / 4);
      f32[0] = i;
      f32[last] = i;
      w.commit();
    }
  }
  w.close();
  return job.count;
}

/** The same 64-byte records, but claimed, filled and committed in C++: one N-API call each. */
async function napiProduce(job: Job): Promise<number> {
  const mem = attachRing(job.ring!);
  for (let i = 0; i < job.count; i++) {
    while (!native.napiWriteRecord(mem.buffer, job.bytes, i)) await new Promise((r) => setImmediate(r));
  }
  // Close this writer's end (the C++ side has no JS writer object).
  Atomics.sub(mem.i32, layout.offWritersOpen >> 2, 1);
  Atomics.store(mem.i32, layout.offState >> 2, layout.stateClosed);
  mem.wake(layout.offDataSeq);
  return job.count;
}

async function consume(job: Job): Promise<number> {
  const r = new RingReader(job.ring!, 0, { releaseEvery: job.bytes >= 4096 ? 1 : 64 });
  const u32 = new Uint32Array(r.bytes.buffer);
  let n = 0, sum = 0;
  if (job.path === 'copy') {
    const into = new Uint8Array(job.bytes);
    for (let b; (b = await r.read(into)); n++) sum += b.byteLength;
    return n;
  }
  for (;;) {
    const off = r.next();
    if (off === END) break;
    if (off < 0) {
      await r.waitForData();
      continue;
    }
    if (r.length <= 64) sum += u32[off >> 2]!;
    else sum += new Float32Array(r.bytes.buffer, off, r.length / 4)[r.length / 4 - 1]!;
    r.release();
    n++;
  }
  if (sum < 0) throw new Error('unreachable');
  return n;
}

function pmProduce(job: Job): number {
  const port = job.port!;
  if (job.bytes <= 64) {
    for (let i = 0; i < job.count; i++) port.postMessage({ i, a: 1, b: 2, c: 'x' });
  } else {
    const t = new Float32Array(job.bytes / 4).fill(1);
    for (let i = 0; i < job.count; i++) {
      t[0] = i;
      port.postMessage(t);  // cloned
    }
  }
  port.postMessage(null);
  return job.count;
}

function pmConsume(job: Job): Promise<number> {
  let n = 0;
  return new Promise((resolve) => {
    job.port!.on('message', (m) => {
      if (m === null) {
        job.port!.close();
        resolve(n);
      } else n++;
    });
  });
}

async function run(job: Job): Promise<number> {
  switch (job.role) {
    case 'produce': return produce(job);
    case 'napi-produce': return napiProduce(job);
    case 'consume': return consume(job);
    case 'pm-produce': return pmProduce(job);
    case 'pm-consume': return pmConsume(job);
  }
}

if (!isMainThread) {
  const job = workerData as Job;
  // Start together: the main thread says go once both ends are up.
  parentPort!.once('message', async () => parentPort!.postMessage({ n: await run(job), t: Date.now() }));
  parentPort!.postMessage('ready');
} else if (process.send) {
  const job = JSON.parse(process.argv[2]!) as Job;
  process.once('message', async () => {
    const n = await run(job);
    process.send!({ n, t: Date.now() }, () => process.exit(0));
  });
  process.send('ready');
}
