#!/usr/bin/env node
// Makes sure jemalloc's shared library is available for the image benchmarks and tests
// (ringpipe's preprocessing processes preload it: see src/image/allocator.ts, whose findJemalloc
// says where it is looked for).
//
//   node scripts/jemalloc.mjs --ensure   find it, or install it (Debian/Ubuntu, as root), print its path
//
// Optional for users: without it, processes keep the system allocator.
import { pathToFileURL } from 'node:url';
import { aptInstall } from './apt.mjs';

/**
 * `{ path, installed }` from `find()` (src/image/allocator.ts's findJemalloc), installing Debian's
 * libjemalloc2 first when it is missing and this process may; `{ path: undefined, reason }` else.
 */
export function ensureJemalloc(find, { log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const found = find();
  if (found) return { path: found, installed: false };
  if (process.platform !== 'linux') return { path: undefined, reason: 'not Linux' };
  const r = aptInstall('libjemalloc2', log);
  const path = find();
  return path ? { path, installed: true } : { path: undefined, reason: r.ok ? 'installed, but not where it is looked for' : r.output };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { findJemalloc } = await import('../dist/image/allocator.js');
  const r = ensureJemalloc(() => findJemalloc());
  if (!r.path) {
    console.error(`jemalloc is not available: ${r.reason}`);
    process.exit(1);
  }
  console.log(r.path);
}
