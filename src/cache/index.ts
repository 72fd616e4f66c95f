/** Errors of the artifact cache (`ERR_HASH_VALUE`, `ERR_CACHE_FORMAT`, `ERR_CACHE_IO`, `ERR_RECORD_TOO_LARGE`). */
export { CacheError } from './errors.js';
/** Canonical JSON and the hashes cache keys are made of. */
export { canonicalJson, hashValue, sha256, shortHash } from './hash.js';
/** Hashing a module and what it imports from the project (part of a stage's cache key). */
export { hashModuleGraph, type ModuleGraphHash, type SourceFile } from './source-hash.js';
/** Record files: an artifact's records as stored in the cache. */
export {
  readRecordFile,
  RecordFileWriter,
  RECORD_FILE_MAGIC,
  type ArtifactRecord,
  type ReadRecordsOptions,
  type RecordFileSummary,
} from './records.js';
/** The artifact store: entries by key, atomic writes, verification; the local file-system store. */
export {
  CACHE_FORMAT,
  FsArtifactStore,
  type ArtifactInfo,
  type ArtifactManifest,
  type ArtifactStore,
  type ArtifactWriter,
  type CacheEntry,
  type RemovalSummary,
} from './store.js';
