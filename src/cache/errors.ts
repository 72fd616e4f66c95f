import { RingpipeError } from '../errors.js';

/**
 * The artifact cache failed. Codes: `ERR_HASH_VALUE` (a value has no canonical form),
 * `ERR_CACHE_FORMAT` (an entry or record file is not what it claims to be),
 * `ERR_CACHE_IO` (the file system refused), `ERR_RECORD_TOO_LARGE` (a record over 4 GiB). An entry
 * that is missing or damaged is no error: it is computed again.
 */
export class CacheError extends RingpipeError {}
