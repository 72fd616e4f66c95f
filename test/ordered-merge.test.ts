import { afterEach, describe, expect, it } from 'vitest';
import { Ring, RingWriter } from '../src/ring/index.js';
import { RingViews, tryEncode } from '../src/codec/codec.js';
import { T_WATERMARK } from '../src/codec/types.js';
import { InputPort, EMPTY, END } from '../src/runtime/input.js';

// The ordered merge of one upstream segment's replicas (src/runtime/input.ts): each replica writes
// its own ring, records carry the seq of the record they came from, and the merge hands them on in
// seq order whatever the timing of the replicas' publishes.

const rings: Ring[] = [];
afterEach(() => {
  for (const r of rings.splice(0)) r.close();
});

function lanes(n: number): { port: InputPort; writers: RingWriter[] } {
  const made = Array.from({ length: n }, () => Ring.create({ capacity: 4096 }));
  rings.push(...made);
  const port = new InputPort({ groups: [{ ordered: true, rings: made.map((r) => ({ ring: r.descriptor, slot: 0 })) }] }, 0);
  return { port, writers: made.map((r) => new RingWriter(r)) };
}

const put = (w: RingWriter, seq: number) => {
  expect(tryEncode(w, new RingViews(w.bytes), seq * 10, seq)).toBeGreaterThan(0);
  w.flush();
};
const watermark = (w: RingWriter, seq: number) => {
  w.claim(0, T_WATERMARK, seq);
  w.commit();
  w.flush();
};

/** Everything the port gives now, as [seq, value] pairs, up to EMPTY or END. */
function drain(port: InputPort): { got: [number, unknown][]; last: number } {
  const got: [number, unknown][] = [];
  for (;;) {
    const r = port.next();
    if (r === EMPTY || r === END) return { got, last: r };
    got.push([port.seq, port.value()]);
    port.release();
  }
}

describe('ordered merge of replicas', () => {
  it('waits for a replica that may still deliver a smaller seq, and takes it in order', () => {
    const { port, writers: [a, b] } = lanes(2);
    put(a, 0);
    put(a, 2);
    watermark(b, 1);  // b took nothing below 1, and may still deliver 1
    expect(drain(port)).toEqual({ got: [[0, 0]], last: EMPTY });
    put(b, 1);
    expect(drain(port).got).toEqual([[1, 10], [2, 20]]);
  });

  it('moves on past a replica once its watermark says nothing smaller follows', () => {
    const { port, writers: [a, b] } = lanes(2);
    put(a, 0);
    put(a, 2);
    watermark(b, 3);  // b skipped seq 1 (e.g. a record it failed and dropped)
    expect(drain(port).got).toEqual([[0, 0], [2, 20]]);
    a.close();
    b.close();
    expect(drain(port)).toEqual({ got: [], last: END });
  });

  it('keeps the order when a replica publishes while the merge looks at the lanes', () => {
    // The race behind a once-seen swap of two samples in image shards: lane b is empty when the
    // merge first looks, b publishes seq 1, then the merge checks whether b can still deliver
    // something below a's seq 2. Simulated by b's reader seeing the record only from its second look.
    const { port, writers: [a, b] } = lanes(2);
    put(a, 0);
    watermark(b, 1);
    expect(drain(port).got).toEqual([[0, 0]]);
    put(a, 2);
    put(b, 1);
    const lane = (port as unknown as { groups: { lanes: { reader: { next(): number } }[] }[] }).groups[0]!.lanes[1]!;
    const next = lane.reader.next.bind(lane.reader);
    let looks = 0;
    lane.reader.next = () => (looks++ === 0 ? EMPTY : next());
    const order: number[] = [];
    for (let i = 0; i < 4 && order.length < 2; i++) order.push(...drain(port).got.map(([s]) => s));
    expect(order).toEqual([1, 2]);
  });

  it('gives every seq once and in order under random publishes and late looks', () => {
    let x = 12345;
    const rand = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let round = 0; round < 20; round++) {
      const { port, writers } = lanes(3);
      // Seqs 0..59 dealt to the lanes at random (as replicas claim records), each lane in order.
      const queues: number[][] = [[], [], []];
      for (let s = 0; s < 60; s++) queues[rand(3)]!.push(s);
      const laneState = (port as unknown as { groups: { lanes: { reader: { next(): number } }[] }[] }).groups[0]!.lanes;
      for (const l of laneState) {
        const next = l.reader.next.bind(l.reader);
        l.reader.next = () => (rand(4) === 0 ? EMPTY : next());  // a look that misses a publish
      }
      const order: number[] = [];
      while (queues.some((q) => q.length)) {
        const i = rand(3), q = queues[i]!;
        if (q.length) put(writers[i]!, q.shift()!);
        else if (rand(2)) watermark(writers[i]!, 60);
        order.push(...drain(port).got.map(([s]) => s));
      }
      writers.forEach((w) => w.close());
      for (let i = 0; i < 50 && order.length < 60; i++) order.push(...drain(port).got.map(([s]) => s));
      expect(order).toEqual(Array.from({ length: 60 }, (_, s) => s));
    }
  });
});
