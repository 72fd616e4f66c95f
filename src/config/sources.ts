// `file` and `file_folder` items: listing, hashing and reading files.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { extname, join, relative, resolve, sep } from 'node:path';
import type { ArtifactRecord } from '../cache/records.js';
import type { ReadMode } from './types.js';

/** A file of a `file` or `file_folder` item. */
export interface SourceFileEntry {
  /** Absolute path. */
  path: string;
  /** Path relative to the pipeline file's directory, `/`-separated (the record's `metadata.path`). */
  rel: string;
  /** sha256 (hex) of its bytes. */
  sha256: string;
}

/**
 * The files of a folder, sorted by relative path: only regular files, names starting with `.`
 * skipped, filtered by extension (case-insensitive) when `extensions` is given.
 */
export async function listFolder(dir: string, options: { extensions?: string[]; recursive?: boolean } = {}): Promise<string[]> {
  const exts = options.extensions?.map((e) => e.toLowerCase());
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) {
        if (options.recursive !== false) await walk(p);
      } else if (e.isFile()) {
        if (!exts || exts.includes(extname(e.name).toLowerCase())) out.push(p);
      }
    }
  };
  await walk(dir);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** sha256 (hex) of a file, streamed. */
export function hashFile(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolvePromise(h.digest('hex')));
  });
}

/** Lists and hashes the files of a `file` or `file_folder` item. */
export async function sourceFiles(
  def: Record<string, unknown>,
  kind: 'file' | 'folder',
  baseDir: string,
): Promise<SourceFileEntry[]> {
  const root = resolve(baseDir, def.path as string);
  const paths = kind === 'file' ? [root] : await listFolder(root, { extensions: def.extensions as string[] | undefined, recursive: def.recursive as boolean | undefined });
  const out: SourceFileEntry[] = [];
  for (const path of paths) out.push({ path, rel: relative(baseDir, path).split(sep).join('/'), sha256: await hashFile(path) });
  return out;
}

/** The record a stage receives for one file. */
export async function readSourceFile(file: SourceFileEntry, mode: ReadMode = 'path'): Promise<ArtifactRecord> {
  const metadata = { path: file.rel };
  switch (mode) {
    case 'path':
      return { data: file.path, metadata };
    case 'buffer':
      return { data: await readFile(file.path), metadata };
    case 'text':
      return { data: await readFile(file.path, 'utf8'), metadata };
    case 'json': {
      const text = await readFile(file.path, 'utf8');
      try {
        return { data: JSON.parse(text), metadata };
      } catch (err) {
        throw new Error(`${file.rel} is not valid JSON: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
