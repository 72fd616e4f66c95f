// A producer and a consumer of testdata records over a ring, usable from the test thread, a worker
// thread or a child process (see ring-peer.ts).
import { RingReader, RingWriter, END, type RingDescriptor } from '../../src/ring/index.js';
import { RingMemory } from '../../src/ring/ring.js';
import { check, fill, lengthOf } from './records.js';

export interface ProduceSpec {
  count: number;
  seed: number;
  maxLen: number;
  align?: 16 | 64;
  /** Type of every record: the producer's id + 1, so a reader can tell producers apart. */
  producer?: number;
  /** 0 when both ends share a thread (spinning there only delays the other end). */
  spin?: number;
}

export async function produce(ring: RingMemory | RingDescriptor, spec: ProduceSpec): Promise<void> {
  const w = new RingWriter(ring, { spin: spec.spin });
  const type = (spec.producer ?? 0) + 1;
  for (let i = 0; i < spec.count; i++) {
    const len = lengthOf(i, spec.seed, spec.maxLen);
    let off = w.claim(len, type, i, spec.align ?? 16);
    if (off < 0) off = await w.claimAsync(len, type, i, spec.align ?? 16);
    fill(w.bytes, off, i, len, spec.seed);
    w.commit();
  }
  w.close();
}

export interface ConsumeResult {
  counts: number[];
  bad: number;
  misaligned: number;
}

export async function consume(
  ring: RingMemory | RingDescriptor,
  slot: number,
  spec: { producers: number; seed: number; maxLen: number; slowEvery?: number; spin?: number },
): Promise<ConsumeResult> {
  const r = new RingReader(ring, slot, { spin: spec.spin });
  const counts = new Array<number>(spec.producers).fill(0);
  let bad = 0, misaligned = 0, n = 0;
  for (;;) {
    const off = r.next();
    if (off === END) break;
    if (off < 0) {
      await r.waitForData();
      continue;
    }
    const p = r.type - 1;
    const i = r.seq;
    if (p < 0 || p >= spec.producers || i !== counts[p] || r.length !== lengthOf(i, spec.seed, spec.maxLen) || !check(r.bytes, off, i, r.length, spec.seed)) bad++;
    if (off % 16) misaligned++;
    if (p >= 0 && p < spec.producers) counts[p] = i + 1;
    r.release();
    if (spec.slowEvery && ++n % spec.slowEvery === 0) await new Promise((res) => setTimeout(res, 1));
  }
  r.flush();
  return { counts, bad, misaligned };
}
