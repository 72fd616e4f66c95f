// Feedback loops (MiniPipe parity): a stream marked { feedback: true } may close a cycle, seeded with
// initial records and read back by the segment that writes it; ctx.stop() ends the loop; a loop whose
// rings all fill fails with ERR_PIPELINE_DEADLOCK instead of hanging. Unmarked cycles are refused.
import { describe, expect, it } from 'vitest';
import { Graph, Regulator, Sink, Source, Stream, Transform } from '../src/index.js';
import * as f from './fixtures/loops.js';
import { Collect } from './fixtures/minipipe.js';

const FIB = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987];

describe.each(['thread', 'process', 'local'] as const)('feedback loops (%s)', (isolation) => {
  it("MiniPipe's Fibonacci: a transform whose two outputs are its own two inputs, up to 1000", async () => {
    const g = new Graph();
    const a = new Stream('a', { feedback: true, initial: [0] });
    const b = new Stream('b', { feedback: true, initial: [1] });
    const out = new Stream('out');
    g.add(new Transform(f.fibonacci, { options: { upTo: 1000 } }), { in: [a, b], out: [a, b, out], isolation });
    g.add(new Sink(Collect), { in: out, isolation });
    const r = await g.run();
    expect(r.results.Collect).toEqual([FIB]);
  });

  it('a loop that refines a value until it converges', async () => {
    const g = new Graph();
    const x = new Stream('x', { feedback: true, initial: [{ v: 1, n: 2, steps: 0 }] });
    const result = new Stream('result');
    g.add(new Transform(f.newton), { in: x, out: [x, result], isolation });
    g.add(new Sink(Collect), { in: result, isolation });
    const r = await g.run();
    const [[got]] = r.results.Collect as { sqrt: number; steps: number }[][];
    expect(got!.sqrt).toBeCloseTo(Math.SQRT2, 12);
    expect(got!.steps).toBeGreaterThan(3);
  });

  it('a loop inside a larger graph: a source feeds it, a sink reads what leaves it', async () => {
    const g = new Graph();
    const work = new Stream('work', { feedback: true });
    const finished = new Stream('finished');
    g.add(new Source(f.starts, { options: { count: 30 } }), { out: work, isolation });
    g.add(new Transform(f.CollatzStep, { options: { count: 30 } }), { in: work, out: [work, finished], isolation });
    g.add(new Sink(Collect), { in: finished, isolation });
    const r = await g.run();
    const steps = (n: number) => {
      let k = 0;
      for (; n !== 1; k++) n = n % 2 ? 3 * n + 1 : n / 2;
      return k;
    };
    const got = (r.results.Collect![0] as { start: number; steps: number }[]).sort((p, q) => p.start - q.start);
    expect(got).toEqual(Array.from({ length: 30 }, (_, i) => ({ start: i + 1, steps: steps(i + 1) })));
  });
});

describe.each(['thread', 'process', 'local'] as const)('a loop whose rings fill (%s)', (isolation) => {
  it('fails with ERR_PIPELINE_DEADLOCK naming the segments, instead of hanging', async () => {
    const g = new Graph();
    const s = new Stream('s', { feedback: true, initial: [0], capacity: 1 << 12 });
    g.add(new Regulator(f.doubling), { in: s, out: s, isolation });
    const t0 = Date.now();
    await expect(g.run()).rejects.toMatchObject({ code: 'ERR_PIPELINE_DEADLOCK', segments: ['doubling'] });
    expect(Date.now() - t0).toBeLessThan(30_000);
  });
});

describe('validation', () => {
  it('an unmarked cycle is refused, naming it and how to mark a loop', () => {
    const g = new Graph();
    const a = new Stream('a'), b = new Stream('b');
    g.add(new Transform(f.newton, { name: 'one' }), { in: a, out: b });
    g.add(new Transform(f.newton, { name: 'two' }), { in: b, out: a });
    expect(() => g.validate()).toThrow(/cycle: (one -> two -> one|two -> one -> two); mark one of its streams as a loop/);
  });

  it('replicas in a loop are refused', () => {
    const g = new Graph();
    const x = new Stream('x', { feedback: true, initial: [1] });
    g.add(new Transform(f.newton), { in: x, out: [x, new Stream('r')], workers: 2 });
    g.add(new Sink(Collect), { in: g.nodes[0]!.outputs[1]! });
    expect(() => g.validate()).toThrow(/in a feedback loop: segments in a loop run one replica each/);
  });

  it('initial records that do not fit the ring are refused before anything starts', async () => {
    const g = new Graph();
    const x = new Stream('x', { feedback: true, initial: Array.from({ length: 100 }, () => 'x'.repeat(100)), capacity: 4096 });
    g.add(new Transform(f.newton), { in: x, out: [x, new Stream('r')] });
    g.add(new Sink(Collect), { in: g.nodes[0]!.outputs[1]! });
    await expect(g.run()).rejects.toMatchObject({ code: 'ERR_PIPELINE_INVALID', message: expect.stringMatching(/initial records do not fit/) });
  });
});
