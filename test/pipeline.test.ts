// MiniPipe's examples, ported, in every isolation mode: the same pipeline gives the same results.
import { describe, expect, it } from 'vitest';
import { Graph, Pipeline, Sink, Source, Stream, Transform, batch, unbatch } from '../src/index.js';
import * as f from './fixtures/minipipe.js';

const modes = ['local', 'thread', 'process'] as const;

describe.each(modes)('isolation %s', (isolation) => {
  const o = { isolation } as const;

  it('source 0..9 -> square x2 replicas -> sink: squares arrive in order', async () => {
    const r = await new Pipeline()
      .add(new Source(f.zeroToNine), o)
      .add(new Transform(f.square), { ...o, workers: 2 })
      .add(new Sink(f.Collect), o)
      .run();
    expect(r.results.Collect).toEqual([[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]]);
    const sq = r.segments.find((s) => s.name === 'square')!;
    expect(sq.recordsIn).toBe(10);
    expect(sq.replicas).toBe(2);
  });

  it('two sources into one stream, batch(2), sum, switch even/odd: every value accounted for', async () => {
    const g = new Graph();
    const numbers = new Stream('numbers'), pairs = new Stream('pairs'), sums = new Stream('sums');
    const even = new Stream('even'), odd = new Stream('odd');
    g.add(new Source(f.range, { name: 'low', options: { from: 0, to: 5 } }), { ...o, out: numbers });
    g.add(new Source(f.range, { name: 'high', options: { from: 10, to: 13 } }), { ...o, out: numbers });
    g.add(batch(2), { ...o, in: numbers, out: pairs });
    g.add(new Transform(f.sum), { ...o, in: pairs, out: sums });
    g.add(new Transform(f.evenOdd), { ...o, in: sums, out: [even, odd] });
    g.add(new Sink(f.Collect, { name: 'evens' }), { ...o, in: even });
    g.add(new Sink(f.Collect, { name: 'odds' }), { ...o, in: odd });
    const r = await g.run();
    const evens = r.results.evens![0] as number[], odds = r.results.odds![0] as number[];
    expect(evens.every((x) => x % 2 === 0)).toBe(true);
    expect(odds.every((x) => x % 2 === 1)).toBe(true);
    const total = [0, 1, 2, 3, 4, 10, 11, 12].reduce((a, b) => a + b);
    expect([...evens, ...odds].reduce((a, b) => a + b, 0)).toBe(total);
    expect(evens.length + odds.length).toBe(4);  // 8 values, batches of 2
  });

  it('class source and class sink with setup options and teardown results', async () => {
    const r = await new Pipeline()
      .add(new Source(f.Counter, { options: { count: 5, step: 3 } }), o)
      .add(new Sink(f.RunningTotal, { options: { prefix: 'total=' } }), o)
      .run();
    expect(r.results.RunningTotal).toEqual(['total=30/5']);
  });

  it('a source that stops early ends every segment', async () => {
    const r = await new Pipeline().add(new Source(f.stopsAtThree), o).add(new Transform(f.square), o).add(new Sink(f.Collect), o).run();
    expect(r.results.Collect).toEqual([[0, 1, 4]]);
  });

  it('an error in a transform fails fast, naming the segment, replica, record and stack', async () => {
    const run = new Pipeline().add(new Source(f.zeroToNine), o).add(new Transform(f.failsOnFive), o).add(new Sink(f.Collect), o).run();
    const err = await run.catch((e) => e);
    expect(err.code).toBe('ERR_SEGMENT_FAILED');
    expect(err.segment).toBe('failsOnFive');
    expect(err.replica).toBe(0);
    expect(err.index).toBe(5);
    expect(err.message).toMatch(/TypeError: five is not allowed/);
    expect(err.stack).toMatch(/minipipe\.ts/);
  });

  it("onError 'skip' drops the record and reports it; a function decides per error", async () => {
    const r = await new Pipeline().add(new Source(f.zeroToNine), o).add(new Transform(f.failsOnFive), { ...o, onError: 'skip' }).add(new Sink(f.Collect), o).run();
    expect(r.results.Collect).toEqual([[0, 1, 2, 3, 4, 6, 7, 8, 9]]);
    expect(r.skippedCount).toBe(1);
    expect(r.skipped[0]).toMatchObject({ segment: 'failsOnFive', index: 5, error: { message: 'five is not allowed' } });
    const r2 = await new Pipeline().add(new Source(f.zeroToNine), o).add(new Transform(f.failsOnFive), { ...o, onError: f.skipTypeErrors }).add(new Sink(f.Collect), o).run();
    expect(r2.results.Collect![0]).toHaveLength(9);
  });

  it('cancellation with an AbortSignal stops an endless run within a second', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort('enough'), 300);
    const t0 = Date.now();
    const err = await new Pipeline().add(new Source(f.endless), o).add(new Transform(f.square), o).add(new Sink(f.Collect), o).run({ signal: ac.signal }).catch((e) => e);
    expect(err.code).toBe('ERR_CANCELLED');
    // Stragglers are terminated 1 s after the abort; the rest is slack for a loaded machine.
    expect(Date.now() - t0).toBeLessThan(2500 + (isolation === 'process' ? 1500 : 0));
  });

  it('tensors made in place arrive as views; values of every kind round-trip', async () => {
    const r = await new Pipeline().add(new Source(f.tensors, { options: { count: 20, size: 1000 } }), o).add(new Transform(f.tensorSum), o).add(new Sink(f.Collect), o).run();
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 20 }, (_, i) => ({ shape: [1000], sum: i * 1000 })));
    const m = await new Pipeline().add(new Source(f.mixedValues), o).add(new Transform(f.describeRecord), o).add(new Sink(f.Collect), o).run();
    expect(m.results.Collect![0]).toEqual(['1.5', '"héllo"', '{"a":1,"b":[1,2],"c":null}', 'f64:1,2,3', 'buf:buf', 'u8:9,8', '[1,"x"]', 'null']);
  });

  it('batch and unbatch of tensors', async () => {
    const r = await new Pipeline()
      .add(new Source(f.tensors, { options: { count: 7, size: 4 } }), o)
      .add(batch(3), o)
      .add(new Transform(f.tensorSum, { name: 'batchSum' }), o)
      .add(new Sink(f.Collect), o)
      .run();
    expect(r.results.Collect![0]).toEqual([
      { shape: [3, 4], sum: (0 + 1 + 2) * 4 },
      { shape: [3, 4], sum: (3 + 4 + 5) * 4 },
      { shape: [1, 4], sum: 6 * 4 },
    ]);
    const u = await new Pipeline().add(new Source(f.tensors, { options: { count: 6, size: 2 } }), o).add(batch(3), o).add(unbatch(), o).add(new Transform(f.tensorSum), o).add(new Sink(f.Collect), o).run();
    expect((u.results.Collect![0] as { sum: number }[]).map((x) => x.sum)).toEqual([0, 2, 4, 6, 8, 10]);
  });

  it('a segment with two inputs gets one record from each per call', async () => {
    const g = new Graph();
    const a = new Stream('a'), b = new Stream('b'), out = new Stream('out');
    g.add(new Source(f.range, { name: 'as', options: { from: 0, to: 5 } }), { ...o, out: a });
    g.add(new Source(f.range, { name: 'bs', options: { from: 10, to: 13 } }), { ...o, out: b });
    g.add(new Transform(f.pairUp), { ...o, in: [a, b], out });
    g.add(new Sink(f.Collect), { ...o, in: out });
    expect((await g.run()).results.Collect).toEqual([[10, 111, 212]]);
  });

  it('records are not held back while the code awaits something slow', async () => {
    const pauseMs = 1500;
    const r = await new Pipeline()
      .add(new Source(f.pausesAfterThree, { options: { pauseMs } }), o)
      .add(new Sink(f.ArrivalTimes), o)
      .run();
    const viaTransform = await new Pipeline()
      .add(new Source(f.zeroTo, { options: { n: 4 } }), o)
      .add(new Transform(f.awaitsOnThree, { options: { pauseMs } }), o)
      .add(new Sink(f.ArrivalTimes), o)
      .run();
    for (const t of [r.results.ArrivalTimes![0], viaTransform.results.ArrivalTimes![0]] as number[][]) {
      expect(t).toHaveLength(4);
      // Held back, the first three would arrive with the fourth; as it is, a pause apart (whatever
      // the delay before the first one, which a loaded machine makes long).
      expect(t[3]! - t[2]!).toBeGreaterThanOrEqual(pauseMs / 2);
    }
  });

  it('sources start once every segment has loaded and set up', async () => {
    const r = await new Pipeline()
      .add(new Source(f.startTime), o)
      .add(new Sink(f.SlowSetup, { options: { ms: 600 } }), o)
      .run();
    const { readyAt, got } = r.results.SlowSetup![0] as { readyAt: number; got: number[] };
    expect(got).toHaveLength(1);
    expect(got[0]).toBeGreaterThanOrEqual(readyAt);
  });

  it('run() can be called again on the same pipeline', async () => {
    const p = new Pipeline().add(new Source(f.zeroToNine), o).add(new Sink(f.RunningTotal, { options: { prefix: '' } }), o);
    expect((await p.run()).results.RunningTotal).toEqual(['45/10']);
    expect((await p.run()).results.RunningTotal).toEqual(['45/10']);
  });

  if (isolation !== 'local') {
    it('a worker that dies fails the run promptly with a clear error', async () => {
      const err = await new Pipeline().add(new Source(f.endless), o).add(new Transform(f.diesOnThree), o).add(new Sink(f.Collect), o).run().catch((e) => e);
      expect(err.code).toBe('ERR_SEGMENT_CRASHED');
      expect(err.message).toMatch(isolation === 'process' ? /diesOnThree.*killed by SIGKILL/ : /diesOnThree.*exited with code 7/);
    });

    it('a closure cannot reach a worker: a clear error before the run starts', async () => {
      const offset = 3;
      const err = await new Pipeline().add(new Source(f.zeroToNine), o).add(new Transform((x: number) => x + offset, { name: 'addOffset' }), o).add(new Sink(f.Collect), o).run().catch((e) => e);
      expect(err.code).toBe('ERR_SEGMENT_NOT_EXPORTED');
      expect(err.message).toMatch(/segment 'addOffset'/);
    });
  }
});

describe('graph validation', () => {
  it('rejects cycles, dangling streams and replicas where they cannot work', async () => {
    const g = new Graph();
    const a = new Stream('a'), b = new Stream('b');
    g.add(new Source(f.zeroToNine), { out: a });
    g.add(new Transform(f.square), { in: [a], out: b });
    g.add(new Transform(f.square, { name: 'back' }), { in: b, out: a });
    g.add(new Sink(f.Collect), { in: b });
    await expect(g.run()).rejects.toThrow(/cycle: square -> back -> square|cycle: back -> square -> back/);
    const d = new Graph().add(new Source(f.zeroToNine), { out: new Stream('nowhere') });
    await expect(d.run()).rejects.toThrow(/stream 'nowhere' is written by 'zeroToNine' but no segment reads it/);
    const s = new Graph();
    const x = new Stream('x');
    s.add(new Source(f.zeroToNine), { out: x, workers: 2 }).add(new Sink(f.Collect), { in: x });
    await expect(s.run()).rejects.toThrow(/workers: 2, but a source runs once/);
  });

  it('describes the graph as Mermaid and DOT', () => {
    const d = new Pipeline().add(new Source(f.zeroToNine)).add(new Transform(f.square), { workers: 2 }).add(new Sink(f.Collect)).describe();
    expect(d.mermaid).toContain('flowchart LR');
    expect(d.mermaid).toMatch(/square \(transform, x2\)/);
    expect(d.dot).toMatch(/s0 -> s1/);
  });
});
