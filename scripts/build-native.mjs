// Builds the addon (build/Release/ringpipe.node) and the C++ tests with cmake-js, against the
// local Node headers, installing libjpeg-turbo's headers first where they are missing (see
// libjpeg.mjs). Says what is missing when a tool is not there.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLibjpeg } from './libjpeg.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function have(cmd, args = ['--version']) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return r.status === 0;
}
const missing = [];
if (!have('cmake')) missing.push('cmake (Debian: apt-get install cmake)');
if (!have('c++') && !have('g++')) missing.push('a C++20 compiler (Debian: apt-get install g++)');
if (!have('make') && !have('ninja')) missing.push('make or ninja (Debian: apt-get install make)');
if (missing.length) {
  console.error(`ringpipe: cannot build the native addon, missing: ${missing.join(', ')}`);
  process.exit(1);
}
// libjpeg-turbo for the fused JPEG path: installed here (Debian, as root) when missing.
try {
  const jpeg = ensureLibjpeg();
  if (jpeg.installed) console.error(`ringpipe: installed libjpeg-turbo (${jpeg.header})`);
} catch (err) {
  console.error(`ringpipe: cannot build the native addon: ${err.message}`);
  process.exit(1);
}

const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
// The addon uses V8's headers (for SharedArrayBuffer), not only Node-API's: take them from the
// running Node's install when present (no download), else from cmake-js's header download.
const prefix = dirname(dirname(process.execPath));
let nodeInclude = join(prefix, 'include', 'node');
const env = { ...process.env };
if (existsSync(join(nodeInclude, 'v8.h'))) {
  env.npm_config_nodedir = prefix;
} else {
  const dl = spawnSync(process.execPath, [cmakeJs, 'install'], { cwd: root, stdio: 'inherit' });
  nodeInclude = join(homedir(), '.cmake-js', `node-${process.arch}`, process.version, 'include', 'node');
  if (dl.status !== 0 || !existsSync(join(nodeInclude, 'v8.h'))) {
    console.error(`ringpipe: Node's C++ headers (v8.h) were not found in ${join(prefix, 'include', 'node')} and could not be downloaded.`);
    process.exit(1);
  }
}
const args = [cmakeJs, 'compile', '--out', 'build', '--CDNODE_INCLUDE_DIR=' + nodeInclude];
const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
if (r.status !== 0) {
  console.error('ringpipe: building the native addon failed (see the cmake output above).');
  process.exit(r.status ?? 1);
}
