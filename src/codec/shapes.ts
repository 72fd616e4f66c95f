// Shaped records: flat plain objects (the "small dict" of data pipelines) encoded by position.
// A writer sends each new key list once, as a T_SHAPE record; after that a record carries only
// its shape id, a tag per field and the values. Both ends compile a function per shape (named
// property loads and an object literal with constant keys: V8 keeps them monomorphic), which makes
// a record several times cheaper than JSON.stringify + JSON.parse for { id: 1, label: 'cat', score: 0.5 }.
//
// Payload: u32 shape id, u32 field count, u8 tag per field (padded to 8), f64 slot per field
// (the number, 0/1 for booleans, the byte length of a string), then the strings (UTF-16LE: its
// length is known without scanning the string).
import type { RingWriter } from '../ring/writer.js';
import type { RingViews } from './codec.js';
import { T_SHAPE, T_SHAPED } from './types.js';

const TAG_NUMBER = 0, TAG_STRING = 1, TAG_FALSE = 2, TAG_TRUE = 3, TAG_NULL = 4;
const MAX_FIELDS = 32;
/** Strings up to this many UTF-16 units are copied by a JS loop: cheaper than a call into Buffer. */
const SHORT_STRING = 32;

/** Writes `v` (0: it does not fit the scheme; -1: the ring is full; else the payload length). */
type ShapeWriter = (v: any, w: RingWriter, views: RingViews, seq: number) => number;
type ShapeReader = (views: RingViews, off: number, strings: StringCache) => Record<string, unknown>;

const headBytes = (n: number) => 8 + ((n + 7) & ~7);

/** Copies `s` as UTF-16LE at byte `at`; returns the byte after it. */
function putString(views: RingViews, at: number, s: string): number {
  const bytes = s.length * 2;
  if (s.length > SHORT_STRING) views.buf.write(s, at, bytes, 'utf16le');
  else for (let j = 0, h = at >>> 1; j < s.length; j++) views.u16[h + j] = s.charCodeAt(j);
  return at + bytes;
}

/** The generated writer of one shape: named loads, tags, one claim, the slots, the strings. */
function compileWriter(id: number, keys: readonly string[]): ShapeWriter {
  const n = keys.length, head = headBytes(n);
  const lines: string[] = [];
  if (n) lines.push(`const ${keys.map((k, i) => `x${i} = v[${JSON.stringify(k)}]`).join(', ')};`);
  lines.push('let sb = 0;');
  for (let i = 0; i < n; i++) {
    lines.push(`let t${i};`);
    lines.push(
      `switch (typeof x${i}) { case 'number': t${i} = ${TAG_NUMBER}; break; case 'string': t${i} = ${TAG_STRING}; sb += x${i}.length * 2; break;` +
        ` case 'boolean': t${i} = x${i} ? ${TAG_TRUE} : ${TAG_FALSE}; break; default: if (x${i} !== null) return 0; t${i} = ${TAG_NULL}; }`,
    );
  }
  lines.push(`const length = ${head + 8 * n} + sb;`);
  lines.push(`const off = w.claim(length, ${T_SHAPED}, seq);`);
  lines.push('if (off < 0) return -1;');
  lines.push('const u32 = views.u32, f64 = views.f64, bytes = views.bytes;');
  lines.push(`u32[off >>> 2] = ${id}; u32[(off >>> 2) + 1] = ${n};`);
  lines.push(`const slot = (off + ${head}) >>> 3; let str = off + ${head + 8 * n};`);
  for (let i = 0; i < n; i++) {
    lines.push(`bytes[off + ${8 + i}] = t${i};`);
    lines.push(
      `if (t${i} === ${TAG_NUMBER}) f64[slot + ${i}] = x${i}; else if (t${i} === ${TAG_STRING}) { f64[slot + ${i}] = x${i}.length * 2; str = putString(views, str, x${i}); } else f64[slot + ${i}] = 0;`,
    );
  }
  lines.push('w.commit();');
  lines.push('return length;');
  return new Function('putString', `return function writeShape${id}(v, w, views, seq) {\n${lines.join('\n')}\n};`)(putString) as ShapeWriter;
}

/** The generated reader of one shape: one object literal with constant keys. */
function compileReader(keys: readonly string[]): ShapeReader {
  const n = keys.length, head = headBytes(n);
  const lines: string[] = [];
  lines.push('const f64 = views.f64, bytes = views.bytes;');
  lines.push(`const slot = (off + ${head}) >>> 3; let str = off + ${head + 8 * n};`);
  for (let i = 0; i < n; i++) {
    lines.push(`const t${i} = bytes[off + ${8 + i}], s${i} = f64[slot + ${i}];`);
    lines.push(
      `const x${i} = t${i} === ${TAG_NUMBER} ? s${i} : t${i} === ${TAG_STRING} ? strings.read(views, ${i}, str, s${i}) : t${i} === ${TAG_TRUE} ? true : t${i} === ${TAG_FALSE} ? false : null;`,
    );
    lines.push(`if (t${i} === ${TAG_STRING}) str += s${i};`);
  }
  lines.push(`return {${keys.map((k, i) => `${JSON.stringify(k)}: x${i}`).join(', ')}};`);
  return new Function('views', 'off', 'strings', lines.join('\n')) as ShapeReader;
}

/** Per output ring: which key lists were announced, under which id. */
export class ShapeEncoder {
  private readonly ids = new Map<string, number>();
  private readonly writers: ShapeWriter[] = [];
  private lastKeys: string[] | undefined;
  private lastWriter: ShapeWriter | undefined;

  /**
   * Writes `v` as a shaped record, announcing its shape first if new. Returns 0 (and writes
   * nothing) when `v` is not a flat object of numbers, strings, booleans and nulls, -1 when it
   * does not fit right now (the ring is full), else the payload length.
   */
  tryEncode(w: RingWriter, views: RingViews, v: object, seq: number): number {
    // Same keys, in the same order, as the last object? (the usual case: no allocation)
    const last = this.lastKeys;
    let n = 0, same = last !== undefined;
    for (const k in v) {
      if (same && last![n] !== k) same = false;
      if (++n > MAX_FIELDS) return 0;
    }
    if (same && n === last!.length) return this.lastWriter!(v, w, views, seq);
    const keys = Object.keys(v);
    if (keys.length !== n || keys.includes('__proto__')) return 0;
    const sig = keys.join('\u0000');
    let id = this.ids.get(sig);
    if (id === undefined) {
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
      this.writers[id] = compileWriter(id, keys);
    }
    const r = this.writers[id]!(v, w, views, seq);
    if (r > 0) {
      this.lastKeys = keys;
      this.lastWriter = this.writers[id];
    }
    return r;
  }
}

/** Last string decoded per field position: labels and categories repeat, so reuse it when equal. */
class StringCache {
  private readonly last: string[] = [];

  read(views: RingViews, field: number, off: number, bytes: number): string {
    if (bytes === 0) return '';
    const n = bytes >>> 1;
    if (n > SHORT_STRING) return views.buf.toString('utf16le', off, off + bytes);
    const last = this.last[field];
    if (last !== undefined && last.length === n) {
      const u16 = views.u16, h = off >>> 1;
      let j = 0;
      while (j < n && u16[h + j] === last.charCodeAt(j)) j++;
      if (j === n) return last;
    }
    return (this.last[field] = views.buf.toString('utf16le', off, off + bytes));
  }
}

/** Per input ring: the shapes its writer announced. */
export class ShapeDecoder {
  private readonly readers: ShapeReader[] = [];
  private readonly strings = new StringCache();

  /** Learns a shape from a T_SHAPE record's payload. */
  define(views: RingViews, off: number, length: number): void {
    const id = views.u32[off >>> 2]!;
    const keys = JSON.parse(views.buf.toString('utf8', off + 4, off + length)) as string[];
    this.readers[id] = compileReader(keys);
  }

  decode(views: RingViews, off: number): Record<string, unknown> {
    const id = views.u32[off >>> 2]!;
    const read = this.readers[id];
    if (!read) throw new Error(`shaped record of unknown shape ${id} (its announcement was not read)`);
    return read(views, off, this.strings);
  }
}
