// A network link between two segments over a JetStream stream: the writer publishes records (same
// layouts as the rings, see frame.ts) in messages under the server's max_payload — small records
// batched several to a message, large ones (tensors bigger than max_payload) in chunks — each
// message numbered and CRC-32-checked; the reader pulls them through a durable pull consumer,
// verifies, reorders and reassembles them, and hands the records on exactly once, in order.
//
// Message = 56-byte header + body. Header (little-endian):
//   0 u32 magic 'RPL2' | 4 u8 kind (1 records, 2 begin, 3 end, 4 chunk) | 8 u32 record count (records)
//   or chunk index (chunk) | 12 u32 writer tag | 16 f64 message number (from 0 after begin)
//   24 f64 first record's number (end: the number of records) | 32 u32 chunk count | 36 u16 record
//   type | 38 u16 record flags (chunk) | 40 u32 CRC-32 of the body | 44 u32 CRC-32 of the whole
//   record (last chunk) | 48 f64 length of the whole record (chunk)
// Body of a records message: per record u16 type, u16 flags, u32 length, the bytes, padding to 8.
//
// Backpressure: the stream keeps messages until the reader acknowledges them (work-queue
// retention); the writer checks the bytes waiting in the stream and waits while they exceed its
// window, so a slow reader slows the writer down. Exactly once: publishes carry a message id
// (retries after a timeout or a leader change are deduplicated by the server, and a message stored
// twice all the same is dropped by its number); the reader drops messages it has handed on already
// (a redelivery) and puts messages that arrive out of order back in order (retried publishes can be
// stored after later ones). A server dying can take deliveries with it that its consumer counts as
// delivered (redelivered only after the ack wait): the reader notices them from gaps in the
// delivery sequence and gets them again at once by creating its consumer anew (see LinkReader).
import { randomInt } from 'node:crypto';
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { Sink, Source, type SegmentContext } from '../segments/segment.js';
import { checkName, isTransient, useConnection, type ClusterConnection, type ClusterOptions, type ClusterTarget } from './connect.js';
import { LinkError } from './errors.js';
import { crc32, decodeRecord, encodeRecord, type EncodedRecord } from './frame.js';

const MAGIC = 0x52504c32;
const HEADER = 56;
const KIND_RECORDS = 1, KIND_BEGIN = 2, KIND_END = 3, KIND_CHUNK = 4;
const RECORD_HEADER = 8;

/** Options of a link (both ends). */
export interface LinkOptions {
  /** Name of the link (letters, digits, `-`): both ends give the same one. */
  link: string;
  /**
   * Bytes of records that may wait in the stream, unread, before the writer waits for the reader
   * (default 64 MiB).
   */
  window?: number;
  /**
   * A hard limit on the bytes the link's stream holds, enforced by the server (default: none; the
   * writer's window keeps it near `window`). JetStream reserves this much storage for the stream.
   */
  maxBytes?: number;
  /** Largest message body in bytes (default: the server's max_payload minus 1 KiB). */
  chunkSize?: number;
  /** Writer: small records are batched into messages of up to this many bytes (default 64 KiB; 0: one record a message). */
  batchBytes?: number;
  /** Writer: milliseconds a batch may wait for more records before it is sent (default 5). */
  linger?: number;
  /** Writer: publishes awaiting the server's acknowledgement at a time (default 256). */
  inflight?: number;
  /**
   * Milliseconds the reader waits for the next record, and the writer for room in the stream,
   * before failing with `ERR_LINK_TIMEOUT` (default 300 000).
   */
  timeout?: number;
  /** Reader: bytes of messages fetched ahead (default 8 MiB). */
  prefetchBytes?: number;
  /**
   * Writer: drop what a previous writer left unread before starting (default true). A reader that
   * was reading the previous writer's records fails with `ERR_LINK_RESTARTED`.
   */
  purge?: boolean;
}

/** Options of {@link jetstreamSink} / {@link jetstreamSource}: where the server is and which link. */
export type JetStreamLinkOptions = ClusterOptions & LinkOptions;

/** What a writer sent. */
export interface LinkSummary {
  /** The link's name. */
  link: string;
  /** Records sent. */
  records: number;
  /** Bytes of records sent (without headers). */
  bytes: number;
  /** Messages published (batches, chunks, begin and end). */
  messages: number;
}

/** The JetStream stream and subject of a link. */
interface LinkNames {
  stream: string;
  subject: string;
}

function linkNames(conn: ClusterConnection, link: string): LinkNames {
  checkName('link', link);
  return { stream: conn.names.stream(`LINK_${link}`), subject: conn.names.subject('link', link) };
}

async function ensureLinkStream(conn: ClusterConnection, names: LinkNames, options: LinkOptions, update: boolean): Promise<void> {
  await conn.ensureStream({
    name: names.stream,
    subjects: [names.subject],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    max_bytes: options.maxBytes ?? -1,
    duplicate_window: nanos(120_000),
  }, { update });
}

/** Creates a link's stream (nothing when it exists), e.g. ahead of agents that may not create streams (`ringpipe cluster init --link`). */
export async function createLinkStream(conn: ClusterConnection, link: string, options: Pick<LinkOptions, 'maxBytes'> = {}): Promise<void> {
  await ensureLinkStream(conn, linkNames(conn, link), { link, ...options }, false);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DEFAULT_WINDOW = 64 << 20;
const DEFAULT_TIMEOUT = 300_000;
const pad8 = (n: number) => (n + 7) & ~7;
/** Milliseconds a reader's pull requests live. */
const PULL_EXPIRES = 2_000;
/** Name of a link's durable consumer. */
const READER = 'reader';
/** Milliseconds without a message after which a reader asks whether deliveries were lost on the way. */
const LOSS_CHECK = 3_000;

/** Publishes records to a link. Open with {@link LinkWriter.open}; finish with {@link LinkWriter.end}. */
export class LinkWriter {
  private readonly tag = randomInt(1, 0xffffffff);
  private records = 0;
  private bytes = 0;
  private messages = 0;
  private mseq = 0;
  private readonly inflight: { done: Promise<void>; bytes: number }[] = [];
  private inflightBytes = 0;
  private failure: unknown;
  private sinceCheck = 0;
  private closed = false;
  private readonly chunkSize: number;
  private readonly batchBytes: number;
  private readonly linger: number;
  private readonly window: number;
  private readonly maxInflight: number;
  private readonly timeout: number;
  /** The batch being filled: a message under construction. */
  private batch: Uint8Array;
  private batchOff = HEADER;
  private batchCount = 0;
  private batchFirst = 0;
  private lingerTimer?: NodeJS.Timeout;
  /** Sends are serialized: messages leave in the order of their numbers. */
  private sending: Promise<void> = Promise.resolve();

  private constructor(
    private readonly conn: ClusterConnection,
    private readonly owned: boolean,
    private readonly names: LinkNames,
    readonly link: string,
    options: LinkOptions,
  ) {
    const max = conn.maxPayload - 1024 - HEADER;
    this.chunkSize = Math.max(1024, Math.min(options.chunkSize ?? max, max));
    this.batchBytes = Math.min(options.batchBytes ?? 64 * 1024, this.chunkSize);
    this.linger = options.linger ?? 5;
    this.window = options.window ?? DEFAULT_WINDOW;
    this.maxInflight = options.inflight ?? 256;
    this.timeout = options.timeout ?? DEFAULT_TIMEOUT;
    this.batch = new Uint8Array(HEADER + this.batchBytes);
  }

  /** Connects (or uses `target`'s connection), creates the link's stream and announces a new writer. */
  static async open(target: ClusterTarget, options: LinkOptions): Promise<LinkWriter> {
    const { conn, owned } = await useConnection(target);
    try {
      const names = linkNames(conn, options.link);
      const w = new LinkWriter(conn, owned, names, options.link, options);
      await ensureLinkStream(conn, names, options, true);
      if (options.purge !== false) {
        await conn.retry(`cannot purge link '${options.link}'`, names.stream, () => conn.jsm.streams.purge(names.stream));
      }
      const begin = new Uint8Array(HEADER);
      w.header(begin, KIND_BEGIN, 0, 0, 0);
      await conn.retry(`cannot start link '${options.link}'`, names.subject, () => conn.js.publish(names.subject, begin, { msgID: `${w.tag}:begin` }));
      return w;
    } catch (err) {
      if (owned) await conn.close();
      throw err;
    }
  }

  private header(msg: Uint8Array, kind: number, count: number, mseq: number, first: number): DataView {
    const dv = new DataView(msg.buffer, msg.byteOffset, HEADER);
    dv.setUint32(0, MAGIC, true);
    dv.setUint8(4, kind);
    dv.setUint32(8, count, true);
    dv.setUint32(12, this.tag, true);
    dv.setFloat64(16, mseq, true);
    dv.setFloat64(24, first, true);
    return dv;
  }

  private error(code: string, message: string): LinkError {
    return new LinkError(code, `link '${this.link}': ${message} (server ${this.conn.server()}, subject ${this.names.subject})`, { server: this.conn.server(), subject: this.names.subject });
  }

  /**
   * Sends one record (number, string, JSON value, bytes, typed array, tensor, structured value).
   * Resolves once its bytes are copied (a ring view may then be released). Small records wait in a
   * batch for up to `linger` ms; the writer waits when the reader is behind by more than the window.
   */
  async write(value: unknown): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.closed) throw this.error('ERR_LINK_CLOSED', 'the writer is closed');
    const rec = encodeRecord(value);
    const seq = this.records++;
    this.bytes += rec.length;
    const size = RECORD_HEADER + pad8(rec.length);
    if (size <= this.batchBytes) {
      if (this.batchOff + size > HEADER + this.batchBytes) await this.flush();
      this.append(rec, seq);
      if (this.batchOff + RECORD_HEADER + 8 > HEADER + this.batchBytes) await this.flush();
      else this.lingerTimer ??= setTimeout(() => this.flush().catch((err) => (this.failure ??= err)), this.linger);
      return;
    }
    await this.flush();
    if (rec.length <= this.chunkSize - RECORD_HEADER) {
      // One record, one message.
      const msg = new Uint8Array(HEADER + RECORD_HEADER + rec.length);
      this.put(msg, HEADER, rec);
      await this.send(msg, KIND_RECORDS, 1, seq, msg.byteLength - HEADER);
      return;
    }
    // Chunks of one record.
    const chunks = Math.ceil(rec.length / this.chunkSize);
    let part = 0, partOff = 0, recordCrc = 0;
    for (let c = 0; c < chunks; c++) {
      const len = Math.min(this.chunkSize, rec.length - c * this.chunkSize);
      const msg = new Uint8Array(HEADER + len);
      let off = HEADER;
      while (off < HEADER + len) {
        const p = rec.parts[part]!;
        const n = Math.min(p.byteLength - partOff, HEADER + len - off);
        msg.set(p.subarray(partOff, partOff + n), off);
        off += n;
        partOff += n;
        if (partOff === p.byteLength) {
          part++;
          partOff = 0;
        }
      }
      recordCrc = crc32(msg.subarray(HEADER), recordCrc);
      await this.send(msg, KIND_CHUNK, c, seq, len, (dv) => {
        dv.setUint32(32, chunks, true);
        dv.setFloat64(48, rec.length, true);
        dv.setUint16(36, rec.type, true);
        dv.setUint16(38, rec.flags, true);
        if (c === chunks - 1) dv.setUint32(44, recordCrc, true);
      });
    }
  }

  /** Writes a record's header and bytes at `off` of `msg`; returns the offset after it (padded). */
  private put(msg: Uint8Array, off: number, rec: EncodedRecord): number {
    const dv = new DataView(msg.buffer, msg.byteOffset + off, RECORD_HEADER);
    dv.setUint16(0, rec.type, true);
    dv.setUint16(2, rec.flags, true);
    dv.setUint32(4, rec.length, true);
    let o = off + RECORD_HEADER;
    for (const p of rec.parts) {
      msg.set(p, o);
      o += p.byteLength;
    }
    return off + RECORD_HEADER + pad8(rec.length);
  }

  private append(rec: EncodedRecord, seq: number): void {
    if (this.batchCount === 0) this.batchFirst = seq;
    this.batchOff = this.put(this.batch, this.batchOff, rec);
    this.batchCount++;
  }

  /** Sends the batch being filled, if any. */
  private flush(): Promise<void> {
    clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    if (this.batchCount === 0) return Promise.resolve();
    const msg = this.batch.subarray(0, this.batchOff);
    const count = this.batchCount, first = this.batchFirst;
    this.batch = new Uint8Array(HEADER + this.batchBytes);
    this.batchOff = HEADER;
    this.batchCount = 0;
    return this.send(msg, KIND_RECORDS, count, first, msg.byteLength - HEADER);
  }

  /** Numbers a message, fills its header and publishes it after the messages before it. */
  private send(msg: Uint8Array, kind: number, count: number, first: number, bodyLength: number, extra?: (dv: DataView) => void): Promise<void> {
    const mseq = this.mseq++;
    const dv = this.header(msg, kind, count, mseq, first);
    extra?.(dv);
    dv.setUint32(40, crc32(msg.subarray(HEADER, HEADER + bodyLength)), true);
    const p = this.sending.then(() => this.publish(msg, `${this.tag}:${mseq}`));
    this.sending = p.catch(() => undefined);
    return p;
  }

  private async publish(payload: Uint8Array, id: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.sinceCheck += payload.byteLength;
    if (this.sinceCheck >= this.window / 4) await this.waitForRoom();
    // Bounded in messages and in bytes (a quarter of the window), so the stream never holds much
    // more than the window.
    while (this.inflight.length >= this.maxInflight || (this.inflight.length && this.inflightBytes + payload.byteLength > this.window / 4)) {
      const first = this.inflight.shift()!;
      await first.done;
      this.inflightBytes -= first.bytes;
      if (this.failure) throw this.failure;
    }
    const p = this.publishOne(payload, id).then(
      () => {
        this.messages++;
      },
      (err) => {
        this.failure ??= err;
      },
    );
    this.inflight.push({ done: p, bytes: payload.byteLength });
    this.inflightBytes += payload.byteLength;
  }

  /** Publishes one message, retrying (same message id: the server drops duplicates) while the server is busy or the stream full. */
  private async publishOne(payload: Uint8Array, id: string): Promise<void> {
    const deadline = Date.now() + this.timeout;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.conn.js.publish(this.names.subject, payload, { msgID: id, timeout: this.conn.timeout });
        return;
      } catch (err) {
        const full = /maximum (bytes|messages)|resource limits exceeded/i.test(String((err as Error)?.message));
        if (!(full || isTransient(err)) || Date.now() > deadline || this.closed) {
          throw this.conn.error(err, `cannot publish message ${id.slice(id.indexOf(':') + 1)} to link '${this.link}' (${attempt + 1} attempt(s))`, this.names.subject);
        }
        await sleep(Math.min(500, 5 * 2 ** Math.min(attempt, 7)));
      }
    }
  }

  /** Waits while more than the window's bytes wait unread in the stream. */
  private async waitForRoom(): Promise<void> {
    this.sinceCheck = 0;
    const deadline = Date.now() + this.timeout;
    for (let pause = 2; ; pause = Math.min(pause * 2, 200)) {
      const info = await this.conn.retry(`cannot read the state of link '${this.link}'`, this.names.stream, () => this.conn.jsm.streams.info(this.names.stream), this.timeout);
      if (info.state.bytes <= this.window) return;
      if (Date.now() > deadline) {
        throw this.error('ERR_LINK_TIMEOUT', `the reader has not read for ${this.timeout / 1000} s (${info.state.bytes} bytes wait in the stream)`);
      }
      await sleep(pause);
    }
  }

  /** Sends what is batched, waits for every publish, sends the end of the stream, and closes. */
  async end(): Promise<LinkSummary> {
    try {
      await this.flush();
      await this.sending;
      await Promise.all(this.inflight.splice(0).map((x) => x.done));
      this.inflightBytes = 0;
      if (this.failure) throw this.failure;
      const end = new Uint8Array(HEADER);
      this.header(end, KIND_END, 0, this.mseq, this.records);
      await this.conn.retry(`cannot end link '${this.link}'`, this.names.subject, () => this.conn.js.publish(this.names.subject, end, { msgID: `${this.tag}:end` }), this.timeout);
      this.messages += 2; // begin and end
      return { link: this.link, records: this.records, bytes: this.bytes, messages: this.messages };
    } finally {
      await this.close();
    }
  }

  /**
   * Closes without marking the end: what was written is still sent, and the reader then times out
   * or sees the next writer start.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush().catch(() => undefined);
    this.closed = true;
    await this.sending;
    await Promise.allSettled(this.inflight.splice(0).map((x) => x.done));
    if (this.owned) await this.conn.close();
  }
}

/** A link message's header, as read. */
interface Parsed {
  kind: number;
  count: number;
  tag: number;
  mseq: number;
  first: number;
  chunks: number;
  type: number;
  flags: number;
  bodyCrc: number;
  recordCrc: number;
  length: number;
  body: Uint8Array;
  msg: JsMsg;
}

/** The reader's durable consumer: created when missing (by a reader, or to recover lost deliveries). */
async function ensureReaderConsumer(conn: ClusterConnection, names: LinkNames, link: string): Promise<void> {
  await conn.retry(`cannot create the reader of link '${link}'`, names.stream, async () => {
    try {
      await conn.jsm.consumers.info(names.stream, READER);
    } catch (err) {
      if (!/not found/i.test(String((err as Error).message))) throw err;
      await conn.jsm.consumers.add(names.stream, {
        durable_name: READER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(120_000),
        max_deliver: -1,
        max_ack_pending: 100_000,
      });
    }
  });
}

/**
 * Reads a link's records in order, exactly once. Iterate it (`for await`); a record's bytes and
 * tensors are its own (not reused). A message is acknowledged once the loop asks for the record
 * after its last one; a reader that stops mid-way gives back the messages it has not finished, so
 * the next reader starts with the first record of the message it stopped in.
 *
 * Deliveries lost on the way (a server dying with messages in its buffers: the consumer counts them
 * delivered, and would redeliver them only after its ack wait) are noticed from the consumer's
 * delivery sequence, which has a gap, or runs ahead of what arrived while the reader waits; the
 * reader then creates its consumer anew, which delivers again everything the stream still holds
 * (every message not acknowledged), and drops what it has already.
 */
export class LinkReader implements AsyncIterable<unknown> {
  private messages?: ConsumerMessages;
  private readonly timeout: number;
  /** Records handed on so far. */
  records = 0;
  /** Times the reader re-created its consumer to get deliveries lost in a failure again. */
  recoveries = 0;
  private closed = false;

  private constructor(
    private readonly conn: ClusterConnection,
    private readonly owned: boolean,
    private readonly names: LinkNames,
    readonly link: string,
    private readonly options: LinkOptions,
  ) {
    this.timeout = options.timeout ?? DEFAULT_TIMEOUT;
  }

  /** Connects (or uses `target`'s connection) and attaches to the link's durable consumer. */
  static async open(target: ClusterTarget, options: LinkOptions): Promise<LinkReader> {
    const { conn, owned } = await useConnection(target);
    try {
      const names = linkNames(conn, options.link);
      await ensureLinkStream(conn, names, options, false);
      await ensureReaderConsumer(conn, names, options.link);
      return new LinkReader(conn, owned, names, options.link, options);
    } catch (err) {
      if (owned) await conn.close();
      throw err;
    }
  }

  private fail(code: string, message: string, cause?: unknown): LinkError {
    return new LinkError(code, `link '${this.link}': ${message} (server ${this.conn.server()}, subject ${this.names.subject})`, { server: this.conn.server(), subject: this.names.subject, cause });
  }

  private header(d: Uint8Array, what: string): Omit<Parsed, 'msg'> {
    if (d.byteLength < HEADER) throw this.fail('ERR_LINK_CHECKSUM', `${what} is ${d.byteLength} bytes, shorter than a link header`);
    const dv = new DataView(d.buffer, d.byteOffset, HEADER);
    if (dv.getUint32(0, true) !== MAGIC) throw this.fail('ERR_LINK_CHECKSUM', `${what} is not a ringpipe link message`);
    return {
      kind: dv.getUint8(4),
      count: dv.getUint32(8, true),
      tag: dv.getUint32(12, true),
      mseq: dv.getFloat64(16, true),
      first: dv.getFloat64(24, true),
      chunks: dv.getUint32(32, true),
      type: dv.getUint16(36, true),
      flags: dv.getUint16(38, true),
      bodyCrc: dv.getUint32(40, true),
      recordCrc: dv.getUint32(44, true),
      length: dv.getFloat64(48, true),
      body: d.subarray(HEADER),
    };
  }

  private parse(msg: JsMsg): Parsed {
    return { ...this.header(msg.data, `message ${msg.seq}`), msg };
  }

  /** The records of a records message, checked. */
  private unpack(p: Parsed): unknown[] {
    const out: unknown[] = [];
    const b = p.body;
    let off = 0;
    for (let i = 0; i < p.count; i++) {
      if (off + RECORD_HEADER > b.byteLength) throw this.fail('ERR_LINK_CHECKSUM', `message ${p.mseq}: record ${p.first + i} is cut short`);
      const dv = new DataView(b.buffer, b.byteOffset + off, RECORD_HEADER);
      const type = dv.getUint16(0, true), flags = dv.getUint16(2, true), length = dv.getUint32(4, true);
      if (off + RECORD_HEADER + length > b.byteLength) throw this.fail('ERR_LINK_CHECKSUM', `message ${p.mseq}: record ${p.first + i} is cut short`);
      out.push(decodeRecord(type, flags, b.subarray(off + RECORD_HEADER, off + RECORD_HEADER + length)));
      off += RECORD_HEADER + pad8(length);
    }
    return out;
  }

  /**
   * The header of the oldest message the stream still holds (every message not acknowledged yet),
   * or undefined when it cannot be read. Deliveries can come in another order than the stream's.
   */
  private async oldest(): Promise<Omit<Parsed, 'msg'> | undefined> {
    try {
      return await this.conn.retry(`cannot read link '${this.link}'`, this.names.stream, async () => {
        const info = await this.conn.jsm.streams.info(this.names.stream);
        if (!info.state.messages) return undefined;
        const sm = await this.conn.jsm.streams.getMessage(this.names.stream, { seq: info.state.first_seq });
        return sm ? this.header(sm.data, `stream message ${sm.seq}`) : undefined;
      }, 10_000);
    } catch {
      return undefined;
    }
  }

  /** The link's records, in order, each once; ends when the writer ended the link. */
  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    const prefetchBytes = Math.max(this.options.prefetchBytes ?? 8 << 20, 2 * this.conn.maxPayload);
    // The consumer being read: re-created (a new generation) when deliveries were lost.
    let messages!: ConsumerMessages;
    let it!: AsyncIterator<JsMsg>;
    let waiting: Promise<IteratorResult<JsMsg>> | undefined; // it.next() not answered yet
    let lastDelivery = 0; // the consumer's delivery sequence of the last message that arrived
    let lost = false;
    const attach = async () => {
      const consumer = await this.conn.retry(`cannot attach to link '${this.link}'`, this.names.stream, () => this.conn.js.consumers.get(this.names.stream, READER));
      // Deliveries before this reader (to earlier readers) do not count as lost.
      lastDelivery = (await consumer.info(true)).delivered.consumer_seq;
      messages = await consumer.consume({ max_bytes: prefetchBytes, expires: PULL_EXPIRES });
      this.messages = messages;
      it = messages[Symbol.asyncIterator]();
      waiting = undefined;
      lost = false;
    };
    /** Re-creates the consumer: it delivers again every message still in the stream (not acknowledged). */
    const recover = async () => {
      this.recoveries++;
      messages.stop();
      waiting = undefined;
      await this.conn.retry(`cannot reset the reader of link '${this.link}'`, this.names.stream, async () => {
        try {
          await this.conn.jsm.consumers.delete(this.names.stream, READER);
        } catch (err) {
          if (!/not found/i.test(String((err as Error).message))) throw err;
        }
      });
      // Just after a deletion the cluster may still know the old consumer for a moment.
      for (let attempt = 0; ; attempt++) {
        try {
          await ensureReaderConsumer(this.conn, this.names, this.link);
          break;
        } catch (err) {
          if (attempt >= 50 || !/already|exists|in use/i.test(String((err as Error)?.message))) throw err;
          await sleep(200);
        }
      }
      await attach();
    };
    await attach();

    let tag: number | undefined;
    let expected = 0;            // next message number to hand on
    let nextRecord = -1;         // next record number (checked against each message's first)
    let delivered = false;       // handed on a record of `tag`
    const pending = new Map<number, Parsed>();
    let assembling: { bytes: Uint8Array; off: number; crc: number; msgs: JsMsg[]; next: number } | undefined;
    let endCount = -1;
    let endMsg: JsMsg | undefined;
    // Messages received and not acknowledged, by stream sequence, each as last delivered (a
    // redelivery of one of them is not passed on again, and acknowledgements go through the latest
    // delivery, which is the current consumer's): given back (nak) at once if the reader stops early.
    const held = new Map<number, JsMsg>();
    const ack = (msg: JsMsg) => {
      (held.get(msg.seq) ?? msg).ack();
      held.delete(msg.seq);
    };
    const hold = (msg: JsMsg): boolean => {
      const copy = held.has(msg.seq);
      held.set(msg.seq, msg);
      return !copy;
    };

    const next = async (): Promise<Parsed> => {
      const deadline = Date.now() + this.timeout;
      for (;;) {
        if (lost) {
          try {
            await recover();
          } catch (err) {
            throw this.fail('ERR_LINK_SEQUENCE', `messages delivered after record ${nextRecord - 1} never arrived, and the reader could not get them again: ${(err as Error)?.message ?? err}`, err);
          }
        }
        waiting ??= it.next();
        const current = waiting;
        let timer: NodeJS.Timeout | undefined;
        const wait = Math.max(1, Math.min(LOSS_CHECK, deadline - Date.now()));
        let r: IteratorResult<JsMsg> | 'idle';
        try {
          r = await Promise.race([current, new Promise<'idle'>((res) => (timer = setTimeout(() => res('idle'), wait)))]);
        } catch (err) {
          throw this.fail('ERR_LINK_CLOSED', `the consumer stopped: ${(err as Error)?.message ?? err}`);
        } finally {
          clearTimeout(timer);
        }
        if (r !== 'idle') {
          if (waiting === current) waiting = undefined;
          if (r.done) throw this.fail('ERR_LINK_CLOSED', 'the consumer stopped');
          const msg = r.value;
          const dseq = msg.info.deliverySequence;
          // A gap: the messages delivered in between never arrived (a server died with them).
          if (dseq > lastDelivery + 1) lost = true;
          lastDelivery = dseq;
          if (!hold(msg)) continue; // a redelivery of a message held already
          return this.parse(msg);
        }
        if (Date.now() >= deadline) {
          const waits = pending.size ? `; ${pending.size} later message(s) wait for message ${expected}` : '';
          throw this.fail('ERR_LINK_TIMEOUT', `no record for ${this.timeout / 1000} s after record ${nextRecord - 1}${waits}: is the writer running?`);
        }
        // Nothing arrives: has the consumer delivered messages that never arrived (or is it gone)?
        const info = await this.conn.jsm.consumers.info(this.names.stream, READER).catch((err) => {
          if (/consumer not found/i.test(String((err as Error)?.message))) lost = true;
          return undefined;
        });
        // Or are messages out that this reader does not hold? The link has one reader at a time,
        // so they went to an earlier one that stopped or crashed before giving them back: get them
        // now rather than after the ack wait.
        if (info && (info.delivered.consumer_seq > lastDelivery || info.num_ack_pending > held.size)) lost = true;
      }
    };

    try {
      for (;;) {
        if (endCount >= 0 && nextRecord >= endCount) break;
        const m = await next();
        if (m.kind === KIND_BEGIN) {
          ack(m.msg);
          if (m.tag === tag) continue;
          if (delivered) throw this.fail('ERR_LINK_RESTARTED', `its writer started over after ${this.records} record(s) were read; restart the reading side too`);
          tag = m.tag;
          expected = 0;
          nextRecord = 0;
          for (const p of pending.values()) ack(p.msg);
          pending.clear();
          for (const x of assembling?.msgs ?? []) ack(x);
          assembling = undefined;
          continue;
        }
        if (tag === undefined) {
          // The first message is not the beginning: its delivery may have been lost (it comes
          // again), or an earlier reader consumed the beginning of the stream and stopped: resume
          // with the oldest message the stream holds, else with this one at a record boundary.
          const o = await this.oldest();
          if (o && o.tag === m.tag && o.kind === KIND_BEGIN) {
            tag = m.tag;
            expected = 0;
            nextRecord = 0;
          } else if (o && o.tag === m.tag && (o.kind === KIND_RECORDS || (o.kind === KIND_CHUNK && o.count === 0)) && o.mseq <= m.mseq) {
            tag = m.tag;
            expected = o.mseq;
            nextRecord = o.first;
          } else if (m.kind === KIND_RECORDS || (m.kind === KIND_CHUNK && m.count === 0)) {
            tag = m.tag;
            expected = m.mseq;
            nextRecord = m.first;
          } else {
            ack(m.msg);
            continue;
          }
        }
        if (m.tag !== tag) {
          ack(m.msg); // a previous writer's leftovers
          continue;
        }
        if (m.kind === KIND_END) {
          endCount = m.first;
          endMsg = m.msg;
          continue;
        }
        if (m.mseq < expected || pending.has(m.mseq)) {
          ack(m.msg); // a second copy of what arrived already
          continue;
        }
        pending.set(m.mseq, m);
        // Hand on what is complete, in order.
        for (let p = pending.get(expected); p; p = pending.get(expected)) {
          pending.delete(expected);
          expected++;
          if (crc32(p.body) !== p.bodyCrc) throw this.fail('ERR_LINK_CHECKSUM', `message ${p.mseq} (records from ${p.first}): checksum mismatch`);
          if (p.first !== nextRecord) throw this.fail('ERR_LINK_SEQUENCE', `message ${p.mseq} starts at record ${p.first}, record ${nextRecord} was expected`);
          if (p.kind === KIND_CHUNK) {
            if (p.count === 0) assembling = { bytes: new Uint8Array(p.length), off: 0, crc: 0, msgs: [], next: 0 };
            if (!assembling || p.count !== assembling.next) throw this.fail('ERR_LINK_SEQUENCE', `record ${p.first}: chunk ${p.count + 1}/${p.chunks} out of place`);
            if (assembling.off + p.body.byteLength > assembling.bytes.byteLength) throw this.fail('ERR_LINK_CHECKSUM', `record ${p.first}: chunks longer than the record`);
            assembling.bytes.set(p.body, assembling.off);
            assembling.off += p.body.byteLength;
            assembling.crc = crc32(p.body, assembling.crc);
            assembling.msgs.push(p.msg);
            assembling.next++;
            if (assembling.next < p.chunks) continue;
            if (assembling.off !== assembling.bytes.byteLength) throw this.fail('ERR_LINK_CHECKSUM', `record ${p.first}: ${assembling.off} bytes arrived, ${assembling.bytes.byteLength} announced`);
            if (assembling.crc !== p.recordCrc) throw this.fail('ERR_LINK_CHECKSUM', `record ${p.first}: checksum of the whole record mismatches`);
            const value = decodeRecord(p.type, p.flags, assembling.bytes);
            const msgs = assembling.msgs;
            assembling = undefined;
            nextRecord++;
            delivered = true;
            this.records++;
            yield value;
            for (const x of msgs) ack(x);
            continue;
          }
          const values = this.unpack(p);
          for (const value of values) {
            nextRecord++;
            delivered = true;
            this.records++;
            yield value;
          }
          ack(p.msg);
        }
      }
      if (endMsg) ack(endMsg);
      for (const p of pending.values()) ack(p.msg);
      // Make sure the acknowledgements reached the server before the stream is reported done.
      await this.conn.nc.flush().catch(() => undefined);
    } finally {
      // Stopped early (break, error) or done: stop fetching, and give back at once what was fetched
      // and not finished, so the next reader gets it without waiting for the ack timeout.
      messages.stop();
      // Messages of the last pull request can arrive until it expires: take them all (a gap in
      // arrivals proves nothing on a loaded machine), or they would wait out the ack timeout.
      const drainUntil = Date.now() + PULL_EXPIRES + 1_000;
      while (Date.now() < drainUntil) {
        let timer: NodeJS.Timeout | undefined;
        const r = await Promise.race([
          (waiting ?? it.next()).catch(() => ({ done: true as const, value: undefined })),
          new Promise<'timeout'>((res) => (timer = setTimeout(() => res('timeout'), Math.max(1, drainUntil - Date.now())))),
        ]);
        clearTimeout(timer);
        if (r === 'timeout' || r.done) break;
        waiting = undefined;
        hold(r.value);
      }
      // Redelivered once this reader's last pull request has expired (a message redelivered before
      // would go to the pull of a reader that is gone, and wait for the ack timeout).
      for (const m of held.values()) m.nak(PULL_EXPIRES + 500);
      held.clear();
      await this.conn.nc.flush().catch(() => undefined);
      await this.close();
    }
  }

  /** Stops reading and closes the connection if this reader opened it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.messages?.stop();
    if (this.owned) await this.conn.close();
  }
}

// ---- Segments ----------------------------------------------------------------------------------

/** Sink code of {@link jetstreamSink}: exported so workers can import it. */
export class JetStreamSinkSegment {
  private writer?: LinkWriter;
  /** Opens the link's writer (a writer starting over purges the link). */
  async setup(options: JetStreamLinkOptions): Promise<void> {
    this.writer = await LinkWriter.open(options, options);
  }
  /** Writes one record to the link. */
  run(record: unknown): Promise<void> {
    return this.writer!.write(record);
  }
  /** Ends the link, once the reader may read everything; returns what was sent. */
  async teardown(): Promise<LinkSummary> {
    return this.writer!.end();
  }
}

/** Source code of {@link jetstreamSource}: exported so workers can import it. */
export async function* jetstreamSourceRecords(options: JetStreamLinkOptions, _ctx?: SegmentContext): AsyncGenerator<unknown> {
  const reader = await LinkReader.open(options, options);
  try {
    yield* reader;
  } finally {
    await reader.close();
  }
}

const here = import.meta.url;

/**
 * A Sink that publishes its input stream to the JetStream link `options.link`; the run's result
 * for it is a {@link LinkSummary}. Run one replica (the default): a link has one writer.
 */
export function jetstreamSink(options: JetStreamLinkOptions & { name?: string }): Sink<JetStreamLinkOptions> {
  checkName('link', options.link);
  const { name, ...rest } = options;
  return new Sink(JetStreamSinkSegment, { name: name ?? `jetstream-sink(${options.link})`, options: rest, module: here, export: 'JetStreamSinkSegment' });
}

/**
 * A Source that reads the JetStream link `options.link` (written by a {@link jetstreamSink} or a
 * {@link LinkWriter}, on this machine or another) until its writer ends it.
 */
export function jetstreamSource(options: JetStreamLinkOptions & { name?: string }): Source<JetStreamLinkOptions> {
  checkName('link', options.link);
  const { name, ...rest } = options;
  return new Source(jetstreamSourceRecords, { name: name ?? `jetstream-source(${options.link})`, options: rest, module: here, export: 'jetstreamSourceRecords' });
}
