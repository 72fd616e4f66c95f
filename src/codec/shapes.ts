// Shaped records: flat plain objects (the "small dict" of data pipelines) encoded by position.
// A writer sends each new key list once, as a T_SHAPE record; after that a record carries only
// its shape id, a tag per field and the values, and a reader rebuilds it with a generated object
// literal. About four times cheaper than JSON.stringify + JSON.parse for objects like
// { id: 1, label: 'cat', score: 0.5 } (see bench/suites/pipeline.ts).
//
// Payload: u32 shape id, u32 field count, u8 tag per field (padded to 8), f64 slot per field
// (the number, 0/1 for booleans, the byte length of a string), then the strings (UTF-16LE: its
// length is known without scanning the string).
import type { RingWriter } from '../ring/writer.js';
import type { RingViews } from './codec.js';
import { T_SHAPE, T_SHAPED } from './types.js';

const TAG_NUMBER = 0, TAG_STRING = 1, TAG_FALSE = 2, TAG_TRUE = 3, TAG_NULL = 4;
const MAX_FIELDS = 32;

/** Per output ring: which key lists were announced, under which id. */
export class ShapeEncoder {
  private readonly ids = new Map<string, number>();
  private lastKeys: string[] | undefined;
  private lastId = -1;
  private readonly tags = new Uint8Array(MAX_FIELDS);

  /**
   * Writes `v` as a shaped record, announcing its shape first if new. Returns false (and writes
   * nothing) when `v` is not a flat object of numbers, strings, booleans and nulls, or does not
   * fit right now (-1: the ring is full).
   */
  tryEncode(w: RingWriter, views: RingViews, v: object, seq: number): number {
    // Same keys, in the same order, as the last object? (the usual case: no allocation)
    const last = this.lastKeys;
    let n = 0, same = last !== undefined;
    for (const k in v) {
      if (same && last![n] !== k) same = false;
      if (++n > MAX_FIELDS) return 0;
    }
    if (same && n !== last!.length) same = false;
    let id = this.lastId;
    let keys = last!;
    if (!same) {
      keys = Object.keys(v);
      if (keys.length !== n || keys.includes('__proto__')) return 0;
      const sig = keys.join('\u0000');
      const known = this.ids.get(sig);
      if (known === undefined) {
        // Announce the shape; readers learn it before any record that uses it.
        const def = JSON.stringify(keys);
        const len = Buffer.byteLength(def, 'utf8');
        const off = w.claim(4 + len, T_SHAPE);
        if (off < 0) return -1;
        id = this.ids.size;
        views.u32[off >>> 2] = id;
        views.buf.write(def, off + 4, len, 'utf8');
        w.commit();
        this.ids.set(sig, id);
      } else {
        id = known;
      }
    }
    // Pass 1: tags and size; bail out before writing anything if a value does not fit the scheme.
    const tags = this.tags;
    let strBytes = 0;
    for (let i = 0; i < n; i++) {
      const x = (v as Record<string, unknown>)[keys[i]!];
      switch (typeof x) {
        case 'number': tags[i] = TAG_NUMBER; break;
        case 'string': tags[i] = TAG_STRING; strBytes += x.length * 2; break;
        case 'boolean': tags[i] = x ? TAG_TRUE : TAG_FALSE; break;
        default:
          if (x !== null) return 0;
          tags[i] = TAG_NULL;
      }
    }
    const head = 8 + ((n + 7) & ~7);
    const length = head + 8 * n + strBytes;
    const off = w.claim(length, T_SHAPED, seq);
    if (off < 0) return -1;
    this.lastKeys = keys;
    this.lastId = id;
    const u32 = views.u32, f64 = views.f64, bytes = views.bytes;
    u32[off >>> 2] = id;
    u32[(off >>> 2) + 1] = n;
    let slot = (off + head) >>> 3, str = off + head + 8 * n;
    for (let i = 0; i < n; i++) {
      const tag = tags[i]!;
      bytes[off + 8 + i] = tag;
      const x = (v as Record<string, unknown>)[keys[i]!];
      if (tag === TAG_NUMBER) f64[slot++] = x as number;
      else if (tag === TAG_STRING) {
        const sb = (x as string).length * 2;
        f64[slot++] = sb;
        if (sb) views.buf.write(x as string, str, sb, 'utf16le');
        str += sb;
      } else f64[slot++] = 0;
    }
    w.commit();
    return length;
  }
}

type Factory = (v: unknown[]) => Record<string, unknown>;

/** Per input ring: the shapes its writer announced. */
export class ShapeDecoder {
  private readonly factories: Factory[] = [];
  private readonly values: unknown[] = [];

  /** Learns a shape from a T_SHAPE record's payload. */
  define(views: RingViews, off: number, length: number): void {
    const id = views.u32[off >>> 2]!;
    const keys = JSON.parse(views.buf.toString('utf8', off + 4, off + length)) as string[];
    // An object literal with constant keys: V8 gives every record the same hidden class.
    const body = `return {${keys.map((k, i) => `${JSON.stringify(k)}: v[${i}]`).join(', ')}};`;
    this.factories[id] = new Function('v', body) as Factory;
  }

  decode(views: RingViews, off: number): Record<string, unknown> {
    const u32 = views.u32, f64 = views.f64, bytes = views.bytes;
    const id = u32[off >>> 2]!, n = u32[(off >>> 2) + 1]!;
    const head = 8 + ((n + 7) & ~7);
    const v = this.values;
    let slot = (off + head) >>> 3, str = off + head + 8 * n;
    for (let i = 0; i < n; i++) {
      const tag = bytes[off + 8 + i];
      const x = f64[slot++]!;
      if (tag === TAG_NUMBER) v[i] = x;
      else if (tag === TAG_STRING) {
        v[i] = x ? views.buf.toString('utf16le', str, str + x) : '';
        str += x;
      } else v[i] = tag === TAG_TRUE ? true : tag === TAG_FALSE ? false : null;
    }
    const f = this.factories[id];
    if (!f) throw new Error(`shaped record of unknown shape ${id} (its announcement was not read)`);
    return f(v);
  }
}
