import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_CLASSES, fashionMnistSearchPath, loadFashionMnist, locateFashionMnist } from '../src/data/fashion-mnist.js';
import { encodeIdx } from '../src/data/idx.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-fmnist-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes a tiny dataset in the Fashion-MNIST file layout: image i is filled with value i, label i % 10. */
function writeTiny(dir: string, { train = 12, test = 5, gzip = true, rows = 28, cols = 28 } = {}) {
  mkdirSync(dir, { recursive: true });
  const ext = gzip ? '.gz' : '';
  for (const [prefix, n] of [['train', train], ['t10k', test]] as const) {
    const images = new Uint8Array(n * rows * cols);
    for (let i = 0; i < n; i++) images.fill(i, i * rows * cols, (i + 1) * rows * cols);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${ext}`), encodeIdx({ dtype: 'uint8', shape: [n, rows, cols], data: images }, { gzip }));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${ext}`), encodeIdx({ dtype: 'uint8', shape: [n], data: labels }, { gzip }));
  }
}

describe('Fashion-MNIST loader', () => {
  it('loads both splits from --data DIR, gzip or plain', async () => {
    for (const gzip of [true, false]) {
      const dir = join(tmp, gzip ? 'gz' : 'plain');
      writeTiny(dir, { gzip });
      const train = await loadFashionMnist('train', { data: dir });
      expect(train).toMatchObject({ count: 12, rows: 28, cols: 28 });
      expect(train.images.length).toBe(12 * 784);
      expect(train.images[5 * 784 + 100]).toBe(5);
      expect(Array.from(train.labels)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      const test = await loadFashionMnist('test', { data: dir, limit: 3 });
      expect(test.count).toBe(3);
      expect(test.images.length).toBe(3 * 784);
      expect(Array.from(test.labels)).toEqual([0, 1, 2]);
    }
  });

  it('resolves relative --data against cwd and searches only there', () => {
    writeTiny(join(tmp, 'rel'));
    expect(locateFashionMnist({ data: 'rel', cwd: tmp })).toBe(join(tmp, 'rel'));
    expect(fashionMnistSearchPath({ data: 'rel', cwd: tmp })).toEqual([join(tmp, 'rel')]);
  });

  it('finds ../shared/data/fashion-mnist from the working directory', () => {
    const root = join(tmp, 'ws');
    writeTiny(join(root, 'shared', 'data', 'fashion-mnist'));
    mkdirSync(join(root, 'main'), { recursive: true });
    expect(locateFashionMnist({ cwd: join(root, 'main') })).toBe(join(root, 'shared', 'data', 'fashion-mnist'));
  });

  it('default search path: workspace copy, then the Debian package', () => {
    const p = fashionMnistSearchPath({ cwd: '/nowhere/main' });
    expect(p[0]).toBe('/nowhere/shared/data/fashion-mnist');
    expect(p.at(-1)).toBe('/usr/share/datasets/fashion-mnist');
  });

  it('says where it looked and what was missing', () => {
    const partial = join(tmp, 'partial');
    mkdirSync(partial);
    writeFileSync(join(partial, 'train-images-idx3-ubyte.gz'), encodeIdx({ dtype: 'uint8', shape: [0, 28, 28], data: new Uint8Array(0) }, { gzip: true }));
    try {
      locateFashionMnist({ data: partial });
      expect.unreachable();
    } catch (e) {
      const err = e as Error & { code: string; searched: string[] };
      expect(err.code).toBe('ERR_DATASET_NOT_FOUND');
      expect(err.searched).toEqual([partial]);
      expect(err.message).toContain(`${partial}: missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]`);
      expect(err.message).toContain('--data DIR');
      expect(err.message).toContain('dataset-fashion-mnist');
    }
    expect(() => locateFashionMnist({ data: join(tmp, 'absent') })).toThrow(/absent: does not exist/);
  });

  it('rejects images and labels that disagree', async () => {
    const dir = join(tmp, 'mismatch');
    writeTiny(dir);
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), encodeIdx({ dtype: 'uint8', shape: [11], data: new Uint8Array(11) }, { gzip: true }));
    await expect(loadFashionMnist('train', { data: dir })).rejects.toMatchObject({ code: 'ERR_DATASET_MISMATCH', message: expect.stringContaining('12 images but') });
    writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), encodeIdx({ dtype: 'uint8', shape: [12], data: new Uint8Array(12).fill(10) }, { gzip: true }));
    await expect(loadFashionMnist('train', { data: dir })).rejects.toThrow(/label 10 at index 0 is not a class/);
    await expect(loadFashionMnist('validation' as 'train', { data: dir })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(loadFashionMnist('test', { data: dir, limit: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it('has ten class names', () => {
    expect(FASHION_MNIST_CLASSES).toHaveLength(10);
    expect(FASHION_MNIST_CLASSES[9]).toBe('Ankle boot');
  });
});
