/**
 * The demo's preprocessed data, read back from the image shards the engine wrote, and its split into
 * training, validation and test samples.
 *
 * The split is stratified and depends only on the seed and each sample's dataset index: every
 * process that reads the shards (the batch source in a worker thread, each trainer process loading
 * its validation and test sets) computes the same one. {@link validationSet} and {@link testSet} are
 * the loaders the trainers call (`DataLoaderRef`s of the sweep's trainer options).
 *
 * Imports no sharp and no tfjs: trainer processes load this module.
 */
import { InvalidArgumentError } from '../errors.js';
import { permutation } from '../util/random.js';
import { readManifest, readShard, type ShardManifest } from '../image/shards.js';
import type { TensorPair } from '../train/records.js';

export type DemoSplit = 'train' | 'validation' | 'test';

/** Arguments of the loaders: the shard folder and the split seed. */
export interface DemoSetArgs {
  shards: string;
  seed: number;
}

/** Share of each class held out for validation, and for testing. */
export const HOLDOUT = { validation: 0.2, test: 0.2 } as const;

/** All samples of a shard folder, concatenated. */
export interface ShardData {
  manifest: ShardManifest;
  /** `[count, ...sampleShape]`, float32. */
  data: Float32Array;
  labels: Int32Array;
  indices: Int32Array;
  /** Elements per sample. */
  sampleSize: number;
}

/** Reads every shard of `dir` (float32 shards only). */
export async function readAllShards(dir: string): Promise<ShardData> {
  const manifest = await readManifest(dir);
  if (manifest.dtype !== 'float32') throw new InvalidArgumentError(`demo: expected float32 shards in ${dir}, found ${manifest.dtype}`);
  const sampleSize = manifest.sampleShape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(manifest.count * sampleSize);
  const labels = new Int32Array(manifest.count);
  const indices = new Int32Array(manifest.count);
  let at = 0;
  for (let i = 0; i < manifest.shards.length; i++) {
    const s = await readShard(dir, manifest, i);
    const n = s.shape[0];
    data.set(s.data as Float32Array, at * sampleSize);
    labels.set(s.labels, at);
    indices.set(s.indices, at);
    at += n;
  }
  if (at !== manifest.count) throw new InvalidArgumentError(`demo: the shards of ${dir} hold ${at} samples, the manifest says ${manifest.count}`);
  return { manifest, data, labels, indices, sampleSize };
}

/**
 * Positions (into the arrays of {@link ShardData}) of each split: per class, the samples in dataset
 * index order, permuted by the seed; the first {@link HOLDOUT}.validation of them validate, the next
 * {@link HOLDOUT}.test test, the rest train. Each list is sorted by dataset index.
 */
export function splitPositions(labels: Int32Array, indices: Int32Array, seed: number): Record<DemoSplit, number[]> {
  const byClass = new Map<number, number[]>();
  for (let p = 0; p < labels.length; p++) {
    const l = labels[p]!;
    if (!byClass.has(l)) byClass.set(l, []);
    byClass.get(l)!.push(p);
  }
  const out: Record<DemoSplit, number[]> = { train: [], validation: [], test: [] };
  for (const [label, list] of [...byClass].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => indices[a]! - indices[b]!);
    const perm = permutation(list.length, seed, 1000 + Math.max(0, label));
    const nVal = Math.round(list.length * HOLDOUT.validation);
    const nTest = Math.round(list.length * HOLDOUT.test);
    perm.forEach((q, k) => out[k < nVal ? 'validation' : k < nVal + nTest ? 'test' : 'train'].push(list[q]!));
  }
  for (const k of Object.keys(out) as DemoSplit[]) out[k].sort((a, b) => indices[a]! - indices[b]!);
  return out;
}

/** One split's samples: images `[n, ...sampleShape]` and float32 class indices `[n]`. */
export interface SplitData {
  xs: Float32Array;
  ys: Float32Array;
  count: number;
  sampleShape: [number, number, number];
  classes: string[];
}

/** The samples of `split`, copied out of the shards in dataset index order. */
export async function loadSplit(args: DemoSetArgs, split: DemoSplit): Promise<SplitData> {
  const all = await readAllShards(args.shards);
  const pos = splitPositions(all.labels, all.indices, args.seed)[split];
  const xs = new Float32Array(pos.length * all.sampleSize);
  const ys = new Float32Array(pos.length);
  pos.forEach((p, i) => {
    xs.set(all.data.subarray(p * all.sampleSize, (p + 1) * all.sampleSize), i * all.sampleSize);
    ys[i] = all.labels[p]!;
  });
  return { xs, ys, count: pos.length, sampleShape: all.manifest.sampleShape, classes: all.manifest.classes };
}

function pair(s: SplitData): TensorPair {
  if (!s.count) throw new InvalidArgumentError('demo: an empty split (too few images per class)');
  return { xs: { data: s.xs, shape: [s.count, ...s.sampleShape] }, ys: { data: s.ys, shape: [s.count] } };
}

/** The validation set, loaded inside each trainer process (evaluated at every epoch end). */
export async function validationSet(args: DemoSetArgs): Promise<TensorPair> {
  return pair(await loadSplit(args, 'validation'));
}

/** The test set, evaluated once per trial with the best epoch's weights. */
export async function testSet(args: DemoSetArgs): Promise<TensorPair> {
  return pair(await loadSplit(args, 'test'));
}
