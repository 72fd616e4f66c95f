import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JEMALLOC_CONF, allocatorEnv, findJemalloc, jemallocPreloaded, segmentAllocatorEnv } from '../src/image/allocator.js';
import { InvalidArgumentError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ringpipe-alloc-'));
const fake = join(dir, 'libjemalloc.so.2');
writeFileSync(fake, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));  // an ELF header's start
const notElf = join(dir, 'text', 'libjemalloc.so.2');
mkdirSync(join(dir, 'text'));
writeFileSync(notElf, 'not a library');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('allocator of preprocessing processes', () => {
  it('RINGPIPE_JEMALLOC overrides the search: a path, or empty for none', () => {
    expect(findJemalloc({ RINGPIPE_JEMALLOC: fake })).toBe(fake);
    expect(findJemalloc({ RINGPIPE_JEMALLOC: '' })).toBeUndefined();
    expect(findJemalloc({ RINGPIPE_JEMALLOC: join(dir, 'missing.so') })).toBeUndefined();
    // ld.so would skip a file that is not a shared object, with a warning: so is it here
    expect(findJemalloc({ RINGPIPE_JEMALLOC: notElf })).toBeUndefined();
  });

  it('an allocator the user already preloads stands: nothing is added, and asking for jemalloc over it is an error', () => {
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: '/usr/lib/libtcmalloc_minimal.so.4' })).toEqual({});
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: '/opt/lib/libmimalloc.so' })).toEqual({});
    expect(allocatorEnv('jemalloc', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: '/opt/jemalloc/lib/libjemalloc.so.2' })).toEqual({});
    expect(() => allocatorEnv('jemalloc', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: '/usr/lib/libtcmalloc.so.4' })).toThrow(/already preloads another allocator \(\/usr\/lib\/libtcmalloc\.so\.4\)/);
    expect(jemallocPreloaded({ LD_PRELOAD: '/opt/jemalloc/lib/libjemalloc.so' })).toBe(true);
  });

  it("'auto' preloads jemalloc ahead of what is already preloaded, once, with page purging off unless MALLOC_CONF is set; nothing when it is missing", () => {
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: fake })).toEqual({ LD_PRELOAD: fake, MALLOC_CONF: JEMALLOC_CONF });
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: '/x/libfoo.so /y/libbar.so', MALLOC_CONF: 'narenas:2' })).toEqual({ LD_PRELOAD: `${fake}:/x/libfoo.so:/y/libbar.so` });
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: fake, LD_PRELOAD: fake })).toEqual({});
    expect(allocatorEnv('auto', { RINGPIPE_JEMALLOC: '' })).toEqual({});
    expect(allocatorEnv('system', { RINGPIPE_JEMALLOC: fake })).toEqual({});
  });

  it("'jemalloc' that is not installed, or an unknown choice, is an error saying what to do", () => {
    expect(() => allocatorEnv('jemalloc', { RINGPIPE_JEMALLOC: '' })).toThrow(/libjemalloc\.so\.2 was not found \(RINGPIPE_JEMALLOC=""\); install it \(Debian\/Ubuntu: apt-get install libjemalloc2\)/);
    expect(() => allocatorEnv('tcmalloc' as never)).toThrow(InvalidArgumentError);
    expect(() => allocatorEnv('tcmalloc' as never)).toThrow(/allocator must be 'auto', 'jemalloc' or 'system', got "tcmalloc"/);
  });

  it("threads share this process's allocator: 'jemalloc' with threads is refused unless already preloaded", () => {
    expect(segmentAllocatorEnv('auto', 'thread')).toEqual({});
    expect(segmentAllocatorEnv('system', 'local')).toEqual({});
    expect(() => segmentAllocatorEnv('bogus' as never, 'thread')).toThrow(InvalidArgumentError);
    if (!jemallocPreloaded()) expect(() => segmentAllocatorEnv('jemalloc', 'thread')).toThrow(/needs isolation 'process'/);
    expect(jemallocPreloaded({ LD_PRELOAD: `/a/libz.so:${fake}` })).toBe(true);
    expect(jemallocPreloaded({})).toBe(false);
  });
});
