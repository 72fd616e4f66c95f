import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preprocessFolder, syntheticFolder } from '../examples/image-preprocess/main.js';
import { preprocess, type PreprocessSpec } from '../src/image/decode.js';
import { selectItems, imageFolder } from '../src/image/folder.js';
import { readManifest, readShard } from '../src/image/shards.js';
import { SegmentError } from '../src/runtime/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringpipe-image-example-'));
  for (const [cls, n] of [['apple', 5], ['pear', 4]] as const) {
    await mkdir(join(dir, 'in', cls), { recursive: true });
    for (let i = 0; i < n; i++) {
      const bg = { r: (i * 50) % 256, g: cls === 'apple' ? 200 : 30, b: 90 };
      await sharp({ create: { width: 60 + i * 10, height: 50, channels: 3, background: bg } }).jpeg().toFile(join(dir, 'in', cls, `${i}.jpg`));
    }
  }
  await writeFile(join(dir, 'in', 'pear', 'broken.jpg'), 'not a jpeg');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('examples/image-preprocess (on the engine)', () => {
  const spec: PreprocessSpec = { size: 16, crop: 'random', flip: true, seed: 4, layout: 'chw' };

  it('writes batched shards that read back to exactly what preprocess produces, in the seeded order; bad files are skipped and reported', async () => {
    const out = join(dir, 'out-skip');
    // Batches of 3 into shards of 4: batches straddle shard files.
    const res = await preprocessFolder({ input: join(dir, 'in'), output: out, spec, shardSize: 4, batchSize: 3, workers: 2, shuffle: true, seed: 1, progress: false });
    expect(res.skipped).toEqual([{ path: join(dir, 'in', 'pear', 'broken.jpg'), reason: 'not an image, or an unsupported format' }]);
    expect(res.run.segments.map((s) => s.name)).toEqual(['images', 'preprocess', 'batch-images', 'batch-meta', 'shards']);
    expect(res.run.segments.find((s) => s.name === 'preprocess')).toMatchObject({ replicas: 2, recordsIn: 10, skipped: 1 });
    const m = await readManifest(out);
    expect(m).toEqual(res.manifest);
    expect(m.count).toBe(9);
    expect(m.classes).toEqual(['apple', 'pear']);
    expect(m.layout).toBe('nchw');
    expect(m.sampleShape).toEqual([3, 16, 16]);
    expect(m.shards.map((s) => s.count)).toEqual([4, 4, 1]);
    expect(m.spec).toMatchObject({ ...spec, shuffle: true, seed: 1, labels: 'folder' });
    const order: number[] = [];
    for (let s = 0; s < m.shards.length; s++) {
      const shard = await readShard(out, m, s);
      for (let k = 0; k < shard.shape[0]; k++) {
        const index = shard.indices[k];
        order.push(index);
        // Canonical order: apple/0-4.jpg, then pear/0-3.jpg, then pear/broken.jpg.
        const path = index < 5 ? join(dir, 'in', 'apple', `${index}.jpg`) : join(dir, 'in', 'pear', `${index - 5}.jpg`);
        expect(shard.labels[k]).toBe(index < 5 ? 0 : 1);
        const want = await preprocess(path, spec, undefined, { index });
        const per = 3 * 16 * 16;
        expect(Array.from(shard.data.subarray(k * per, (k + 1) * per))).toEqual(Array.from(want.data));
      }
    }
    // The seeded shuffle's order, minus pear/broken.jpg (index 9).
    const ds = await imageFolder(join(dir, 'in'));
    expect(order).toEqual(selectItems(ds.items, { shuffle: true, seed: 1 }).map((x) => x.index).filter((i) => i !== 9));
  });

  it("onError 'fail' stops with the path of the bad file and writes no manifest", async () => {
    const out = join(dir, 'out-fail');
    const err = await preprocessFolder({ input: join(dir, 'in'), output: out, spec, shardSize: 4, workers: 2, onError: 'fail', progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SegmentError);
    expect((err as SegmentError).code).toBe('ERR_SEGMENT_FAILED');
    expect((err as SegmentError).message).toContain(`cannot decode image '${join(dir, 'in', 'pear', 'broken.jpg')}'`);
    await expect(readManifest(out)).rejects.toThrow(/cannot read the shard manifest/);
  });

  it('runs as `npm run example -- image-preprocess --data DIR --out DIR`, reporting skipped files at the end', () => {
    const out = join(dir, 'out-cli');
    const r = spawnSync(process.execPath, ['scripts/example.mjs', 'image-preprocess', '--data', join(dir, 'in'), '--out', out, '--size', '8', '--workers', '2', '--batch', '4'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`9 images -> 1 shard(s) in ${out} (float32 nhwc [N, 8, 8, 3], 2 classes)`);
    expect(r.stdout).toContain(`skipped 1 file(s):\n  ${join(dir, 'in', 'pear', 'broken.jpg')}: not an image, or an unsupported format`);
  });

  it('the synthetic fallback folder (used when ../shared/data/photos is absent) goes through, its corrupt file reported', async () => {
    const root = await syntheticFolder(join(dir, 'synthetic'));
    expect(await syntheticFolder(root)).toBe(root); // generated once
    const res = await preprocessFolder({ input: root, output: join(dir, 'out-synthetic'), spec: { size: 8 }, workers: 2, progress: false });
    expect(res.manifest.count).toBe(60);
    expect(res.manifest.classes).toEqual(['blue', 'green', 'red']);
    expect(res.skipped).toEqual([{ path: join(root, 'green', 'corrupt.jpg'), reason: 'not an image, or an unsupported format' }]);
  });
});
