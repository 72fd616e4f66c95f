// Record layouts: every kind of value survives a ring, through each encoding path.
import { describe, expect, it } from 'vitest';
import { Ring, RingReader, RingWriter } from '../src/ring/index.js';
import { decode, RingViews, ShapeDecoder, ShapeEncoder, tryEncode } from '../src/codec/index.js';
import { T_JSON, T_NUMBER, T_SHAPE, T_SHAPED, T_TENSOR, T_VALUE } from '../src/codec/types.js';

function roundTrip(values: unknown[]): { values: unknown[]; types: number[] } {
  const ring = Ring.create({ capacity: 1 << 16 });
  const w = new RingWriter(ring), r = new RingReader(ring);
  const wv = new RingViews(w.bytes), rv = new RingViews(r.bytes);
  const shapes = new ShapeEncoder(), shapesIn = new ShapeDecoder();
  values.forEach((v, i) => expect(tryEncode(w, wv, v, i, shapes)).toBeGreaterThanOrEqual(0));
  w.close();
  const out: unknown[] = [], types: number[] = [];
  for (let off; (off = r.next()) >= 0; r.release()) {
    if (r.type === T_SHAPE) {
      shapesIn.define(rv, off, r.length);
      continue;
    }
    types.push(r.type);
    out.push(r.type === T_SHAPED ? shapesIn.decode(rv, off) : decode(r, off, rv));
  }
  ring.close();
  return { values: out, types };
}

describe('codec', () => {
  it('flat objects take the shaped path; shapes may change and come back', () => {
    const values = [
      { id: 1, label: 'cat', score: 0.5 },
      { id: 2, label: 'dög ☃ \ud83d\ude00', score: -1e300 },
      { a: true, b: false, c: null, d: '' },
      { id: 3, label: 'cat', score: 0 },
      {},
    ];
    const r = roundTrip(values);
    expect(r.values).toEqual(values);
    expect(r.types).toEqual([T_SHAPED, T_SHAPED, T_SHAPED, T_SHAPED, T_SHAPED]);
  });

  it('objects that do not fit a shape fall back to JSON, then to structured clone', () => {
    const values = [
      { nested: { a: [1, 2] } },
      { ['__proto__']: 1 } as unknown,
      { d: new Date(0), m: new Map([[1, 2]]) },
      { u: undefined, n: NaN },
      [1, 'x', null],
      42,
    ];
    const r = roundTrip(values);
    expect(r.values[0]).toEqual(values[0]);
    expect(r.values[2]).toEqual(values[2]);
    expect(r.values[3]).toEqual({ u: undefined, n: NaN });
    expect(r.values[4]).toEqual([1, 'x', null]);
    expect(r.types).toEqual([T_JSON, T_JSON, T_VALUE, T_VALUE, T_JSON, T_NUMBER]);
  });

  it('tensors keep dtype and shape and come back as views', () => {
    const t = { data: new Int32Array([1, -2, 3, 4, 5, 6]), shape: [2, 3], dtype: 'int32' as const };
    const r = roundTrip([t, new Float64Array([0.5])]);
    expect(r.types).toEqual([T_TENSOR, T_TENSOR]);
    const got = r.values[0] as typeof t;
    expect(got.shape).toEqual([2, 3]);
    expect(got.dtype).toBe('int32');
    expect(Array.from(got.data)).toEqual([1, -2, 3, 4, 5, 6]);
    expect(got.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Array.from(r.values[1] as Float64Array)).toEqual([0.5]);
  });
});
