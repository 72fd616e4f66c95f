// One output port of a replica: its own ring (single producer), records stamped with a seq.
import { RingWriter } from '../ring/writer.js';
import { attachRing } from '../ring/ring.js';
import { encode, RingViews, tensorLength, tensorView, tryEncode, writeTensorHeader } from '../codec/codec.js';
import { ShapeEncoder } from '../codec/shapes.js';
import { T_FORWARD, T_TENSOR, T_WATERMARK, type DType, type Tensor } from '../codec/types.js';
import type { Hold, RingReader } from '../ring/reader.js';
import { RingpipeError } from '../errors.js';
import type { OutputPlan } from './plan.js';

export class OutputPort {
  readonly writer: RingWriter;
  private readonly views: RingViews;
  private readonly shapes = new ShapeEncoder();
  /** A tensor handed out by ctx.tensor(), committed when it comes back as an output. */
  private pending: Tensor | undefined;
  private lastWatermark = 0;
  /** Records passed on by reference, oldest first: given back once every reader passed `end`. */
  private readonly forwards: { end: number; reader: RingReader; hold: Hold }[] = [];
  /** Readers can map this replica's input rings (see OutputPlan.forward). */
  readonly canForward: boolean;
  /** Bytes of records forwarded since the last publish. */
  private forwardedBytes = 0;
  /** Milliseconds spent waiting for space (backpressure). */
  waitedMs = 0;
  written = 0;

  /**
   * `segment`: the writing segment's name, for errors. `blocked`: told when this port parks for
   * space and when it goes on (the replica's STAT_BLOCKED, read by deadlock detection).
   */
  constructor(plan: OutputPlan, spin?: number, private readonly segment = '', private readonly blocked?: (parked: boolean) => void) {
    this.canForward = plan.forward;
    this.writer = new RingWriter(attachRing(plan.ring), { publishEvery: 64, spin });
    this.views = new RingViews(this.writer.bytes);
  }

  /**
   * Called before this port parks: publishes the replica's other outputs, whose readers may be
   * what has to move (a reader of two of them waits on the other before it frees this one).
   */
  beforeWait: () => void = () => {};

  private readonly waitSpace = async (length: number, align: 16 | 64) => {
    this.beforeWait();
    const t0 = performance.now();
    this.blocked?.(true);
    try {
      await this.writer.waitForSpace(length, align);
    } finally {
      this.blocked?.(false);
    }
    this.waitedMs += performance.now() - t0;
  };

  /** Writes `value`; resolves at once unless the ring is full. */
  write(value: unknown, seq: number): Promise<void> | void {
    if (this.pending !== undefined) {
      if (value === this.pending) {
        this.written++;
        this.pending = undefined;
        this.writer.commit();  // filled in place: no copy
        return;
      }
      if (holds(value, this.pending)) throw nestedTensorError(this.segment);
      // Claimed but not returned: the code sent something else instead.
      this.dropPending();
    }
    this.written++;
    if (tryEncode(this.writer, this.views, value, seq, this.shapes) >= 0) return;
    return encode(this.writer, this.views, value, seq, this.waitSpace).then(() => undefined);
  }

  /**
   * Passes on a record of this replica's input by reference: a 16-byte forward record instead of
   * a copy. The input record stays held until every reader of this port has moved past it.
   */
  async forward(src: { lane: number; offset: number; length: number; typeFlags: number }, seq: number, held: { reader: RingReader; hold: Hold }): Promise<void> {
    this.written++;
    let off = this.writer.claim(16, T_FORWARD, seq);
    while (off < 0) {
      this.pollForwards();
      await this.waitSpace(16, 16);
      off = this.writer.claim(16, T_FORWARD, seq);
    }
    const u32 = this.views.u32, w = off >>> 2;
    u32[w] = src.lane;
    u32[w + 1] = src.offset;
    u32[w + 2] = src.length;
    u32[w + 3] = src.typeFlags;
    this.writer.commit();
    this.forwards.push({ end: this.writer.position, reader: held.reader, hold: held.hold });
    // A 16-byte forward stands for a record held in the input ring: publish once they stand for
    // an eighth of that ring, not after 64 of them (which may be all of it).
    this.forwardedBytes += src.length;
    if (this.forwardedBytes >= held.reader.mem.capacity >>> 3) {
      this.forwardedBytes = 0;
      this.writer.flush();
    }
  }

  /** Gives back the input records every reader is done with; true when some were. */
  pollForwards(): boolean {
    const f = this.forwards;
    if (f.length === 0) return false;
    const done = this.writer.readersPosition();
    let last: RingReader | undefined;
    while (f.length && ((done - f[0]!.end) | 0) >= 0) {
      const x = f.shift()!;
      x.reader.unhold(x.hold);
      if (last && last !== x.reader) last.flush(false);
      last = x.reader;
    }
    // Not eager: this replica goes on; before it stops, its input waits flush eagerly.
    last?.flush(false);
    return last !== undefined;
  }

  /** Waits (at most `timeoutMs`) until readers give back at least one forwarded record. */
  async waitForwards(timeoutMs: number): Promise<void> {
    if (this.pollForwards()) return;
    this.beforeWait();
    await this.writer.waitForReaders(() => this.pollForwards(), { timeoutMs }).catch((e: { code?: string }) => {
      if (e.code !== 'ERR_TIMEOUT') throw e;
    });
  }

  /** Forwards not yet given back. */
  get forwarding(): number {
    return this.forwards.length;
  }

  /** An output tensor living in the ring (see SegmentContext.tensor). */
  async tensor(shape: number[], dtype: DType, seq: number): Promise<Tensor> {
    if (this.pending) {
      throw new RingpipeError('ERR_TENSOR_PENDING', `segment '${this.segment}': ctx.tensor() was called again before the previous output tensor was returned or yielded`);
    }
    const length = tensorLength(dtype, shape);
    let off = this.writer.claim(length, T_TENSOR, seq, 64);
    while (off < 0) {
      await this.waitSpace(length, 64);
      off = this.writer.claim(length, T_TENSOR, seq, 64);
    }
    writeTensorHeader(this.writer.bytes, off, dtype, shape, false);
    return (this.pending = tensorView(this.writer.bytes, off, dtype, shape));
  }

  /** Drops a claimed tensor that was not handed on (the call failed or returned something else). */
  dropPending(): void {
    if (this.pending) {
      this.pending = undefined;
      this.writer.abort();
    }
  }

  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /** Tells readers no record below `seq` will follow (lets ordered merges move on). */
  watermark(seq: number): void {
    if (((seq - this.lastWatermark) | 0) <= 0 || this.pending) return;
    if (this.writer.claim(0, T_WATERMARK, seq) >= 0) {
      this.writer.commit();
      this.lastWatermark = seq;
    }
  }

  flush(): void {
    this.writer.flush();
  }

  close(): void {
    this.dropPending();
    this.writer.close();
  }
}

/** True when `value` holds `tensor` inside an object or array (a few levels deep). */
function holds(value: unknown, tensor: Tensor, depth = 0): boolean {
  if (typeof value !== 'object' || value === null || depth > 4 || ArrayBuffer.isView(value)) return false;
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    if (v === tensor || v === tensor.data || holds(v, tensor, depth + 1)) return true;
  }
  return false;
}

function nestedTensorError(segment: string): RingpipeError {
  return new RingpipeError(
    'ERR_TENSOR_NESTED',
    `segment '${segment}': a tensor from ctx.tensor() was sent inside an object or array. It lives in the output ring and is ` +
      'handed on zero-copy only as the record itself: return (or yield) the tensor alone, and send what goes with it ' +
      '(e.g. a label) on a second output stream; or build the record from arrays of your own (it is then copied).',
  );
}
