// Built-in regulators: batch(n) and unbatch(). Tensors batch into one tensor with a leading
// dimension (written straight into the output ring); other values batch into arrays.
import { InvalidArgumentError } from '../errors.js';
import { dtypeOf, elementCount, isTensor, type Tensor, type TypedArray } from '../codec/types.js';
import { Regulator, type SegmentContext } from './segment.js';
import { copyRecord, holdsSharedMemory } from '../codec/copy.js';
import { intInRange } from '../util/check.js';

/** Options of `batch()`. */
export interface BatchOptions {
  /** Records per batch. */
  size: number;
  /** Emit the last, smaller batch (default true). */
  keepPartial?: boolean;
}

/** The regulator behind batch(): exported so workers can import it. */
export async function* batchRegulator(records: AsyncIterable<unknown>, options: BatchOptions, ctx: SegmentContext<BatchOptions>) {
  const n = options.size;
  let values: unknown[] = [];
  let out: Tensor | undefined;
  let filled = 0;
  let itemShape: number[] = [];
  for await (const r of records) {
    if (isTensor(r) || ArrayBuffer.isView(r)) {
      const t: Tensor = isTensor(r) ? r : { data: r as TypedArray, shape: [(r as TypedArray).length], dtype: dtypeOf(r as TypedArray) };
      if (!out) {
        itemShape = [...t.shape];
        out = await ctx.tensor([n, ...itemShape], t.dtype);
      } else if (elementCount(t.shape) * n !== out.data.length || t.dtype !== out.dtype) {
        throw new InvalidArgumentError(`batch: record shape [${t.shape}] ${t.dtype} differs from the batch's [${itemShape}] ${out.dtype}`);
      }
      (out.data as TypedArray).set(t.data as any, filled * t.data.length);
      if (++filled === n) {
        yield out;
        out = undefined;
        filled = 0;
      }
    } else {
      // Held across records: a view inside it (a tensor in { x, y }) must not outlive its record.
      values.push(holdsSharedMemory(r) ? copyRecord(r) : r);
      if (values.length === n) {
        yield values;
        values = [];
      }
    }
  }
  if (options.keepPartial !== false) {
    if (out && filled) {
      // The claimed tensor holds n items; hand on only the filled ones (a copy, once per stream).
      const per = out.data.length / n;
      yield { data: (out.data as TypedArray).slice(0, filled * per), shape: [filled, ...itemShape], dtype: out.dtype };
    }
    if (values.length) yield values;
  }
}

/** The regulator behind unbatch(). */
export async function* unbatchRegulator(records: AsyncIterable<unknown>) {
  for await (const r of records) {
    if (isTensor(r)) {
      const [n, ...rest] = r.shape;
      const per = elementCount(rest);
      for (let i = 0; i < n!; i++) yield { data: (r.data as TypedArray).subarray(i * per, (i + 1) * per), shape: rest, dtype: r.dtype };
    } else if (Array.isArray(r)) {
      yield* r;
    } else {
      yield r;
    }
  }
}

const here = import.meta.url;

/** Groups `size` records into one: tensors into a tensor with a leading dimension, others into arrays. */
export function batch(size: number, options: Omit<BatchOptions, 'size'> = {}): Regulator<BatchOptions> {
  intInRange(size, 1, Infinity, 'batch(size): size');
  return new Regulator(batchRegulator, { name: `batch(${size})`, options: { size, ...options }, module: here, export: 'batchRegulator' });
}

/** Splits batches (tensors along their first dimension, arrays into items) into single records. */
export function unbatch(): Regulator {
  return new Regulator(unbatchRegulator, { name: 'unbatch', module: here, export: 'unbatchRegulator' });
}
