// Node and web streams: a Source from any iterable, Readable or ReadableStream (read in this thread);
// a pipeline as a Readable for stream.pipeline(), with backpressure; a Writable that feeds a source.
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { Pipeline, Sink, Source, Transform, writableSource } from '../src/index.js';
import { Collect, square, zeroTo } from './fixtures/minipipe.js';
import { double, endless } from './fixtures/iterate.js';

const dir = mkdtempSync(join(tmpdir(), 'ringpipe-streams-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const collect = (source: Source) => new Pipeline().add(source).add(new Transform(square)).add(new Sink(Collect)).run().then((r) => r.results.Collect![0]);

describe('Source.from', () => {
  it('reads arrays, generators, object-mode Readables and web ReadableStreams', async () => {
    const squares = [0, 1, 4, 9, 16];
    expect(await collect(Source.from([0, 1, 2, 3, 4]))).toEqual(squares);
    expect(await collect(Source.from((async function* () { for (let i = 0; i < 5; i++) yield i; })()))).toEqual(squares);
    expect(await collect(Source.from(Readable.from([0, 1, 2, 3, 4])))).toEqual(squares);
    expect(await collect(Source.from(new ReadableStream({ start(c) { for (let i = 0; i < 5; i++) c.enqueue(i); c.close(); } })))).toEqual(squares);
  });

  it('a byte Readable gives its Buffer chunks, every byte in order', async () => {
    const path = join(dir, 'bytes.bin');
    const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    writeFileSync(path, bytes);
    const r = await new Pipeline().add(Source.from(createReadStream(path, { highWaterMark: 4096 }), { name: 'file' })).add(new Sink(Collect), { records: 'copy' }).run();
    const chunks = r.results.Collect![0] as Buffer[];
    expect(chunks.length).toBeGreaterThan(10);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
  });

  it('a Readable that errors fails the run naming the source; one that ends early ends the stream', async () => {
    let reads = 0;
    const broken = new Readable({ objectMode: true, read() { if (++reads === 3) this.destroy(new Error('disk gone')); else this.push(reads); } });
    await expect(collect(Source.from(broken, { name: 'disk' }))).rejects.toMatchObject({ code: 'ERR_SEGMENT_FAILED', segment: 'disk', message: expect.stringMatching(/disk gone/) });
    // One that fails before the run reads it: the error waits for the run, no uncaught 'error'.
    const early = new Readable({ objectMode: true, read() {} });
    const source = Source.from(early, { name: 'early' });
    early.destroy(new Error('gone before the start'));
    await expect(collect(source)).rejects.toMatchObject({ segment: 'early', message: expect.stringMatching(/gone before the start/) });
    const short = new Readable({ objectMode: true, read() {} });
    short.push(3);
    short.push(null);
    expect(await collect(Source.from(short))).toEqual([9]);
  });

  it('runs in this thread only, and says so', () => {
    expect(() => new Pipeline().add(Source.from([1]), { isolation: 'thread' })).toThrow(/reads objects of this thread .* isolation 'local', not 'thread'/);
    expect(() => Source.from(42 as never)).toThrow(/expected an iterable/);
  });
});

describe('a pipeline as a Readable', () => {
  it('works in stream.pipeline() with a slow writer, in order, with backpressure', async () => {
    const got: number[] = [];
    const slow = new Writable({ objectMode: true, highWaterMark: 2, write(x: number, _e, done) { got.push(x); setTimeout(done, 1); } });
    await pipeline(new Pipeline().add(new Source(zeroTo, { options: { n: 300 } })).add(new Transform(double)).toReadable(), slow);
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => 2 * i));
  });

  it('destroying the Readable stops every stage', async () => {
    const readable = new Pipeline().add(new Source(endless)).add(new Transform(double)).toReadable();
    let n = 0;
    for await (const _ of readable) if (++n === 100) break;  // destroys the readable
    expect(readable.destroyed).toBe(true);
  });
});

describe('writableSource', () => {
  it('feeds a pipeline from outside (records arriving from elsewhere), with backpressure', async () => {
    const { writable, source } = writableSource({ name: 'requests', highWaterMark: 4 });
    const done = new Pipeline().add(source).add(new Transform(square), { workers: 2 }).add(new Sink(Collect)).run();
    let sawFull = false;
    for (let i = 0; i < 200; i++) {
      if (!writable.write(i)) {
        sawFull = true;
        await new Promise((r) => writable.once('drain', r));
      }
    }
    writable.end();
    const r = await done;
    expect(r.results.Collect![0]).toEqual(Array.from({ length: 200 }, (_, i) => i * i));
    expect(sawFull).toBe(true);
  });

  it('stream.pipeline into it; destroying it with an error fails the run naming the source', async () => {
    const a = writableSource();
    const run = new Pipeline().add(a.source).add(new Sink(Collect)).run();
    await pipeline(Readable.from([1, 2, 3]), a.writable);
    expect((await run).results.Collect).toEqual([[1, 2, 3]]);

    const b = writableSource({ name: 'upload' });
    const failing = new Pipeline().add(b.source).add(new Sink(Collect)).run();
    b.writable.on('error', () => {});  // destroy(err) emits it, as any Writable does
    b.writable.write(1);
    b.writable.destroy(new Error('client went away'));
    await expect(failing).rejects.toMatchObject({ code: 'ERR_SEGMENT_FAILED', segment: 'upload', message: expect.stringMatching(/client went away/) });
  });

  it('when the run ends first, pending writes fail instead of waiting for ever', async () => {
    const { writable, source } = writableSource({ name: 'in' });
    const run = new Pipeline().add(source).add(new Transform((x: number) => { if (x === 2) throw new Error('no'); return x; }, { name: 'picky' }), { isolation: 'local' }).add(new Sink(Collect)).run();
    const errors: Error[] = [];
    writable.on('error', (e) => errors.push(e));
    for (let i = 0; i < 10; i++) writable.write(i);
    await expect(run).rejects.toMatchObject({ segment: 'picky' });
    await new Promise((r) => setTimeout(r, 50));
    expect(writable.destroyed).toBe(true);
    expect(errors[0]?.message).toMatch(/ended before its input did/);
  });
});
