// `ringpipe cache ls | gc | verify | clear`.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { shortHash } from '../../cache/hash.js';
import { FsArtifactStore } from '../../cache/store.js';
import { collectGarbage } from '../../config/gc.js';
import { UsageError } from '../errors.js';
import { bytes, line, table, type Io } from '../format.js';

/** Where the cache is: `--cache-dir`, else beside the pipeline file, else `./.ringpipe/cache`. */
export function cacheDirFor(opts: { cacheDir?: string }, file?: string): string {
  if (opts.cacheDir) return resolve(opts.cacheDir);
  return join(file ? dirname(resolve(file)) : process.cwd(), '.ringpipe', 'cache');
}

/**
 * The cache a command works on, which must exist: a missing folder (a typo in `--cache-dir`, or a
 * pipeline that never ran) is a usage error, not an empty cache.
 */
export function existingCache(opts: { cacheDir?: string }, file?: string): FsArtifactStore {
  const dir = cacheDirFor(opts, file);
  const given = opts.cacheDir ? '--cache-dir' : file ? `the cache of ${file}` : 'the cache of the current folder';
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new UsageError(`no cache at ${dir} (${given}): the folder does not exist${opts.cacheDir ? '' : ' (nothing has run with it yet?)'}`);
  }
  if (!st.isDirectory()) throw new UsageError(`${dir} (${given}) is not a folder`);
  if (!existsSync(join(dir, 'FORMAT')) && !existsSync(join(dir, 'objects'))) throw new UsageError(`${dir} (${given}) is not a ringpipe cache (it has no FORMAT file and no objects/ folder)`);
  return new FsArtifactStore(dir);
}

/** `ringpipe cache ls`. */
export async function cacheLs(file: string | undefined, opts: { cacheDir?: string; json?: boolean }, io: Io): Promise<number> {
  const store = existingCache(opts, file);
  const entries = await store.list();
  const total = entries.reduce((s, e) => s + e.size, 0);
  if (opts.json) {
    io.out.write(
      JSON.stringify({
        location: store.location,
        entries: entries.map((e) => ({
          key: e.manifest.key,
          stage: e.manifest.stage,
          branch: e.manifest.branch,
          kind: e.manifest.kind,
          records: e.manifest.records,
          size: e.size,
          createdAt: e.manifest.createdAt,
          pipeline: e.manifest.pipeline ?? null,
        })),
        totalSize: total,
      }) + '\n',
    );
    return 0;
  }
  if (entries.length) {
    const rows = entries.map((e) => [
      shortHash(e.manifest.key),
      e.manifest.stage,
      e.manifest.branch ?? '',
      e.manifest.records,
      bytes(e.size),
      e.manifest.createdAt.replace('T', ' ').slice(0, 19),
      e.manifest.pipeline ? relative(process.cwd(), e.manifest.pipeline) || '.' : '',
    ]);
    line(io.out, table(['key', 'stage', 'branch', 'records', 'size', 'created (UTC)', 'pipeline'], rows));
  }
  line(io.out, `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${bytes(total)} in ${store.location}`);
  return 0;
}

/** `ringpipe cache gc`. */
export async function cacheGc(files: string[], opts: { cacheDir?: string; dryRun?: boolean; force?: boolean; json?: boolean }, io: Io): Promise<number> {
  const store = existingCache(opts, files[0]);
  const report = await collectGarbage(store, { pipelines: files, dryRun: opts.dryRun, force: opts.force });
  if (opts.json) {
    io.out.write(
      JSON.stringify({
        location: store.location,
        dryRun: !!opts.dryRun,
        roots: report.roots,
        forgotten: report.forgotten,
        invalid: report.invalid,
        kept: report.kept.length,
        removed: report.removed.map((e) => e.manifest.key),
        tempRemoved: report.tempRemoved,
        bytesFreed: report.bytesFreed,
      }) + '\n',
    );
    return 0;
  }
  for (const f of report.forgotten) line(io.err, `forgot ${f} (the file is gone)`);
  for (const i of report.invalid) line(io.err, `warning: ${i.path} does not validate; its entries were not kept: ${i.message}`);
  const keptSize = report.kept.reduce((s, e) => s + e.size, 0);
  const verb = opts.dryRun ? 'would remove' : 'removed';
  line(io.out, `${verb} ${report.removed.length} entr${report.removed.length === 1 ? 'y' : 'ies'}${report.tempRemoved ? ` and ${report.tempRemoved} abandoned temporary director${report.tempRemoved === 1 ? 'y' : 'ies'}` : ''} (${bytes(report.bytesFreed)}); kept ${report.kept.length} (${bytes(keptSize)}) reached by ${report.roots.length} pipeline${report.roots.length === 1 ? '' : 's'}`);
  return 0;
}

/** `ringpipe cache clear`. */
export async function cacheClear(file: string | undefined, opts: { cacheDir?: string }, io: Io): Promise<number> {
  const store = existingCache(opts, file);
  const r = await store.clear();
  line(io.out, `removed ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${bytes(r.bytes)}) from ${store.location}`);
  return 0;
}

/** `ringpipe cache verify`: exit 1 when an entry is damaged. */
export async function cacheVerify(file: string | undefined, opts: { cacheDir?: string; remove?: boolean; json?: boolean }, io: Io): Promise<number> {
  const store = existingCache(opts, file);
  const report = await store.verify({ remove: opts.remove });
  if (opts.json) {
    io.out.write(
      JSON.stringify({
        location: store.location,
        checked: report.checked,
        bytes: report.bytes,
        damaged: report.damaged.map((d) => ({ key: d.key, stage: d.manifest?.stage ?? null, branch: d.manifest?.branch ?? null, reason: d.reason, removed: d.removed })),
      }) + '\n',
    );
  } else {
    if (report.damaged.length) {
      const rows = report.damaged.map((d) => [shortHash(d.key), d.manifest?.stage ?? '?', d.manifest?.branch ?? '', d.reason, d.removed ? 'removed' : '']);
      line(io.out, table(['key', 'stage', 'branch', 'damage', ''], rows));
    }
    const n = report.damaged.length;
    const removed = report.damaged.filter((d) => d.removed).length;
    line(io.out, `${report.checked} entr${report.checked === 1 ? 'y' : 'ies'} verified (${bytes(report.bytes)} hashed): ${n ? `${n} damaged${removed ? `, ${removed} removed` : " (remove them with --remove, or let the next run compute them again)"}` : 'all intact'} in ${store.location}`);
  }
  return report.damaged.length ? 1 : 0;
}
