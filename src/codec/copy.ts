// Owned copies of records. A decoded record may point into a ring at any depth: tensors, typed
// arrays and bytes are views, and so is every typed array inside a structured value (v8's
// deserializer makes views into the bytes it reads). An owned copy shares no memory with anything.
import type { TypedArray } from './types.js';

/**
 * A deep copy of a record that shares no memory with any ring (or with the original): objects,
 * arrays, Maps, Sets, Dates, tensors, typed arrays, Buffers, DataViews and ArrayBuffers, at any
 * depth, cycles and shared references kept as they were. Use it to keep what a segment received
 * past the call that received it.
 *
 * @example
 * const kept: unknown[] = [];
 * export const keep = (record: { x: Tensor; y: number }) => void kept.push(copyRecord(record));
 */
export function copyRecord<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  return copyObject(value, new Map()) as T;
}

function copyObject(v: object, seen: Map<object, unknown>): unknown {
  const done = seen.get(v);
  if (done !== undefined) return done;
  if (ArrayBuffer.isView(v)) {
    const out = copyView(v);
    seen.set(v, out);
    return out;
  }
  if (v instanceof ArrayBuffer || (typeof SharedArrayBuffer === 'function' && v instanceof SharedArrayBuffer)) {
    const out = new ArrayBuffer(v.byteLength);
    new Uint8Array(out).set(new Uint8Array(v));
    seen.set(v, out);
    return out;
  }
  if (Array.isArray(v)) {
    const out: unknown[] = new Array(v.length);
    seen.set(v, out);
    for (let i = 0; i < v.length; i++) out[i] = copyMember(v[i], seen);
    return out;
  }
  if (v instanceof Map) {
    const out = new Map();
    seen.set(v, out);
    for (const [k, x] of v) out.set(copyMember(k, seen), copyMember(x, seen));
    return out;
  }
  if (v instanceof Set) {
    const out = new Set();
    seen.set(v, out);
    for (const x of v) out.add(copyMember(x, seen));
    return out;
  }
  if (v instanceof Date) {
    const out = new Date(v.getTime());
    seen.set(v, out);
    return out;
  }
  // Plain objects, tensors { data, shape, dtype }, and instances (same prototype, own fields).
  const out = Object.create(Object.getPrototypeOf(v)) as Record<PropertyKey, unknown>;
  seen.set(v, out);
  for (const k of Reflect.ownKeys(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    if ('value' in d) d.value = copyMember(d.value, seen);
    Object.defineProperty(out, k, d);
  }
  return out;
}

const copyMember = (x: unknown, seen: Map<object, unknown>): unknown => (typeof x === 'object' && x !== null ? copyObject(x, seen) : x);

/** A view of the same type over fresh memory (a Buffer stays a Buffer). */
function copyView(v: ArrayBufferView): ArrayBufferView {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (v instanceof DataView) {
    const bytes = new Uint8Array(v.byteLength);
    bytes.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    return new DataView(bytes.buffer);
  }
  // slice() of a typed array allocates a new ArrayBuffer, whatever the source buffer.
  return (v as TypedArray).slice();
}

/**
 * True when `value` holds a view of a SharedArrayBuffer (ring memory) at some depth. Walks plain
 * containers only; used where a value crossed a thread boundary (postMessage shares, not copies,
 * SharedArrayBuffers).
 */
export function holdsSharedMemory(value: unknown, seen = new Set<object>()): boolean {
  if (typeof value !== 'object' || value === null || seen.has(value)) return false;
  seen.add(value);
  if (ArrayBuffer.isView(value)) return value.buffer instanceof SharedArrayBuffer;
  if (value instanceof SharedArrayBuffer) return true;
  if (value instanceof Map) {
    for (const [k, x] of value) if (holdsSharedMemory(k, seen) || holdsSharedMemory(x, seen)) return true;
    return false;
  }
  if (value instanceof Set || Array.isArray(value)) {
    for (const x of value) if (holdsSharedMemory(x, seen)) return true;
    return false;
  }
  for (const k of Object.keys(value)) if (holdsSharedMemory((value as Record<string, unknown>)[k], seen)) return true;
  return false;
}
