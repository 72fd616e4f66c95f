// The Fashion-MNIST sweep example end to end (--quick), on a small generated dataset in the IDX layout.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeIdx } from '../src/data/idx.js';
import { runFashionMnistSweep } from '../examples/fashion-mnist-sweep/main.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringpipe-fmnist-example-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Images whose class shows as a bright band at row 2*label, over noise. */
function writeDataset(dir: string, train: number, test: number) {
  mkdirSync(dir, { recursive: true });
  let seed = 7;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (const [prefix, n] of [['train', train], ['t10k', test]] as const) {
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = Math.floor(rand() * 10);
      labels[i] = c;
      for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.floor(rand() * 80) + (Math.floor(p / 28) === 2 * c + 4 ? 170 : 0);
    }
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte.gz`), encodeIdx({ dtype: 'uint8', shape: [n, 28, 28], data: images }, { gzip: true }));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte.gz`), encodeIdx({ dtype: 'uint8', shape: [n], data: labels }, { gzip: true }));
  }
}

describe('examples/fashion-mnist-sweep', () => {
  it('--quick writes results.json with trials, backend, history, testAccuracy and the best trial, plus CSV, chart and model', async () => {
    const data = join(tmp, 'data');
    writeDataset(data, 2500, 2000);
    const out = join(tmp, 'out');
    const r = await runFashionMnistSweep({ data, out, concurrency: 2, epochs: 2, quick: true, console: 'none' });
    expect(r.trials).toHaveLength(2);
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    for (const t of json.trials) {
      expect(t).toMatchObject({ status: 'completed', backend: 'wasm' });
      expect(t.id).toMatch(/^[0-9a-f]{12}$/);
      expect(t.history).toHaveLength(2);
      expect(t.history[0].samples).toBe(1920); // 2000 examples in whole batches of 128
      expect(t.testAccuracy).toBeGreaterThan(0.5);
    }
    expect(json.best).toMatchObject({ id: r.best!.id, params: r.best!.params, testAccuracy: r.best!.testAccuracy });
    for (const f of ['results.csv', 'history.csv', 'learning-curves.html', 'best-model/model.json', 'best-model/weights.bin']) {
      expect(existsSync(join(out, f))).toBe(true);
    }
  });

  it('says where it looked when the data are missing', async () => {
    await expect(runFashionMnistSweep({ data: join(tmp, 'nowhere'), out: join(tmp, 'o2'), concurrency: 1, epochs: 1, quick: true })).rejects.toMatchObject({
      code: 'ERR_DATASET_NOT_FOUND',
    });
  });
});
