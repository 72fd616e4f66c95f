import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preprocessFolder } from '../examples/image-preprocess/main.js';
import { preprocess, type PreprocessSpec } from '../src/image/decode.js';
import { ImageDecodeError } from '../src/image/errors.js';
import { readManifest, readShard } from '../src/image/shards.js';

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

describe('examples/image-preprocess', () => {
  const spec: PreprocessSpec = { size: 16, crop: 'random', flip: true, seed: 4, layout: 'chw' };

  it('writes batched shards that read back to exactly what preprocess produces; bad files are skipped and reported', async () => {
    const out = join(dir, 'out-skip');
    const res = await preprocessFolder({ input: join(dir, 'in'), output: out, spec, shardSize: 4, concurrency: 3, shuffle: true, seed: 1, progress: false });
    expect(res.skipped).toEqual([{ path: join(dir, 'in', 'pear', 'broken.jpg'), reason: 'not an image, or an unsupported format' }]);
    const m = await readManifest(out);
    expect(m).toEqual(res.manifest);
    expect(m.count).toBe(9);
    expect(m.classes).toEqual(['apple', 'pear']);
    expect(m.layout).toBe('nchw');
    expect(m.shards.map((s) => s.count).reduce((a, b) => a + b)).toBe(9);
    const seen = new Set<number>();
    for (let s = 0; s < m.shards.length; s++) {
      const shard = await readShard(out, m, s);
      for (let k = 0; k < shard.shape[0]; k++) {
        const index = shard.indices[k];
        seen.add(index);
        // Canonical order: apple/0-4.jpg, then pear/0-3.jpg, then pear/broken.jpg.
        const path = index < 5 ? join(dir, 'in', 'apple', `${index}.jpg`) : join(dir, 'in', 'pear', `${index - 5}.jpg`);
        expect(shard.labels[k]).toBe(index < 5 ? 0 : 1);
        const want = await preprocess(path, spec, undefined, { index });
        const per = 3 * 16 * 16;
        expect(Array.from(shard.data.subarray(k * per, (k + 1) * per))).toEqual(Array.from(want.data));
      }
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]); // 9 = pear/broken.jpg
  });

  it("onError 'fail' stops with the path of the bad file", async () => {
    const err = await preprocessFolder({ input: join(dir, 'in'), output: join(dir, 'out-fail'), spec, shardSize: 4, onError: 'fail', progress: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as ImageDecodeError).path).toBe(join(dir, 'in', 'pear', 'broken.jpg'));
  });
});
