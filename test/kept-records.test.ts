// Records a segment keeps are never corrupted: copyRecord and `records: 'copy'` give owned records
// at any depth (a property test over random nested records in small rings that wrap often), the
// batch regulator keeps what it holds, and a poisoning run shows a kept view at once.
import { describe, expect, it } from 'vitest';
import { batch, Graph, holdsSharedMemory, Pipeline, Ring, RingReader, RingWriter, Sink, Source, Stream, Transform } from '../src/index.js';
import * as f from './fixtures/nested-records.js';
import { Collect, range } from './fixtures/minipipe.js';

type Report = { received: number; corrupted: number; first: string[] };

describe.each(['thread', 'process'] as const)('kept records (%s)', (isolation) => {
  // 2 x 60,000 records through copyRecord and 2 x 15,000 through records: 'copy', per isolation.
  it.each([
    { how: 'copyRecord', copy: true, records: undefined, count: 60_000, seeds: [1, 2] },
    { how: "records: 'copy'", copy: false, records: 'copy' as const, count: 15_000, seeds: [3, 4] },
  ])('$how: every byte of every kept record survives rings that wrap often', async ({ copy, records, count, seeds }) => {
    for (const seed of seeds) {
      const options = { seed, count, maxBytes: seed % 2 ? 2048 : 6000 };
      const r = await new Pipeline()
        .add(new Source(f.nestedRecords, { options }), { capacity: 1 << 16 })
        .add(new Transform(f.relay), { isolation, capacity: 1 << 16 })
        .add(new Sink(f.KeepAndCheck, { options: { ...options, copy } }), { isolation, records })
        .run();
      const report = r.results.KeepAndCheck![0] as Report;
      expect(report).toEqual({ received: count, corrupted: 0, first: [] });
    }
  });

  it('without a copy, kept nested views are overwritten (what the property test guards against)', async () => {
    const r = await new Pipeline()
      .add(new Source(f.examples, { options: { count: 2000, size: 16 } }), { capacity: 1 << 16 })
      .add(new Sink(f.KeepFirstViews), { isolation })
      .run();
    const firsts = r.results.KeepFirstViews![0] as number[];
    expect(firsts.filter((v, i) => v !== i).length).toBeGreaterThan(100);
  });

  it('a poisoning run shows kept views at once, in broadcast streams once the last reader lets go', async () => {
    const g = new Graph();
    const s = new Stream('s', { capacity: 1 << 20 });
    g.add(new Source(f.examples, { options: { count: 50, size: 16 } }), { out: s });
    // The keeping sink is slow, so the other reader is done with most records before it lets go.
    g.add(new Sink(f.KeepFirstViews, { options: { delayMs: 20 } }), { in: s, isolation });
    g.add(new Sink(Collect), { in: s, isolation, records: 'copy' });
    const r = await g.run({ poisonReleased: true });
    // The ring holds all 50 records: without poisoning none would be overwritten.
    const firsts = r.results.KeepFirstViews![0] as number[];
    expect(firsts.filter((v, i) => v !== i).length).toBeGreaterThanOrEqual(25);
    expect((r.results.Collect![0] as { y: number }[]).map((x) => x.y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('RINGPIPE_POISON=1 turns poisoning on for a run (a sole reader: every kept view)', async () => {
    process.env.RINGPIPE_POISON = '1';
    try {
      const r = await new Pipeline()
        .add(new Source(f.examples, { options: { count: 50, size: 16 } }), { capacity: 1 << 20 })
        .add(new Sink(f.KeepFirstViews), { isolation })
        .run();
      expect((r.results.KeepFirstViews![0] as number[]).filter((v, i) => v === i)).toEqual([]);
    } finally {
      delete process.env.RINGPIPE_POISON;
    }
  });

  it("result.results never aliases ring memory, even when teardown() returns a view it kept", async () => {
    const r = await new Pipeline()
      .add(new Source(f.examples, { options: { count: 5, size: 8 } }))
      .add(new Sink(f.ReturnsLastView), { isolation })
      .run();
    const last = r.results.ReturnsLastView![0] as { x: { data: Float32Array } };
    expect(holdsSharedMemory(last)).toBe(false);
    expect(last.x.data).toBeInstanceOf(Float32Array);
  });

  it('batch() keeps the objects it holds intact ({ x: tensor } records)', async () => {
    const r = await new Pipeline()
      .add(new Source(f.examples, { options: { count: 3000, size: 8 } }), { capacity: 1 << 14 })
      .add(batch(100), { capacity: 1 << 20 })
      .add(new Sink(Collect), { isolation, records: 'copy' })
      .run();
    const batches = r.results.Collect![0] as { x: { data: Float32Array }; y: number }[][];
    const flat = batches.flat();
    expect(flat).toHaveLength(3000);
    expect(flat.filter((e, i) => e.y !== i || e.x.data.some((v) => v !== i))).toEqual([]);
  });
});

describe('ctx.tensor() inside an object', () => {
  it('is refused with ERR_TENSOR_NESTED saying what to do', async () => {
    const run = new Pipeline()
      .add(new Source(range, { options: { from: 0, to: 5 } }))
      .add(new Transform(f.tensorInObject))
      .add(new Sink(Collect))
      .run();
    await expect(run).rejects.toMatchObject({ code: 'ERR_SEGMENT_FAILED', cause: { code: 'ERR_TENSOR_NESTED' }, message: expect.stringMatching(/return \(or yield\) the tensor alone/) });
  });

  it('a claimed tensor not returned is dropped; what was returned goes on', async () => {
    const r = await new Pipeline()
      .add(new Source(range, { options: { from: 0, to: 6 } }))
      .add(new Transform(f.tensorThenOther))
      .add(new Sink(Collect), { records: 'copy' })
      .run();
    expect(r.results.Collect![0]).toEqual([
      { other: 0 }, { data: new Float32Array(4).fill(1), shape: [4], dtype: 'float32' }, { other: 2 },
      { data: new Float32Array(4).fill(3), shape: [4], dtype: 'float32' }, { other: 4 }, { data: new Float32Array(4).fill(5), shape: [4], dtype: 'float32' },
    ]);
  });
});

describe('poisoning in a broadcast ring (the last holder)', () => {
  it('whichever reader lets go of a record last overwrites it; earlier ones do not', () => {
    const ring = Ring.create({ capacity: 1 << 12, readers: 2 });
    const w = new RingWriter(ring), a = new RingReader(ring, 0), b = new RingReader(ring, 1);
    for (let i = 0; i < 3; i++) {
      expect(w.claim(8, 1, i)).toBeGreaterThan(0);
      w.commit();
    }
    w.flush();
    // Record 0: a first (b still needs it), then b (last).
    a.next();
    b.next();
    expect(a.lastHolder()).toBe(false);
    a.release();
    expect(b.lastHolder()).toBe(true);
    b.release();
    // Record 1: both store before either looks (the race): both see each other, both may poison.
    a.next();
    b.next();
    const sa = a.lastHolder(), sb = b.lastHolder();
    expect(sa || sb).toBe(true);
    a.release();
    b.release();
    // Record 2: b detached: a alone decides.
    b.detach();
    a.next();
    expect(a.lastHolder()).toBe(true);
    ring.close();
  });
});
