// Consuming a pipeline from the calling thread: for await over its last stage's records, owned copies
// or views, with backpressure; leaving the loop, a throw in it, an abort or a failing stage stop every
// stage and leave nothing behind; epochs re-run the source with ctx.epoch.
import { readdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Graph, Pipeline, Sink, Source, Stream, Transform, holdsSharedMemory, type Tensor } from '../src/index.js';
import * as f from './fixtures/iterate.js';
import { Collect, passThrough, zeroTo } from './fixtures/minipipe.js';
import { relay } from './fixtures/nested-records.js';

const shm = () => readdirSync('/dev/shm').filter((n) => n.startsWith(`ringpipe-u${userInfo().uid}-p${process.pid}-`));

describe.each(['thread', 'process'] as const)('iterate (%s)', (isolation) => {
  it('yields the last stage\'s records in order, as owned copies safe to keep', async () => {
    const it = new Pipeline()
      .add(new Source(f.tensors, { options: { n: 500 } }), { capacity: 1 << 16 })
      .add(new Transform(passThrough), { isolation, workers: 2, capacity: 1 << 16 })
      .iterate<Tensor>();
    const kept: Tensor[] = [];
    for await (const t of it) kept.push(t);
    expect(kept).toHaveLength(500);
    expect(kept.every((t, i) => t.data.length === 256 && t.data.every((v) => v === i))).toBe(true);
    expect(holdsSharedMemory(kept)).toBe(false);
    expect(it.runs).toHaveLength(1);
    expect(it.runs[0]!.segments.map((s) => s.recordsIn)).toEqual([0, 500]);
  });

  it('{ views: true } yields views into the ring, valid until the next next()', async () => {
    let views = 0;
    let last: Tensor | undefined;
    for await (const t of new Pipeline().add(new Source(f.tensors, { options: { n: 50 } }), { isolation }).add(new Transform(passThrough)).iterate<Tensor>({ views: true, poisonReleased: true })) {
      if (last) expect(last.data[0]).not.toBe(views - 1);  // the previous one was let go of: poisoned
      if (holdsSharedMemory(t)) views++;
      expect(t.data[0]).toBe(views - 1);
      last = t;
    }
    expect(views).toBe(50);
  });

  it('leaving the loop early stops every stage at once and leaves no shared memory', async () => {
    const before = shm();
    const t0 = Date.now();
    let n = 0;
    for await (const x of new Pipeline().add(new Source(f.endless), { isolation }).add(new Transform(f.double), { isolation }).iterate<number>()) {
      expect(x).toBe(2 * n);
      if (++n === 1000) break;
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(shm()).toEqual(before);
  });

  it('a throw in the loop body stops the pipeline and reaches the caller', async () => {
    const loop = async () => {
      for await (const x of new Pipeline().add(new Source(f.endless), { isolation }).add(new Transform(f.double), { isolation }).iterate<number>()) {
        if (x > 100) throw new Error('enough');
      }
    };
    await expect(loop()).rejects.toThrow('enough');
  });

  it('a failing stage rejects the next next() with the error run() gives', async () => {
    const seen: number[] = [];
    const loop = async () => {
      for await (const x of new Pipeline().add(new Source(zeroTo, { options: { n: 100 } })).add(new Transform(f.failsOnSeven), { isolation }).iterate<number>()) seen.push(x);
    };
    await expect(loop()).rejects.toMatchObject({ code: 'ERR_SEGMENT_FAILED', segment: 'failsOnSeven', index: 7 });
    // Fail fast: records published before the failure may or may not have been read; none after it.
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6].slice(0, seen.length));
  });

  it('an AbortSignal cancels the iteration with ERR_CANCELLED', async () => {
    const ac = new AbortController();
    const loop = async () => {
      let n = 0;
      for await (const _ of new Pipeline().add(new Source(f.endless), { isolation }).add(new Transform(f.double)).iterate({ signal: ac.signal })) if (++n === 50) ac.abort('user');
    };
    await expect(loop()).rejects.toMatchObject({ code: 'ERR_CANCELLED' });
  });

  it('epochs run the source again, with ctx.epoch; onProgress works as for run()', async () => {
    let progress = 0;
    const it = new Pipeline()
      .add(new Source(zeroTo, { options: { n: 20 } }))
      .add(new Transform(f.withEpoch), { isolation })
      .iterate<{ x: number; epoch: number }>({ epochs: 3, onProgress: () => progress++, progressIntervalMs: 10 });
    const got: { x: number; epoch: number }[] = [];
    for await (const r of it) got.push(r);
    expect(got).toEqual([0, 1, 2].flatMap((epoch) => Array.from({ length: 20 }, (_, x) => ({ x, epoch }))));
    expect(it.runs).toHaveLength(3);
    expect(progress).toBeGreaterThanOrEqual(3);
  });
});

describe('iterate', () => {
  it('a slow loop holds the source back as far as the ring holds (backpressure, no unbounded buffer)', async () => {
    const size = 1000, capacity = 1 << 14;  // about 16 records of ~1 KB fit
    let consumed = 0, ahead = 0;
    for await (const r of new Pipeline().add(new Source(f.counted, { options: { n: 200, size } }), { isolation: 'local', capacity }).add(new Transform(relay), { isolation: 'thread', capacity }).iterate<{ i: number }>()) {
      expect(r.i).toBe(consumed++);
      ahead = Math.max(ahead, f.produced.count - consumed);
      await new Promise((res) => setTimeout(res, 2));
    }
    expect(consumed).toBe(200);
    // Two rings of ~16 records each, plus what the relay holds: far from all 200.
    expect(ahead).toBeLessThan(60);
  });

  it('Graph.iterate reads a stream that a sink also reads (broadcast)', async () => {
    const g = new Graph();
    const s = new Stream('s');
    g.add(new Source(zeroTo, { options: { n: 30 } }), { out: s });
    g.add(new Sink(Collect), { in: s });
    const it = g.iterate<number>(s);
    const got: number[] = [];
    for await (const x of it) got.push(x);
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => i));
    expect(it.runs[0]!.results.Collect).toEqual([got]);
  });

  it('a pipeline ending with a sink cannot be iterated; a stream nobody writes is refused', async () => {
    expect(() => new Pipeline().add(new Source(zeroTo)).add(new Sink(Collect)).iterate()).toThrow(/is a sink: end the pipeline with a transform or regulator/);
    const g = new Graph();
    g.add(new Source(zeroTo), { out: new Stream('a') });
    await expect(g.iterate(new Stream('other')).next()).rejects.toThrow(/stream 'other' is to be read, but no segment of the graph writes it/);
  });
});
