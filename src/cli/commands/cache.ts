// `ringpipe cache ls | gc | clear`.
import { dirname, join, relative, resolve } from 'node:path';
import { shortHash } from '../../cache/hash.js';
import { FsArtifactStore } from '../../cache/store.js';
import { collectGarbage } from '../../config/gc.js';
import { bytes, line, table, type Io } from '../format.js';

/** Where the cache is: `--cache-dir`, else beside the pipeline file, else `./.ringpipe/cache`. */
export function cacheDirFor(opts: { cacheDir?: string }, file?: string): string {
  if (opts.cacheDir) return resolve(opts.cacheDir);
  return join(file ? dirname(resolve(file)) : process.cwd(), '.ringpipe', 'cache');
}

/** `ringpipe cache ls`. */
export async function cacheLs(file: string | undefined, opts: { cacheDir?: string; json?: boolean }, io: Io): Promise<number> {
  const store = new FsArtifactStore(cacheDirFor(opts, file));
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
  const store = new FsArtifactStore(cacheDirFor(opts, files[0]));
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
  const store = new FsArtifactStore(cacheDirFor(opts, file));
  const r = await store.clear();
  line(io.out, `removed ${r.removed} entr${r.removed === 1 ? 'y' : 'ies'} (${bytes(r.bytes)}) from ${store.location}`);
  return 0;
}
