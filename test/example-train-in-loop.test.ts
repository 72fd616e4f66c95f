// examples/train-in-loop runs as its README says: a model trained in the main thread from an image
// pipeline, one pass of the pipeline per epoch, accuracy well above chance.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

it('trains 3 epochs from the pipeline, above chance, and exits', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'examples', 'train-in-loop', 'main.ts'), '--epochs', '3'], { cwd: root, encoding: 'utf8', timeout: 180_000 });
  expect(r.status, r.stderr).toBe(0);
  const epochs = [...r.stdout.matchAll(/^epoch (\d)\/3: loss ([\d.]+), accuracy ([\d.]+)$/gm)].map((m) => ({ loss: Number(m[2]), acc: Number(m[3]) }));
  expect(epochs).toHaveLength(3);
  expect(epochs[2]!.loss).toBeLessThan(epochs[0]!.loss);
  expect(epochs[2]!.acc).toBeGreaterThan(0.45);
  expect(r.stdout).toMatch(/chance accuracy 0\.333/);
}, 200_000);
