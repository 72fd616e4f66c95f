/**
 * What a trainer consumes: mini-batches `{ xs, ys }` of tensor records and epoch-end markers.
 *
 * A tensor record is `{ data, shape, dtype? }`. Arriving through a ring, `data` is a view into shared
 * memory that is valid only during the `run()` call that received it, so every conversion here copies.
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './backend.js';
import { TrainerError } from './errors.js';

/** The typed arrays a tensor record's `data` may be. */
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray;

/** A dense tensor: row-major `data` of `shape`. `dtype` is informative; the array type decides. */
export interface TensorRecord {
  data: TypedArray;
  shape: readonly number[];
  dtype?: string;
}

/** One tensor, several positional tensors (multi-input/-output models), or tensors by layer name. */
export type TensorGroup = TensorRecord | readonly TensorRecord[] | { readonly [name: string]: TensorRecord };

/** A mini-batch. `split: 'validation'` batches are evaluated, not trained on (send them after the epoch's training batches). */
export interface Batch {
  xs: TensorGroup;
  ys: TensorGroup;
  /** Default `'train'`. */
  split?: 'train' | 'validation';
}

/** Marks the end of epoch `epochEnd` (1-based) in a stream of batches. */
export interface EpochEnd {
  epochEnd: number;
}

/** Examples and targets held in memory, e.g. a validation or test set. */
export interface TensorPair {
  xs: TensorGroup;
  ys: TensorGroup;
}

/** The marker a source sends after the last batch of epoch `n` (1-based). */
export function epochEnd(n: number): EpochEnd {
  return { epochEnd: n };
}

/** True for an epoch-end marker `{ epochEnd: n }`. */
export function isEpochEnd(r: unknown): r is EpochEnd {
  return typeof r === 'object' && r !== null && typeof (r as EpochEnd).epochEnd === 'number' && !('xs' in r);
}

export function isTensorRecord(v: unknown): v is TensorRecord {
  return typeof v === 'object' && v !== null && ArrayBuffer.isView((v as TensorRecord).data) && Array.isArray((v as TensorRecord).shape);
}

/** True for a mini-batch `{ xs, ys }`. */
export function isBatch(r: unknown): r is Batch {
  return typeof r === 'object' && r !== null && 'xs' in r && 'ys' in r;
}

/** Makes a tensor record, checking that `shape` matches `data`. */
export function tensorRecord(data: TypedArray, shape: readonly number[]): TensorRecord {
  checkRecord({ data, shape }, 'tensor');
  return { data, shape: [...shape], dtype: dtypeOf(data) };
}

function dtypeOf(data: TypedArray): string {
  return data.constructor.name.replace('Array', '').replace('Clamped', '').toLowerCase();
}

function checkRecord(r: TensorRecord, what: string): void {
  if (!r.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new TrainerError('ERR_TRAINER_RECORD', `${what}: shape [${r.shape.join(', ')}] is not a list of sizes`);
  }
  const n = r.shape.reduce((a, b) => a * b, 1);
  if (n !== r.data.length) {
    throw new TrainerError('ERR_TRAINER_RECORD', `${what}: shape [${r.shape.join(', ')}] has ${n} elements, data has ${r.data.length}`);
  }
}

/**
 * Copies a tensor record into a new tf tensor. float32 and int32 arrays keep their type; other
 * numeric arrays become float32 (tfjs has no 8/16-bit or float64 dtype).
 */
export function toTensor(tf: Tf, r: TensorRecord, what = 'tensor'): TF.Tensor {
  if (!isTensorRecord(r)) throw new TrainerError('ERR_TRAINER_RECORD', `${what}: expected { data: TypedArray, shape: number[] }`);
  checkRecord(r, what);
  const shape = [...r.shape];
  // Always copy: the record may be a view into a ring slot that is reused after run() returns, and
  // tfjs-node / the cpu backend keep a reference to the array they are given.
  if (r.data instanceof Float32Array) return tf.tensor(new Float32Array(r.data), shape, 'float32');
  if (r.data instanceof Int32Array) return tf.tensor(new Int32Array(r.data), shape, 'int32');
  return tf.tensor(Float32Array.from(r.data as ArrayLike<number>), shape, 'float32');
}

/** A tensor group as tfjs tensors. */
type Converted = TF.Tensor | TF.Tensor[] | TF.NamedTensorMap;

/** Converts a tensor group (see {@link TensorGroup}) to tensors; dispose them with {@link disposeTensors}. */
export function toTensors(tf: Tf, g: TensorGroup, what: string): Converted {
  if (isTensorRecord(g)) return toTensor(tf, g, what);
  const made: TF.Tensor[] = [];
  try {
    if (Array.isArray(g)) {
      return (g as readonly TensorRecord[]).map((r, i) => {
        const t = toTensor(tf, r, `${what}[${i}]`);
        made.push(t);
        return t;
      });
    }
    if (typeof g === 'object' && g !== null) {
      const out: TF.NamedTensorMap = {};
      for (const [k, r] of Object.entries(g as Record<string, TensorRecord>)) {
        out[k] = toTensor(tf, r, `${what}.${k}`);
        made.push(out[k]!);
      }
      if (!made.length) throw new TrainerError('ERR_TRAINER_RECORD', `${what}: empty tensor map`);
      return out;
    }
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
  throw new TrainerError('ERR_TRAINER_RECORD', `${what}: expected a tensor record, an array or a map of them`);
}

export function disposeTensors(c: Converted | undefined): void {
  if (!c) return;
  if (Array.isArray(c)) for (const t of c) t.dispose();
  else if (typeof (c as TF.Tensor).dispose === 'function') (c as TF.Tensor).dispose();
  else for (const t of Object.values(c as TF.NamedTensorMap)) t.dispose();
}

/** Number of examples in a group: the first dimension of its (first) tensor. */
export function groupSize(g: TensorGroup): number {
  const first: TensorRecord | undefined = isTensorRecord(g)
    ? g
    : Array.isArray(g)
      ? (g as readonly TensorRecord[])[0]
      : Object.values(g as Record<string, TensorRecord>)[0];
  if (!first || !isTensorRecord(first) || !first.shape.length) {
    throw new TrainerError('ERR_TRAINER_RECORD', 'cannot tell the batch size: expected tensors with a leading batch dimension');
  }
  return first.shape[0]!;
}
