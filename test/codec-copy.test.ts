// copyRecord: an owned copy shares no memory with the ring at any depth, whatever the record's shape.
import { describe, expect, it } from 'vitest';
import { Ring, RingReader, RingWriter } from '../src/ring/index.js';
import { copyRecord, decode, holdsSharedMemory, RingViews, tryEncode } from '../src/codec/index.js';

/** Writes `value` to a ring, decodes it (views into the ring), and returns it with the ring. */
function throughRing(value: unknown): { decoded: unknown; ring: Ring } {
  const ring = Ring.create({ capacity: 1 << 16 });
  const w = new RingWriter(ring), r = new RingReader(ring);
  expect(tryEncode(w, new RingViews(w.bytes), value, 0)).toBeGreaterThanOrEqual(0);
  w.flush();
  const off = r.next();
  expect(off).toBeGreaterThanOrEqual(0);
  return { decoded: decode(r, off, new RingViews(r.bytes)), ring };
}

const tensor = (n: number, v = 1.5) => ({ data: new Float32Array(n).fill(v), shape: [n], dtype: 'float32' as const });

const samples: [string, unknown][] = [
  ['a tensor', tensor(10)],
  ['a bare typed array', new Int16Array([1, -2, 3])],
  ['a Buffer', Buffer.from('bytes')],
  ['an example { x, y }', { x: tensor(12), y: 3 }],
  ['a list of tensors', [tensor(4, 1), tensor(4, 2), new Uint8Array([9, 8])]],
  ['a batch of { x: tensor }', Array.from({ length: 5 }, (_, i) => ({ x: tensor(8, i), label: `l${i}` }))],
  ['Maps and Sets', new Map<unknown, unknown>([['a', new Float64Array([1, 2])], ['s', new Set([new Uint16Array([7])])]])],
  ['a DataView', { dv: new DataView(new Uint8Array([1, 2, 3, 4]).buffer, 1, 2) }],
  ['deep nesting', { a: { b: { c: [{ d: new Map([[1, { e: new BigInt64Array([5n]) }]]) }] } } }],
];

function checkOwned(copy: unknown, seen = new Set<unknown>()): void {
  if (typeof copy !== 'object' || copy === null || seen.has(copy)) return;
  seen.add(copy);
  if (ArrayBuffer.isView(copy)) {
    expect(copy.buffer).not.toBeInstanceOf(SharedArrayBuffer);
    return;
  }
  const members = copy instanceof Map ? [...copy.keys(), ...copy.values()] : copy instanceof Set ? [...copy] : Object.values(copy);
  for (const m of members) checkOwned(m, seen);
}

describe('copyRecord', () => {
  it.each(samples)('%s: equal, owned, and unharmed when the ring is overwritten', (_, value) => {
    const { decoded, ring } = throughRing(value);
    const copy = copyRecord(decoded);
    expect(copy).toEqual(value);
    checkOwned(copy);
    expect(holdsSharedMemory(copy)).toBe(false);
    ring.bytes.fill(0xdd);  // what a writer reusing the space does
    expect(copy).toEqual(value);
    ring.close();
  });

  it('nested views of a decoded record do point into the ring (what copyRecord is for)', () => {
    const { decoded, ring } = throughRing({ x: tensor(16), y: 1 });
    expect(holdsSharedMemory(decoded)).toBe(true);
    ring.close();
  });

  it('keeps cycles, shared references, prototypes and Buffer-ness', () => {
    class Point {
      constructor(public x = 1) {}
      norm() {
        return Math.abs(this.x);
      }
    }
    const shared = new Float32Array([1, 2]);
    const v: Record<string, unknown> = { a: shared, b: shared, p: new Point(-3), buf: Buffer.from('x'), when: new Date(5) };
    v.self = v;
    const c = copyRecord(v);
    expect(c.self).toBe(c);
    expect(c.a).toBe(c.b);
    expect(c.a).not.toBe(shared);
    expect((c.p as Point).norm()).toBe(3);
    expect(Buffer.isBuffer(c.buf)).toBe(true);
    expect((c.when as Date).getTime()).toBe(5);
    expect(copyRecord(7)).toBe(7);
    expect(copyRecord('s')).toBe('s');
    expect(copyRecord(null)).toBe(null);
  });

  it('copies SharedArrayBuffers and ArrayBuffers themselves', () => {
    const sab = new SharedArrayBuffer(8);
    new Uint8Array(sab).fill(3);
    const c = copyRecord({ sab, ab: new ArrayBuffer(4) });
    expect(c.sab).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(c.sab as unknown as ArrayBuffer)]).toEqual(new Array(8).fill(3));
  });
});
