import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx, parseIdx, readIdx, readIdxSync, type IdxTensor } from '../src/data/idx.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-idx-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('IDX reader', () => {
  it('parses a hand-built uint8 file (MNIST layout)', () => {
    // magic 0x00000803, dims 2 x 2 x 3, then 12 bytes
    const bytes = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, ...Array.from({ length: 12 }, (_, i) => i * 20)]);
    const t = parseIdx(bytes);
    expect(t.dtype).toBe('uint8');
    expect(t.shape).toEqual([2, 2, 3]);
    expect(Array.from(t.data)).toEqual([0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220]);
  });

  it('decodes big-endian wider types', () => {
    const bytes = Uint8Array.from([0, 0, 0x0b, 1, 0, 0, 0, 2, 0xff, 0xfe, 0x01, 0x02]);
    const t = parseIdx(bytes);
    expect(t.dtype).toBe('int16');
    expect(Array.from(t.data)).toEqual([-2, 258]);
  });

  const cases: IdxTensor[] = [
    { dtype: 'uint8', shape: [3, 2], data: Uint8Array.from([0, 1, 2, 253, 254, 255]) },
    { dtype: 'int8', shape: [4], data: Int8Array.from([-128, -1, 0, 127]) },
    { dtype: 'int16', shape: [2, 2], data: Int16Array.from([-32768, -1, 1, 32767]) },
    { dtype: 'int32', shape: [3], data: Int32Array.from([-2147483648, 7, 2147483647]) },
    { dtype: 'float32', shape: [1, 3], data: Float32Array.from([-1.5, 0, 3.25]) },
    { dtype: 'float64', shape: [2], data: Float64Array.from([Math.PI, -1e300]) },
    { dtype: 'uint8', shape: [0, 28, 28], data: new Uint8Array(0) },
  ];
  for (const c of cases) {
    it(`round-trips ${c.dtype} [${c.shape.join(', ')}] through files, gzip and plain`, async () => {
      const plain = join(tmp, `${c.dtype}-${c.shape.join('x')}`);
      const gz = `${plain}.gz`;
      writeFileSync(plain, encodeIdx(c));
      writeFileSync(gz, encodeIdx(c, { gzip: true }));
      for (const t of [await readIdx(plain), await readIdx(gz), readIdxSync(gz)]) {
        expect(t.dtype).toBe(c.dtype);
        expect(t.shape).toEqual(c.shape);
        expect(Array.from(t.data)).toEqual(Array.from(c.data));
        expect(t.data.constructor).toBe(c.data.constructor);
      }
    });
  }

  it('detects gzip by content, not by name', async () => {
    const p = join(tmp, 'no-extension');
    writeFileSync(p, encodeIdx({ dtype: 'uint8', shape: [2], data: Uint8Array.from([5, 6]) }, { gzip: true }));
    expect(Array.from((await readIdx(p)).data)).toEqual([5, 6]);
  });

  it('rejects malformed data with ERR_IDX_FORMAT and a reason', async () => {
    const good = encodeIdx({ dtype: 'uint8', shape: [2, 3], data: new Uint8Array(6) });
    const bad = (b: Uint8Array) => () => parseIdx(b, 'x.idx');
    expect(bad(good.subarray(0, 3))).toThrow(/too short/);
    expect(bad(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 0]))).toThrow(/bad IDX magic 0x01000801/);
    expect(bad(Uint8Array.from([0, 0, 0x42, 1, 0, 0, 0, 0]))).toThrow(/unknown IDX element type 0x42/);
    expect(bad(Uint8Array.from([0, 0, 8, 2, 0, 0, 0, 1]))).toThrow(/truncated header/);
    expect(bad(good.subarray(0, good.length - 1))).toThrow(/needs 18 bytes, file has 17 \(truncated\)/);
    expect(bad(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing bytes/);
    expect(bad(gzipSync(good))).toThrow(/gzip-compressed/);
    try {
      parseIdx(Uint8Array.from([9]));
    } catch (e) {
      expect(e).toMatchObject({ code: 'ERR_IDX_FORMAT', name: 'DataFormatError' });
    }
    const corrupt = join(tmp, 'corrupt.gz');
    writeFileSync(corrupt, Buffer.concat([gzipSync(good).subarray(0, 12), Buffer.alloc(8, 0xaa)]));
    await expect(readIdx(corrupt)).rejects.toMatchObject({ code: 'ERR_IDX_FORMAT', message: expect.stringContaining('corrupt gzip') });
    expect(() => encodeIdx({ dtype: 'uint8', shape: [2, 2], data: new Uint8Array(3) })).toThrow(/has 4 elements, data has 3/);
  });
});
