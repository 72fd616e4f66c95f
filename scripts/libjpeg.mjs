#!/usr/bin/env node
// Makes sure libjpeg-turbo's headers and library are there for the addon's fused JPEG path
// (native/jpeg/), before cmake looks for them: scripts/build-native.mjs calls it.
//
//   node scripts/libjpeg.mjs --ensure   find them, or install them (Debian/Ubuntu, as root), print where
//
// Looked for in /usr/include, /usr/include/<triplet>, /usr/local/include and the `include` folder of
// every entry of $CMAKE_PREFIX_PATH (with the library beside it). When missing and this process runs
// as root with apt-get, Debian's libjpeg62-turbo-dev is installed (Ubuntu's libjpeg-dev when
// Debian's name is unknown). Otherwise it fails with a message saying how to install them; it
// never downloads anything but Debian's packages.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { aptInstall, aptUnavailable } from './apt.mjs';

const TRIPLETS = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };
const PACKAGES = ['libjpeg62-turbo-dev', 'libjpeg-dev'];
const HINT = 'install libjpeg-turbo\'s development files (Debian: `apt-get install -y libjpeg62-turbo-dev`; Ubuntu: `apt-get install -y libjpeg-dev`), or add its prefix to CMAKE_PREFIX_PATH';

/** Thrown when libjpeg is neither present nor installable. `code` is stable. */
export class LibjpegMissingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'LibjpegMissingError';
    this.code = 'ERR_LIBJPEG_MISSING';
  }
}

/** Where to look: each prefix's include and lib folders, multiarch ones included. */
function prefixes(env) {
  const triplet = TRIPLETS[process.arch];
  const roots = [...(env.CMAKE_PREFIX_PATH ?? '').split(':').filter(Boolean), '/usr/local', '/usr'];
  const arch = (dir) => (triplet ? [join(dir, triplet)] : []);
  return {
    includes: roots.flatMap((p) => [join(p, 'include'), ...arch(join(p, 'include'))]),
    libs: roots.flatMap((p) => [join(p, 'lib'), join(p, 'lib64'), ...arch(join(p, 'lib'))]),
  };
}

/** `{ header, library }` (paths of jpeglib.h and libjpeg.so) or undefined. */
export function findLibjpeg(env = process.env) {
  const { includes, libs } = prefixes(env);
  const header = includes.map((d) => join(d, 'jpeglib.h')).find((h) => existsSync(h));
  const library = libs.map((d) => join(d, 'libjpeg.so')).find((l) => existsSync(l));
  return header && library ? { header, library } : undefined;
}

/**
 * Finds libjpeg's headers and library, installing them with apt-get when missing and allowed.
 * Returns `{ header, library, installed }`; throws {@link LibjpegMissingError} otherwise. `find`
 * replaces {@link findLibjpeg} (tests).
 */
export function ensureLibjpeg({ find = () => findLibjpeg(), log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const found = find();
  if (found) return { ...found, installed: false };
  const why = aptUnavailable();
  if (why) throw new LibjpegMissingError(`libjpeg-turbo's headers (jpeglib.h) or library (libjpeg.so) were not found, and they cannot be installed automatically (${why}): ${HINT}`);
  log('ringpipe: libjpeg-turbo\'s headers are missing (the fused JPEG path needs them)');
  const outputs = [];
  for (const pkg of PACKAGES) {
    const r = aptInstall(pkg, log);
    const now = find();
    if (now) return { ...now, installed: true };
    outputs.push(`${pkg}: ${r.ok ? 'installed, but jpeglib.h/libjpeg.so are still not found' : r.output}`);
  }
  throw new LibjpegMissingError(`could not install libjpeg-turbo with apt-get (${outputs.join('; ')}): ${HINT}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    const r = ensureLibjpeg();
    console.log(`${r.header} ${r.library}`);
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
}
