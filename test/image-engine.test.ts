// Image preprocessing on the engine: source -> preprocess replicas -> [batch] -> sink, in worker
// threads (and once in processes), with bad files, determinism and batching.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SegmentError } from '../src/runtime/errors.js';
import { preprocess, type PreprocessSpec } from '../src/image/decode.js';
import { imageFolder, selectItems, type ImageItem } from '../src/image/folder.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/image/normalize.js';
import { digestSink, imagePipeline, skippedImages, unusedImages } from '../src/image/pipeline.js';
import type { DigestReport, ImagePreprocessorReport } from '../src/image/segments.js';
import { threadPlan } from '../src/image/threads.js';
import { findJemalloc } from '../src/image/allocator.js';
import { ensureJemalloc } from '../scripts/jemalloc.mjs';
import { Sink, Source } from '../src/index.js';
import { LateSharpSink } from './fixtures/late-sharp.js';
import { reversedItems } from './fixtures/item-list.js';

let dir: string;
let items: ImageItem[];
const CORRUPT = () => join(dir, 'cat', 'corrupt.jpg');
const ZERO = () => join(dir, 'dog', 'zero.jpg');

/** Noise that differs per image, so different crops and images give different tensors. */
function noise(w: number, h: number, k: number): Buffer {
  const b = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) b.set([(x * 7 + y * 13 + k * 31) & 255, (x * x + y * 3 + k) & 255, (x * y + 91 * k) & 255], (y * w + x) * 3);
  return b;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ringpipe-image-engine-'));
  // 10 cats, 8 dogs, a corrupt JPEG and an empty file: 20 files, indices 0..19 in listing order
  // (cat/corrupt.jpg = 0, cat/img-*.jpg = 1..10, dog/img-*.jpg = 11..18, dog/zero.jpg = 19).
  let k = 0;
  for (const [cls, n] of [['cat', 10], ['dog', 8]] as const) {
    await mkdir(join(dir, cls), { recursive: true });
    for (let i = 0; i < n; i++, k++) {
      const w = 40 + ((k * 13) % 50), h = 30 + ((k * 7) % 40);
      const img = sharp(noise(w, h, k), { raw: { width: w, height: h, channels: 3 } });
      await (k % 3 === 0 ? img.png() : img.jpeg({ quality: 90 })).toFile(join(dir, cls, `img-${String(i).padStart(2, '0')}.${k % 3 === 0 ? 'png' : 'jpg'}`));
    }
  }
  const good = await sharp(noise(64, 48, 99), { raw: { width: 64, height: 48, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const corrupt = Buffer.from(good);
  for (let i = 600; i < corrupt.length - 10; i += 7) corrupt[i] ^= 0x5a;
  await writeFile(CORRUPT(), corrupt);
  await writeFile(ZERO(), Buffer.alloc(0));
  items = (await imageFolder(dir)).items;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const SPEC: PreprocessSpec = { size: 16, crop: 'random', flip: true, seed: 3, mean: IMAGENET_MEAN, std: IMAGENET_STD };
const sha = (a: ArrayBufferView) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
const isBad = (it: ImageItem) => it.path === CORRUPT() || it.path === ZERO();

/** What a run must deliver: the good items in `order`, each as `preprocess` makes it directly. */
async function expected(order: ImageItem[], spec: PreprocessSpec) {
  const out = [];
  for (const it of order.filter((x) => !isBad(x))) {
    const t = await preprocess(it.path!, spec, undefined, { index: it.index, epoch: 0 });
    out.push({ index: it.index, label: it.label, epoch: 0, sha256: sha(t.data) });
  }
  return out;
}

const digestOf = (r: { results: Record<string, unknown[]> }) => r.results.digest![0] as DigestReport;

describe('image pipeline on the engine (worker threads)', () => {
  it("onError 'skip': every bad file is reported with its path and reason; the rest arrive in order, shaped, as preprocess makes them", async () => {
    expect(items).toHaveLength(20);
    const r = await imagePipeline({ dir, shuffle: true, seed: 5, spec: SPEC, workers: 2, isolation: 'thread', onError: 'skip', sink: digestSink() }).run({ handleSigint: false });
    const order = selectItems(items, { shuffle: true, seed: 5 });
    const d = digestOf(r);
    expect(d.samples).toEqual(await expected(order, SPEC));
    expect(d.records).toHaveLength(18);
    expect(d.records.every((x) => x.shape.join() === '16,16,3' && x.dtype === 'float32')).toBe(true);
    expect(r.skippedCount).toBe(2);
    const skipped = skippedImages(r);
    expect(skipped.map(({ path, index, segment }) => ({ path, index, segment }))).toEqual([
      { path: CORRUPT(), index: 0, segment: 'preprocess' },
      { path: ZERO(), index: 19, segment: 'preprocess' },
    ]);
    expect(skipped[0]!.reason).toMatch(/^(corrupt or truncated image|not an image)/);
    expect(skipped[1]!.reason).toBe('empty file (0 bytes)');
    // The engine's record numbers are positions in the shuffled stream.
    expect(skipped.map((s) => s.record).sort((a, b) => a - b)).toEqual([order.findIndex((x) => x.path === CORRUPT()), order.findIndex((x) => x.path === ZERO())].sort((a, b) => a - b));
    const pre = r.segments.find((s) => s.name === 'preprocess')!;
    expect(pre).toMatchObject({ replicas: 2, recordsIn: 20, skipped: 2 });
    const reports = r.results.preprocess as ImagePreprocessorReport[];
    expect(reports.map((x) => x.images).reduce((a, b) => a + b)).toBe(18);
    // The 12 good JPEGs took the fused path, the 6 PNGs sharp; the corrupt JPEG failed both (skipped, not counted).
    const sum = (k: 'fused' | 'sharp' | 'fusedFailures') => reports.map((x) => x.decoders[k]).reduce((a, b) => a + b);
    expect([sum('fused'), sum('sharp'), sum('fusedFailures')]).toEqual([12, 6, 0]);
  });

  it("onError 'fail' rejects with the bad file's path in the message", async () => {
    const err = await imagePipeline({ dir, spec: SPEC, workers: 2, isolation: 'thread', sink: digestSink() }).run({ handleSigint: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SegmentError);
    const e = err as SegmentError;
    expect(e.code).toBe('ERR_SEGMENT_FAILED');
    expect(e.segment).toBe('preprocess');
    // Unshuffled, the corrupt file is record 0 and the empty one record 19: whichever failed first is named.
    const path = e.index === 0 ? CORRUPT() : ZERO();
    expect([0, 19]).toContain(e.index);
    expect(e.message).toContain(`ImageDecodeError: cannot decode image '${path}'`);
  });

  it('same seed -> byte-identical tensors whatever the replicas (1, 2, local 2), on either decoder; another seed -> other tensors', async () => {
    const run = (workers: number, seed: number, isolation: 'thread' | 'local' = 'thread', decoder: 'auto' | 'sharp' = 'auto') =>
      imagePipeline({ dir, shuffle: true, seed: 1, epoch: 2, spec: { ...SPEC, seed, decoder }, workers, isolation, onError: 'skip', sink: digestSink() }).run({ handleSigint: false }).then(digestOf);
    const one = await run(1, 11);
    const two = await run(2, 11);
    const local = await run(2, 11, 'local');
    expect(one.samples).toHaveLength(18);
    expect(one.samples.every((s) => s.epoch === 2)).toBe(true);
    expect(two.samples).toEqual(one.samples);
    expect(two.stream).toBe(one.stream);
    expect(local.stream).toBe(one.stream);
    const other = await run(2, 12);
    expect(other.samples.map((s) => s.index)).toEqual(one.samples.map((s) => s.index));
    expect(other.stream).not.toBe(one.stream);
    expect(other.samples.filter((s, i) => s.sha256 === one.samples[i]!.sha256).length).toBeLessThan(3);
    // sharp for every image: deterministic too, and other tensors than the fused path's for the JPEGs only.
    const sharpOne = await run(1, 11, 'thread', 'sharp');
    const sharpTwo = await run(2, 11, 'thread', 'sharp');
    expect(sharpTwo.samples).toEqual(sharpOne.samples);
    const same = sharpOne.samples.map((s, i) => s.sha256 === one.samples[i]!.sha256);
    expect(same.filter(Boolean).length).toBe(6); // the PNGs
  });

  it.each<[string, PreprocessSpec, number[], number[]]>([
    ['NHWC float32', { layout: 'hwc' }, [4, 16, 16, 3], [2, 16, 16, 3]],
    ['NCHW uint8', { layout: 'chw', dtype: 'uint8' }, [4, 3, 16, 16], [2, 3, 16, 16]],
  ])('batches %s through the engine, labels alongside', async (_name, extra, full, last) => {
    const spec: PreprocessSpec = { ...SPEC, ...extra, ...(extra.dtype === 'uint8' ? { mean: undefined, std: undefined } : {}) };
    const r = await imagePipeline({ dir, spec, workers: 2, batchSize: 4, isolation: 'thread', onError: 'skip', sink: digestSink() }).run({ handleSigint: false });
    const d = digestOf(r);
    expect(d.records).toEqual([full, full, full, full, last].map((shape) => ({ shape, dtype: extra.dtype ?? 'float32' })));
    expect(d.samples).toEqual(await expected(items, spec));
    expect(r.segments.map((s) => s.name)).toEqual(['images', 'preprocess', 'batch-images', 'batch-meta', 'digest']);
  });

  it('sizes libvips threads by the rule from the replica count; meta: false gives bare tensors', async () => {
    const before = sharp.concurrency();
    try {
      for (const workers of [1, 2]) {
        const r = await imagePipeline({ dir, spec: SPEC, workers, cores: 4, meta: false, isolation: 'thread', onError: 'skip', sink: digestSink() }).run({ handleSigint: false });
        const reports = r.results.preprocess as ImagePreprocessorReport[];
        const plan = threadPlan({ cores: 4, replicas: workers });
        expect(reports).toHaveLength(workers);
        // The plan is the rule's; the live libvips setting is process-wide (threads share one libvips),
        // so what a replica reads back at teardown may be another run's: only the plan is checked here.
        for (const rep of reports) expect(rep).toMatchObject({ plan, ownProcess: false });
        const d = digestOf(r);
        expect(d.samples).toHaveLength(18);
        expect(d.samples.every((s) => s.index === -1 && s.label === -1)).toBe(true);
        expect(d.samples.map((s) => s.sha256)).toEqual((await expected(items, SPEC)).map((s) => s.sha256));
      }
    } finally {
      sharp.concurrency(before);
      sharp.cache(true);
    }
  });
});

it('takes its items from a source of your own: the same tensors and labels, in its order, buffers included', async () => {
  const good = items.filter((x) => !isBad(x));
  const source = new Source(reversedItems, { name: 'mine', options: { items: good, buffers: true }, module: new URL('./fixtures/item-list.ts', import.meta.url).href, export: 'reversedItems' });
  const maxBytes = Math.max(...good.map((x) => readFileSync(x.path!).byteLength));
  const r = await imagePipeline({ source, itemBytes: maxBytes, spec: SPEC, workers: 2, isolation: 'thread', sink: digestSink() }).run({ handleSigint: false });
  expect(digestOf(r).samples).toEqual(await expected([...good].reverse(), SPEC));
  expect(r.segments.map((s) => s.name)).toContain('mine');
  // The folder source's options do not mix with one's own source.
  expect(() => imagePipeline({ source, dir, sink: digestSink() })).toThrow(/with `source`, leave out the folder source's options \(got dir\)/);
  expect(() => imagePipeline({ source: digestSink() as never, sink: digestSink() })).toThrow(/`source` must be a Source/);
  expect(() => imagePipeline({ source, itemBytes: -1, sink: digestSink() })).toThrow(/itemBytes must be a non-negative integer, got -1/);
});

it("replicas in threads keep the rule's libvips threads when another thread loads sharp after their setup", async () => {
  const before = sharp.concurrency();
  try {
    const sink = new Sink(LateSharpSink, { options: { delayMs: 300 }, module: new URL('./fixtures/late-sharp.ts', import.meta.url).href, export: 'LateSharpSink' });
    const r = await imagePipeline({ dir, spec: SPEC, workers: 2, cores: 4, meta: false, preprocessIsolation: 'thread', onError: 'skip', sink }).run({ handleSigint: false });
    const plan = threadPlan({ cores: 4, replicas: 2 });
    expect(plan.vipsConcurrency).toBe(2);
    expect(r.results.LateSharpSink![0]).toEqual({ images: 18, vipsConcurrency: 2 });
    for (const rep of r.results.preprocess as ImagePreprocessorReport[]) expect(rep.vipsConcurrency).toBe(2);
  } finally {
    sharp.concurrency(before);
    sharp.cache(true);
  }
});

it('the folder entries the source did not use are in the result, with the reason', async () => {
  const odd = await mkdtemp(join(tmpdir(), 'ringpipe-image-unused-'));
  try {
    await mkdir(join(odd, 'cat', 'x.jpg'), { recursive: true });
    await writeFile(join(odd, 'cat', 'a.jpg'), await sharp(noise(20, 20, 1), { raw: { width: 20, height: 20, channels: 3 } }).jpeg().toBuffer());
    await symlink('gone.jpg', join(odd, 'cat', 'dangling.jpg'));
    await symlink('..', join(odd, 'cat', 'loop'));
    const r = await imagePipeline({ dir: odd, spec: SPEC, workers: 1, isolation: 'thread', sink: digestSink() }).run({ handleSigint: false });
    expect(digestOf(r).records).toHaveLength(1);
    expect(unusedImages(r).map((u) => [u.path.slice(odd.length + 1), u.reason])).toEqual([
      ['cat/dangling.jpg', 'a dangling symbolic link: its target gone.jpg does not exist'],
      ['cat/loop', 'a symbolic link to a folder above it: a loop, not followed'],
      ['cat/x.jpg', 'a folder, not an image file, although its name ends in .jpg: the images in it are listed'],
    ]);
  } finally {
    await rm(odd, { recursive: true, force: true });
  }
});

describe('image pipeline on the engine (processes)', () => {
  it('every segment a child process: same tensors as in threads, skipped files reported, one libvips plan per process', async () => {
    const cores = availableParallelism();
    const r = await imagePipeline({ dir, spec: SPEC, workers: 2, batchSize: 5, isolation: 'process', onError: 'skip', sink: digestSink() }).run({ handleSigint: false });
    const d = digestOf(r);
    expect(d.records.map((x) => x.shape[0])).toEqual([5, 5, 5, 3]);
    expect(d.samples).toEqual(await expected(items, SPEC));
    expect(skippedImages(r).map((s) => s.path)).toEqual([CORRUPT(), ZERO()]);
    const reports = r.results.preprocess as ImagePreprocessorReport[];
    const plan = threadPlan({ cores, replicas: 2, replicasPerProcess: 1 });
    for (const rep of reports) expect(rep).toMatchObject({ ownProcess: true, vipsConcurrency: plan.vipsConcurrency, uvThreadpoolSize: plan.uvThreadpoolSize });
  });

  it('threads: a number sets libvips threads per image in each replica process; nonsense is refused before the run', async () => {
    const r = await imagePipeline({ dir, spec: SPEC, workers: 2, threads: 3, onError: 'skip', sink: digestSink() }).run({ handleSigint: false });
    expect(digestOf(r).samples).toEqual(await expected(items, SPEC));
    for (const rep of r.results.preprocess as ImagePreprocessorReport[]) expect(rep).toMatchObject({ ownProcess: true, vipsConcurrency: 3, plan: { vipsConcurrency: 3 } });
    for (const bad of [0, 1.5, 'all']) {
      expect(() => imagePipeline({ dir, spec: SPEC, threads: bad as number, sink: digestSink() })).toThrow(/preprocessImages: threads must be 'auto', 'keep' or a positive integer, got/);
    }
  });

  it('by default the preprocessing replicas are processes, the rest threads; preprocessIsolation overrides', async () => {
    const reportsOf = async (o: { preprocessIsolation?: 'thread' }) => {
      const r = await imagePipeline({ dir, spec: SPEC, workers: 2, batchSize: 6, onError: 'skip', sink: digestSink(), ...o }).run({ handleSigint: false });
      expect(digestOf(r).samples).toEqual(await expected(items, SPEC));
      return (r.results.preprocess as ImagePreprocessorReport[]).map((x) => x.ownProcess);
    };
    expect(await reportsOf({})).toEqual([true, true]);
    expect(await reportsOf({ preprocessIsolation: 'thread' })).toEqual([false, false]);
  });

  it("preprocessing processes run under jemalloc by default (installed here when possible), the system's allocator on request", async () => {
    const jemalloc = ensureJemalloc(() => findJemalloc(), { log: () => {} });
    const allocatorsOf = async (allocator?: 'system') => {
      const r = await imagePipeline({ dir, spec: SPEC, workers: 2, isolation: 'process', onError: 'skip', sink: digestSink(), ...(allocator ? { allocator } : {}) }).run({ handleSigint: false });
      expect(digestOf(r).samples).toEqual(await expected(items, SPEC));
      return (r.results.preprocess as ImagePreprocessorReport[]).map((rep) => rep.allocator);
    };
    expect(await allocatorsOf()).toEqual(jemalloc.path ? ['jemalloc', 'jemalloc'] : ['system', 'system']);
    if (process.env.CI && process.getuid?.() === 0) expect(jemalloc.path).toBeDefined();  // CI runs as root: the install must work
    expect(await allocatorsOf('system')).toEqual(['system', 'system']);
  });
});
