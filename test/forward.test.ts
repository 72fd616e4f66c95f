// Tensors a transform returns unchanged are passed on by reference: no copy, and the input ring
// keeps the record until every reader downstream is done with it.
import { describe, expect, it } from 'vitest';
import { Graph, Pipeline, Sink, Source, Stream, Transform } from '../src/index.js';
import * as f from './fixtures/minipipe.js';

describe.each(['thread', 'local', 'process'] as const)('forwarding (%s)', (isolation) => {
  const o = { isolation } as const;

  it('a pass-through chain delivers every tensor intact, through small rings', async () => {
    // 64 KiB rings hold ~15 of these 4 KiB tensors: holds must be given back for the run to end.
    const r = await new Pipeline()
      .add(new Source(f.tensors, { options: { count: 400, size: 1024 } }), { ...o, capacity: 1 << 16 })
      .add(new Transform(f.passThrough), { ...o, capacity: 1 << 16 })
      .add(new Transform(f.passThrough, { name: 'again' }), { ...o, capacity: 1 << 16 })
      .add(new Transform(f.tensorSum), o)
      .add(new Sink(f.Collect), o)
      .run();
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 400 }, (_, i) => ({ shape: [1024], sum: i * 1024 })));
    expect(r.segments.find((s) => s.name === 'passThrough')!.forwarded).toBe(400);
    // The second pass-through gets references, which it copies (one level of reference only).
    expect(r.segments.find((s) => s.name === 'again')!.forwarded).toBe(0);
  });

  it('a switch routes tensors by reference to two sinks, and replicas keep order', async () => {
    const g = new Graph();
    const src = new Stream('src', { capacity: 1 << 16 }), even = new Stream('even'), odd = new Stream('odd');
    g.add(new Source(f.tensors, { options: { count: 300, size: 2048 } }), { ...o, out: src });
    g.add(new Transform(f.routeTensor), { ...o, in: src, out: [even, odd], workers: isolation === 'local' ? 1 : 2, capacity: 1 << 16 });
    g.add(new Transform(f.tensorFirst, { name: 'firstEven' }), { ...o, in: even, out: new Stream('e2') });
    g.add(new Sink(f.Collect, { name: 'evens' }), { ...o, in: g.nodes.at(-1)!.outputs[0]! });
    g.add(new Transform(f.tensorFirst, { name: 'firstOdd' }), { ...o, in: odd, out: new Stream('o2') });
    g.add(new Sink(f.Collect, { name: 'odds' }), { ...o, in: g.nodes.at(-1)!.outputs[0]! });
    const r = await g.run();
    const all = Array.from({ length: 300 }, (_, i) => i);
    expect(r.results.evens![0]).toEqual(all.filter((x) => x % 2 === 0));
    expect(r.results.odds![0]).toEqual(all.filter((x) => x % 2 === 1));
    expect(r.segments.find((s) => s.name === 'routeTensor')!.forwarded).toBe(300);
  });
});
