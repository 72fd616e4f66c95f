/**
 * Image datasets: a folder of images (class-per-folder labels as torchvision's `ImageFolder`, or a
 * CSV/JSON label list), or an explicit list of paths or buffers; seeded shuffling and exact
 * sharding; and {@link imageSource}, a generator usable as a ringpipe `Source`.
 */
import type { Dirent } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { readLabelList, type LabelEntry } from './labels.js';
import { permutation } from '../util/random.js';

/** Extensions listed by default (compared case-insensitively). */
export const DEFAULT_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff', '.gif', '.avif'];

/** One sample of an image dataset. Plain data: it can be posted to a worker or written to a ring. */
export interface ImageItem {
  /**
   * Position of the sample in the full dataset, in its canonical (sorted, unshuffled) order. Stable
   * across shuffling and sharding, it is the key of the sample's augmentation randomness.
   */
  index: number;
  /** Absolute path of the image file (absent for buffer inputs). */
  path?: string;
  /** Encoded image bytes (absent for file inputs). */
  buffer?: Uint8Array;
  /** Class index, or `-1` for an unlabelled sample. */
  label: number;
  /** Class name, when labels are class names (folder names or named labels in a list). */
  className?: string;
  /** The epoch this item belongs to, when produced by {@link imageSource}. */
  epoch?: number;
}

/** A folder entry that is not a sample of the dataset, and why. */
export interface UnusedImageEntry {
  /** Absolute path. */
  path: string;
  /** Why it is not used: hidden, another extension, a dangling link, a link loop, a folder named like an image, ... */
  reason: string;
}

/** A listed dataset: every sample in canonical order plus the class mapping. */
export interface ImageDataset {
  /** The folder the dataset was listed from, if any. */
  root?: string;
  /** Class names; `classes[label]` is the name of class `label`. Empty when labels are plain integers or absent. */
  classes: string[];
  /** Every sample, `items[i].index === i`. */
  items: ImageItem[];
  /**
   * For a listed folder: every entry met that is not a sample, with the reason, sorted by path
   * (folders not descended into are reported once). Nothing in the folder disappears unreported.
   */
  unused?: UnusedImageEntry[];
}

/** Where the labels of a folder dataset come from. */
export type LabelSource =
  /** Class-per-folder: each first-level sub-folder of the root is a class (sorted names -> 0..n-1); files directly in the root are ignored. */
  | 'folder'
  /** No labels: every image under the root, recursively, with label -1. */
  | 'none'
  /** A CSV or JSON list of (path, label); paths are relative to the root unless absolute. Only listed files are in the dataset. */
  | { file: string; format?: 'csv' | 'json' };

/** Options of {@link imageFolder}. */
export interface ImageFolderOptions {
  /** File extensions to include, with the dot, case-insensitive. Default {@link DEFAULT_EXTENSIONS}. Ignored for label lists. */
  extensions?: readonly string[];
  /** Where labels come from. Default `'folder'`. */
  labels?: LabelSource;
  /**
   * The class names, in index order, to use instead of discovering them. Pins the mapping (e.g. so a
   * validation split uses the training split's indices); a folder or label name not in it is an error.
   */
  classes?: readonly string[];
  /** Follow symbolic links to files and folders (cycles are detected). Default true. */
  followSymlinks?: boolean;
  /** List files and folders whose name starts with `.`. Default false. */
  includeHidden?: boolean;
}

/** An element of an explicit input list: a path, encoded bytes, or either with a label. */
export type ImageInput = string | Uint8Array | { path?: string; buffer?: Uint8Array; label?: number | string };

/** Options of {@link imageList}. */
export interface ImageListOptions {
  /** Class names in index order, for string labels. Default: the sorted distinct names. */
  classes?: readonly string[];
  /** Resolve relative paths against this folder. Default: the current directory. */
  root?: string;
}

/** Which samples of a dataset to visit, in which order. */
export interface OrderOptions {
  /** Shuffle with a seeded permutation (a new one each epoch). Default false. */
  shuffle?: boolean;
  /** Seed of the shuffle (a non-negative integer). Default 0. */
  seed?: number;
  /** Epoch number, mixed into the shuffle seed so each epoch has its own order. Default 0. */
  epoch?: number;
  /**
   * Take shard `index` of `count`: the samples at positions `index, index + count, ...` of the
   * (shuffled) order. The `count` shards of one (seed, epoch) are disjoint and together cover the
   * dataset exactly; their sizes differ by at most one.
   */
  shard?: { index: number; count: number };
}

/** Options of {@link imageSource}: a dataset (folder or explicit list) plus ordering. */
export interface ImageSourceOptions extends ImageFolderOptions, OrderOptions {
  /** The dataset folder. Exactly one of `dir` and `inputs` must be given. */
  dir?: string;
  /** An explicit list of inputs, instead of a folder. */
  inputs?: readonly ImageInput[];
  /** Number of epochs to produce, starting at `epoch`. Default 1. */
  epochs?: number;
  /** Stop after this many items in total (over all epochs). Default: no limit. */
  limit?: number;
}

const isNonNegInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface WalkOptions {
  extensions: Set<string>;
  followSymlinks: boolean;
  includeHidden: boolean;
}

function hasExtension(name: string, exts: Set<string>): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && exts.has(name.slice(dot).toLowerCase());
}

/** What an entry is once links are followed: a file, a folder, or why it is not used. */
async function entryKind(dir: string, d: Dirent, follow: boolean): Promise<'file' | 'dir' | { unused: string }> {
  if (d.isFile()) return 'file';
  if (d.isDirectory()) return 'dir';
  if (!d.isSymbolicLink()) {
    // sockets, FIFOs, devices: never listed (opening a FIFO would block)
    return { unused: `not a regular file (${d.isFIFO() ? 'a FIFO' : d.isSocket() ? 'a socket' : 'a device'})` };
  }
  const target = await readlink(join(dir, d.name)).catch(() => '?');
  if (!follow) return { unused: `a symbolic link (-> ${target}); followSymlinks is false` };
  try {
    const s = await stat(join(dir, d.name));
    return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : { unused: `a symbolic link to something that is not a regular file (-> ${target})` };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { unused: `a symbolic link loop (-> ${target})` };
    if (code === 'ENOENT') return { unused: `a dangling symbolic link: its target ${target} does not exist` };
    return { unused: `a symbolic link whose target cannot be read (${code ?? (e as Error).message})` };
  }
}

/**
 * Appends the image files under `dir` (recursively) to `out`, as paths relative to the walk's root
 * with '/' separators, and every other entry met to `unused` with the reason.
 */
async function walk(dir: string, opts: WalkOptions, rel: string, ancestors: Set<string>, out: string[], unused: UnusedImageEntry[]): Promise<string[]> {
  const real = await realpath(dir);
  if (ancestors.has(real)) {
    unused.push({ path: dir, reason: 'a symbolic link to a folder above it: a loop, not followed' });
    return out;
  }
  const inner = new Set(ancestors).add(real);
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (!rel) throw e; // the dataset's own folder: the caller says what is wrong
    unused.push({ path: dir, reason: `the folder cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` });
    return out;
  }
  for (const d of entries) {
    const path = join(dir, d.name);
    if (!opts.includeHidden && d.name.startsWith('.')) {
      unused.push({ path, reason: "hidden (its name starts with '.'; includeHidden lists it)" });
      continue;
    }
    const kind = await entryKind(dir, d, opts.followSymlinks);
    const relPath = rel ? `${rel}/${d.name}` : d.name;
    if (typeof kind === 'object') unused.push({ path, reason: kind.unused });
    else if (kind === 'dir') {
      if (hasExtension(d.name, opts.extensions)) unused.push({ path, reason: `a folder, not an image file, although its name ends in ${d.name.slice(d.name.lastIndexOf('.'))}: the images in it are listed` });
      await walk(path, opts, relPath, inner, out, unused);
    } else if (hasExtension(d.name, opts.extensions)) out.push(relPath);
    else unused.push({ path, reason: `not an image by its extension (listed: ${[...opts.extensions].join(' ')})` });
  }
  return out;
}

const byPath = (a: UnusedImageEntry, b: UnusedImageEntry) => compareCodeUnits(a.path, b.path);

function normaliseExtensions(exts: readonly string[]): Set<string> {
  if (!Array.isArray(exts) || !exts.length) throw new InvalidArgumentError('imageFolder: extensions must be a non-empty array');
  return new Set(exts.map((e) => {
    if (typeof e !== 'string' || !e) throw new InvalidArgumentError(`imageFolder: bad extension ${JSON.stringify(e)}`);
    return (e.startsWith('.') ? e : `.${e}`).toLowerCase();
  }));
}

function classIndex(classes: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  classes.forEach((c, i) => {
    if (typeof c !== 'string' || !c) throw new InvalidArgumentError(`classes[${i}] must be a non-empty string`);
    if (m.has(c)) throw new InvalidArgumentError(`class '${c}' is listed twice`);
    m.set(c, i);
  });
  return m;
}

/**
 * Resolves (name or index) labels into class indices. All-integer labels are used as they are (no
 * class names); otherwise every label is a class name, mapped through `classes` or, by default,
 * through the sorted distinct names.
 */
function resolveLabels(labels: (string | number | undefined)[], pinned: readonly string[] | undefined, what: string): { classes: string[]; indices: number[]; names: (string | undefined)[] } {
  const present = labels.filter((l): l is string | number => l !== undefined);
  if (present.length && present.every(isNonNegInt) && !pinned) {
    return { classes: [], indices: labels.map((l) => (l === undefined ? -1 : (l as number))), names: labels.map(() => undefined) };
  }
  const classes = pinned ? [...pinned] : [...new Set(present.map(String))].sort(compareCodeUnits);
  const map = classIndex(classes);
  const indices = labels.map((l) => {
    if (l === undefined) return -1;
    const i = map.get(String(l));
    if (i === undefined) throw new InvalidArgumentError(`${what}: label '${l}' is not one of the given classes`);
    return i;
  });
  return { classes, indices, names: labels.map((l) => (l === undefined ? undefined : String(l))) };
}

/**
 * Lists a folder of images. With the default `labels: 'folder'`, each first-level sub-folder is a
 * class (class names sorted by code point -> indices 0..n-1, as torchvision's `ImageFolder`) and
 * images are found recursively inside it. Samples are ordered by class, then by relative path, so
 * the listing (and every `index`) is the same on every machine.
 *
 * @throws InvalidArgumentError when the folder cannot be read, holds no class folder or no image.
 */
export async function imageFolder(dir: string, options: ImageFolderOptions = {}): Promise<ImageDataset> {
  if (typeof dir !== 'string' || !dir) throw new InvalidArgumentError('imageFolder: dir must be a non-empty string');
  const root = resolve(dir);
  const labels = options.labels ?? 'folder';
  const walkOpts: WalkOptions = {
    extensions: normaliseExtensions(options.extensions ?? DEFAULT_EXTENSIONS),
    followSymlinks: options.followSymlinks ?? true,
    includeHidden: options.includeHidden ?? false,
  };
  try {
    const s = await stat(root);
    if (!s.isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw new InvalidArgumentError(`imageFolder: '${root}' is not a readable folder (${(e as Error).message})`);
  }

  if (typeof labels === 'object' && labels !== null) {
    if (typeof labels.file !== 'string') throw new InvalidArgumentError('imageFolder: labels.file must be a path');
    const entries: LabelEntry[] = await readLabelList(isAbsolute(labels.file) ? labels.file : resolve(root, labels.file), labels.format);
    const r = resolveLabels(entries.map((e) => e.label), options.classes, `label list '${labels.file}'`);
    const items = entries.map((e, index): ImageItem => {
      const item: ImageItem = { index, path: isAbsolute(e.path) ? e.path : join(root, e.path), label: r.indices[index] };
      if (r.names[index] !== undefined) item.className = r.names[index];
      return item;
    });
    if (!items.length) throw new InvalidArgumentError(`imageFolder: label list '${labels.file}' is empty`);
    return { root, classes: r.classes, items };
  }

  if (labels === 'none') {
    const unused: UnusedImageEntry[] = [];
    const files = (await walk(root, walkOpts, '', new Set(), [], unused)).sort(compareCodeUnits);
    if (!files.length) throw new InvalidArgumentError(`imageFolder: no image with extension ${[...walkOpts.extensions].join(' ')} under '${root}'`);
    return { root, classes: [], items: files.map((f, index) => ({ index, path: join(root, ...f.split('/')), label: -1 })), unused: unused.sort(byPath) };
  }

  if (labels !== 'folder') throw new InvalidArgumentError(`imageFolder: labels must be 'folder', 'none' or { file }, got ${JSON.stringify(labels)}`);
  const top = await readdir(root, { withFileTypes: true });
  const found: string[] = [];
  const unused: UnusedImageEntry[] = [];
  for (const d of top) {
    const path = join(root, d.name);
    if (!walkOpts.includeHidden && d.name.startsWith('.')) {
      unused.push({ path, reason: "hidden (its name starts with '.'; includeHidden lists it)" });
      continue;
    }
    const kind = await entryKind(root, d, walkOpts.followSymlinks);
    if (kind === 'dir') found.push(d.name);
    else unused.push({ path, reason: typeof kind === 'object' ? kind.unused : "outside every class folder (labels: 'folder' takes the images in the first-level folders)" });
  }
  found.sort(compareCodeUnits);
  const classes = options.classes ? [...options.classes] : found;
  const map = classIndex(classes);
  for (const f of found) {
    if (!map.has(f)) throw new InvalidArgumentError(`imageFolder: folder '${f}' is not one of the given classes`);
  }
  if (!classes.length) throw new InvalidArgumentError(`imageFolder: no class folder in '${root}' (use labels: 'none' for an unlabelled folder)`);
  const items: ImageItem[] = [];
  const rootReal = await realpath(root);
  for (const className of classes) {
    if (!found.includes(className)) continue; // a pinned class with no folder: no samples
    const files = (await walk(join(root, className), walkOpts, className, new Set([rootReal]), [], unused)).sort(compareCodeUnits);
    const label = map.get(className)!;
    for (const f of files) items.push({ index: items.length, path: join(root, ...f.split('/')), label, className });
  }
  if (!items.length) throw new InvalidArgumentError(`imageFolder: no image with extension ${[...walkOpts.extensions].join(' ')} in the class folders of '${root}'`);
  return { root, classes, items, unused: unused.sort(byPath) };
}

/**
 * A dataset from an explicit list of paths and/or encoded buffers, in the given order. Labels may
 * be class indices or class names (see {@link ImageListOptions.classes}); a missing label is -1.
 */
export function imageList(inputs: readonly ImageInput[], options: ImageListOptions = {}): ImageDataset {
  if (!Array.isArray(inputs)) throw new InvalidArgumentError('imageList: inputs must be an array');
  const root = options.root !== undefined ? resolve(options.root) : undefined;
  const raw = inputs.map((inp, i) => {
    if (typeof inp === 'string') return { path: inp, label: undefined };
    if (inp instanceof Uint8Array) return { buffer: inp, label: undefined };
    if (inp && typeof inp === 'object' && (typeof inp.path === 'string' || inp.buffer instanceof Uint8Array)) {
      if (inp.label !== undefined && typeof inp.label !== 'string' && !isNonNegInt(inp.label)) {
        throw new InvalidArgumentError(`imageList: input ${i} has label ${String(inp.label)}, expected a class name or a non-negative integer`);
      }
      return inp;
    }
    throw new InvalidArgumentError(`imageList: input ${i} must be a path, a Uint8Array or { path | buffer, label? }`);
  });
  const r = resolveLabels(raw.map((e) => e.label), options.classes, 'imageList');
  const items = raw.map((e, index): ImageItem => {
    const item: ImageItem = { index, label: r.indices[index] };
    if (e.path !== undefined) item.path = root !== undefined && !isAbsolute(e.path) ? join(root, e.path) : e.path;
    if (e.buffer !== undefined) item.buffer = e.buffer;
    if (r.names[index] !== undefined) item.className = r.names[index];
    return item;
  });
  return { ...(root !== undefined ? { root } : {}), classes: r.classes, items };
}

/** Checks ordering options; returns them with defaults applied. */
export function resolveOrder(o: OrderOptions): { shuffle: boolean; seed: number; epoch: number; shard: { index: number; count: number } } {
  const seed = o.seed ?? 0;
  const epoch = o.epoch ?? 0;
  if (!isNonNegInt(seed)) throw new InvalidArgumentError(`seed must be a non-negative safe integer, got ${String(o.seed)}`);
  if (!isNonNegInt(epoch)) throw new InvalidArgumentError(`epoch must be a non-negative integer, got ${String(o.epoch)}`);
  const shard = o.shard ?? { index: 0, count: 1 };
  if (!shard || !isNonNegInt(shard.count) || shard.count < 1 || !isNonNegInt(shard.index) || shard.index >= shard.count) {
    throw new InvalidArgumentError(`shard must be { index, count } with 0 <= index < count, got ${JSON.stringify(o.shard)}`);
  }
  return { shuffle: o.shuffle ?? false, seed, epoch, shard: { index: shard.index, count: shard.count } };
}

/**
 * The samples one pipeline visits, in order: the dataset (shuffled with `(seed, epoch)` if asked),
 * then every `count`-th sample starting at `shard.index`.
 */
export function selectItems<T>(items: readonly T[], options: OrderOptions = {}): T[] {
  const o = resolveOrder(options);
  const n = items.length;
  const out: T[] = [];
  const perm = o.shuffle ? permutation(n, o.seed, o.epoch) : undefined;
  for (let pos = o.shard.index; pos < n; pos += o.shard.count) out.push(items[perm ? perm[pos] : pos]);
  return out;
}

/** Lists the dataset described by source options (folder or explicit inputs). */
export async function loadDataset(options: ImageSourceOptions): Promise<ImageDataset> {
  if ((options.dir === undefined) === (options.inputs === undefined)) {
    throw new InvalidArgumentError('imageSource: give exactly one of `dir` and `inputs`');
  }
  return options.dir !== undefined
    ? imageFolder(options.dir, options)
    : imageList(options.inputs!, { ...(options.classes ? { classes: options.classes } : {}) });
}

/**
 * A ringpipe source of image samples: lists the dataset once, then yields its items for `epochs`
 * epochs, each epoch in its own seeded order and restricted to the shard. Every option is plain
 * data, so the function can run in a worker: `new Source(imageSource, { options: {...} })`.
 *
 * Items carry `epoch`, so that augmentations can be keyed on (seed, epoch, index).
 */
export function imageSource(options: ImageSourceOptions, ctx?: { epoch: number }): AsyncGenerator<ImageItem, void, undefined> {
  return datasetItems(options, ctx);
}

/** {@link imageSource}, telling `onListed` about the dataset once it is listed. */
async function* datasetItems(options: ImageSourceOptions, ctx?: { epoch: number }, onListed?: (dataset: ImageDataset) => void): AsyncGenerator<ImageItem, void, undefined> {
  // Without an epoch of its own, the run's (ctx.epoch, counted up by iterate({ epochs })).
  const order = { ...resolveOrder(options), ...(options.epoch === undefined && ctx ? { epoch: ctx.epoch } : {}) };
  const epochs = options.epochs ?? 1;
  if (!isNonNegInt(epochs)) throw new InvalidArgumentError(`imageSource: epochs must be a non-negative integer, got ${String(options.epochs)}`);
  const limit = options.limit ?? Infinity;
  if (limit !== Infinity && !isNonNegInt(limit)) throw new InvalidArgumentError(`imageSource: limit must be a non-negative integer, got ${String(options.limit)}`);
  const ds = await loadDataset(options);
  onListed?.(ds);
  let produced = 0;
  for (let e = 0; e < epochs; e++) {
    const epoch = order.epoch + e;
    for (const item of selectItems(ds.items, { ...order, epoch })) {
      if (produced++ >= limit) return;
      yield { ...item, epoch };
    }
  }
}

/** What {@link ImageSourceSegment}'s teardown returns: the folder entries that are not samples. */
export interface ImageSourceReport {
  /** See {@link ImageDataset.unused}. */
  unused: UnusedImageEntry[];
}

/**
 * {@link imageSource} as a class segment (what `imagePipeline` runs): the same items, and its
 * teardown reports the folder entries that are not samples (`result.results[name][0].unused`; read
 * them with `unusedImages(result)`).
 */
export class ImageSourceSegment {
  private options: ImageSourceOptions = {};
  private unused: UnusedImageEntry[] = [];

  /** Keeps the options (the folder or inputs, and the ordering). */
  setup(options: ImageSourceOptions): void {
    this.options = options;
  }

  /** Lists the dataset and yields its items, in the seeded and sharded order, for each epoch. */
  run(ctx?: { epoch: number }): AsyncGenerator<ImageItem, void, undefined> {
    return datasetItems(this.options, ctx, (ds) => (this.unused = ds.unused ?? []));
  }

  /** The folder entries that are not samples. */
  teardown(): ImageSourceReport {
    return { unused: this.unused };
  }
}
