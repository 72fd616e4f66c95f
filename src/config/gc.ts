// Garbage collection of a cache: keep what the current pipelines reach, drop the rest.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { CacheEntry } from '../cache/store.js';
import { FsArtifactStore } from '../cache/store.js';
import { ConfigError } from './errors.js';
import { JsonPipeline } from './pipeline.js';

/** Options of {@link collectGarbage}. */
export interface GcOptions {
  /** Pipeline files to keep, besides those registered in the cache by earlier runs. */
  pipelines?: string[];
  /** Only report what would be removed. */
  dryRun?: boolean;
  /** Go on when a registered pipeline no longer validates (its entries are then dropped). Default: refuse. */
  force?: boolean;
}

/** What {@link collectGarbage} did. */
export interface GcReport {
  /** Pipeline files whose current stages were kept. */
  roots: string[];
  /** Registered pipeline files that no longer exist (forgotten). */
  forgotten: string[];
  /** Registered pipelines skipped because they do not validate (only with `force`). */
  invalid: { path: string; message: string }[];
  /** Entries kept. */
  kept: CacheEntry[];
  /** Entries removed (or that would be, with `dryRun`). */
  removed: CacheEntry[];
  /** Temporary directories of dead runs removed. */
  tempRemoved: number;
  /** Bytes freed (entries + temporary directories). */
  bytesFreed: number;
}

/**
 * Drops every cache entry that no current pipeline reaches: the roots are the pipeline files that ran
 * with this cache (registered at each run) plus `options.pipelines`; their current stages in every
 * branch are kept. A registered pipeline that fails to validate stops the collection (it could be a
 * typo being fixed) unless `force`. Also removes the temporary directories of killed runs.
 */
export async function collectGarbage(store: FsArtifactStore, options: GcOptions = {}): Promise<GcReport> {
  const registered = await store.pipelines();
  const roots = new Set<string>((options.pipelines ?? []).map((p) => resolve(p)));
  const forgotten: string[] = [];
  for (const r of registered) {
    if (existsSync(r.path)) roots.add(r.path);
    else {
      forgotten.push(r.path);
      if (!options.dryRun) await store.unregisterPipeline(r.id);
    }
  }
  const keep = new Set<string>();
  const invalid: { path: string; message: string }[] = [];
  for (const path of [...roots].sort()) {
    let pipeline: JsonPipeline;
    try {
      // gc only lists keys, lazily: the branch limit guards runs, not this.
      pipeline = await JsonPipeline.load(path, { maxBranches: Infinity });
    } catch (err) {
      if (!(err instanceof ConfigError) || !options.force) {
        throw new ConfigError(
          (err as ConfigError).code ?? 'ERR_CONFIG',
          [{ pointer: '', message: `cannot tell what ${path} needs (${(err as Error).message}); fix it, or pass --force to drop its entries` }],
          { file: path, cause: err },
        );
      }
      invalid.push({ path, message: err.message });
      roots.delete(path);
      continue;
    }
    for (const s of (await pipeline.plan()).stagesByBranch()) keep.add(s.node().key);
  }
  const kept: CacheEntry[] = [];
  const removed: CacheEntry[] = [];
  for (const e of await store.list()) (keep.has(e.manifest.key) ? kept : removed).push(e);
  let bytesFreed = 0;
  let tempRemoved = 0;
  if (!options.dryRun) {
    for (const e of removed) if (await store.remove(e.manifest.key)) bytesFreed += e.size;
    const t = await store.cleanTemp();
    tempRemoved = t.removed;
    bytesFreed += t.bytes;
  } else {
    bytesFreed = removed.reduce((s, e) => s + e.size, 0);
  }
  return { roots: [...roots].sort(), forgotten, invalid, kept, removed, tempRemoved, bytesFreed };
}
