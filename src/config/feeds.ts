// Inputs that can be read several times (`"as": "iterable"`), described so that another thread or
// process can open them too.
import type { ArtifactRecord } from '../cache/records.js';
import { FsArtifactStore } from '../cache/store.js';
import { readSourceFile, type SourceFileEntry } from './sources.js';
import type { ReadMode } from './types.js';

/** Where the records of a replayable input come from (plain data: can be posted to a worker). */
export type ReplaySource =
  /** A cache entry of a {@link FsArtifactStore}. */
  | { type: 'artifact'; location: string; key: string }
  /** The files of a file / file_folder item. */
  | { type: 'files'; files: SourceFileEntry[]; read: ReadMode }
  /** Records held in memory (a single value). */
  | { type: 'inline'; records: ArtifactRecord[] };

/** Opens the records of a {@link ReplaySource}, in order. */
export function openReplaySource(source: ReplaySource): AsyncIterable<ArtifactRecord> {
  switch (source.type) {
    case 'artifact':
      return new FsArtifactStore(source.location).read(source.key);
    case 'files':
      return (async function* () {
        for (const f of source.files) yield await readSourceFile(f, source.read);
      })();
    case 'inline':
      return (async function* () {
        yield* source.records;
      })();
  }
}

/**
 * An input given `"as": "iterable"`: iterate it (with `for await`) as many times as needed, e.g.
 * once per epoch; each pass streams the records again (from the cache, or the files) without
 * holding them all in memory.
 */
export class ReplayableInput implements AsyncIterable<unknown> {
  constructor(
    private readonly openRecords: () => AsyncIterable<ArtifactRecord>,
    /** Number of records, when known. */
    readonly length: number | undefined,
    /** Where the records come from, when another thread or process can open them too. */
    readonly source?: ReplaySource,
  ) {}

  /** A replayable input over a {@link ReplaySource}. */
  static of(source: ReplaySource, length: number | undefined): ReplayableInput {
    return new ReplayableInput(() => openReplaySource(source), length, source);
  }

  /** The records' data, from the start: each iteration is a new pass. */
  async *[Symbol.asyncIterator](): AsyncIterator<unknown> {
    for await (const r of this.openRecords()) yield r.data;
  }

  /** The records with their metadata. */
  records(): AsyncIterable<ArtifactRecord> {
    return this.openRecords();
  }
}
