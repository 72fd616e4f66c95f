// Records as standalone bytes, in the same layouts as the rings (src/codec): the record types and
// flags are the ring's, a tensor is the ring's 64-byte tensor header followed by its data, a number
// is a float64, strings and JSON are UTF-8, other values are v8-serialized. What travels over the
// network (a link's messages, a checkpoint) is `type`, `flags` and these bytes.
import { crc32 as zlibCrc32 } from 'node:zlib';
import { deserialize, serialize } from 'node:v8';
import { tensorView, writeTensorHeader } from '../codec/codec.js';
import {
  DTYPES, F_BARE_TYPED, F_BUFFER, T_BYTES, T_JSON, T_NUMBER, T_STRING, T_TENSOR, T_VALUE, TENSOR_HEADER,
  dtypeOf, elementCount, isTensor, type Tensor, type TypedArray,
} from '../codec/types.js';
import { InvalidArgumentError } from '../errors.js';

/** A record ready to send: its ring type and flags, and its bytes in one or two parts. */
export interface EncodedRecord {
  type: number;
  flags: number;
  /** Total bytes. */
  length: number;
  /** The bytes: a header and a payload view (tensors, bytes: not copied), or one buffer. */
  parts: Uint8Array[];
}

/** Like the codec's JSON fast path: plain objects/arrays of JSON values round-trip exactly. */
function jsonSafe(v: unknown, depth: number): boolean {
  if (depth > 64) return false;
  const t = typeof v;
  if (t === 'string' || t === 'boolean' || v === null) return true;
  if (t === 'number') return Number.isFinite(v) && !Object.is(v, -0);
  if (t !== 'object') return false;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (!(i in v) || !jsonSafe(v[i], depth + 1)) return false;
    return true;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k in v as object) if (!jsonSafe((v as Record<string, unknown>)[k], depth + 1)) return false;
  return true;
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Encodes one record (any value a ring carries) without copying tensor or byte payloads. */
export function encodeRecord(value: unknown): EncodedRecord {
  if (typeof value === 'number') {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, value, true);
    return { type: T_NUMBER, flags: 0, length: 8, parts: [b] };
  }
  if (typeof value === 'string') {
    const b = Buffer.from(value, 'utf8');
    return { type: T_STRING, flags: 0, length: b.byteLength, parts: [b] };
  }
  if (value instanceof Uint8Array && value.constructor !== Uint8ClampedArray) {
    return { type: T_BYTES, flags: Buffer.isBuffer(value) ? F_BUFFER : 0, length: value.byteLength, parts: [value] };
  }
  const bare = ArrayBuffer.isView(value) && !(value instanceof DataView);
  if (bare || isTensor(value)) {
    const t: Tensor = bare ? { data: value as TypedArray, shape: [(value as TypedArray).length], dtype: dtypeOf(value as TypedArray) } : (value as Tensor);
    if (t.data.length !== elementCount(t.shape)) {
      throw new InvalidArgumentError(`tensor shape [${t.shape.join(', ')}] does not match its ${t.data.length} elements`);
    }
    const header = new Uint8Array(TENSOR_HEADER);
    writeTensorHeader(header, 0, t.dtype, t.shape, bare);
    const data = bytesOf(t.data);
    return { type: T_TENSOR, flags: bare ? F_BARE_TYPED : 0, length: TENSOR_HEADER + data.byteLength, parts: [header, data] };
  }
  if (jsonSafe(value, 0)) {
    const b = Buffer.from(JSON.stringify(value), 'utf8');
    return { type: T_JSON, flags: 0, length: b.byteLength, parts: [b] };
  }
  const b = serialize(value);
  return { type: T_VALUE, flags: 0, length: b.byteLength, parts: [b] };
}

/**
 * Decodes a record's bytes. Tensors and bytes are views of `bytes` (the caller owns them); a
 * tensor's data must be aligned to its element size, which `alignedCopy` ensures.
 */
export function decodeRecord(type: number, flags: number, bytes: Uint8Array): unknown {
  switch (type) {
    case T_NUMBER:
      return new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true);
    case T_STRING:
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
    case T_BYTES:
      return flags & F_BUFFER ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    case T_TENSOR: {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, TENSOR_HEADER);
      const d = DTYPES[dv.getUint8(0)];
      if (!d) throw new InvalidArgumentError(`unknown tensor dtype code ${dv.getUint8(0)}`);
      const ndim = dv.getUint8(1);
      const shape = new Array<number>(ndim);
      for (let i = 0; i < ndim; i++) shape[i] = dv.getUint32(8 + 4 * i, true);
      if (bytes.byteLength !== TENSOR_HEADER + elementCount(shape) * d.ctor.BYTES_PER_ELEMENT) {
        throw new InvalidArgumentError(`tensor record of ${bytes.byteLength} bytes does not match its shape [${shape.join(', ')}] ${d.dtype}`);
      }
      if ((bytes.byteOffset + TENSOR_HEADER) % d.ctor.BYTES_PER_ELEMENT !== 0) bytes = alignedCopy(bytes);
      const t = tensorView(bytes, bytes.byteOffset, d.dtype, shape);
      return flags & F_BARE_TYPED ? t.data : t;
    }
    case T_JSON:
      return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    case T_VALUE:
      return deserialize(bytes);
    default:
      throw new InvalidArgumentError(`unknown record type ${type}`);
  }
}

/** A copy of `bytes` at offset 0 of a fresh buffer (aligned for any element type). */
export function alignedCopy(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out;
}

/** Joins an encoded record's parts into one buffer (for small records and checkpoints). */
export function joinParts(rec: EncodedRecord): Uint8Array {
  if (rec.parts.length === 1) return rec.parts[0]!;
  const out = new Uint8Array(rec.length);
  let off = 0;
  for (const p of rec.parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

// CRC-32 (IEEE): zlib's when Node has it (>= 20.15), else a table-driven one.
let table: Uint32Array | undefined;
function crc32js(data: Uint8Array, value = 0): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of `data`, continuing from `value` (0 to start). */
export const crc32: (data: Uint8Array, value?: number) => number =
  typeof zlibCrc32 === 'function' ? (data, value = 0) => zlibCrc32(data, value) >>> 0 : crc32js;

/** Encodes a value as one self-describing buffer: u16 type, u16 flags, u32 crc, then the record. */
export function packValue(value: unknown): Uint8Array {
  const rec = encodeRecord(value);
  const out = new Uint8Array(8 + rec.length);
  let off = 8;
  let crc = 0;
  for (const p of rec.parts) {
    out.set(p, off);
    off += p.byteLength;
    crc = crc32(p, crc);
  }
  const dv = new DataView(out.buffer);
  dv.setUint16(0, rec.type, true);
  dv.setUint16(2, rec.flags, true);
  dv.setUint32(4, crc, true);
  return out;
}

/** Decodes {@link packValue}'s buffer, checking its CRC. */
export function unpackValue(bytes: Uint8Array): unknown {
  if (bytes.byteLength < 8) throw new InvalidArgumentError(`a packed value has at least 8 bytes, got ${bytes.byteLength}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const body = bytes.subarray(8);
  if (crc32(body) !== dv.getUint32(4, true)) throw new InvalidArgumentError('packed value: checksum mismatch (damaged data)');
  return decodeRecord(dv.getUint16(0, true), dv.getUint16(2, true), body);
}
