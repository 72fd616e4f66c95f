// Runs the C++ tests (built by `npm install` with the addon): the ring layout and protocol, and the
// fused JPEG path's resampler and decoder.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
let status = 0;
for (const name of ['ring_test', 'resample_test', 'crop_decoder_test']) {
  const bin = join(root, 'build', name);
  if (!existsSync(bin)) {
    console.error(`ringpipe: ${bin} is missing; run \`npm install\` (or \`npm run build:native\`) first.`);
    process.exit(1);
  }
  const r = spawnSync(bin, { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
