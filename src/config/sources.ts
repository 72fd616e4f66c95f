// `file` and `file_folder` items: listing, hashing and reading files.
import type { Dirent } from 'node:fs';
import { readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { extname, join, relative, resolve, sep } from 'node:path';
import { hashFile } from '../cache/hash.js';
import type { ArtifactRecord } from '../cache/records.js';
import { outsideProblem, type ProjectScope } from './project.js';
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

/** An entry of a folder that is not one of its files, and why. */
export interface UnusedEntry {
  /** Absolute path. */
  path: string;
  /** Why it is not used, in words. */
  reason: string;
}

/** What {@link listFolder} found. */
export interface FolderListing {
  /** The files, sorted by path. */
  files: string[];
  /** Every other entry met on the way (not descended into), sorted by path. */
  unused: UnusedEntry[];
}

/**
 * The files of a folder, sorted by path: regular files (symbolic links followed) whose extension is
 * in `extensions` (case-insensitive; all when not given). Everything else it meets is reported in
 * `unused` with the reason: names starting with `.`, other extensions, sub-folders when not
 * `recursive`, dangling links, links back to a folder above (loops), links out of the project,
 * sockets, FIFOs and devices, unreadable folders, and folders named like a listed file (their
 * contents are listed, the folder itself is not a file).
 */
export async function listFolder(dir: string, options: { extensions?: string[]; recursive?: boolean; scope?: ProjectScope } = {}): Promise<FolderListing> {
  const exts = options.extensions?.map((e) => e.toLowerCase());
  const files: string[] = [];
  const unused: UnusedEntry[] = [];
  const matches = (name: string) => !exts || exts.includes(extname(name).toLowerCase());
  const walk = async (d: string, ancestors: Set<string>) => {
    let entries: Dirent[];
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      unused.push({ path: d, reason: `the folder cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
      return;
    }
    for (const e of entries) {
      const p = join(d, e.name);
      if (e.name.startsWith('.')) {
        unused.push({ path: p, reason: "hidden (its name starts with '.')" });
        continue;
      }
      const kind = await entryKind(p, e, ancestors, options.scope);
      if (typeof kind === 'object') {
        unused.push({ path: p, reason: kind.unused });
      } else if (kind === 'dir') {
        if (options.recursive === false) {
          unused.push({ path: p, reason: 'a folder (recursive is false)' });
          continue;
        }
        if (exts && matches(e.name)) unused.push({ path: p, reason: `a folder, not a file, although its name ends in ${extname(e.name)}: its files are listed` });
        await walk(p, new Set(ancestors).add(await realpath(p)));
      } else if (matches(e.name)) {
        files.push(p);
      } else {
        unused.push({ path: p, reason: extname(e.name) ? `its extension ${extname(e.name)} is not one of ${exts!.join(', ')}` : `it has no extension (listed: ${exts!.join(', ')})` });
      }
    }
  };
  await walk(dir, new Set([await realpath(dir)]));
  const byPath = (a: { path: string } | string, b: { path: string } | string) => {
    const x = typeof a === 'string' ? a : a.path;
    const y = typeof b === 'string' ? b : b.path;
    return x < y ? -1 : x > y ? 1 : 0;
  };
  return { files: files.sort(byPath), unused: unused.sort(byPath) };
}

/** What a folder entry is once links are followed: a file, a folder, or the reason it is not used. */
async function entryKind(path: string, e: Dirent, ancestors: Set<string>, scope: ProjectScope | undefined): Promise<'file' | 'dir' | { unused: string }> {
  if (!e.isSymbolicLink()) {
    if (e.isFile()) return 'file';
    if (e.isDirectory()) return 'dir';
    return { unused: `not a regular file (${e.isFIFO() ? 'a FIFO' : e.isSocket() ? 'a socket' : e.isCharacterDevice() || e.isBlockDevice() ? 'a device' : 'a special file'})` };
  }
  const target = await readlink(path).catch(() => '?');
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') return { unused: `a symbolic link loop (-> ${target})` };
    if (code === 'ENOENT') return { unused: `a dangling symbolic link: its target ${target} does not exist` };
    return { unused: `a symbolic link whose target cannot be read (${code ?? (err as Error).message})` };
  }
  const real = await realpath(path);
  if (st.isDirectory() && ancestors.has(real)) return { unused: `a symbolic link to a folder above it (-> ${target}): a loop, not followed` };
  const outside = outsideProblem(real, scope);
  if (outside) return { unused: `a symbolic link (-> ${target}) not followed: ${outside}` };
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  return { unused: `a symbolic link to something that is not a regular file (-> ${target})` };
}

/** An unused entry of a `file_folder` item, as reported: its path relative to the pipeline file's folder. */
export interface UnusedInput {
  /** The item. */
  item: string;
  /** Path relative to the pipeline file's folder, `/`-separated. */
  path: string;
  /** Why it is not used. */
  reason: string;
}

/** Path relative to `baseDir`, `/`-separated. */
export function relativePath(baseDir: string, path: string): string {
  return relative(baseDir, path).split(sep).join('/');
}

/** Lists and hashes the files of a `file` or `file_folder` item; `unused` has what a folder holds besides them. */
export async function sourceFiles(
  def: Record<string, unknown>,
  kind: 'file' | 'folder',
  baseDir: string,
  scope?: ProjectScope,
): Promise<{ files: SourceFileEntry[]; unused: UnusedEntry[] }> {
  const root = resolve(baseDir, def.path as string);
  const listing = kind === 'file' ? { files: [root], unused: [] } : await listFolder(root, { extensions: def.extensions as string[] | undefined, recursive: def.recursive as boolean | undefined, scope });
  const files: SourceFileEntry[] = [];
  for (const path of listing.files) files.push({ path, rel: relativePath(baseDir, path), sha256: await hashFile(path) });
  return { files, unused: listing.unused };
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
