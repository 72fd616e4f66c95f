// The reading end of a ring: one cursor. Hot path: next() -> use the payload where it lies ->
// release(). Released space is handed back to writers in batches (releaseEvery records or
// capacity/8 bytes, or flush()), for the same cache-line reason as the writer's publish.
import { layout as L, RECORD_HEADER } from '../native.js';
import { attachRing, RingMemory, type RingDescriptor } from './ring.js';
import { abortedError, DEFAULT_SPIN, park, parkSync, SpinBudget, type ParkSpec, type WaitOptions } from './wait.js';
import { intInRange } from '../util/check.js';

/** Options of a {@link RingReader}. */
export interface ReaderOptions {
  /** Hand space back after this many releases. Default 32. */
  releaseEvery?: number;
  /** Checks before parking. Default ~20-50 us worth; 0 when the other end runs on this same thread. */
  spin?: number;
}

/**
 * A record passed on by reference (see OutputPort.forward): consumed by this reader but kept in
 * the ring until every reference to it is done.
 */
export interface Hold {
  start: number;
  /** References still out. */
  pending: number;
}

/** next() results besides a payload offset. */
export const EMPTY = -1;
/** next() result when every writer closed and the ring is drained. */
export const END = -2;

const HDR = RECORD_HEADER;
/** A parked reader's first sleep (ms): the most a busy writer's unannounced records wait for it. */
const DATA_SLICE_MS = 2;

/**
 * The reading end of a ring (one cursor): `next()` gives a payload's offset in `bytes` (the record
 * is read in place), `release()` hands its space back. Space is freed behind the slowest cursor.
 */
export class RingReader {
  readonly mem: RingMemory;
  readonly bytes: Uint8Array;
  readonly slot: number;
  /** Current record (valid after next() returned an offset, until release()). */
  length = 0;
  typeFlags = 0;
  seq = 0;
  offset = 0;
  private readonly i32: Int32Array;
  private readonly u32: Uint32Array;
  private readonly mask: number;
  private readonly data: number;
  private readonly slotIdx: number;
  private readonly mp: boolean;
  private readonly releaseEvery: number;
  private readonly releaseBytes: number;
  private pos: number;
  /** Published position: `pos`, or the start of the oldest record still held. */
  private retired: number;
  private readonly holds: Hold[] = [];
  private cachedWrite: number;
  private size = 0;
  private pending = 0;
  private pendingBytes = 0;
  private detached = false;
  private readonly spin: SpinBudget;

  constructor(ring: RingMemory | RingDescriptor, slot = 0, options: ReaderOptions = {}) {
    this.spin = new SpinBudget(options.spin ?? DEFAULT_SPIN);
    this.mem = ring instanceof RingMemory ? ring : attachRing(ring);
    const m = this.mem;
    intInRange(slot, 0, m.readerSlots - 1, `reader slot (the ring has ${m.readerSlots})`);
    this.slot = slot;
    this.bytes = m.bytes;
    this.i32 = m.i32;
    this.u32 = m.u32;
    this.mask = m.mask;
    this.data = m.data;
    this.slotIdx = (L.offReaders + slot * L.line) >> 2;
    this.mp = m.multiProducer;
    this.releaseEvery = options.releaseEvery ?? 32;
    this.releaseBytes = m.capacity >>> 3;
    this.pos = Atomics.load(this.i32, this.slotIdx) >>> 0;
    this.retired = this.pos;
    this.cachedWrite = this.pos;
    if (m.crossProcess) Atomics.store(this.i32, this.slotIdx + (L.readerPid >> 2), process.pid);
  }

  /** The record type (low 16 bits of typeFlags). */
  get type(): number {
    return this.typeFlags & 0xffff;
  }
  /** The record flags (high 16 bits). */
  get flags(): number {
    return this.typeFlags >>> 16;
  }

  /**
   * The next record's payload offset in `bytes`, EMPTY when there is none yet, END when every
   * writer closed and the ring is drained. Calling it again before release() returns the same
   * record (a peek). Throws when the ring was aborted.
   */
  next(): number {
    for (;;) {
      if (this.pos === this.cachedWrite) {
        const state = Atomics.load(this.i32, L.offState >> 2);
        this.cachedWrite = Atomics.load(this.i32, L.offWritePos >> 2) >>> 0;
        if (state === L.stateAborted) throw abortedError(this.mem);
        if (this.pos === this.cachedWrite) return state === L.stateClosed ? END : EMPTY;
      }
      const w = (this.data + (this.pos & this.mask)) >> 2;
      // Multi-producer rings publish claims before commits: the stamp tells them apart. A single
      // producer publishes only committed records, so the write position is enough.
      if (this.mp && Atomics.load(this.i32, w + 3) >>> 0 !== this.pos) return EMPTY;
      const length = this.u32[w]!;
      const typeFlags = this.u32[w + 1]!;
      const size = (HDR + length + 15) & ~15;
      if ((typeFlags & 0xffff) === L.typePad) {
        this.pos = (this.pos + size) >>> 0;
        continue;
      }
      this.length = length;
      this.typeFlags = typeFlags;
      this.seq = this.u32[w + 2]!;
      this.size = size;
      return (this.offset = (w << 2) + HDR);
    }
  }

  /** Done with the current record: its space may be reused once handed back. */
  release(): void {
    this.pos = (this.pos + this.size) >>> 0;
    if (this.holds.length === 0) this.retired = this.pos;
    this.pendingBytes += this.size;
    this.size = 0;
    if (++this.pending >= this.releaseEvery || this.pendingBytes >= this.releaseBytes) this.flush(false);
  }

  /**
   * Moves past the current record but keeps its space (and every later record's) from writers
   * until unhold(): the record is referenced from elsewhere.
   */
  hold(references = 1): Hold {
    const h: Hold = { start: this.pos, pending: references };
    this.holds.push(h);
    this.pos = (this.pos + this.size) >>> 0;
    this.size = 0;
    return h;
  }

  /** One reference to a held record is done; space is handed back once the oldest holds are. */
  unhold(h: Hold): void {
    if (--h.pending > 0) return;
    const holds = this.holds;
    while (holds.length && holds[0]!.pending <= 0) holds.shift();
    this.retired = holds.length ? holds[0]!.start : this.pos;
  }

  /**
   * Debug poisoning: true when this reader is the last to let go of the current record, so it may
   * overwrite it. Every reader of the ring must call it on each record it lets go of: each stores
   * how far it got (its `seen` word), then looks at the others'. Of two readers letting go at once,
   * at least one sees the other's store (both stores and loads are sequentially consistent), and
   * overwriting twice is harmless: no writer reuses the space before both read positions move on.
   */
  lastHolder(): boolean {
    const end = (this.pos + this.size) | 0;
    Atomics.store(this.i32, this.slotIdx + (L.readerSeen >> 2), end);
    for (let k = 0; k < this.mem.readerSlots; k++) {
      if (k === this.slot) continue;
      const base = (L.offReaders + k * L.line) >> 2;
      if (Atomics.load(this.i32, base + (L.readerActive >> 2)) === 0) continue;
      if (((Atomics.load(this.i32, base + (L.readerSeen >> 2)) - end) | 0) < 0) return false;
    }
    return true;
  }

  /** Records held and not yet given back. */
  get held(): number {
    return this.holds.length;
  }

  /**
   * Hands released space back to writers. `eager` (the default, before stopping): wake a parked
   * writer whatever it waits for; false (more releases follow soon): only once past the position a
   * single producer asked for (ring.h, spaceWant), so it wakes once per large chunk of space.
   */
  flush(eager = true): void {
    Atomics.store(this.i32, this.slotIdx, this.retired | 0);
    this.pending = 0;
    this.pendingBytes = 0;
    if (Atomics.load(this.i32, L.offWritersWaiting >> 2) === 0) return;
    if (eager || this.mp || ((this.retired - Atomics.load(this.i32, L.offSpaceWant >> 2)) | 0) >= 0) this.mem.wake(L.offSpaceSeq);
  }

  /** True when next() would not return EMPTY. */
  ready(): boolean {
    if (this.mem.state() !== L.stateOpen) return true;
    return this.next() !== EMPTY;
  }

  /** Waits until next() has something to say. Hands back released space first. */
  waitForData(options?: WaitOptions): Promise<void> {
    this.flush();
    return park(this.mem, this.dataSpec(), options);
  }

  /** Blocking waitForData(), for threads and processes with nothing else to do. */
  waitForDataSync(timeoutMs?: number): void {
    this.flush();
    parkSync(this.mem, this.dataSpec(), timeoutMs);
  }

  /**
   * The only reader of a ring asks for a quarter of it before writers' batched publishes wake it
   * (ring.h, dataWant); a writer that stops publishes and wakes it at once, and the first sleep
   * lasts at most DATA_SLICE_MS, which bounds the delay a writer that never stops adds.
   */
  private dataSpec(): ParkSpec {
    const ready = () => this.ready();
    const pids = () => this.mem.writerPids();
    if (this.mem.readerSlots > 1) return { seqOff: L.offDataSeq, waitingOff: L.offReadersWaiting, ready, pids, spin: this.spin };
    const want = (this.pos + (this.mem.capacity >>> 2)) >>> 0;
    // Stored before park() counts this reader as waiting: a writer that sees the count sees this.
    Atomics.store(this.i32, L.offDataWant >> 2, want | 0);
    return {
      seqOff: L.offDataSeq, waitingOff: L.offReadersWaiting, pids, spin: this.spin, settle: ready,
      ready: () => this.mem.state() !== L.stateOpen || ((Atomics.load(this.i32, L.offWritePos >> 2) - want) | 0) >= 0,
      relax: () => Atomics.store(this.i32, L.offDataWant >> 2, this.pos | 0),
      firstSliceMs: DATA_SLICE_MS,
    };
  }

  /** Copy path: the next record's payload copied into `into` (or a fresh array); null at the end. */
  async read(into?: Uint8Array, options?: WaitOptions): Promise<Uint8Array | null> {
    for (;;) {
      const off = this.next();
      if (off === END) return null;
      if (off >= 0) {
        let out: Uint8Array;
        if (into) {
          if (into.byteLength < this.length) throw new RangeError(`read(into): a ${this.length}-byte record does not fit ${into.byteLength} bytes`);
          out = into.subarray(0, this.length);
          out.set(this.bytes.subarray(off, off + this.length));
        } else {
          out = this.bytes.slice(off, off + this.length);
        }
        this.release();
        return out;
      }
      await this.waitForData(options);
    }
  }

  /** Stops holding writers back: this cursor no longer counts for free space. */
  detach(): void {
    if (this.detached) return;
    this.detached = true;
    this.flush();
    Atomics.store(this.i32, this.slotIdx + (L.readerActive >> 2), 0);
    this.mem.wake(L.offSpaceSeq);
  }
}
