/**
 * The memory allocator of preprocessing processes.
 *
 * Why: each image makes libvips allocate and free dozens of buffers from two threads (the libuv
 * thread that runs sharp's pipeline and libvips' worker); glibc's malloc spends a tenth of the CPU
 * of a 500x375 JPEG's preprocessing in its own bookkeeping (perf: `_int_malloc`,
 * `malloc_consolidate`, `_int_free`), jemalloc much less (bench/suites/image.ts measures it). sharp
 * recommends jemalloc on glibc Linux for the same reason.
 *
 * jemalloc runs with page purging off (`MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1`, unless
 * `MALLOC_CONF` is already set): each image frees and re-allocates the same large decode buffers,
 * and purging them made the pages fault in again: 10-15 % more CPU per 1080p-5K photo. The cost is
 * that a process keeps its peak memory, the buffers of the largest images it decoded.
 *
 * A process's allocator is fixed when it starts, through `LD_PRELOAD`, so this applies to replicas
 * in processes (isolation 'process'). For the main process and its worker threads, start node
 * with `LD_PRELOAD=$(ringpipe's findJemalloc())` yourself.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { InvalidArgumentError } from '../errors.js';

/**
 * - `'auto'`: jemalloc when {@link findJemalloc} finds it, else the system's;
 * - `'jemalloc'`: jemalloc, or an error naming where it was looked for;
 * - `'system'`: whatever the process would use anyway (LD_PRELOAD untouched).
 */
export type Allocator = 'auto' | 'jemalloc' | 'system';

const LIB = 'libjemalloc.so.2';
/** jemalloc at any path and soname version (what LD_PRELOAD or /proc/self/maps may show). */
const JEMALLOC_FILE = /(^|\/)libjemalloc\.so/;
const TRIPLETS: Record<string, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

/** Where {@link findJemalloc} looks, in order (after `$RINGPIPE_JEMALLOC`). */
export function jemallocCandidates(): string[] {
  const triplet = TRIPLETS[process.arch];
  return [...(triplet ? [`/usr/lib/${triplet}/${LIB}`] : []), `/usr/lib64/${LIB}`, `/usr/lib/${LIB}`, `/usr/local/lib/${LIB}`];
}

/**
 * The path of jemalloc's shared library (Debian/Ubuntu: package `libjemalloc2`), or undefined.
 * `$RINGPIPE_JEMALLOC` overrides the search: a path, or an empty string for "none".
 */
export function findJemalloc(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const forced = env.RINGPIPE_JEMALLOC;
  if (forced !== undefined) return forced && isElf(forced) ? forced : undefined;
  return jemallocCandidates().find(isElf);
}

/** A file the dynamic loader could preload: the ELF magic, at least (ld.so skips anything else with a warning). */
function isElf(path: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const head = Buffer.alloc(4);
    return readSync(fd, head, 0, 4, 0) === 4 && head.equals(ELF_MAGIC);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

/** Allocators that replace malloc when preloaded: with one already there, ringpipe adds none. */
const ALLOCATOR_LIBS = /(^|\/)lib(jemalloc|tcmalloc[\w-]*|mimalloc|snmalloc[\w-]*|hoard)\.so/;

function checkChoice(choice: Allocator): void {
  if (choice !== 'auto' && choice !== 'jemalloc' && choice !== 'system') {
    throw new InvalidArgumentError(`allocator must be 'auto', 'jemalloc' or 'system', got ${JSON.stringify(choice)}`);
  }
}

/** jemalloc's settings for preprocessing processes (see the top of this file). */
export const JEMALLOC_CONF = 'dirty_decay_ms:-1,muzzy_decay_ms:-1';

/**
 * Environment entries that give a child process the allocator asked for: `{ LD_PRELOAD,
 * MALLOC_CONF }` with jemalloc ahead of what `env` already preloads (and `MALLOC_CONF` only when
 * `env` has none), or nothing, also when `env` already preloads an allocator (jemalloc, tcmalloc,
 * mimalloc, ...): the user's choice stands.
 * @throws InvalidArgumentError for an unknown choice, or `'jemalloc'` when it is not installed
 */
export function allocatorEnv(choice: Allocator, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  checkChoice(choice);
  if (choice === 'system') return {};
  const lib = findJemalloc(env);
  if (!lib) {
    if (choice === 'auto') return {};
    const where = env.RINGPIPE_JEMALLOC !== undefined ? `RINGPIPE_JEMALLOC=${JSON.stringify(env.RINGPIPE_JEMALLOC)}` : jemallocCandidates().join(', ');
    throw new InvalidArgumentError(`allocator 'jemalloc': ${LIB} was not found (${where}); install it (Debian/Ubuntu: apt-get install libjemalloc2) or set RINGPIPE_JEMALLOC to its path`);
  }
  const preload = (env.LD_PRELOAD ?? '').split(/[:\s]+/).filter(Boolean);
  const other = preload.find((p) => ALLOCATOR_LIBS.test(p));
  if (other) {
    if (choice === 'jemalloc' && !JEMALLOC_FILE.test(other)) throw new InvalidArgumentError(`allocator 'jemalloc': LD_PRELOAD already preloads another allocator (${other})`);
    return {};  // the user's choice of allocator stands
  }
  return { LD_PRELOAD: [lib, ...preload].join(':'), ...(env.MALLOC_CONF === undefined ? { MALLOC_CONF: JEMALLOC_CONF } : {}) };
}

/** Whether this process already runs with jemalloc preloaded. */
export function jemallocPreloaded(env: NodeJS.ProcessEnv = process.env): boolean {
  return (env.LD_PRELOAD ?? '').split(/[:\s]+/).some((p) => JEMALLOC_FILE.test(p));
}

/**
 * The environment for segments run with `isolation`: {@link allocatorEnv} for processes, nothing
 * for threads (which share this process's allocator).
 * @throws InvalidArgumentError for an unknown choice, or `'jemalloc'` that cannot apply
 */
export function segmentAllocatorEnv(choice: Allocator, isolation: string): Record<string, string> {
  if (isolation === 'process') return allocatorEnv(choice);
  checkChoice(choice);
  if (choice === 'jemalloc' && !jemallocPreloaded()) {
    throw new InvalidArgumentError(`allocator 'jemalloc' needs isolation 'process' (threads share this process's allocator): or start node with LD_PRELOAD=${findJemalloc() ?? LIB}`);
  }
  return {};
}

/** The allocator this process runs with: `'jemalloc'` when its library is mapped (Linux), else `'system'`. */
export function runningAllocator(): 'jemalloc' | 'system' {
  try {
    return JEMALLOC_FILE.test(readFileSync('/proc/self/maps', 'utf8')) ? 'jemalloc' : 'system';
  } catch {
    return 'system';
  }
}
