// A network link over JetStream (real nats-server on loopback): every record exactly once, in
// order, checksummed, tensors larger than max_payload chunked; backpressure; resuming readers;
// jetstreamSink/jetstreamSource segments in pipelines.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pipeline, Sink, Source } from '../src/index.js';
import { ClusterConnection, LinkReader, LinkWriter, jetstreamSink, jetstreamSource } from '../src/cluster/index.js';
import { startServer, stopAll, type TestServer } from './helpers/nats.js';
import { CheckMixed, mismatch, mixedRecord, mixedSource } from './helpers/cluster-segments.js';

const MAX_PAYLOAD = 64 * 1024;
const BIG = 100_000; // float32 elements: 400 KB, > 6 x max_payload

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ maxPayload: MAX_PAYLOAD });
}, 60_000);
afterAll(stopAll, 60_000);

const opts = (project: string) => ({ servers: server.url, project });

describe('link over JetStream', () => {
  it('delivers every record of every kind exactly once, in order, with tensors chunked under max_payload', async () => {
    const project = 'link-mixed';
    const count = 140;
    const reader = await LinkReader.open(opts(project), { link: 'mixed', timeout: 30_000 });
    const got: unknown[] = [];
    const reading = (async () => {
      for await (const r of reader) got.push(r);
    })();
    const writer = await LinkWriter.open(opts(project), { link: 'mixed' });
    for (let i = 0; i < count; i++) await writer.write(mixedRecord(i, BIG));
    const summary = await writer.end();
    await reading;
    expect(summary.records).toBe(count);
    // Tensors of 400 KB took several messages each.
    expect(summary.messages).toBeGreaterThan(10 * 6);
    // Small records travelled several to a message.
    expect(summary.messages).toBeLessThan(count);
    expect(got.length).toBe(count);
    const errors = got.map((g, i) => mismatch(i, g, BIG)).filter(Boolean);
    expect(errors).toEqual([]);
    // The work-queue stream is empty: everything was acknowledged.
    const conn = await ClusterConnection.open(opts(project));
    const info = await conn.jsm.streams.info(conn.names.stream('LINK_mixed'));
    await conn.close();
    expect(info.state.messages).toBe(0);
  });

  it('a slow reader holds the writer back (backpressure), and nothing is lost', async () => {
    const project = 'link-bp';
    const window = 256 * 1024;
    const writer = await LinkWriter.open(opts(project), { link: 'bp', window });
    const chunk = new Uint8Array(32 * 1024);
    let written = 0;
    const writing = (async () => {
      for (let i = 0; i < 100; i++) {
        chunk[0] = i;
        await writer.write(chunk);
        written++;
      }
      return writer.end();
    })();
    // Nobody reads yet: the writer stops near its window (3.2 MB to send, 256 KB allowed).
    await new Promise((r) => setTimeout(r, 1500));
    const conn = await ClusterConnection.open(opts(project));
    const held = await conn.jsm.streams.info(conn.names.stream('LINK_bp'));
    expect(written).toBeLessThan(40);
    expect(held.state.bytes).toBeLessThan(window * 2);
    // Now read slowly; every record arrives, in order.
    const reader = await LinkReader.open(conn, { link: 'bp', timeout: 30_000 });
    let n = 0;
    for await (const r of reader) {
      expect((r as Uint8Array)[0]).toBe(n);
      n++;
      if (n % 10 === 0) await new Promise((res) => setTimeout(res, 20));
    }
    expect(n).toBe(100);
    expect((await writing).records).toBe(100);
    await conn.close();
  });

  it('a reader that stops gives back what it did not finish: the next reader resumes there, nothing is lost', async () => {
    const range = (from: number, to: number) => [...Array(to - from).keys()].map((i) => i + from);
    for (const batchBytes of [0, undefined]) {
      const project = `link-resume-${batchBytes ?? 'batched'}`;
      const writer = await LinkWriter.open(opts(project), { link: 'r', batchBytes });
      for (let i = 0; i < 50; i++) await writer.write(i);
      await writer.end();
      const first: number[] = [];
      const r1 = await LinkReader.open(opts(project), { link: 'r', timeout: 10_000 });
      for await (const x of r1) {
        first.push(x as number);
        if (first.length === 20) break; // stops while holding record 19
      }
      const second: number[] = [];
      const r2 = await LinkReader.open(opts(project), { link: 'r', timeout: 10_000 });
      for await (const x of r2) second.push(x as number);
      expect(first).toEqual(range(0, 20));
      if (batchBytes === 0) {
        // One record per message: the next reader starts exactly with the record the first one held.
        expect(second).toEqual(range(19, 50));
      } else {
        // Batched: it starts with the first record of the batch the first reader stopped in.
        expect(second[0]).toBeLessThanOrEqual(19);
        expect(second).toEqual(range(second[0]!, 50));
      }
    }
  });

  it('messages an earlier reader took and never gave back (it crashed) reach the next reader at once, not after the ack wait', async () => {
    const project = 'link-crashed-reader';
    const writer = await LinkWriter.open(opts(project), { link: 'c', batchBytes: 0 });
    for (let i = 0; i < 30; i++) await writer.write(i);
    await writer.end();
    await (await LinkReader.open(opts(project), { link: 'c' })).close();  // makes the link's consumer
    // A reader that takes 10 messages and dies without acknowledging or giving them back.
    const dead = await ClusterConnection.open(opts(project));
    const consumer = await dead.js.consumers.get(dead.names.stream('LINK_c'), 'reader');
    let taken = 0;
    for await (const _ of await consumer.fetch({ max_messages: 10, expires: 5_000 })) taken++;
    await dead.close();
    expect(taken).toBe(10);
    const t0 = Date.now();
    const reader = await LinkReader.open(opts(project), { link: 'c', timeout: 60_000 });
    const got: number[] = [];
    for await (const x of reader) got.push(x as number);
    expect(got).toEqual([...Array(30).keys()]);
    expect(reader.recoveries).toBeGreaterThan(0);
    expect(Date.now() - t0).toBeLessThan(30_000);  // the ack wait is 120 s
  }, 90_000);

  it('a writer that starts over fails a reader that was reading it, naming the link, server and subject', async () => {
    const project = 'link-restart';
    const w1 = await LinkWriter.open(opts(project), { link: 'x' });
    for (let i = 0; i < 5; i++) await w1.write(i);
    await w1.close(); // crashed: no end
    const reader = await LinkReader.open(opts(project), { link: 'x', timeout: 10_000 });
    const got: number[] = [];
    const reading = (async () => {
      for await (const x of reader) got.push(x as number);
    })().then(() => undefined, (e) => e);
    const until = Date.now() + 20_000;
    while (got.length < 5 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const w2 = await LinkWriter.open(opts(project), { link: 'x' });
    await w2.write(100);
    await w2.end();
    const err = await reading;
    expect(got).toEqual([0, 1, 2, 3, 4]);
    expect(err?.code).toBe('ERR_LINK_RESTARTED');
    expect(err.message).toContain(server.url);
    expect(err.message).toContain('rp.link-restart.link.x');
  });

  it('a damaged message is refused with ERR_LINK_CHECKSUM naming the server and subject', async () => {
    const project = 'link-crc';
    const writer = await LinkWriter.open(opts(project), { link: 'c', batchBytes: 0 });
    await writer.write('first');
    await writer.write('second');
    await writer.close(); // sent, but no end
    // Damage the second record's message in the stream: take it out, flip a byte, put it back.
    const conn = await ClusterConnection.open(opts(project));
    const stream = conn.names.stream('LINK_c'), subject = conn.names.subject('link', 'c');
    const info = await conn.jsm.streams.info(stream);
    const last = (await conn.jsm.streams.getMessage(stream, { seq: info.state.last_seq }))!;
    const bad = Uint8Array.from(last.data);
    bad[bad.length - 1] ^= 0x20;
    await conn.jsm.streams.deleteMessage(stream, info.state.last_seq);
    await conn.js.publish(subject, bad);
    const reader = await LinkReader.open(conn, { link: 'c', timeout: 5_000 });
    const got: unknown[] = [];
    const err = await (async () => {
      for await (const x of reader) got.push(x);
    })().then(() => undefined, (e) => e);
    expect(got).toEqual(['first']);
    expect(err?.code).toBe('ERR_LINK_CHECKSUM');
    expect(err.message).toContain(server.url);
    expect(err.message).toContain(subject);
    await conn.close();
  });

  it('a reader with no writer times out with an error naming the server and subject', async () => {
    const reader = await LinkReader.open(opts('link-timeout'), { link: 'none', timeout: 800 });
    const err = await (async () => {
      for await (const _ of reader) void _;
    })().then(() => undefined, (e) => e);
    expect(err?.code).toBe('ERR_LINK_TIMEOUT');
    expect(err.server).toBe(server.url);
    expect(err.subject).toBe('rp.link-timeout.link.none');
  });

  it('jetstreamSink and jetstreamSource join two pipelines (segments in worker threads)', async () => {
    const link = { servers: server.url, project: 'link-pipes', link: 'prep', timeout: 60_000 };
    const count = 70;
    const consumer = new Pipeline()
      .add(jetstreamSource(link))
      .add(new Sink(CheckMixed, { options: { big: BIG } }))
      .run({ handleSigint: false });
    const producer = await new Pipeline()
      .add(new Source(mixedSource, { options: { count, big: BIG } }), { capacity: 8 << 20 })
      .add(jetstreamSink(link))
      .run({ handleSigint: false });
    const consumed = await consumer;
    expect((producer.results['jetstream-sink(prep)']![0] as { records: number }).records).toBe(count);
    expect(consumed.results.CheckMixed).toEqual([{ count, errors: [] }]);
  });
});
