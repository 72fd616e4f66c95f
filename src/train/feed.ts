/**
 * From a data set's records to the stream a {@link Trainer} reads: batches of `batchSize` rows,
 * epochs, an optional seeded shuffle buffer and a held-out validation fraction. The JSON pipeline
 * `trainer` stage feeds its trainer with it; any data set that can be iterated several times fits.
 *
 * Records:
 * - `{ x, y }`: one example. `x` and `y` are a tensor record without the batch dimension, a typed
 *   array, a number, nested number arrays, or (multi-input / -output models) a list of tensor records
 *   or an object of them by layer name. Examples are stacked into batches (default 32 rows).
 * - `{ xs, ys, split? }`: a batch with a leading batch dimension, passed on as it is, or re-cut into
 *   `batchSize` rows when that is given. `split: 'validation'` batches are evaluated, not trained on.
 * - `{ epochEnd: n }`: the stream carries its own epochs: it is read once and each marker closes an
 *   epoch (`epochs` then caps how many are trained). Without markers the data is read again for every
 *   epoch and the feed closes each pass with a marker.
 */
import { InvalidArgumentError } from '../errors.js';
import { seededRng, shuffleInPlace, type Uniform } from '../util/random.js';
import { TrainerError } from './errors.js';
import { epochEnd, isEpochEnd, isTensorRecord, type Batch, type EpochEnd, type TensorGroup, type TensorRecord, type TypedArray } from './records.js';

/** Rows per batch when examples come without a `batchSize` (Keras's default). */
export const DEFAULT_BATCH_SIZE = 32;

/** Options of {@link trainerFeed}. */
export interface FeedOptions {
  /**
   * Passes over the data (default 1). When the data carries `{ epochEnd }` markers it is read once,
   * and this is the most epochs trained (default: all of them).
   */
  epochs?: number;
  /** Rows per training batch. Default: batches as they come, examples 32 at a time. */
  batchSize?: number;
  /** Shuffle records within a buffer of this many, differently in every epoch (seeded); 0 keeps their order. Default 0. */
  shuffle?: number;
  /** Seed of the shuffle. Default 0. */
  seed?: number;
  /**
   * Fraction (0 < f < 1) of the records, the last ones of each pass (as Keras's validation_split),
   * evaluated at every epoch end instead of trained on. Needs a known number of records and no markers.
   */
  validationSplit?: number;
  /** Stops reading (with the signal's reason) when aborted. */
  signal?: AbortSignal;
}

/** Data that can be iterated once per epoch (an array, or the JSON pipeline's `ReplayableInput`); `length` when known. */
export type EpochData = (Iterable<unknown> | AsyncIterable<unknown>) & { readonly length?: number };

/** The stream for a trainer: batches and `{ epochEnd: n }` markers. Throws {@link TrainerError} `ERR_TRAINER_RECORD` on a record it cannot use. */
export async function* trainerFeed(data: EpochData, options: FeedOptions = {}): AsyncGenerator<Batch | EpochEnd> {
  const o = checkFeedOptions(options);
  const total = typeof data.length === 'number' ? data.length : undefined;
  let trainRecords = Infinity;
  if (o.validationSplit !== undefined) {
    if (total === undefined) throw new TrainerError('ERR_TRAINER_RECORD', 'validation split: the number of records is not known');
    trainRecords = Math.floor(total * (1 - o.validationSplit));
    if (trainRecords < 1) throw new TrainerError('ERR_TRAINER_RECORD', `validation split ${o.validationSplit} of ${total} record(s) leaves none to train on`);
  }
  let markers = 0;
  let rows = 0;
  const epoch = (n: number) => new EpochBatches(o, n);
  for (let pass = 1; markers === 0 && pass <= (o.epochs ?? 1); pass++) {
    let e = epoch(pass);
    let index = 0;
    for await (const record of data as AsyncIterable<unknown>) {
      if (o.signal?.aborted) throw o.signal.reason;
      if (isEpochEnd(record)) {
        if (o.validationSplit !== undefined) throw new TrainerError('ERR_TRAINER_RECORD', 'validation split needs data without epoch markers (the stream has { epochEnd })');
        yield* e.end();
        rows += e.rows;
        yield record;
        if (++markers === o.epochs) return;
        e = epoch(markers + 1);
        continue;
      }
      const at = index++;
      if (at >= trainRecords) yield* e.heldOut(record, at);
      else yield* e.add(record, at);
    }
    // A tail after the stream's last marker is a partial epoch: the trainer closes it at teardown.
    yield* e.end();
    rows += e.rows;
    if (rows === 0) throw new TrainerError('ERR_TRAINER_RECORD', 'the data has no training records');
    if (markers === 0) yield epochEnd(pass);
  }
}

/** The batches of one epoch: training rows (shuffled when asked), then validation rows. */
class EpochBatches {
  private readonly train: Batcher;
  private readonly val: Batcher;
  private readonly shuffle?: ShuffleBuffer<[unknown, number]>;
  private trained = false;

  constructor(o: FeedOptions, epoch: number) {
    this.train = new Batcher(o.batchSize);
    this.val = new Batcher(o.batchSize, 'validation');
    if (o.shuffle) this.shuffle = new ShuffleBuffer(o.shuffle, epochRng(o.seed ?? 0, epoch));
  }

  /** Training rows handed out. */
  get rows(): number {
    return this.train.rows;
  }

  *add(record: unknown, index: number): Generator<Batch> {
    // Validation batches are evaluated after the epoch's training: they see its last weights.
    if (isValidationBatch(record)) this.val.hold(record, index);
    else if (this.shuffle) for (const [r, i] of this.shuffle.push([record, index])) yield* this.train.add(r, i);
    else yield* this.train.add(record, index);
  }

  /** A record of the held-out split: the training rows are all in, so they go first. */
  *heldOut(record: unknown, index: number): Generator<Batch> {
    yield* this.finishTraining();
    yield* this.val.add(record, index);
  }

  *end(): Generator<Batch> {
    yield* this.finishTraining();
    yield* this.val.flush();
  }

  private *finishTraining(): Generator<Batch> {
    if (this.trained) return;
    this.trained = true;
    if (this.shuffle) for (const [r, i] of this.shuffle.drain()) yield* this.train.add(r, i);
    yield* this.train.flush();
    yield* this.val.flush(); // the validation batches held so far
  }
}

function checkFeedOptions(o: FeedOptions): FeedOptions {
  const positive = (name: string, v: number | undefined, min = 1) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${v}`);
  };
  positive('epochs', o.epochs);
  positive('batchSize', o.batchSize);
  positive('shuffle', o.shuffle, 0);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new InvalidArgumentError(`seed must be an integer, got ${o.seed}`);
  const f = o.validationSplit;
  if (f !== undefined && !(f > 0 && f < 1)) throw new InvalidArgumentError(`validationSplit must be between 0 and 1 (exclusive), got ${f}`);
  return o;
}

function epochRng(seed: number, epoch: number): Uniform {
  return seededRng((seed ^ Math.imul(epoch, 0x9e3779b1)) >>> 0);
}

function isValidationBatch(r: unknown): boolean {
  return typeof r === 'object' && r !== null && (r as Batch).split === 'validation';
}

/** Keeps `size` records and hands out a random one for each new one (tf.data's shuffle buffer). */
class ShuffleBuffer<T> {
  private items: T[] = [];
  constructor(
    private readonly size: number,
    private readonly rng: Uniform,
  ) {}

  *push(record: T): Generator<T> {
    if (this.items.length < this.size) {
      this.items.push(record);
      return;
    }
    const j = Math.floor(this.rng() * this.size);
    yield this.items[j]!;
    this.items[j] = record;
  }

  *drain(): Generator<T> {
    const rest = shuffleInPlace(this.items, this.rng) as T[];
    this.items = [];
    yield* rest;
  }
}

/** A group's tensors in a fixed order and how to put them back together. */
type Layout = { kind: 'one' } | { kind: 'list'; n: number } | { kind: 'map'; keys: string[] };
interface Rows {
  layout: [Layout, Layout];
  /** xs tensors then ys tensors, each with the leading batch dimension. */
  tensors: TensorRecord[];
  count: number;
  /** Record index, for messages. */
  index: number;
}

/** Collects the rows of examples and batches and cuts them into batches of `size` rows. */
class Batcher {
  private pending: { rows: Rows; from: number }[] = [];
  private held = 0;
  private ready: Batch[] = [];
  /** Rows handed out so far. */
  rows = 0;

  constructor(
    private readonly size: number | undefined,
    private readonly split?: 'validation',
  ) {}

  /** Adds a record whose batches wait for the next {@link flush}. */
  hold(record: unknown, index: number): void {
    this.ready.push(...this.add(record, index));
  }

  *add(record: unknown, index = -1): Generator<Batch> {
    const r = toRows(record, index);
    if (this.size === undefined && !r.example) {
      this.rows += r.rows.count;
      yield this.batch(r.rows.layout, r.rows.tensors);
      return;
    }
    const size = this.size ?? DEFAULT_BATCH_SIZE;
    this.pending.push({ rows: r.rows, from: 0 });
    this.held += r.rows.count;
    while (this.held >= size) yield this.take(size);
  }

  *flush(): Generator<Batch> {
    yield* this.ready.splice(0);
    if (this.held) yield this.take(this.held);
  }

  private take(n: number): Batch {
    const first = this.pending[0]!.rows;
    const parts: { rows: Rows; from: number; to: number }[] = [];
    for (let need = n; need > 0; ) {
      const p = this.pending[0]!;
      const k = Math.min(need, p.rows.count - p.from);
      parts.push({ rows: p.rows, from: p.from, to: p.from + k });
      p.from += k;
      need -= k;
      if (p.from === p.rows.count) this.pending.shift();
    }
    this.held -= n;
    this.rows += n;
    const tensors = first.tensors.map((_, t) => concatRows(parts.map((p) => ({ tensor: sameLayout(first, p.rows, t), from: p.from, to: p.to, index: p.rows.index })), n));
    return this.batch(first.layout, tensors);
  }

  private batch(layout: [Layout, Layout], tensors: TensorRecord[]): Batch {
    const nx = width(layout[0]);
    const b: Batch = { xs: rebuild(layout[0], tensors.slice(0, nx)), ys: rebuild(layout[1], tensors.slice(nx)) };
    if (this.split) b.split = this.split;
    return b;
  }
}

function where(index: number): string {
  return index < 0 ? 'a record' : `record ${index}`;
}

/** The rows of an example (`{ x, y }`, one row) or a batch (`{ xs, ys }`). */
function toRows(record: unknown, index: number): { rows: Rows; example: boolean } {
  if (typeof record !== 'object' || record === null) throw notARecord(record, index);
  const example = 'x' in record && 'y' in record;
  if (!example && !('xs' in record && 'ys' in record)) throw notARecord(record, index);
  const o = record as Record<string, unknown>;
  const [x, y] = example ? [o.x, o.y] : [o.xs, o.ys];
  const xs = flatten(x, example, `${where(index)}: ${example ? 'x' : 'xs'}`);
  const ys = flatten(y, example, `${where(index)}: ${example ? 'y' : 'ys'}`);
  const tensors = [...xs.tensors, ...ys.tensors];
  const count = tensors[0]!.shape[0]!;
  const bad = tensors.find((t) => t.shape[0] !== count);
  if (bad) throw new TrainerError('ERR_TRAINER_RECORD', `${where(index)}: its tensors have different numbers of rows (${count} and ${bad.shape[0]})`);
  return { rows: { layout: [xs.layout, ys.layout], tensors, count, index }, example };
}

function notARecord(r: unknown, index: number): TrainerError {
  const got = typeof r === 'object' && r !== null ? `an object with keys [${Object.keys(r).slice(0, 6).join(', ')}]` : JSON.stringify(r) ?? String(r);
  return new TrainerError('ERR_TRAINER_RECORD', `${where(index)}: expected an example { x, y }, a batch { xs, ys } or an epoch marker { epochEnd }, got ${got}`);
}

function flatten(g: unknown, example: boolean, what: string): { layout: Layout; tensors: TensorRecord[] } {
  if (Array.isArray(g) && g.length && g.every((v) => isTensorRecord(v) || ArrayBuffer.isView(v))) {
    return { layout: { kind: 'list', n: g.length }, tensors: g.map((v, i) => tensorOf(v, example, `${what}[${i}]`)) };
  }
  if (g && typeof g === 'object' && !Array.isArray(g) && !ArrayBuffer.isView(g) && !isTensorRecord(g)) {
    const keys = Object.keys(g);
    if (!keys.length) throw new TrainerError('ERR_TRAINER_RECORD', `${what}: an empty object`);
    return { layout: { kind: 'map', keys }, tensors: keys.map((k) => tensorOf((g as Record<string, unknown>)[k], example, `${what}.${k}`)) };
  }
  return { layout: { kind: 'one' }, tensors: [tensorOf(g, example, what)] };
}

function width(l: Layout): number {
  return l.kind === 'one' ? 1 : l.kind === 'list' ? l.n : l.keys.length;
}

function rebuild(l: Layout, t: TensorRecord[]): TensorGroup {
  if (l.kind === 'one') return t[0]!;
  if (l.kind === 'list') return t;
  return Object.fromEntries(l.keys.map((k, i) => [k, t[i]!]));
}

/** A tensor with a leading row dimension: an example's value gets one (its data is not copied). */
function tensorOf(v: unknown, example: boolean, what: string): TensorRecord {
  let t: TensorRecord;
  if (isTensorRecord(v)) t = v;
  else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) t = { data: v as TypedArray, shape: [(v as TypedArray).length] };
  else if (typeof v === 'number') t = { data: Float32Array.of(v), shape: [] };
  else if (Array.isArray(v)) t = fromNested(v, what);
  else throw new TrainerError('ERR_TRAINER_RECORD', `${what}: expected a tensor { data, shape }, a typed array, a number or an array of numbers, got ${v === null ? 'null' : typeof v}`);
  if (example) return { data: t.data, shape: [1, ...t.shape] };
  if (!t.shape.length) throw new TrainerError('ERR_TRAINER_RECORD', `${what}: a batch needs a leading batch dimension (got a scalar; send { x, y } for single examples)`);
  return t;
}

/** Nested arrays of numbers as a float32 tensor (they must be rectangular). */
function fromNested(v: unknown[], what: string): TensorRecord {
  const shape: number[] = [];
  for (let a: unknown = v; Array.isArray(a); a = a[0]) shape.push(a.length);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  let n = 0;
  const walk = (a: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (typeof a !== 'number') throw new TrainerError('ERR_TRAINER_RECORD', `${what}: expected numbers, found ${typeof a}`);
      data[n++] = a;
      return;
    }
    if (!Array.isArray(a) || a.length !== shape[depth]) throw new TrainerError('ERR_TRAINER_RECORD', `${what}: nested arrays must be rectangular (shape [${shape.join(', ')}])`);
    for (const e of a) walk(e, depth + 1);
  };
  walk(v, 0);
  return { data, shape };
}

function sameLayout(first: Rows, other: Rows, t: number): TensorRecord {
  if (other.tensors.length !== first.tensors.length || JSON.stringify(other.layout) !== JSON.stringify(first.layout)) {
    throw new TrainerError('ERR_TRAINER_RECORD', `${where(other.index)}: its inputs or targets are not laid out like those of ${where(first.index)}, in the same batch`);
  }
  return other.tensors[t]!;
}

/** Rows `from..to` of each part, one after the other, in a new array of the first part's type. */
function concatRows(parts: { tensor: TensorRecord; from: number; to: number; index: number }[], rows: number): TensorRecord {
  const head = parts[0]!.tensor;
  const rowShape = head.shape.slice(1);
  const per = rowShape.reduce((a, b) => a * b, 1);
  const Ctor = head.data.constructor as new (n: number) => TypedArray;
  const data = new Ctor(rows * per);
  let at = 0;
  for (const p of parts) {
    const s = p.tensor.shape;
    if (s.length !== head.shape.length || s.some((d, i) => i > 0 && d !== head.shape[i])) {
      throw new TrainerError('ERR_TRAINER_RECORD', `${where(p.index)}: rows of shape [${s.slice(1).join(', ')}] cannot be batched with rows of shape [${rowShape.join(', ')}]`);
    }
    const src = p.tensor.data.subarray(p.from * per, p.to * per);
    (data as Float32Array).set(src as unknown as ArrayLike<number>, at);
    at += src.length;
  }
  return { data, shape: [rows, ...rowShape] };
}
