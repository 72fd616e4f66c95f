import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../src/errors.js';
import { allocBatch, batchSlot, chwToHwc, hwcToChw, stackBatch } from '../src/image/batch.js';
import { preprocess, type ImageTensor } from '../src/image/decode.js';
import { readManifest, readShard, ShardFormatError, ShardWriter } from '../src/image/shards.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringpipe-image-batch-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 2x3 tensor whose values encode (y, x, c). */
function tensor(layout: 'hwc' | 'chw', base: number, label?: number): ImageTensor & { label?: number } {
  const H = 2;
  const W = 3;
  const data = new Float32Array(18);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      for (let c = 0; c < 3; c++) data[layout === 'hwc' ? (y * W + x) * 3 + c : c * H * W + y * W + x] = base + 100 * y + 10 * x + c;
    }
  }
  return { data, shape: layout === 'hwc' ? [H, W, 3] : [3, H, W], dtype: 'float32', layout, ...(label !== undefined ? { label } : {}) };
}

describe('batches', () => {
  it('stackBatch keeps the sample layout by default and transposes on request', () => {
    const s = [tensor('hwc', 0, 4), tensor('hwc', 1000, 2)];
    const nhwc = stackBatch(s);
    expect(nhwc.shape).toEqual([2, 2, 3, 3]);
    expect(nhwc.layout).toBe('nhwc');
    expect(Array.from(nhwc.labels)).toEqual([4, 2]);
    expect(Array.from(nhwc.data.subarray(18))).toEqual(Array.from(s[1].data));
    const nchw = stackBatch(s, { layout: 'nchw' });
    expect(nchw.shape).toEqual([2, 3, 2, 3]);
    // batch[n][c][y][x] = base_n + 100y + 10x + c
    for (let n = 0; n < 2; n++) for (let c = 0; c < 3; c++) for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) {
      expect(nchw.data[n * 18 + c * 6 + y * 3 + x]).toBe(n * 1000 + 100 * y + 10 * x + c);
    }
    // CHW samples into NHWC, unlabelled -> -1.
    const back = stackBatch([tensor('chw', 0), tensor('chw', 1000)], { layout: 'nhwc' });
    expect(Array.from(back.data)).toEqual(Array.from(nhwc.data));
    expect(Array.from(back.labels)).toEqual([-1, -1]);
  });

  it('stackBatch writes into caller storage and validates its inputs', () => {
    const out = new Float32Array(40).fill(-7);
    const b = stackBatch([tensor('hwc', 0), tensor('hwc', 5)], { out });
    expect(b.data.buffer).toBe(out.buffer);
    expect(out[36]).toBe(-7);
    expect(() => stackBatch([])).toThrow(InvalidArgumentError);
    expect(() => stackBatch([tensor('hwc', 0)], { out: new Uint8Array(18) })).toThrow(/match dtype/);
    expect(() => stackBatch([tensor('hwc', 0)], { out: new Float32Array(17) })).toThrow(/needs 18/);
    const odd: ImageTensor = { data: new Float32Array(12), shape: [2, 2, 3], dtype: 'float32', layout: 'hwc' };
    expect(() => stackBatch([tensor('hwc', 0), odd])).toThrow(/sample 1/);
  });

  it('hwcToChw and chwToHwc are inverse', () => {
    const t = tensor('hwc', 0);
    const chw = new Float32Array(18);
    hwcToChw(t.data, chw, 2, 3);
    expect(Array.from(chw)).toEqual(Array.from(tensor('chw', 0).data));
    const hwc = new Float32Array(18);
    chwToHwc(chw, hwc, 2, 3);
    expect(Array.from(hwc)).toEqual(Array.from(t.data));
  });

  it('allocBatch + batchSlot: preprocess writes each sample in place (zero-copy)', async () => {
    const png = await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 0, g: 255, b: 0 } } }).png().toBuffer();
    const batch = allocBatch(3, 8, 8, { layout: 'nchw', dtype: 'uint8' });
    expect(batch.shape).toEqual([3, 3, 8, 8]);
    expect(Array.from(batch.labels)).toEqual([-1, -1, -1]);
    const slot = batchSlot(batch, 1);
    expect(slot.buffer).toBe(batch.data.buffer);
    const t = await preprocess(png, { size: 8, layout: 'chw', dtype: 'uint8' }, slot);
    expect(t.data).toBe(slot);
    expect(batch.data.subarray(0, 192).every((v) => v === 0)).toBe(true);
    expect(batch.data.subarray(192, 256).every((v) => v === 0)).toBe(true); // R plane of sample 1
    expect(batch.data.subarray(256, 320).every((v) => v === 255)).toBe(true); // G plane of sample 1
    expect(() => batchSlot(batch, 3)).toThrow(InvalidArgumentError);
    expect(() => allocBatch(2, 0, 4)).toThrow(InvalidArgumentError);
  });
});

describe('image shards on disk', () => {
  it('round-trips batches, labels and indices through the documented layout', async () => {
    const out = join(dir, 'shards');
    const w = new ShardWriter(out, { dtype: 'float32', layout: 'nhwc', height: 2, width: 3, classes: ['a', 'b'], spec: { size: [2, 3] } });
    const b1 = stackBatch([tensor('hwc', 0, 1), tensor('hwc', 1000, 0), tensor('hwc', 2000, 1)]);
    const b2 = stackBatch([tensor('hwc', 3000, 0), tensor('hwc', 4000, 1)]);
    await w.writeBatch(b1, [10, 11, 12]);
    await w.writeBatch(b2, [13, 14, 99], 1); // only the first sample
    const m = await w.close();
    expect(m).toMatchObject({ format: 'ringpipe-image-shards', version: 1, dtype: 'float32', layout: 'nhwc', sampleShape: [2, 3, 3], sampleBytes: 72, count: 4, classes: ['a', 'b'], spec: { size: [2, 3] } });
    expect(await readManifest(out)).toEqual(m);
    for (const e of m.shards) {
      expect(e.labelsOffset % 64).toBe(0);
      expect(e.indicesOffset % 64).toBe(0);
      expect((await stat(join(out, e.file))).size).toBe(e.bytes);
    }
    const s0 = await readShard(out, m, 0);
    expect(s0.shape).toEqual([3, 2, 3, 3]);
    expect(Array.from(s0.data)).toEqual(Array.from(b1.data));
    expect(Array.from(s0.labels)).toEqual([1, 0, 1]);
    expect(Array.from(s0.indices)).toEqual([10, 11, 12]);
    const s1 = await readShard(out, m, 1);
    expect(s1.shape[0]).toBe(1);
    expect(Array.from(s1.data)).toEqual(Array.from(b2.data.subarray(0, 18)));
    expect(Array.from(s1.indices)).toEqual([13]);
    // The layout is what the format documentation says: raw little-endian blocks at the offsets.
    const raw = await readFile(join(out, m.shards[0].file));
    expect(raw.readFloatLE(4 * 18)).toBe(1000);
    expect(raw.readInt32LE(m.shards[0].labelsOffset + 4)).toBe(0);
    expect(raw.readInt32LE(m.shards[0].indicesOffset + 8)).toBe(12);
    await expect(w.close()).rejects.toThrow(/already closed/);
  });

  it('append streams samples into shards of shardSize, splitting batches across files', async () => {
    const out = join(dir, 'append');
    const w = new ShardWriter(out, { dtype: 'float32', layout: 'nhwc', height: 2, width: 3, shardSize: 4 });
    const samples = Array.from({ length: 7 }, (_, i) => tensor('hwc', 1000 * i));
    const b1 = stackBatch(samples.slice(0, 3));
    const b2 = stackBatch(samples.slice(3, 7));
    await w.append(b1, [0, 1, 2], [10, 11, 12]);
    expect(w.count).toBe(3);
    await w.append(b2, [3, 4, 5, 6, 99], [13, 14, 15, 16, 99], 3); // the first 3 of 4: 3 + 3 = 6 samples
    await expect(w.append({ data: new Float32Array(18), shape: [1, 3, 2, 3], dtype: 'float32' }, [0], [0])).rejects.toThrow(/expected \[n, 2, 3, 3\]/);
    await expect(w.append(b1, [0], [0])).rejects.toThrow(/bad count 3/);
    const m = await w.close();
    expect(m.count).toBe(6);
    expect(m.shards.map((e) => e.count)).toEqual([4, 2]);
    const s0 = await readShard(out, m, 0);
    const s1 = await readShard(out, m, 1);
    expect(Array.from(s0.data)).toEqual(samples.slice(0, 4).flatMap((t) => Array.from(t.data)));
    expect(Array.from(s1.data)).toEqual(samples.slice(4, 6).flatMap((t) => Array.from(t.data)));
    expect(Array.from(s0.labels)).toEqual([0, 1, 2, 3]);
    expect(Array.from(s1.indices)).toEqual([14, 15]);
    for (const e of m.shards) expect((await stat(join(out, e.file))).size).toBe(e.bytes);
  });

  it('uint8 shards whose data block ends on an odd byte keep labels and indices at their aligned offsets', async () => {
    const out = join(dir, 'odd');
    const w = new ShardWriter(out, { dtype: 'uint8', layout: 'nhwc', height: 1, width: 1, shardSize: 5 });
    const b = allocBatch(3, 1, 1, { dtype: 'uint8' });
    b.data.set([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    b.labels.set([7, -1, 3]);
    await w.writeBatch(b, [5, 6, 7]); // 9 bytes of data
    await w.append(b, b.labels, [8, 9, 10]);
    const m = await w.close();
    const s0 = await readShard(out, m, 0);
    expect(Array.from(s0.labels)).toEqual([7, -1, 3]);
    expect(Array.from(s0.indices)).toEqual([5, 6, 7]);
    const s1 = await readShard(out, m, 1);
    expect(Array.from(s1.data)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(Array.from(s1.labels)).toEqual([7, -1, 3]);
    expect(Array.from(s1.indices)).toEqual([8, 9, 10]);
  });

  it('detects a mismatched batch, a truncated shard and a foreign manifest', async () => {
    const out = join(dir, 'bad');
    const w = new ShardWriter(out, { dtype: 'uint8', layout: 'nchw', height: 2, width: 3 });
    await expect(w.writeBatch(stackBatch([tensor('hwc', 0)]), [0])).rejects.toThrow(InvalidArgumentError);
    const u8 = allocBatch(2, 2, 3, { dtype: 'uint8', layout: 'nchw' });
    await w.writeBatch(u8, [0, 1]);
    const m = await w.close();
    const f = join(out, m.shards[0].file);
    await writeFile(f, (await readFile(f)).subarray(0, 10));
    await expect(readShard(out, m, 0)).rejects.toBeInstanceOf(ShardFormatError);
    await expect(readShard(out, m, 5)).rejects.toBeInstanceOf(InvalidArgumentError);
    await writeFile(join(out, 'manifest.json'), '{"format":"other"}');
    await expect(readManifest(out)).rejects.toBeInstanceOf(ShardFormatError);
    await expect(readManifest(join(dir, 'nowhere'))).rejects.toBeInstanceOf(ShardFormatError);
  });
});
