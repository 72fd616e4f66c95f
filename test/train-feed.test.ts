// From data records to a trainer's stream (src/train/feed.ts), and GPU leases (src/train/gpu-lease.ts).
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { trainerFeed, type FeedOptions } from '../src/train/feed.js';
import { gpuLockFile, leaseGpu } from '../src/train/gpu-lease.js';
import type { Batch, TensorRecord } from '../src/train/records.js';

async function feed(data: unknown[], options: FeedOptions = {}) {
  const out: unknown[] = [];
  for await (const r of trainerFeed(data, options)) out.push(r);
  return out;
}
const rowsOf = (t: unknown) => Array.from((t as TensorRecord).data);
const shapes = (out: unknown[]) => out.map((r) => ('epochEnd' in (r as object) ? `end ${(r as { epochEnd: number }).epochEnd}` : `${(r as Batch).split ?? 'train'} [${(r as Batch & { xs: TensorRecord }).xs.shape}]`));
const examples = (n: number) => Array.from({ length: n }, (_, i) => ({ x: [i, -i], y: i % 3 }));

describe('trainerFeed', () => {
  it('stacks examples into batches of batch_size (the last one partial) and closes each pass with a marker', async () => {
    const out = await feed(examples(5), { batchSize: 2, epochs: 2 });
    expect(shapes(out)).toEqual(['train [2,2]', 'train [2,2]', 'train [1,2]', 'end 1', 'train [2,2]', 'train [2,2]', 'train [1,2]', 'end 2']);
    const first = out[0] as Batch;
    expect(first.xs).toEqual({ data: Float32Array.of(0, -0, 1, -1), shape: [2, 2] });
    expect(first.ys).toEqual({ data: Float32Array.of(0, 1), shape: [2] }); // a number per example: one column
    expect((await feed(examples(40))).length).toBe(3); // default: 32 rows, then 8, then the marker
  });

  it('re-cuts batches across records; without batch_size batches pass as they come', async () => {
    const batch = (from: number, n: number) => ({ xs: { data: Float64Array.from({ length: n }, (_, i) => from + i), shape: [n, 1] }, ys: { data: new Int32Array(n), shape: [n] } });
    const data = [batch(0, 3), batch(3, 3), batch(6, 1)];
    const cut = await feed(data, { batchSize: 4 });
    expect(shapes(cut)).toEqual(['train [4,1]', 'train [3,1]', 'end 1']);
    expect(rowsOf((cut[0] as Batch).xs)).toEqual([0, 1, 2, 3]);
    expect((cut[0] as Batch & { xs: TensorRecord }).xs.data).toBeInstanceOf(Float64Array);
    expect((cut[1] as Batch & { ys: TensorRecord }).ys.data).toBeInstanceOf(Int32Array);
    expect(shapes(await feed(data))).toEqual(['train [3,1]', 'train [3,1]', 'train [1,1]', 'end 1']);
  });

  it('multi-input examples by layer name; nested arrays and tensor records', async () => {
    const data = [0, 1, 2].map((i) => ({ x: { image: { data: Float32Array.of(i, i, i, i), shape: [2, 2] }, extra: [[i], [i]] }, y: [i, 1 - i] }));
    const [b] = (await feed(data, { batchSize: 3 })) as Batch[];
    const xs = b!.xs as Record<string, TensorRecord>;
    expect(Object.keys(xs)).toEqual(['image', 'extra']);
    expect(xs.image!.shape).toEqual([3, 2, 2]);
    expect(xs.extra!.shape).toEqual([3, 2, 1]);
    expect(rowsOf(xs.extra)).toEqual([0, 0, 1, 1, 2, 2]);
    expect((b!.ys as TensorRecord).shape).toEqual([3, 2]);
  });

  it('a stream with epoch markers is read once; epochs caps it', async () => {
    const data = [...examples(3), { epochEnd: 1 }, ...examples(3), { epochEnd: 2 }, ...examples(3), { epochEnd: 3 }];
    let reads = 0;
    const counted = { *[Symbol.iterator]() { reads++; yield* data; } };
    expect(shapes(await feed(counted as unknown as unknown[], { batchSize: 2 }))).toEqual(['train [2,2]', 'train [1,2]', 'end 1', 'train [2,2]', 'train [1,2]', 'end 2', 'train [2,2]', 'train [1,2]', 'end 3']);
    expect(reads).toBe(1);
    expect(shapes(await feed(data, { batchSize: 3, epochs: 2 }))).toEqual(['train [3,2]', 'end 1', 'train [3,2]', 'end 2']);
  });

  it('shuffles within a buffer: the same order for the same seed and epoch, another in the next epoch', async () => {
    const order = async (seed: number) => {
      const out = (await feed(examples(12), { batchSize: 12, shuffle: 5, seed, epochs: 2 })) as Batch[];
      return [0, 2].map((i) => rowsOf(out[i]!.xs).filter((_, k) => k % 2 === 0));
    };
    const [e1, e2] = await order(7);
    expect([...e1!].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(e1).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(e2).not.toEqual(e1);
    expect(await order(7)).toEqual([e1, e2]);
    expect((await order(8))[0]).not.toEqual(e1);
  });

  it('validation_split holds out the last records of every pass, evaluated after the training batches', async () => {
    const out = await feed(examples(10), { batchSize: 4, validationSplit: 0.3, epochs: 2 });
    expect(shapes(out)).toEqual(['train [4,2]', 'train [3,2]', 'validation [3,2]', 'end 1', 'train [4,2]', 'train [3,2]', 'validation [3,2]', 'end 2']);
    expect(rowsOf((out[2] as Batch).xs).filter((_, k) => k % 2 === 0)).toEqual([7, 8, 9]);
    expect(shapes(await feed(examples(10), { batchSize: 2, validationSplit: 0.5 }))).toEqual(['train [2,2]', 'train [2,2]', 'train [1,2]', 'validation [2,2]', 'validation [2,2]', 'validation [1,2]', 'end 1']);
    const batches = [{ xs: { data: Float32Array.of(1), shape: [1, 1] }, ys: { data: Float32Array.of(1), shape: [1] }, split: 'validation' as const }];
    expect(shapes(await feed([...examples(2), ...batches]))).toEqual(['train [2,2]', 'validation [1,1]', 'end 1']);
    await expect(feed(examples(1), { validationSplit: 0.5 })).rejects.toThrow(/of 1 record\(s\) leaves none to train on/);
    await expect(feed([...examples(3), { epochEnd: 1 }], { validationSplit: 0.5 })).rejects.toThrow(/without epoch markers/);
  });

  it('records it cannot use are errors naming the record', async () => {
    await expect(feed([...examples(2), { a: 1 }])).rejects.toMatchObject({ code: 'ERR_TRAINER_RECORD', message: expect.stringMatching(/^record 2: expected an example \{ x, y \}/) });
    await expect(feed([{ x: [1, 2], y: 0 }, { x: [1, 2, 3], y: 0 }], { batchSize: 2 })).rejects.toThrow(/record 1: rows of shape \[3\] cannot be batched with rows of shape \[2\]/);
    await expect(feed([{ x: [[1, 2], [3]], y: 0 }])).rejects.toThrow(/record 0: x: nested arrays must be rectangular/);
    await expect(feed([{ xs: { data: Float32Array.of(1, 2), shape: [2, 1] }, ys: { data: Float32Array.of(1), shape: [1] } }])).rejects.toThrow(/different numbers of rows \(2 and 1\)/);
    await expect(feed([])).rejects.toThrow(/no training records/);
    await expect(feed(examples(2), { batchSize: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });
});

describe('leaseGpu', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringpipe-gpu-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a GPU no one holds, shares when all are held, and gives it back', () => {
    const a = leaseGpu([3, 5], dir);
    const b = leaseGpu([3, 5], dir);
    const c = leaseGpu([3, 5], dir);
    expect([a.gpu, a.shared, b.gpu, b.shared, c.shared]).toEqual([3, false, 5, false, true]);
    expect(readFileSync(gpuLockFile(3, dir), 'utf8')).toBe(String(process.pid));
    a.release();
    a.release();
    expect(existsSync(gpuLockFile(3, dir))).toBe(false);
    expect(leaseGpu([3, 5], dir).gpu).toBe(3);
  });

  it("takes over the lock of a process that is gone", () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(gpuLockFile(7, dir), dead);
    const l = leaseGpu([7], dir);
    expect([l.gpu, l.shared]).toEqual([7, false]);
    expect(readFileSync(gpuLockFile(7, dir), 'utf8')).toBe(String(process.pid));
    l.release();
  });
});
