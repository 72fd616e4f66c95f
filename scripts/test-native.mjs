// Runs the C++ tests of the ring layout and protocol (built by `npm install` with the addon).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'build', 'ring_test');
if (!existsSync(bin)) {
  console.error(`ringpipe: ${bin} is missing; run \`npm install\` (or \`npm run build:native\`) first.`);
  process.exit(1);
}
const r = spawnSync(bin, { stdio: 'inherit' });
process.exit(r.status ?? 1);
