// What a hostile or unlucky day does to a run: errors raised after a sink's calls returned fail the
// run (never "lost writes reported as success"), pending work after teardown is waited for, a call
// that never returns is a timeout or a stall (never a hang or a false crash), and errors say where.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Pipeline, Sink, Source, Transform } from '../src/index.js';
import { Watchdog } from '../src/runtime/watchdog.js';
import { STAT_CALL, STAT_IN, STAT_SLOTS } from '../src/runtime/plan.js';
import * as f from './fixtures/faults.js';
import { Collect, zeroTo } from './fixtures/minipipe.js';

const dir = mkdtempSync(join(tmpdir(), 'ringpipe-faults-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['thread', 'process'] as const)('faults (%s)', (isolation) => {
  it('an asynchronous failure after the last call fails the run, every time (random delays)', async () => {
    const hows = ['teardown-rejection', 'teardown-timer', 'run-rejection'] as const;
    for (let k = 0; k < 9; k++) {
      const how = hows[k % 3]!, delayMs = Math.floor(Math.random() * 80);
      const run = new Pipeline()
        .add(new Source(zeroTo, { options: { n: 100 } }))
        .add(new Sink(f.LateFailure, { options: { how, delayMs } }), { isolation })
        .run();
      await expect(run, `${how}, ${delayMs} ms`).rejects.toMatchObject({
        code: 'ERR_SEGMENT_FAILED',
        segment: 'LateFailure',
        message: expect.stringMatching(/flush.* failed/),
      });
    }
  });

  it('a flush left pending by teardown() runs before the run ends', async () => {
    const path = join(dir, `flushed-${isolation}`);
    const r = await new Pipeline()
      .add(new Source(zeroTo, { options: { n: 10 } }))
      .add(new Sink(f.LateFlush, { options: { path } }), { isolation })
      .run();
    expect(r.results.LateFlush).toEqual(['torn down']);
    expect(existsSync(path) && readFileSync(path, 'utf8')).toBe('flushed');
    expect(r.warnings).toEqual([]);
  });

  it('work still pending after settleTimeoutMs is stopped and named in the warnings', async () => {
    const t0 = Date.now();
    const r = await new Pipeline()
      .add(new Source(zeroTo, { options: { n: 10 } }))
      .add(new Sink(f.Leaky), { isolation })
      .run({ settleTimeoutMs: 300 });
    expect(r.results.Leaky).toEqual(['leaky']);
    expect(r.warnings).toEqual([expect.stringMatching(/segment 'Leaky' \(replica 0\) still had work pending 300 ms after teardown/)]);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('a promise that never settles is a stall on that record, not a crash or a hang', async () => {
    const run = new Pipeline()
      .add(new Source(zeroTo, { options: { n: 10 } }))
      .add(new Transform(f.neverSettles), { isolation })
      .add(new Sink(Collect))
      .run();
    await expect(run).rejects.toMatchObject({ code: 'ERR_SEGMENT_STALLED', segment: 'neverSettles', index: 5, message: expect.stringMatching(/stalled on record 5/) });
  });

  it.each([
    ['a call that never returns (a busy loop)', f.spinsOnFive],
    ['a call that would take a minute', f.slowOnFive],
  ])('recordTimeoutMs: %s fails the run with ERR_RECORD_TIMEOUT naming the record', async (_, code) => {
    const t0 = Date.now();
    const run = new Pipeline()
      .add(new Source(zeroTo, { options: { n: 10 } }))
      .add(new Transform(code), { isolation, recordTimeoutMs: 500 })
      .add(new Sink(Collect))
      .run();
    await expect(run).rejects.toMatchObject({ code: 'ERR_RECORD_TIMEOUT', segment: code.name, index: 5 });
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it("a source's error names the record it was producing; an oversized record's code is at err.cause.code", async () => {
    await expect(new Pipeline().add(new Source(f.failsAtThree), { isolation }).add(new Sink(Collect)).run()).rejects.toMatchObject({
      code: 'ERR_SEGMENT_FAILED', index: 3, during: 'produce', message: expect.stringMatching(/failed producing record 3: Error: source broke/),
    });
    await expect(new Pipeline().add(new Source(f.tooLarge), { isolation, capacity: 1 << 16 }).add(new Sink(Collect)).run()).rejects.toMatchObject({
      code: 'ERR_SEGMENT_FAILED', cause: { code: 'ERR_RECORD_TOO_LARGE' },
    });
  });
});

describe('watchdog', () => {
  it('reports a call standing still past 10 s as stuck, and past its timeout as over', () => {
    const view = new Float64Array(2 * STAT_SLOTS);
    const w = new Watchdog(view, [
      { segment: 'a', replica: 0, statsSlot: 0, timeoutMs: 30_000 },
      { segment: 'b', replica: 0, statsSlot: 1 },
    ]);
    view[STAT_CALL] = 8;  // record 7 in a's code
    view[STAT_IN] = 7;
    view[STAT_SLOTS + STAT_CALL] = 0;  // b between calls
    expect(w.sample(0)).toBeUndefined();
    expect(w.sample(5_000)).toBeUndefined();
    expect(w.stuck(5_000)).toEqual([]);
    expect(w.stuck(12_000)).toEqual([{ segment: 'a', replica: 0, index: 7, seconds: 12 }]);
    expect(w.sample(31_000)).toMatchObject({ segment: 'a', index: 7, timeoutMs: 30_000 });
    // The call returned and the next one began: the clock starts again.
    view[STAT_CALL] = 9;
    view[STAT_IN] = 8;
    expect(w.sample(32_000)).toBeUndefined();
    expect(w.stuck(40_000)).toEqual([]);
  });
});
