// A ring over a SharedArrayBuffer: creation, and the descriptor that reaches threads and processes.
// The layout and protocol are defined in native/ring.h; writer.ts and reader.ts drive them from JS.
import { layout as L, native } from '../native.js';
import { InvalidArgumentError } from '../errors.js';
import { createRegion, openRegion, unlinkRegion } from './region.js';
import { fail, intInRange } from '../util/check.js';

/** Options of a new ring. */
export interface RingOptions {
  /** Data bytes, a power of two from 4 KiB to 1 GiB. The largest record is capacity/2 - 128. Default 16 MiB. */
  capacity?: number;
  /** Reader cursors; every reader sees every record, space is freed behind the slowest. Default 1. */
  readers?: number;
  /** Writers that must close before readers see the end. Default 1. */
  writers?: number;
  /** Several writers claim concurrently (CAS on the write position). Implied by `writers > 1`. */
  multiProducer?: boolean;
  /** Named shared memory other processes can open; waits then use futexes. Default false. */
  crossProcess?: boolean;
  /**
   * This process watches every peer and handles their deaths (as ringpipe's supervisor does): a
   * waiter that finds a peer dead aborts the ring only once this process is gone too. Default
   * false: a waiter aborts with ERR_PEER_DEAD when every peer on the other side is dead.
   */
  supervised?: boolean;
}

/** What a thread or process needs to attach to a ring: the buffer (threads) or the shm name. */
export interface RingDescriptor {
  buffer?: SharedArrayBuffer;
  name: string;
}

/** Bytes of a ring unless its options say otherwise: 16 MiB. */
export const DEFAULT_CAPACITY = 16 * 1024 * 1024;

/** Largest payload a ring of `capacity` bytes accepts (it may have to wrap from the middle). */
export const maxPayload = (capacity: number): number => capacity / 2 - 128;

/** A ring's memory with typed views over it; shared by RingWriter and RingReader. */
export class RingMemory {
  readonly buffer: SharedArrayBuffer;
  readonly name: string;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly bytes: Uint8Array;
  readonly capacity: number;
  readonly mask: number;
  /** Byte offset of the data area in `buffer`. */
  readonly data: number;
  readonly flags: number;
  readonly readerSlots: number;
  readonly crossProcess: boolean;
  readonly multiProducer: boolean;
  /** Peer deaths are the creating process's to handle (RingOptions.supervised). */
  readonly supervised: boolean;
  /** The process that created the ring. */
  readonly creatorPid: number;

  constructor(buffer: SharedArrayBuffer, name = '') {
    this.buffer = buffer;
    this.name = name;
    this.i32 = new Int32Array(buffer);
    this.u32 = new Uint32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    if (Atomics.load(this.i32, L.offMagic >> 2) !== (L.magic | 0) || this.u32[L.offVersion >> 2] !== L.version) {
      throw new InvalidArgumentError(`not a ringpipe ring (bad magic or version)${name ? `: ${name}` : ''}`);
    }
    this.capacity = this.u32[L.offCapacity >> 2]!;
    this.mask = this.capacity - 1;
    this.data = this.u32[L.offDataOffset >> 2]!;
    this.flags = this.u32[L.offFlags >> 2]!;
    this.readerSlots = this.u32[L.offReaderSlots >> 2]!;
    this.crossProcess = (this.flags & L.flagCrossProcess) !== 0;
    this.multiProducer = (this.flags & L.flagMultiProducer) !== 0;
    this.supervised = (this.flags & L.flagSupervised) !== 0;
    this.creatorPid = this.u32[L.offCreatorPid >> 2]!;
  }

  get descriptor(): RingDescriptor {
    return this.crossProcess ? { name: this.name } : { buffer: this.buffer, name: '' };
  }

  /** The ring's state word: open, closed (every writer closed) or aborted (see native/ring.h). */
  state(): number {
    return Atomics.load(this.i32, L.offState >> 2);
  }
  /** Why the ring was aborted: 1 by a call of abort(), 2 a peer died; 0 while it is not. */
  abortCode(): number {
    return Atomics.load(this.i32, L.offAbortCode >> 2);
  }

  /** Stops everybody now: waits return and further calls throw ERR_RING_ABORTED. */
  abort(code = 1): void {
    Atomics.store(this.i32, L.offAbortCode >> 2, code);
    Atomics.store(this.i32, L.offState >> 2, L.stateAborted);
    this.wake(L.offDataSeq);
    this.wake(L.offSpaceSeq);
  }

  /** Bumps the futex word at `off` and wakes whoever parks on it, in this process or another. */
  wake(off: number): void {
    Atomics.add(this.i32, off >> 2, 1);
    if (this.crossProcess) native.futexWake(this.buffer, off);
    else Atomics.notify(this.i32, off >> 2);
  }

  /** Stops counting reader `slot` for free space (its reader is gone) and wakes parked writers. */
  deactivateReader(slot: number): void {
    Atomics.store(this.i32, (L.offReaders + slot * L.line + L.readerActive) >> 2, 0);
    this.wake(L.offSpaceSeq);
  }

  /** Registers `pid` as a writer, for liveness checks from other processes. */
  registerWriterPid(pid: number): void {
    const base = L.offWriterPids >> 2;
    for (let i = 0; i < L.maxWriters; i++) {
      if (Atomics.compareExchange(this.i32, base + i, 0, pid) === 0) return;
    }
  }

  /** Pids of registered writers. */
  writerPids(): number[] {
    const out: number[] = [];
    for (let i = 0; i < L.maxWriters; i++) {
      const pid = Atomics.load(this.i32, (L.offWriterPids >> 2) + i);
      if (pid) out.push(pid);
    }
    return out;
  }

  /** Pids of active readers that registered one. */
  readerPids(): number[] {
    const out: number[] = [];
    for (let r = 0; r < this.readerSlots; r++) {
      const slot = (L.offReaders + r * L.line) >> 2;
      if (Atomics.load(this.i32, slot + (L.readerActive >> 2)) === 0) continue;
      const pid = Atomics.load(this.i32, slot + (L.readerPid >> 2));
      if (pid) out.push(pid);
    }
    return out;
  }
}

/** A ring this process created and owns: `close()` releases its name. */
export class Ring extends RingMemory {
  private closed = false;

  /** Creates a ring in a fresh region. */
  static create(options: RingOptions = {}): Ring {
    const capacity = options.capacity ?? DEFAULT_CAPACITY;
    const readers = options.readers ?? 1;
    const writers = options.writers ?? 1;
    if (!Number.isInteger(capacity) || capacity < 4096 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
      fail('ring capacity', 'a power of two from 4096 to 2^30 bytes', capacity);
    }
    intInRange(readers, 1, L.maxReaders, 'ring readers');
    intInRange(writers, 1, L.maxWriters, 'ring writers');
    const dataOffset = Math.ceil((L.offReaders + readers * L.line) / 64) * 64;
    const region = createRegion(dataOffset + capacity, options.crossProcess ?? false);
    const flags =
      (options.multiProducer || writers > 1 ? L.flagMultiProducer : 0) | (options.crossProcess ? L.flagCrossProcess : 0) |
      (options.supervised ? L.flagSupervised : 0);
    native.initRing(region.buffer, capacity, readers, flags, writers);
    return new Ring(region.buffer, region.name);
  }

  /** Releases the ring's name (shared rings); the memory goes when the last view is collected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    unlinkRegion(this.name);
  }
}

/** Attaches to a ring from its descriptor, in another thread or process. */
export function attachRing(descriptor: RingDescriptor): RingMemory {
  if (descriptor.buffer) return new RingMemory(descriptor.buffer, descriptor.name);
  return new RingMemory(openRegion(descriptor.name).buffer, descriptor.name);
}
