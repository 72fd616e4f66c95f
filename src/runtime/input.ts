// One input port of a replica: the rings of every upstream segment feeding it. Within a group
// (the replicas of one upstream segment) records are merged by sequence number, so replicas do
// not lose the order; across groups (fan-in of different segments) whatever comes first is taken.
// Only records of this reader's share (seq % count === index) are returned; the others are
// skipped where they lie.
import { RingReader, EMPTY, END, type Hold } from '../ring/reader.js';
import { layout as L } from '../native.js';
import { attachRing } from '../ring/ring.js';
import { decode, decodeAt, RingViews } from '../codec/codec.js';
import { T_FORWARD, T_SHAPE, T_SHAPED, T_WATERMARK } from '../codec/types.js';
import { ShapeDecoder } from '../codec/shapes.js';
import type { InputPlan, PoisonMode } from './plan.js';

export { EMPTY, END };
const GOT = 1;

interface Lane {
  reader: RingReader;
  views: RingViews;
  /** Flat index of this lane among the replica's input lanes (what a forward record names). */
  index: number;
  /** The writer's input rings, for records it forwarded by reference. */
  sources: RingViews[];
  /** Bytes of forwarded records released since the last hand-back. */
  forwardedBytes: number;
  /** Shapes the writer announced (codec/shapes.ts). */
  shapes: ShapeDecoder;
  /** Int32 index of the claim counter shared with the other readers of the work, or -1. */
  claimIdx: number;
  /** Ordinal of the next data record on this lane (every reader counts the same records). */
  ordinal: number;
  /** Lower bound of the next seq this lane can deliver (from records and watermarks seen). */
  bound: number;
  ended: boolean;
}

/**
 * Takes the lane's current data record for this reader if no other reader of the work did:
 * whichever replica is free takes the next record (uneven work balances itself), and the
 * counter only ever moves forward, so each record goes to exactly one reader. Every reader
 * passes the same records in the same order, so record k has the same ordinal for all; a
 * reader at ordinal k has passed only claimed records, so the counter is >= k.
 */
function claim(lane: Lane): boolean {
  const k = lane.ordinal | 0;
  lane.ordinal = (k + 1) | 0;
  const i32 = lane.reader.mem.i32;
  return Atomics.load(i32, lane.claimIdx) === k && Atomics.compareExchange(i32, lane.claimIdx, k, (k + 1) | 0) === k;
}

/**
 * Overwrites the reader's current record (debug aid) when no other reader still needs it. A
 * forward's payload is only a reference that release() still reads; poisoning runs turn
 * forwarding off, so records lie in the rings a port reads.
 */
function poisonIfLast(r: RingReader, mode: PoisonMode): void {
  if (r.type === T_FORWARD) return;
  if (r.mem.readerSlots === 1 || (mode === 'all' && r.lastHolder())) r.bytes.fill(0xdd, r.offset, r.offset + r.length);
}

/** Seq comparison modulo 2^32. */
const before = (a: number, b: number) => ((a - b) | 0) < 0;

class Group {
  readonly lanes: Lane[];
  /** Index of the lane the last pick came from, or that blocks the merge. */
  current = 0;
  private rr = 0;

  constructor(plan: InputPlan['groups'][number], readonly ordered: boolean, spin: number | undefined, nextIndex: () => number) {
    this.lanes = plan.rings.map(({ ring, slot, sources, claimSlot }) => {
      const reader = new RingReader(attachRing(ring), slot, { releaseEvery: 64, spin });
      const srcViews = (sources ?? []).map((d) => new RingViews(attachRing(d).bytes));
      const claimIdx = claimSlot === undefined ? -1 : (L.offReaders + claimSlot * L.line + L.readerClaim) >> 2;
      return {
        reader, views: new RingViews(reader.bytes), index: nextIndex(), sources: srcViews, shapes: new ShapeDecoder(),
        claimIdx, ordinal: 0, bound: 0, ended: false, forwardedBytes: 0,
      };
    });
  }

  /** Peeks lane i: its head's offset, EMPTY or END; watermarks are absorbed on the way. */
  private head(i: number): number {
    const lane = this.lanes[i]!;
    if (lane.ended) return END;
    for (;;) {
      const off = lane.reader.next();
      if (off === END) {
        lane.ended = true;
        return END;
      }
      if (off < 0) return EMPTY;
      const type = lane.reader.type;
      if (type === T_SHAPE) lane.shapes.define(lane.views, off, lane.reader.length);
      else if (type !== T_WATERMARK) return off;
      else if (before(lane.bound, lane.reader.seq)) lane.bound = lane.reader.seq;
      lane.reader.release();
    }
  }

  /** Picks the next lane to take a record from: GOT (this.current), EMPTY or END. */
  pick(): number {
    const n = this.lanes.length;
    if (n === 1) {
      const off = this.head(0);
      this.current = 0;
      return off >= 0 ? GOT : off;
    }
    if (!this.ordered) {
      let ended = 0;
      for (let k = 0; k < n; k++) {
        const i = (this.rr + k) % n;
        const off = this.head(i);
        if (off >= 0) {
          this.current = i;
          this.rr = (i + 1) % n;
          return GOT;
        }
        if (off === END) ended++;
      }
      return ended === n ? END : EMPTY;
    }
    // Ordered: the smallest head seq, once no empty lane can still deliver a smaller one. Each
    // input record goes to one replica, so no two lanes carry the same seq. One look per lane:
    // a lane looked at twice may have published a smaller seq in between.
    let best = -1, bestSeq = 0, ended = 0, low = -1, lowBound = 0;
    for (let i = 0; i < n; i++) {
      const off = this.head(i);
      if (off === END) {
        ended++;
        continue;
      }
      const lane = this.lanes[i]!;
      if (off >= 0) {
        const s = lane.reader.seq;
        if (best < 0 || before(s, bestSeq)) {
          best = i;
          bestSeq = s;
        }
      } else if (low < 0 || before(lane.bound, lowBound)) {
        // Empty: may still deliver seqs from its bound on (a record, or a watermark, moves it).
        low = i;
        lowBound = lane.bound;
      }
    }
    if (ended === n) return END;
    if (best < 0 || (low >= 0 && before(lowBound, bestSeq))) {
      this.current = low;  // must hear from that lane first
      return EMPTY;
    }
    this.current = best;
    return GOT;
  }

  lane(): Lane {
    return this.lanes[this.current]!;
  }
}

export class InputPort {
  private readonly groups: Group[];

  private rr = 0;
  private lane: Lane | undefined;
  private ended = false;
  /** How many lanes (rings) this port reads. */
  readonly lanes: number;
  private readonly solo: Lane | undefined;
  /** seq of the current record, and the highest seq seen (taken or skipped) + 1. */
  seq = 0;
  seen = 0;
  skipped = 0;

  /**
   * `firstLane`: flat index of this port's first lane among the replica's inputs. `poisons`: which
   * released records are overwritten (debug aid, see ReplicaPlan.poison).
   */
  constructor(plan: InputPlan, spin?: number, firstLane = 0, private readonly poisons: PoisonMode = 'off') {
    let lane = firstLane;
    this.groups = plan.groups.map((g) => new Group(g, g.ordered, spin, () => lane++));
    this.lanes = lane - firstLane;
    this.solo = this.lanes === 1 ? this.groups[0]!.lanes[0]! : undefined;
  }

  /** GOT (then value()/release()), EMPTY or END. Skips other readers' records. */
  next(): number {
    if (this.ended) return END;
    if (this.solo) return this.nextSolo();
    const n = this.groups.length;
    for (;;) {
      let ended = 0, got = false;
      for (let k = 0; k < n; k++) {
        const g = this.groups[(this.rr + k) % n]!;
        const r = g.pick();
        if (r === END) {
          ended++;
          continue;
        }
        if (r === EMPTY) continue;
        const lane = g.lane();
        const seq = lane.reader.seq;
        // A lane's seqs only grow: after this one, the next is above it.
        const after = (seq + 1) >>> 0;
        if (before(lane.bound, after)) lane.bound = after;
        if (!before(seq, this.seen)) this.seen = (seq + 1) >>> 0;
        if (lane.claimIdx >= 0 && !claim(lane)) {
          this.skip(lane.reader);
          this.skipped++;
          got = true;  // progress: look again
          break;
        }
        if (n > 1) this.rr = (this.rr + k + 1) % n;
        this.lane = lane;
        this.seq = seq;
        return GOT;
      }
      if (got) continue;
      if (ended === n) {
        this.ended = true;
        return END;
      }
      return EMPTY;
    }
  }

  /** next() for the common case of one ring: no merging, fewer calls per record. */
  private nextSolo(): number {
    const lane = this.solo!, r = lane.reader;
    for (;;) {
      const off = r.next();
      if (off < 0) {
        if (off === END) this.ended = true;
        return off;
      }
      const seq = r.seq;
      const type = r.type;
      if (type === T_WATERMARK || type === T_SHAPE) {
        if (type === T_SHAPE) lane.shapes.define(lane.views, off, r.length);
        else if (before(this.seen, seq)) this.seen = seq;
        r.release();
        continue;
      }
      if (!before(seq, this.seen)) this.seen = (seq + 1) >>> 0;
      if (lane.claimIdx >= 0 && !claim(lane)) {
        this.skip(r);
        this.skipped++;
        continue;
      }
      this.lane = lane;
      this.seq = seq;
      return GOT;
    }
  }

  /** The current record, decoded (tensors and bytes are views into the ring). */
  value(): unknown {
    const r = this.lane!.reader;
    if (r.type === T_SHAPED) return this.lane!.shapes.decode(this.lane!.views, r.offset);
    if (r.type === T_FORWARD) {
      // A reference into one of the writer's input rings: read the record where it lies there.
      const u32 = this.lane!.views.u32, w = r.offset >>> 2;
      const tf = u32[w + 3]!;
      return decodeAt(this.lane!.sources[u32[w]!]!, u32[w + 1]!, u32[w + 2]!, tf & 0xffff, tf >>> 16);
    }
    return decode(r, r.offset, this.lane!.views);
  }

  /**
   * Where the current record lies, if it may be forwarded by reference: it is in this replica's
   * own input ring (not itself a forward) and large enough for a reference to pay.
   */
  forwardable(minBytes: number): { lane: number; offset: number; length: number; typeFlags: number } | undefined {
    const r = this.lane!.reader;
    if (r.type === T_FORWARD || r.type === T_SHAPED || r.length < minBytes) return undefined;
    return { lane: this.lane!.index, offset: r.offset, length: r.length, typeFlags: r.typeFlags };
  }

  /** Consumes the current record but keeps it in the ring for `references` forwards. */
  hold(references: number): { reader: RingReader; hold: Hold } {
    const reader = this.lane!.reader;
    return { reader, hold: reader.hold(references) };
  }

  /** Input ring descriptors in flat lane order (what forwards name). */
  static laneRings(plans: InputPlan[]): import('../ring/ring.js').RingDescriptor[] {
    return plans.flatMap((p) => p.groups.flatMap((g) => g.rings.map((r) => r.ring)));
  }

  /**
   * Releases the current record. With poisoning on, its payload is overwritten first when no
   * other reader still needs it, so a view kept past its call reads garbage at once.
   */
  release(): void {
    if (this.poisons !== 'off') poisonIfLast(this.lane!.reader, this.poisons);
    this.releaseRecord();
  }

  /** Passes over a record another reader of the work took. */
  private skip(r: RingReader): void {
    if (this.poisons !== 'off') poisonIfLast(r, this.poisons);
    r.release();
  }

  private releaseRecord(): void {
    const lane = this.lane!, r = lane.reader;
    if (r.type !== T_FORWARD) return r.release();
    // A forward stands for a record held in the writer's input ring: hand forwards back once they
    // stand for an eighth of that ring, not after 64 of them (which may be all of it).
    const w = r.offset >>> 2;
    lane.forwardedBytes += lane.views.u32[w + 2]!;
    r.release();
    if (lane.forwardedBytes >= lane.sources[lane.views.u32[w]!]!.bytes.byteLength >>> 3) {
      lane.forwardedBytes = 0;
      r.flush();
    }
  }

  /** True when a writer of one of this port's rings is waiting for space. */
  upstreamBlocked(): boolean {
    for (const g of this.groups) for (const l of g.lanes) if (Atomics.load(l.reader.mem.i32, L.offWritersWaiting >> 2) !== 0) return true;
    return false;
  }

  /**
   * Waits until next() may have something new, at most `sliceMs` when given (a replica holding
   * forwarded records must look at its outputs now and then). Hands released space back first.
   */
  async wait(sliceMs?: number): Promise<void> {
    for (const g of this.groups) for (const l of g.lanes) l.reader.flush();
    let lane: Lane;
    if (this.lanes === 1) {
      lane = this.groups[0]!.lanes[0]!;
    } else {
      // Several rings: wait on the one the merge is blocked on, in short slices, then look again.
      const g = this.groups[this.rr % this.groups.length]!;
      lane = g.lanes[Math.max(0, g.current)] ?? g.lanes[0]!;
      sliceMs = Math.min(sliceMs ?? 20, 20);
    }
    if (sliceMs === undefined) return lane.reader.waitForData();
    await lane.reader.waitForData({ timeoutMs: sliceMs }).catch((e: { code?: string }) => {
      if (e.code !== 'ERR_TIMEOUT') throw e;
    });
  }

  /** Stops holding upstream back (this port will read no more). */
  detach(): void {
    for (const g of this.groups) for (const l of g.lanes) l.reader.detach();
  }

  flush(): void {
    for (const g of this.groups) for (const l of g.lanes) l.reader.flush();
  }
}
