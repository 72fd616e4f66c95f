// Graph topologies: broadcast and balanced streams, diamonds, order with replicas and filters.
import { describe, expect, it } from 'vitest';
import { Graph, Pipeline, Regulator, Sink, Source, Stream, Transform } from '../src/index.js';
import * as f from './fixtures/minipipe.js';

describe.each(['thread', 'local'] as const)('graphs (%s)', (isolation) => {
  const o = { isolation } as const;

  it('replicas keep the order through a filter that leaves gaps (watermarks)', async () => {
    const r = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 3000 } }), o)
      .add(new Transform(f.dropThrees), { ...o, workers: 3, capacity: 4096 })
      .add(new Transform(f.square), { ...o, workers: 2, capacity: 4096 })
      .add(new Sink(f.Collect), o)
      .run();
    const expected = Array.from({ length: 3000 }, (_, i) => i).filter((x) => x % 3 !== 0).map((x) => x * x);
    expect(r.results.Collect![0]).toEqual(expected);
  });

  it('a reader of a broadcast stream that stops early lets go; the others get every record', async () => {
    const g = new Graph();
    const s = new Stream('numbers', { capacity: 4096 });  // ~100 records: a cursor left behind would stall the run
    g.add(new Source(f.zeroTo, { options: { n: 3000 } }), { ...o, out: s });
    g.add(new Sink(f.Collect), { ...o, in: s });
    g.add(new Sink(f.TakeThenStop, { options: { n: 5 } }), { ...o, in: s });
    const r = await g.run({ signal: AbortSignal.timeout(20_000) });
    expect(r.results.TakeThenStop![0]).toEqual([0, 1, 2, 3, 4]);
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(r.segments.find((x) => x.name === 'TakeThenStop')!.recordsIn).toBe(5);
  });

  it("ordered: false still delivers every record exactly once", async () => {
    const r = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 2000 } }), o)
      .add(new Transform(f.square), { ...o, workers: 2, ordered: false })
      .add(new Sink(f.Collect), o)
      .run();
    const got = (r.results.Collect![0] as number[]).slice().sort((a, b) => a - b);
    expect(got).toEqual(Array.from({ length: 2000 }, (_, i) => i * i));
  });

  it('a regulator emitting several records per input keeps order through replicas', async () => {
    const r = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 500 } }), o)
      .add(new Regulator(f.explode), o)
      .add(new Transform(f.square), { ...o, workers: 2 })
      .add(new Sink(f.Collect), o)
      .run();
    const expected = Array.from({ length: 500 }, (_, i) => [i * 10, i * 10 + 1]).flat().map((x) => x * x);
    expect(r.results.Collect![0]).toEqual(expected);
  });

  it('broadcast gives every reader every record; balance splits them', async () => {
    const g = new Graph();
    const all = new Stream('all'), split = new Stream('split', { mode: 'balance' });
    g.add(new Source(f.zeroTo, { name: 'a', options: { n: 100 } }), { ...o, out: all });
    g.add(new Sink(f.Collect, { name: 'b1' }), { ...o, in: all });
    g.add(new Sink(f.Collect, { name: 'b2' }), { ...o, in: all, workers: 2 });
    g.add(new Source(f.zeroTo, { name: 'c', options: { n: 100 } }), { ...o, out: split });
    g.add(new Sink(f.Collect, { name: 'd1' }), { ...o, in: split });
    g.add(new Sink(f.Collect, { name: 'd2' }), { ...o, in: split, workers: 2 });
    const r = await g.run();
    const seq = Array.from({ length: 100 }, (_, i) => i);
    expect(r.results.b1![0]).toEqual(seq);
    expect([...(r.results.b2![0] as number[]), ...(r.results.b2![1] as number[])].sort((x, y) => x - y)).toEqual(seq);
    const d = [r.results.d1![0], r.results.d2![0], r.results.d2![1]].flat() as number[];
    expect(d.sort((x, y) => x - y)).toEqual(seq);  // each record to exactly one reader
  });

  it('a diamond: fan-out to two transforms, fan-in to a two-input join', async () => {
    const g = new Graph();
    const src = new Stream('src'), sq = new Stream('sq'), id = new Stream('id'), out = new Stream('out');
    g.add(new Source(f.zeroTo, { options: { n: 50 } }), { ...o, out: src });
    g.add(new Transform(f.square), { ...o, in: src, out: sq, workers: 2 });
    g.add(new Transform(f.dropThrees, { name: 'keep' }), { ...o, in: src, out: id });
    g.add(new Sink(f.Collect, { name: 'squares' }), { ...o, in: sq });
    g.add(new Sink(f.Collect, { name: 'kept' }), { ...o, in: id });
    g.add(new Source(f.zeroTo, { name: 'other', options: { n: 3 } }), { ...o, out });
    g.add(new Sink(f.Collect, { name: 'rest' }), { ...o, in: out });
    const r = await g.run();
    expect(r.results.squares![0]).toEqual(Array.from({ length: 50 }, (_, i) => i * i));
    expect(r.results.kept![0]).toEqual(Array.from({ length: 50 }, (_, i) => i).filter((x) => x % 3));
  });
});

describe('replicas share the work dynamically', () => {
  it('a replica stuck on one slow record does not hold back the records behind it', async () => {
    const r = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 200 } }))
      .add(new Transform(f.slowFirst), { workers: 2 })
      .add(new Sink(f.Collect))
      .run();
    const got = r.results.Collect![0] as { x: number; replica: number }[];
    expect(got.map((g) => g.x)).toEqual(Array.from({ length: 200 }, (_, i) => i));  // order kept
    // Whoever took record 0 sleeps 300 ms; the other replica takes (nearly) everything else,
    // where a fixed split would have left half the records waiting behind the sleeper.
    const slow = got[0]!.replica;
    expect(got.filter((g) => g.replica !== slow).length).toBeGreaterThan(150);
  });
});

describe('seeing what happens', () => {
  it('progress events and final stats name the slowest segment and stream fill', async () => {
    const events: number[] = [];
    const r = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 300 } }))
      .add(new Transform(f.slowSquare))
      .add(new Sink(f.Collect))
      .run({ onProgress: (p) => events.push(p.segments[2]!.recordsIn), progressIntervalMs: 20 });
    expect(events.length).toBeGreaterThan(1);
    expect(events.at(-1)).toBe(300);
    expect(r.slowest).toBe('slowSquare');
    const s = r.segments.find((x) => x.name === 'slowSquare')!;
    expect(s.recordsIn).toBe(300);
    expect(s.busyPct).toBeGreaterThan(0);
    expect(s.busyPct + s.waitInputPct + s.waitOutputPct).toBeLessThanOrEqual(100.5);
    expect(r.streams.map((x) => x.name)).toEqual(['zeroTo.out', 'slowSquare.out']);
  });

  it('a view kept past its call is poisoned in local mode, so the bug shows at once', async () => {
    const r = await new Pipeline()
      .add(new Source(f.tensors, { options: { count: 3, size: 4 } }), { isolation: 'local' })
      .add(new Sink(f.KeepViews), { isolation: 'local' })
      .run();
    expect((r.results.KeepViews![0] as number[]).some((v) => v !== 0 && v !== 1 && v !== 2)).toBe(true);
  });
});

describe('several inputs fed by one writer', () => {
  it('does not stall when one input ring fills (released records are handed back before waiting)', async () => {
    const g = new Graph();
    const xs = new Stream('xs', { capacity: 1 << 16 }), ys = new Stream('ys', { capacity: 1 << 16 }), src = new Stream('src');
    g.add(new Source(f.tensors, { options: { count: 200, size: 1024 } }), { out: src });
    g.add(new Transform(f.splitXY), { in: src, out: [xs, ys] });
    g.add(new Transform(f.pairSum), { in: [xs, ys], out: new Stream('sums') });
    g.add(new Sink(f.Collect), { in: g.nodes.at(-1)!.outputs[0]! });
    const r = await g.run();
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 200 }, (_, i) => i * 1024 + i));
  });
});

describe.each(['thread', 'process'] as const)("onCrash: 'continue' (%s)", (isolation) => {
  it('a dying sink is reported and dropped; the other readers of its stream finish', async () => {
    const g = new Graph();
    const s = new Stream('s', { capacity: 1 << 12 });
    g.add(new Source(f.zeroTo, { options: { n: 2000 } }), { out: s });
    g.add(new Sink(f.Collect), { in: s });
    g.add(new Sink(f.sinkDiesOnThree), { in: s, isolation, onCrash: 'continue' });
    const r = await g.run();
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(r.crashed).toEqual([{ segment: 'sinkDiesOnThree', replica: 0, reason: expect.stringMatching(isolation === 'process' ? /SIGKILL/ : /code 7/) }]);
  });
});

it("onCrash: 'continue' is for sinks", () => {
  expect(() => new Graph().add(new Transform(f.square), { onCrash: 'continue' })).toThrow(/for sinks/);
});
