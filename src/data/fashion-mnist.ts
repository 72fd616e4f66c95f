/**
 * Fashion-MNIST (Zalando Research, MIT): 60,000 training and 10,000 test images, 28x28 grey, 10
 * classes, in IDX files. Located from an explicit directory (`--data DIR`), else the workspace copy
 * `../shared/data/fashion-mnist`, else Debian's package `dataset-fashion-mnist`
 * (`/usr/share/datasets/fashion-mnist`).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from '../errors.js';
import { DataFormatError, DatasetNotFoundError } from './errors.js';
import { readIdx, type IdxTensor } from './idx.js';

/** Class names, indexed by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

/** Debian's `dataset-fashion-mnist` installs the files here. */
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';

/** A split of the dataset: `count` images of `rows` x `cols` bytes (0..255) and their labels (0..9). */
export interface FashionMnistSplit {
  /** `count * rows * cols` pixels, row-major, 0 = background. */
  images: Uint8Array;
  /** `count` labels, indexes into {@link FASHION_MNIST_CLASSES}. */
  labels: Uint8Array;
  count: number;
  rows: number;
  cols: number;
}

/** The two splits Fashion-MNIST ships. */
export type FashionMnistSplitName = 'train' | 'test';

/** Where to look for the dataset. */
export interface FashionMnistLocateOptions {
  /**
   * Directory holding the IDX files (what `--data DIR` gives). When set, only this directory is
   * searched, so a typo is reported rather than silently replaced by another copy.
   */
  data?: string;
  /** Directory that relative paths (including `../shared/data/fashion-mnist`) start from. Default: `process.cwd()`. */
  cwd?: string;
}

export interface FashionMnistLoadOptions extends FashionMnistLocateOptions {
  /** Keep only the first `limit` examples of the split. */
  limit?: number;
}

const FILES: Record<FashionMnistSplitName, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The directories searched, in order, for the given options. */
export function fashionMnistSearchPath(options: FashionMnistLocateOptions = {}): string[] {
  const cwd = options.cwd ?? process.cwd();
  if (options.data !== undefined) return [resolve(cwd, options.data)];
  const dirs = [
    resolve(cwd, '..', 'shared', 'data', 'fashion-mnist'),
    resolve(packageRoot, '..', 'shared', 'data', 'fashion-mnist'),
    FASHION_MNIST_SYSTEM_DIR,
  ];
  return [...new Set(dirs)];
}

/** Path of one file of a split in `dir`, gzip-compressed (`.gz`) or not; undefined when absent. */
function findFile(dir: string, base: string): string | undefined {
  for (const name of [`${base}.gz`, base]) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Returns the first directory of {@link fashionMnistSearchPath} that holds all four IDX files.
 * @throws DatasetNotFoundError listing every directory searched and how to get the data.
 */
export function locateFashionMnist(options: FashionMnistLocateOptions = {}): string {
  const searched = fashionMnistSearchPath(options);
  const notes: string[] = [];
  for (const dir of searched) {
    if (!existsSync(dir)) {
      notes.push(`  ${dir}: does not exist`);
      continue;
    }
    const missing = Object.values(FILES)
      .flatMap((f) => [f.images, f.labels])
      .filter((base) => !findFile(dir, base));
    if (!missing.length) return dir;
    notes.push(`  ${dir}: missing ${missing.map((m) => `${m}[.gz]`).join(', ')}`);
  }
  throw new DatasetNotFoundError(
    `Fashion-MNIST not found. Looked in:\n${notes.join('\n')}\n` +
      'Pass the directory holding the IDX files with --data DIR, or install the Debian package ' +
      `dataset-fashion-mnist (files in ${FASHION_MNIST_SYSTEM_DIR}).`,
    searched,
  );
}

/** Loads one split (images and labels), checking that the files agree with each other. */
export async function loadFashionMnist(
  split: FashionMnistSplitName,
  options: FashionMnistLoadOptions = {},
): Promise<FashionMnistSplit> {
  if (split !== 'train' && split !== 'test') throw new InvalidArgumentError(`split must be 'train' or 'test', got '${String(split)}'`);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 0)) {
    throw new InvalidArgumentError(`limit must be a non-negative integer, got ${options.limit}`);
  }
  const dir = locateFashionMnist(options);
  const imagesPath = findFile(dir, FILES[split].images)!;
  const labelsPath = findFile(dir, FILES[split].labels)!;
  const [images, labels] = await Promise.all([readIdx(imagesPath), readIdx(labelsPath)]);
  return checkSplit(images, labels, imagesPath, labelsPath, options.limit);
}

function checkSplit(images: IdxTensor, labels: IdxTensor, imagesPath: string, labelsPath: string, limit?: number): FashionMnistSplit {
  if (images.dtype !== 'uint8' || images.shape.length !== 3) {
    throw new DataFormatError('ERR_DATASET_MISMATCH', `${imagesPath}: expected uint8 images [n, rows, cols], got ${images.dtype} [${images.shape.join(', ')}]`);
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    throw new DataFormatError('ERR_DATASET_MISMATCH', `${labelsPath}: expected uint8 labels [n], got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  const [n, rows, cols] = images.shape as [number, number, number];
  if (labels.shape[0] !== n) {
    throw new DataFormatError('ERR_DATASET_MISMATCH', `${imagesPath} has ${n} images but ${labelsPath} has ${labels.shape[0]} labels`);
  }
  const labelData = labels.data as Uint8Array;
  const bad = labelData.findIndex((l) => l >= FASHION_MNIST_CLASSES.length);
  if (bad >= 0) throw new DataFormatError('ERR_DATASET_MISMATCH', `${labelsPath}: label ${labelData[bad]} at index ${bad} is not a class (0..9)`);
  const count = limit === undefined ? n : Math.min(n, limit);
  return {
    images: (images.data as Uint8Array).subarray(0, count * rows * cols),
    labels: labelData.subarray(0, count),
    count,
    rows,
    cols,
  };
}
