// The writing end of a ring. Hot path: claim() -> fill the payload in place -> commit(). Commits
// become visible to readers in batches (publishEvery records or capacity/8 bytes, or flush()):
// publishing stores the shared write position, and doing that per record makes the two cores
// fight over its cache line.
import { layout as L, RECORD_HEADER } from '../native.js';
import { RingError } from '../errors.js';
import { attachRing, maxPayload, RingMemory, type RingDescriptor } from './ring.js';
import { abortedError, DEFAULT_SPIN, park, parkSync, SpinBudget, type ParkSpec, type WaitOptions } from './wait.js';

/** Options of a {@link RingWriter}. */
export interface WriterOptions {
  /** Publish after this many commits. Default 32. */
  publishEvery?: number;
  /** Checks before parking. Default ~20-50 us worth; 0 when the other end runs on this same thread. */
  spin?: number;
}

const HDR = RECORD_HEADER;

/**
 * The writing end of a ring: `claim()` room, fill the payload in place at the returned offset of
 * `bytes`, `commit()`; commits become visible to readers in batches (or at `flush()`); `close()`
 * ends the stream.
 */
export class RingWriter {
  readonly mem: RingMemory;
  /** The whole buffer as bytes; claim() returns offsets into it. */
  readonly bytes: Uint8Array;
  readonly maxPayload: number;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly cap: number;
  private readonly mask: number;
  private readonly data: number;
  private readonly mp: boolean;
  private readonly publishEvery: number;
  private readonly publishBytes: number;
  private pos: number;  // SP: next write position (uint32), published lazily
  private cachedMin: number;
  private claimPos = -1;
  private claimHdr = 0;
  private nextPos = 0;
  private claimSize = 0;
  private pending = 0;
  private pendingBytes = 0;
  private closed = false;
  private readonly spin: SpinBudget;

  constructor(ring: RingMemory | RingDescriptor, options: WriterOptions = {}) {
    this.spin = new SpinBudget(options.spin ?? DEFAULT_SPIN);
    this.mem = ring instanceof RingMemory ? ring : attachRing(ring);
    const m = this.mem;
    this.bytes = m.bytes;
    this.i32 = m.i32;
    this.u32 = m.u32;
    this.cap = m.capacity;
    this.mask = m.mask;
    this.data = m.data;
    this.mp = m.multiProducer;
    this.maxPayload = maxPayload(m.capacity);
    this.publishEvery = options.publishEvery ?? 32;
    this.publishBytes = m.capacity >>> 3;
    this.pos = Atomics.load(this.i32, L.offWritePos >> 2) >>> 0;
    this.cachedMin = this.minReadPos(this.pos);
    if (m.crossProcess) m.registerWriterPid(process.pid);
  }

  /**
   * Claims room for `length` payload bytes. Returns the payload's byte offset in `bytes` (16- or
   * 64-byte aligned), or -1 when the ring is full right now (then flush() and waitForSpace()).
   */
  claim(length: number, type: number, seq = 0, align: 16 | 64 = 16): number {
    if (this.closed) throw new RingError('ERR_RING_CLOSED', 'claim on a ring writer that was closed');
    if (length > this.maxPayload || length < 0) {
      throw new RingError(
        'ERR_RECORD_TOO_LARGE',
        `a record of ${length} bytes does not fit a ring of ${this.cap} bytes (largest: ${this.maxPayload}); give the stream a larger capacity`,
      );
    }
    const rec = (HDR + length + 15) & ~15;
    for (;;) {
      const pos = this.mp ? Atomics.load(this.i32, L.offWritePos >> 2) >>> 0 : this.pos;
      const off = pos & this.mask;
      let alignPad = align === 64 ? (64 - ((off + HDR) & 63)) & 63 : 0;
      let wrapPad = 0;
      if (off + alignPad + rec > this.cap) {
        wrapPad = this.cap - off;
        alignPad = align === 64 ? 48 : 0;
      }
      const total = wrapPad + alignPad + rec;
      if (((pos + total - this.cachedMin) >>> 0) > this.cap) {
        this.cachedMin = this.minReadPos(pos);
        if (((pos + total - this.cachedMin) >>> 0) > this.cap) {
          if (this.mem.state() === L.stateAborted) throw abortedError(this.mem);
          return -1;
        }
      }
      if (this.mp && Atomics.compareExchange(this.i32, L.offWritePos >> 2, pos | 0, (pos + total) | 0) !== (pos | 0)) continue;
      let at = pos;
      if (wrapPad) at = this.pad(at, wrapPad);
      if (alignPad) at = this.pad(at, alignPad);
      const h = this.data + (at & this.mask);
      const w = h >> 2;
      this.u32[w] = length;
      this.u32[w + 1] = type;
      this.u32[w + 2] = seq;
      this.claimPos = at;
      this.claimHdr = w;
      this.nextPos = (pos + total) >>> 0;
      this.claimSize = total;
      return h + HDR;
    }
  }

  /** Makes the claimed record part of the stream (visible at the next publish). */
  commit(): void {
    if (this.mp) {
      // The stamp, stored last, is what tells a reader the record is complete (ring.h).
      Atomics.store(this.i32, this.claimHdr + 3, this.claimPos | 0);
    } else {
      // SP: readers only look below the published write position, and publishing is an
      // Atomics.store that orders this plain store before it; a seq_cst store per record
      // (an xchg on x86) would cost more than the rest of the hot path.
      this.u32[this.claimHdr + 3] = this.claimPos;
      this.pos = this.nextPos;
    }
    this.claimPos = -1;
    this.pendingBytes += this.claimSize;
    if (++this.pending >= this.publishEvery || this.pendingBytes >= this.publishBytes) this.publish(false);
  }

  /** Drops the claimed record. */
  abort(): void {
    if (this.claimPos < 0) return;
    if (this.mp) {
      // The space is already claimed: turn it into padding so readers skip it.
      this.u32[this.claimHdr + 1] = L.typePad;
      Atomics.store(this.i32, this.claimHdr + 3, this.claimPos | 0);
    }
    this.claimPos = -1;
  }

  /** Publishes what was committed and wakes parked readers (call it before stopping). */
  flush(): void {
    this.publish(true);
  }

  /**
   * Stores the write position. `eager`: wake parked readers whatever they wait for, as this
   * writer may stop for a while; otherwise (batched commits, more to come) only once past the
   * position the ring's only reader asked for (ring.h, dataWant).
   */
  private publish(eager: boolean): void {
    // Once per batch, not per record: a writer into an aborted ring learns it here.
    if (Atomics.load(this.i32, L.offState >> 2) === L.stateAborted && !this.closed) throw abortedError(this.mem);
    if (!this.mp) Atomics.store(this.i32, L.offWritePos >> 2, this.pos | 0);
    this.pending = 0;
    this.pendingBytes = 0;
    if (Atomics.load(this.i32, L.offReadersWaiting >> 2) === 0) return;
    if (eager || this.mem.readerSlots > 1) this.mem.wake(L.offDataSeq);
    else {
      const pos = this.mp ? Atomics.load(this.i32, L.offWritePos >> 2) : this.pos;
      if (((pos - Atomics.load(this.i32, L.offDataWant >> 2)) | 0) >= 0) this.mem.wake(L.offDataSeq);
    }
  }

  /**
   * Waits until a claim of `length` bytes can succeed. Publishes first, so readers can drain.
   * A single producer sleeps until a quarter of the ring is free (or a reader stops), not until
   * the next few records fit: one wake per large chunk instead of one per reader batch.
   */
  waitForSpace(length: number, align: 16 | 64 = 16, options?: WaitOptions): Promise<void> {
    this.flush();
    return park(this.mem, this.spaceSpec(() => this.fits(length, align), length, align), options);
  }

  /**
   * Waits until `done()` (a condition on the readers' positions) holds: readers moving on wake
   * parked writers, so this parks like waitForSpace().
   */
  waitForReaders(done: () => boolean, options?: WaitOptions): Promise<void> {
    this.flush();
    return park(this.mem, this.spaceSpec(done), options);
  }

  /** Blocking waitForSpace(), for threads and processes with nothing else to do. */
  waitForSpaceSync(length: number, align: 16 | 64 = 16, timeoutMs?: number): void {
    this.flush();
    parkSync(this.mem, this.spaceSpec(() => this.fits(length, align), length, align), timeoutMs);
  }

  /** What a parked writer waits for: `fits`, after a quarter of the ring is free when `length` is given. */
  private spaceSpec(fits: () => boolean, length?: number, align: 16 | 64 = 16): ParkSpec {
    const base = { seqOff: L.offSpaceSeq, waitingOff: L.offWritersWaiting, pids: () => this.mem.readerPids(), spin: this.spin };
    // Several producers share the word, and waitForReaders() waits for any progress: wake on every batch.
    const relax = () => Atomics.store(this.i32, L.offSpaceWant >> 2, this.minReadPos(this.pos) | 0);
    if (this.mp) return { ...base, ready: fits };
    if (length === undefined) {
      relax();
      return { ...base, ready: fits };
    }
    const total = this.span(this.pos, length, align);
    const want = (this.pos + total + Math.min(this.cap >>> 2, this.cap - total) - this.cap) >>> 0;
    // Stored before park() counts this writer as waiting: a reader that sees the count sees this.
    Atomics.store(this.i32, L.offSpaceWant >> 2, want | 0);
    const passed = () => {
      if (this.mem.state() !== L.stateOpen) return true;
      this.cachedMin = this.minReadPos(this.pos);
      return ((this.cachedMin - want) | 0) >= 0;
    };
    return { ...base, ready: passed, settle: fits, relax };
  }

  /** Claims, waiting for space as needed. */
  async claimAsync(length: number, type: number, seq = 0, align: 16 | 64 = 16, options?: WaitOptions): Promise<number> {
    for (;;) {
      const off = this.claim(length, type, seq, align);
      if (off >= 0) return off;
      await this.waitForSpace(length, align, options);
    }
  }

  /** Copy path: writes `payload` as one record. */
  async write(payload: ArrayBufferView, type = 1, seq = 0, options?: WaitOptions): Promise<void> {
    const src = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    const off = await this.claimAsync(src.byteLength, type, seq, 16, options);
    this.bytes.set(src, off);
    this.commit();
  }

  /** Ends this writer's stream; readers see the end once every writer closed and they drained. */
  close(): void {
    if (this.closed) return;
    this.abort();
    this.closed = true;
    this.flush();
    if (Atomics.sub(this.i32, L.offWritersOpen >> 2, 1) === 1) {
      Atomics.compareExchange(this.i32, L.offState >> 2, L.stateOpen, L.stateClosed);
    }
    this.mem.wake(L.offDataSeq);
  }

  /** Position after the last commit (single-producer rings). */
  get position(): number {
    return this.pos;
  }

  /** How far every reader got: the slowest active reader's position. */
  readersPosition(): number {
    return this.minReadPos(this.pos);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes from `pos` a claim of `length` may take, wrap padding included. */
  private span(pos: number, length: number, align: 16 | 64): number {
    const need = ((HDR + length + 15) & ~15) + (align === 64 ? 48 : 0);
    const off = pos & this.mask;
    return off + need > this.cap ? this.cap - off + need : need;
  }

  private fits(length: number, align: 16 | 64): boolean {
    if (this.mem.state() !== L.stateOpen) return true;  // let claim() report it
    const pos = this.mp ? Atomics.load(this.i32, L.offWritePos >> 2) >>> 0 : this.pos;
    this.cachedMin = this.minReadPos(pos);
    return ((pos + this.span(pos, length, align) - this.cachedMin) >>> 0) <= this.cap;
  }

  private pad(at: number, bytes: number): number {
    const w = (this.data + (at & this.mask)) >> 2;
    this.u32[w] = bytes - HDR;
    this.u32[w + 1] = L.typePad;
    if (this.mp) Atomics.store(this.i32, w + 3, at | 0);
    else this.u32[w + 3] = at;
    return (at + bytes) >>> 0;
  }

  /** The read position of the slowest active reader; `fallback` if none is active. */
  private minReadPos(fallback: number): number {
    let best = fallback, bestUsed = -1;
    for (let r = 0; r < this.mem.readerSlots; r++) {
      const slot = (L.offReaders + r * L.line) >> 2;
      if (Atomics.load(this.i32, slot + (L.readerActive >> 2)) === 0) continue;
      const rp = Atomics.load(this.i32, slot) >>> 0;
      const used = (fallback - rp) >>> 0;
      if (used > bestUsed) {
        bestUsed = used;
        best = rp;
      }
    }
    return best;
  }
}
