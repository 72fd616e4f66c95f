/**
 * Reader (and writer) for the IDX format used by MNIST and Fashion-MNIST: a 4-byte magic number
 * (two zero bytes, an element-type code, the number of dimensions), one big-endian uint32 per
 * dimension, then the elements in row-major order, big-endian. Files may be gzip-compressed; the
 * gzip header is detected from the bytes, not the file name.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync } from 'node:zlib';
import { DataFormatError } from './errors.js';

const gunzipAsync = promisify(gunzip);

/** Element types of the IDX format, named like the typed arrays that hold them. */
export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The typed array that holds each IDX element type. */
export interface IdxDataByDtype {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
}

/** A decoded IDX file: a dense tensor in host byte order. */
export interface IdxTensor<D extends IdxDtype = IdxDtype> {
  dtype: D;
  /** Dimensions, outermost first (e.g. `[60000, 28, 28]` for Fashion-MNIST training images). */
  shape: number[];
  /** The elements, row-major, `shape.reduce(*)` of them. */
  data: IdxDataByDtype[D];
}

interface TypeInfo {
  code: number;
  size: number;
  make(n: number): IdxDataByDtype[IdxDtype];
  get(view: DataView, offset: number): number;
}

const TYPES: Record<IdxDtype, TypeInfo> = {
  uint8: { code: 0x08, size: 1, make: (n) => new Uint8Array(n), get: (v, o) => v.getUint8(o) },
  int8: { code: 0x09, size: 1, make: (n) => new Int8Array(n), get: (v, o) => v.getInt8(o) },
  int16: { code: 0x0b, size: 2, make: (n) => new Int16Array(n), get: (v, o) => v.getInt16(o, false) },
  int32: { code: 0x0c, size: 4, make: (n) => new Int32Array(n), get: (v, o) => v.getInt32(o, false) },
  float32: { code: 0x0d, size: 4, make: (n) => new Float32Array(n), get: (v, o) => v.getFloat32(o, false) },
  float64: { code: 0x0e, size: 8, make: (n) => new Float64Array(n), get: (v, o) => v.getFloat64(o, false) },
};
const BY_CODE = new Map<number, IdxDtype>(Object.entries(TYPES).map(([k, t]) => [t.code, k as IdxDtype]));

const isGzip = (b: Uint8Array) => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Decodes an uncompressed IDX buffer. Byte-sized elements are returned as a view of `bytes` (no
 * copy); wider elements are converted from big-endian into a new array.
 * @param source names the buffer in error messages (e.g. its file path).
 */
export function parseIdx(bytes: Uint8Array, source = 'IDX buffer'): IdxTensor {
  if (bytes.length < 4) throw new DataFormatError('ERR_IDX_FORMAT', `${source}: ${bytes.length} bytes, too short for an IDX header`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const hint = isGzip(bytes) ? ' (it is gzip-compressed: use readIdx or gunzip it first)' : '';
    throw new DataFormatError('ERR_IDX_FORMAT', `${source}: bad IDX magic 0x${hex(bytes, 0, 4)}${hint}`);
  }
  const dtype = BY_CODE.get(bytes[2]!);
  if (!dtype) throw new DataFormatError('ERR_IDX_FORMAT', `${source}: unknown IDX element type 0x${hex(bytes, 2, 3)}`);
  const ndims = bytes[3]!;
  const headerSize = 4 + 4 * ndims;
  if (bytes.length < headerSize) {
    throw new DataFormatError('ERR_IDX_FORMAT', `${source}: truncated header (${ndims} dimensions need ${headerSize} bytes, have ${bytes.length})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const info = TYPES[dtype];
  const expected = headerSize + count * info.size;
  if (bytes.length !== expected) {
    throw new DataFormatError(
      'ERR_IDX_FORMAT',
      `${source}: shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes, file has ${bytes.length}` +
        (bytes.length < expected ? ' (truncated)' : ' (trailing bytes)'),
    );
  }
  let data: IdxDataByDtype[IdxDtype];
  if (dtype === 'uint8') data = new Uint8Array(bytes.buffer, bytes.byteOffset + headerSize, count);
  else if (dtype === 'int8') data = new Int8Array(bytes.buffer, bytes.byteOffset + headerSize, count);
  else {
    data = info.make(count);
    for (let i = 0, o = headerSize; i < count; i++, o += info.size) data[i] = info.get(view, o);
  }
  return { dtype, shape, data };
}

/** Reads an IDX file (gzip-compressed or not). */
export async function readIdx(path: string): Promise<IdxTensor> {
  let bytes: Uint8Array = await readFile(path);
  if (isGzip(bytes)) bytes = await gunzipAsync(bytes).catch((e: unknown) => gzipError(path, e));
  return parseIdx(bytes, path);
}

/** Synchronous {@link readIdx}. */
export function readIdxSync(path: string): IdxTensor {
  let bytes: Uint8Array = readFileSync(path);
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      gzipError(path, e);
    }
  }
  return parseIdx(bytes, path);
}

/**
 * Encodes a tensor as IDX bytes (big-endian), gzip-compressed when `gzip` is set. Used to write
 * fixtures and derived subsets.
 */
export function encodeIdx(tensor: IdxTensor, options: { /** Compress with gzip. */ gzip?: boolean } = {}): Buffer {
  const info = TYPES[tensor.dtype];
  if (!info) throw new DataFormatError('ERR_IDX_FORMAT', `cannot encode element type '${String(tensor.dtype)}' as IDX`);
  if (tensor.shape.length > 255) throw new DataFormatError('ERR_IDX_FORMAT', `IDX holds at most 255 dimensions, got ${tensor.shape.length}`);
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (count !== tensor.data.length) {
    throw new DataFormatError('ERR_IDX_FORMAT', `shape [${tensor.shape.join(', ')}] has ${count} elements, data has ${tensor.data.length}`);
  }
  const headerSize = 4 + 4 * tensor.shape.length;
  const out = Buffer.alloc(headerSize + count * info.size);
  out[2] = info.code;
  out[3] = tensor.shape.length;
  tensor.shape.forEach((d, i) => out.writeUInt32BE(d, 4 + 4 * i));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const d = tensor.data;
  for (let i = 0, o = headerSize; i < count; i++, o += info.size) {
    const v = d[i]!;
    switch (tensor.dtype) {
      case 'uint8': view.setUint8(o, v); break;
      case 'int8': view.setInt8(o, v); break;
      case 'int16': view.setInt16(o, v, false); break;
      case 'int32': view.setInt32(o, v, false); break;
      case 'float32': view.setFloat32(o, v, false); break;
      case 'float64': view.setFloat64(o, v, false); break;
    }
  }
  return options.gzip ? gzipSync(out) : out;
}

function hex(b: Uint8Array, from: number, to: number): string {
  return Array.from(b.subarray(from, to), (x) => x.toString(16).padStart(2, '0')).join('');
}

function gzipError(path: string, e: unknown): never {
  throw new DataFormatError('ERR_IDX_FORMAT', `${path}: corrupt gzip stream (${(e as Error).message})`, { cause: e });
}
