export { CacheError } from './errors.js';
export { canonicalJson, hashValue, sha256, shortHash } from './hash.js';
export { hashModuleGraph, type ModuleGraphHash, type SourceFile } from './source-hash.js';
export {
  readRecordFile,
  RecordFileWriter,
  RECORD_FILE_MAGIC,
  type ArtifactRecord,
  type ReadRecordsOptions,
  type RecordFileSummary,
} from './records.js';
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
