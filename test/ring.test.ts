import { describe, expect, it } from 'vitest';
import { Ring, RingReader, RingWriter, END, EMPTY, maxPayload } from '../src/ring/index.js';
import { native, layout } from '../src/native.js';
import { consume, produce } from './helpers/ring-ends.js';
import { check, fill, lengthOf } from './helpers/records.js';
import { inProcess, inThread } from './helpers/spawn.js';

const peer = new URL('./helpers/ring-peer.ts', import.meta.url);

describe('ring layout', () => {
  it('comes from the addon and matches the header', () => {
    const ring = Ring.create({ capacity: 4096, readers: 3 });
    expect(layout.recordHeader).toBe(16);
    expect(ring.capacity).toBe(4096);
    expect(ring.readerSlots).toBe(3);
    expect(ring.data % 64).toBe(0);
    expect(ring.data).toBe(Math.ceil((layout.offReaders + 3 * layout.line) / 64) * 64);
    ring.close();
  });

  it('rejects bad options with ERR_INVALID_ARG', () => {
    expect(() => Ring.create({ capacity: 5000 })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => Ring.create({ readers: 0 })).toThrow('ring readers must be an integer from 1 to 64, got 0');
    expect(() => Ring.create({ capacity: 5000 })).toThrow('ring capacity must be a power of two from 4096 to 2^30 bytes, got 5000');
  });
});

describe('ring protocol (single thread)', () => {
  it('claims in place, commits, reads a view, releases', () => {
    const ring = Ring.create({ capacity: 4096 });
    const w = new RingWriter(ring);
    const r = new RingReader(ring);
    expect(r.next()).toBe(EMPTY);
    const off = w.claim(12, 7, 42, 64);
    expect(off % 64).toBe(0);
    new Float32Array(w.bytes.buffer, off, 3).set([1.5, 2.5, 3.5]);
    w.commit();
    expect(r.next()).toBe(EMPTY);  // not published yet: batches of 32
    w.flush();
    const got = r.next();
    expect(got).toBe(off);
    expect([r.length, r.type, r.seq]).toEqual([12, 7, 42]);
    expect(Array.from(new Float32Array(r.bytes.buffer, got, 3))).toEqual([1.5, 2.5, 3.5]);
    expect(r.next()).toBe(got);  // peek until release
    r.release();
    expect(r.next()).toBe(EMPTY);
    w.close();
    expect(r.next()).toBe(END);
    ring.close();
  });

  it('aborting a claim leaves nothing behind', () => {
    const ring = Ring.create({ capacity: 4096 });
    const w = new RingWriter(ring);
    const r = new RingReader(ring);
    w.claim(100, 1);
    w.abort();
    w.claim(4, 2, 9);
    w.commit();
    w.close();
    expect(r.next()).toBeGreaterThan(0);
    expect(r.seq).toBe(9);
    r.release();
    expect(r.next()).toBe(END);
    ring.close();
  });

  it('says clearly when a record is too large or the writer is closed', () => {
    const ring = Ring.create({ capacity: 4096 });
    const w = new RingWriter(ring);
    expect(() => w.claim(maxPayload(4096) + 1, 1)).toThrow(expect.objectContaining({ code: 'ERR_RECORD_TOO_LARGE' }));
    expect(() => w.claim(maxPayload(4096) + 1, 1)).toThrow(/larger capacity/);
    expect(w.claim(maxPayload(4096), 1)).toBeGreaterThan(0);
    w.commit();
    w.close();
    expect(() => w.claim(1, 1)).toThrow(expect.objectContaining({ code: 'ERR_RING_CLOSED' }));
    ring.close();
  });

  it('wraps around at every 16-byte offset without losing or tearing a record', async () => {
    for (const align of [16, 64] as const) {
      const ring = Ring.create({ capacity: 4096 });
      const spec = { count: 30_000, seed: 5, maxLen: maxPayload(4096) - 64, align, spin: 0 };
      const [res] = await Promise.all([consume(ring, 0, { producers: 1, seed: 5, maxLen: spec.maxLen, spin: 0 }), produce(ring, spec)]);
      expect(res.counts[0]).toBe(30_000);
      expect(res.bad).toBe(0);
      ring.close();
    }
  });

  it('an aborted ring wakes a parked reader with ERR_RING_ABORTED', async () => {
    const ring = Ring.create({ capacity: 4096 });
    const r = new RingReader(ring);
    const waiting = r.waitForData().then(() => r.next());
    setTimeout(() => ring.abort(), 20);
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_RING_ABORTED' });
    ring.close();
  });

  it('waits time out with ERR_TIMEOUT', async () => {
    const ring = Ring.create({ capacity: 4096 });
    await expect(new RingReader(ring).waitForData({ timeoutMs: 30 })).rejects.toMatchObject({ code: 'ERR_TIMEOUT' });
    ring.close();
  });

  it('a parked end is woken once the other end passed what it asked for, or stops; not per batch', async () => {
    const ring = Ring.create({ capacity: 1 << 16 });  // a parked end asks for a quarter: 16 KiB
    const w = new RingWriter(ring, { publishEvery: 4, spin: 0 });
    const r = new RingReader(ring, 0, { releaseEvery: 4, spin: 0 });
    const word = (off: number) => Atomics.load(ring.i32, off >> 2);
    const put = (n: number) => {
      for (let i = 0; i < n; i++) {
        if (w.claim(240, 1) < 0) return i;  // 256 bytes a record
        w.commit();
      }
      return n;
    };
    // Data: 4 KiB published in batches of 4 stays below the reader's ask; the writer stopping wakes it.
    const dataSeq = word(layout.offDataSeq);
    const parked = r.waitForData();
    expect(put(16)).toBe(16);
    expect(word(layout.offDataSeq)).toBe(dataSeq);
    w.flush();
    expect(word(layout.offDataSeq)).toBe(dataSeq + 1);
    await parked;
    while (r.next() >= 0) r.release();
    // A writer that never stops still reaches a parked reader within its first short sleep.
    const late = r.waitForData();
    put(4);
    const t0 = Date.now();
    await late;
    expect(Date.now() - t0).toBeLessThan(1000);
    while (r.next() >= 0) r.release();
    r.flush();
    // Space: a full ring; the writer asks for a quarter; releases in batches wake it only past that.
    put(1000);
    const spaceSeq = word(layout.offSpaceSeq);
    const waiting = w.waitForSpace(240);
    for (let i = 0; i < 32; i++) {  // 8 KiB
      expect(r.next()).toBeGreaterThanOrEqual(0);
      r.release();
    }
    expect(word(layout.offSpaceSeq)).toBe(spaceSeq);
    for (let i = 0; i < 36; i++) {  // 17 KiB in all: a quarter and the record it waits to write
      r.next();
      r.release();
    }
    expect(word(layout.offSpaceSeq)).toBe(spaceSeq + 1);
    await waiting;
    ring.close();
  });

  it('copy path: write() and read()', async () => {
    const ring = Ring.create({ capacity: 1 << 16 });
    const w = new RingWriter(ring);
    const r = new RingReader(ring);
    const sent = Array.from({ length: 500 }, (_, i) => Uint8Array.from({ length: lengthOf(i, 3, 300) }, (_, k) => (i * 7 + k) & 255));
    const reading = (async () => {
      const got: Uint8Array[] = [];
      for (let b; (b = await r.read()); ) got.push(b);
      return got;
    })();
    for (const s of sent) await w.write(s);
    w.close();
    expect(await reading).toEqual(sent);
    ring.close();
  });
});

describe('ring stress across threads and processes', () => {
  it('2 threads: 2M random-size records, every byte checked', async () => {
    const ring = Ring.create({ capacity: 1 << 16 });
    const spec = { count: 2_000_000, seed: 1, maxLen: 256 };
    const [res] = await Promise.all([
      inThread<any>(peer, { role: 'consume', ring: ring.descriptor, spec: { producers: 1, seed: 1, maxLen: 256 } }),
      inThread<void>(peer, { role: 'produce', ring: ring.descriptor, spec }),
    ]);
    expect(res).toEqual({ counts: [2_000_000], bad: 0, misaligned: 0 });
    ring.close();
  });

  it('4 producer threads into one multi-producer ring', async () => {
    const ring = Ring.create({ capacity: 1 << 15, writers: 4 });
    const producers = [0, 1, 2, 3].map((p) =>
      inThread<void>(peer, { role: 'produce', ring: ring.descriptor, spec: { count: 100_000, seed: 2, maxLen: 100, producer: p } }),
    );
    const [res] = await Promise.all([consume(ring, 0, { producers: 4, seed: 2, maxLen: 100 }), ...producers]);
    expect(res.counts).toEqual([100_000, 100_000, 100_000, 100_000]);
    expect(res.bad).toBe(0);
    ring.close();
  });

  it('broadcast: 3 readers, one slow, all see every record', async () => {
    const ring = Ring.create({ capacity: 1 << 13, readers: 3 });
    const spec = { producers: 1, seed: 4, maxLen: 200 };
    const readers = [0, 1, 2].map((slot) =>
      inThread<any>(peer, { role: 'consume', ring: ring.descriptor, slot, spec: { ...spec, slowEvery: slot === 0 ? 2000 : 0 } }),
    );
    const all = await Promise.all([...readers, produce(ring, { count: 100_000, seed: 4, maxLen: 200 })]);
    for (const res of all.slice(0, 3)) expect(res).toEqual({ counts: [100_000], bad: 0, misaligned: 0 });
    ring.close();
  });

  it('2 processes over named shared memory: 2M records', async () => {
    const ring = Ring.create({ capacity: 1 << 16, crossProcess: true });
    expect(ring.name).toMatch(/^\/ringpipe-u\d+-p\d+-s\d+-\d+$/);
    const [res] = await Promise.all([
      consume(ring, 0, { producers: 1, seed: 6, maxLen: 256 }),
      inProcess<void>(peer, { role: 'produce', ring: ring.descriptor, spec: { count: 2_000_000, seed: 6, maxLen: 256, align: 64 } }),
    ]);
    expect(res.counts[0]).toBe(2_000_000);
    expect(res.bad).toBe(0);
    ring.close();
  });

  it('a producer process killed with SIGKILL: the reader ends with ERR_PEER_DEAD, not a hang', async () => {
    const ring = Ring.create({ capacity: 1 << 12, crossProcess: true });
    let child: import('node:child_process').ChildProcess | undefined;
    // 1e9 records never finish: the producer blocks on a full ring until it is killed.
    const producing = inProcess<void>(peer, { role: 'produce', ring: ring.descriptor, spec: { count: 1e9, seed: 1, maxLen: 64 } }, (c) => (child = c)).catch(() => {});
    const r = new RingReader(ring);
    let read = 0;
    const reading = (async () => {
      for (;;) {
        const off = r.next();
        if (off === END) return;
        if (off < 0) {
          await r.waitForData();
          continue;
        }
        if (++read === 1000) child!.kill('SIGKILL');
        r.release();
      }
    })();
    await expect(reading).rejects.toMatchObject({ code: 'ERR_PEER_DEAD' });
    await producing;
    expect(read).toBeGreaterThanOrEqual(1000);
    ring.close();
  });
});

describe('JS and C++ ends agree on the protocol', () => {
  it('C++ writer -> JS reader, every byte checked', async () => {
    const ring = Ring.create({ capacity: 1 << 14, crossProcess: true });
    const [res] = await Promise.all([consume(ring, 0, { producers: 1, seed: 8, maxLen: 300 }), native.cppProduce(ring.buffer, 200_000, 8, 300, 64)]);
    expect(res).toEqual({ counts: [200_000], bad: 0, misaligned: 0 });
    ring.close();
  });

  it('JS writer -> C++ reader, every byte checked', async () => {
    const ring = Ring.create({ capacity: 1 << 14, crossProcess: true });
    const [res] = await Promise.all([native.cppConsume(ring.buffer, 0, 9, 300), produce(ring, { count: 200_000, seed: 9, maxLen: 300, producer: 0, align: 64 })]);
    expect(res).toEqual({ count: 200_000, bad: 0 });
    ring.close();
  });

  it('testdata mirrors: JS fill/check agree with the C++ generator', () => {
    const b = new Uint8Array(64);
    fill(b, 0, 5, 64, 3);
    expect(check(b, 0, 5, 64, 3)).toBe(true);
    b[10]! ^= 1;
    expect(check(b, 0, 5, 64, 3)).toBe(false);
  });
});
