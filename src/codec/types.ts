// How records are laid out in a ring: the record types and the tensor header. Ring records carry
// a 16-bit type; 0 is the ring's own padding.

export const T_NUMBER = 1;     // float64, 8 bytes
export const T_STRING = 2;     // UTF-8
export const T_VALUE = 3;      // v8 structured serialization (objects, arrays, Maps, Dates, ...)
export const T_BYTES = 4;      // Uint8Array / Buffer, raw
export const T_TENSOR = 5;     // tensor header (64 bytes) + data, 64-byte aligned
export const T_WATERMARK = 6;  // engine-internal: "no record below this seq will follow"
export const T_FORWARD = 8;    // engine-internal: a reference to a record in another ring (u32 source, offset, length, typeFlags)
export const T_JSON = 7;
export const T_SHAPE = 9;      // a key list announced once per output ring (codec/shapes.ts)
export const T_SHAPED = 10;    // a flat object encoded by position against an announced shape

/** Flags (high 16 bits of the ring's typeFlags). */
export const F_BUFFER = 1;      // T_BYTES: was a Node Buffer
export const F_BARE_TYPED = 2;  // T_TENSOR: was a bare TypedArray, not a { data, shape, dtype }
export const F_ASCII = 4;       // T_JSON: every byte < 0x80

/** Element type of a tensor. */
export type DType = 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'uint8' | 'uint16' | 'uint32' | 'uint8c' | 'bool' | 'int64' | 'uint64';

/** The typed arrays a tensor's `data` can be. */
export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Int16Array | Int32Array | Uint8Array | Uint16Array | Uint32Array
  | Uint8ClampedArray | BigInt64Array | BigUint64Array;

/**
 * A tensor record. Travels zero-copy: a consumer's `data` is a view into the ring, valid until
 * the call that received it returns (copy it, e.g. `data.slice()`, to keep it longer).
 */
export interface Tensor<A extends TypedArray = TypedArray> {
  data: A;
  shape: number[];
  dtype: DType;
}

type Ctor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

/** dtype <-> code <-> constructor. The code is what a tensor header stores. */
export const DTYPES: { dtype: DType; ctor: Ctor }[] = [
  { dtype: 'float32', ctor: Float32Array },
  { dtype: 'float64', ctor: Float64Array },
  { dtype: 'int8', ctor: Int8Array },
  { dtype: 'int16', ctor: Int16Array },
  { dtype: 'int32', ctor: Int32Array },
  { dtype: 'uint8', ctor: Uint8Array },
  { dtype: 'uint16', ctor: Uint16Array },
  { dtype: 'uint32', ctor: Uint32Array },
  { dtype: 'uint8c', ctor: Uint8ClampedArray },
  { dtype: 'bool', ctor: Uint8Array },
  { dtype: 'int64', ctor: BigInt64Array },
  { dtype: 'uint64', ctor: BigUint64Array },
];
export const DTYPE_CODE = new Map<DType, number>(DTYPES.map((d, i) => [d.dtype, i]));

export function dtypeOf(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Uint8ClampedArray) return 'uint8c';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Uint16Array) return 'uint16';
  if (a instanceof Uint32Array) return 'uint32';
  if (a instanceof BigInt64Array) return 'int64';
  return 'uint64';
}

/** Tensor header: dtype u8, ndim u8, flags u16, reserved u32, shape u32[ndim]; data at +64. */
export const TENSOR_HEADER = 64;
export const MAX_DIMS = 14;

/** True for a tensor record `{ data: TypedArray, shape: number[], dtype }`. */
export function isTensor(v: unknown): v is Tensor {
  return (
    typeof v === 'object' && v !== null && ArrayBuffer.isView((v as Tensor).data) && Array.isArray((v as Tensor).shape) &&
    typeof (v as Tensor).dtype === 'string'
  );
}

export const elementCount = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
