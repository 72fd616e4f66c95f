// Encoding values into ring records and decoding them back. Numbers, strings, bytes and tensors
// have layouts of their own (tensors and bytes are read in place: zero-copy); anything else goes
// through v8's structured serialization.
import { deserialize, serialize } from 'node:v8';
import { InvalidArgumentError } from '../errors.js';
import type { RingReader } from '../ring/reader.js';
import type { RingWriter } from '../ring/writer.js';
import type { ShapeEncoder } from './shapes.js';
import {
  DTYPE_CODE, DTYPES, F_ASCII, F_BARE_TYPED, F_BUFFER, MAX_DIMS, T_BYTES, T_JSON, T_NUMBER, T_STRING, T_TENSOR, T_VALUE, TENSOR_HEADER,
  dtypeOf, elementCount, isTensor, type DType, type Tensor, type TypedArray,
} from './types.js';

/** Size of the record `value` will need, and its type; `bytes` is set for serialized values. */
interface Plan {
  type: number;
  flags: number;
  length: number;
  align: 16 | 64;
  bytes?: Uint8Array;
  json?: string;
}

/**
 * True when JSON round-trips `v` exactly: plain objects and arrays (small enough to check fast)
 * of strings, finite numbers, booleans and null. Anything else (undefined, Dates, Maps, typed
 * arrays, NaN, cycles, deep nesting) goes through v8 serialization.
 */
function jsonSafe(v: unknown, depth: number): boolean {
  if (depth > 8) return false;
  if (Array.isArray(v)) {
    if (v.length > 256) return false;
    for (let i = 0; i < v.length; i++) if (!jsonValueSafe(v[i], depth)) return false;
    return true;
  }
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  let n = 0;
  for (const k in v) {
    if (++n > 64 || !jsonValueSafe((v as Record<string, unknown>)[k], depth)) return false;
  }
  return true;
}

/** One member of an array or object checked by jsonSafe(). */
function jsonValueSafe(x: unknown, depth: number): boolean {
  const t = typeof x;
  if (t === 'string' || t === 'boolean' || x === null) return true;
  if (t === 'number') return Number.isFinite(x) && !Object.is(x, -0);
  return t === 'object' && jsonSafe(x, depth + 1);
}

function plan(value: unknown): Plan {
  if (typeof value === 'number') return { type: T_NUMBER, flags: 0, length: 8, align: 16 };
  if (typeof value === 'string') return { type: T_STRING, flags: 0, length: Buffer.byteLength(value, 'utf8'), align: 16 };
  if (value instanceof Uint8Array && value.constructor !== Uint8ClampedArray) {
    return { type: T_BYTES, flags: Buffer.isBuffer(value) ? F_BUFFER : 0, length: value.byteLength, align: 16 };
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return { type: T_TENSOR, flags: F_BARE_TYPED, length: TENSOR_HEADER + value.byteLength, align: 64 };
  }
  if (isTensor(value)) return { type: T_TENSOR, flags: 0, length: TENSOR_HEADER + value.data.byteLength, align: 64 };
  if (jsonSafe(value, 0)) {
    const json = JSON.stringify(value);
    const length = Buffer.byteLength(json, 'utf8');
    return { type: T_JSON, flags: length === json.length ? F_ASCII : 0, length, align: 16, json };
  }
  const bytes = serialize(value);
  return { type: T_VALUE, flags: 0, length: bytes.byteLength, align: 16, bytes };
}

/** Writes a tensor header at `off` (the payload start); the data goes at off + 64. */
export function writeTensorHeader(bytes: Uint8Array, off: number, dtype: DType, shape: readonly number[], bare: boolean): void {
  const code = DTYPE_CODE.get(dtype);
  if (code === undefined) throw new InvalidArgumentError(`unknown tensor dtype '${dtype}'`);
  if (shape.length > MAX_DIMS) throw new InvalidArgumentError(`a tensor has at most ${MAX_DIMS} dimensions, got ${shape.length}`);
  const dv = new DataView(bytes.buffer, off, TENSOR_HEADER);
  dv.setUint8(0, code);
  dv.setUint8(1, shape.length);
  dv.setUint16(2, bare ? 1 : 0, true);
  for (let i = 0; i < shape.length; i++) dv.setUint32(8 + 4 * i, shape[i]!, true);
}

/** Bytes a tensor record of `dtype` and `shape` takes. */
export function tensorLength(dtype: DType, shape: readonly number[]): number {
  const code = DTYPE_CODE.get(dtype);
  if (code === undefined) throw new InvalidArgumentError(`unknown tensor dtype '${dtype}'`);
  return TENSOR_HEADER + elementCount(shape) * DTYPES[code]!.ctor.BYTES_PER_ELEMENT;
}

/** A tensor whose data is a view of `bytes` at `off` + 64 (after its header). */
export function tensorView(bytes: Uint8Array, off: number, dtype: DType, shape: number[]): Tensor {
  const { ctor } = DTYPES[DTYPE_CODE.get(dtype)!]!;
  return { data: new ctor(bytes.buffer, off + TENSOR_HEADER, elementCount(shape)), shape, dtype };
}

/**
 * Claims a record for `value` (waiting when the ring is full: `wait` is called and the claim
 * retried), copies the value in and commits. Returns the payload bytes written.
 */
export async function encode(
  w: RingWriter, views: RingViews, value: unknown, seq: number, wait: (length: number, align: 16 | 64) => Promise<void>,
): Promise<number> {
  const p = plan(value);
  let off = w.claim(p.length, p.type | (p.flags << 16), seq, p.align);
  while (off < 0) {
    await wait(p.length, p.align);
    off = w.claim(p.length, p.type | (p.flags << 16), seq, p.align);
  }
  fill(w, off, value, p, views);
  w.commit();
  return p.length;
}

/** The synchronous part of encode(): claim or -1. Used by hot loops before they await. */
export function tryEncode(w: RingWriter, views: RingViews, value: unknown, seq: number, shapes?: ShapeEncoder): number {
  // Hot path: numbers and JSON-safe objects without allocating a plan.
  if (typeof value === 'number') {
    const off = w.claim(8, T_NUMBER, seq);
    if (off < 0) return -1;
    views.f64[off >>> 3] = value;
    w.commit();
    return 8;
  }
  if (shapes && typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    const r = shapes.tryEncode(w, views, value, seq);
    if (r !== 0) return r;  // written, or -1: full
  }
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !isTensor(value) && jsonSafe(value, 0)) {
    const json = JSON.stringify(value);
    const length = Buffer.byteLength(json, 'utf8');
    // ASCII text (the common case) decodes as latin1: no UTF-8 decoding on the reader's side.
    const off = w.claim(length, T_JSON | ((length === json.length ? F_ASCII : 0) << 16), seq);
    if (off < 0) return -1;
    views.buf.write(json, off, length, length === json.length ? 'latin1' : 'utf8');
    w.commit();
    return length;
  }
  const p = plan(value);
  const off = w.claim(p.length, p.type | (p.flags << 16), seq, p.align);
  if (off < 0) return -1;
  fill(w, off, value, p, views);
  w.commit();
  return p.length;
}

function fill(w: RingWriter, off: number, value: unknown, p: Plan, views: RingViews): void {
  const bytes = w.bytes;
  switch (p.type) {
    case T_NUMBER:
      views.f64[off >>> 3] = value as number;
      return;
    case T_STRING:
      views.buf.write(value as string, off, p.length, 'utf8');
      return;
    case T_BYTES:
      bytes.set(value as Uint8Array, off);
      return;
    case T_TENSOR: {
      const bare = (p.flags & F_BARE_TYPED) !== 0;
      const t = bare ? { data: value as TypedArray, shape: [(value as TypedArray).length], dtype: dtypeOf(value as TypedArray) } : (value as Tensor);
      if (t.data.length !== elementCount(t.shape)) {
        throw new InvalidArgumentError(`tensor shape [${t.shape.join(', ')}] does not match its ${t.data.length} elements`);
      }
      writeTensorHeader(bytes, off, t.dtype, t.shape, bare);
      bytes.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), off + TENSOR_HEADER);
      return;
    }
    case T_JSON:
      views.buf.write(p.json!, off, p.length, p.flags & F_ASCII ? 'latin1' : 'utf8');
      return;
    default:
      bytes.set(p.bytes!, off);
  }
}

/** Whole-buffer views of a ring, made once, so decoding a number or string allocates no view. */
export class RingViews {
  readonly f64: Float64Array;
  readonly u32: Uint32Array;
  readonly u16: Uint16Array;
  readonly buf: Buffer;
  constructor(readonly bytes: Uint8Array) {
    this.f64 = new Float64Array(bytes.buffer, 0, bytes.byteLength >>> 3);
    this.u32 = new Uint32Array(bytes.buffer, 0, bytes.byteLength >>> 2);
    this.u16 = new Uint16Array(bytes.buffer, 0, bytes.byteLength >>> 1);
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/** Decodes the reader's current record. Tensors and bytes are views into the ring. */
export function decode(r: RingReader, off: number, views: RingViews): unknown {
  return decodeAt(views, off, r.length, r.type, r.flags);
}

/** Decodes the record payload at `off` of the ring `views` cover. */
export function decodeAt(views: RingViews, off: number, length: number, type: number, flags: number): unknown {
  const bytes = views.bytes;
  const r = { length, flags };
  switch (type) {
    case T_NUMBER:
      return views.f64[off >>> 3];
    case T_STRING:
      return views.buf.toString('utf8', off, off + r.length);
    case T_BYTES:
      return r.flags & F_BUFFER ? Buffer.from(bytes.buffer, off, r.length) : new Uint8Array(bytes.buffer, off, r.length);
    case T_TENSOR: {
      const dv = new DataView(bytes.buffer, off, TENSOR_HEADER);
      const { dtype } = DTYPES[dv.getUint8(0)]!;
      const ndim = dv.getUint8(1);
      const shape = new Array<number>(ndim);
      for (let i = 0; i < ndim; i++) shape[i] = dv.getUint32(8 + 4 * i, true);
      const t = tensorView(bytes, off, dtype, shape);
      return dv.getUint16(2, true) & 1 ? t.data : t;
    }
    case T_JSON:
      return JSON.parse(views.buf.toString(r.flags & F_ASCII ? 'latin1' : 'utf8', off, off + r.length));
    case T_VALUE:
      return deserialize(new Uint8Array(bytes.buffer, off, r.length));
    default:
      throw new InvalidArgumentError(`unknown record type ${type}`);
  }
}
