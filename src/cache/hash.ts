// Canonical hashing: every key in ringpipe's cache is a sha256 over canonical JSON, so the order of
// keys in an object never changes a hash.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { configure } from 'safe-stable-stringify';
import { CacheError } from './errors.js';

/**
 * Canonical JSON: object keys sorted at every depth, no whitespace. Values JSON cannot express
 * exactly are rejected rather than silently dropped or altered (a NaN turned into `null` would make
 * two different parameter values hash alike).
 */
const canonical = configure({ deterministic: true, bigint: true, circularValue: TypeError, strict: false });

/**
 * The canonical JSON text of `value` (sorted keys at every depth). Throws {@link CacheError}
 * `ERR_HASH_VALUE` for values that have no exact JSON form (functions, symbols, non-finite numbers,
 * circular structures).
 */
export function canonicalJson(value: unknown): string {
  assertHashable(value, '');
  const text = canonical(value);
  if (text === undefined) throw new CacheError('ERR_HASH_VALUE', 'cannot hash undefined');
  return text;
}

function assertHashable(value: unknown, path: string, seen: Set<object> = new Set()): void {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) throw new CacheError('ERR_HASH_VALUE', `cannot hash ${value} at '${path || '/'}'`);
      return;
    case 'function':
    case 'symbol':
      throw new CacheError('ERR_HASH_VALUE', `cannot hash a ${typeof value} at '${path || '/'}'`);
    case 'object': {
      if (value === null) return;
      if (seen.has(value)) throw new CacheError('ERR_HASH_VALUE', `cannot hash a circular structure at '${path || '/'}'`);
      seen.add(value);
      if (ArrayBuffer.isView(value)) {
        throw new CacheError('ERR_HASH_VALUE', `cannot hash binary data at '${path || '/'}' as JSON; hash its bytes instead`);
      }
      for (const [k, v] of Object.entries(value)) {
        if (v === undefined && !Array.isArray(value)) continue; // JSON drops it, as it should
        assertHashable(v, `${path}/${k}`, seen);
      }
      seen.delete(value);
      return;
    }
    default:
      return;
  }
}

/** sha256 (hex) of the canonical JSON of `value`. */
export function hashValue(value: unknown): string {
  return sha256(canonicalJson(value));
}

/** sha256 (hex) of a string (UTF-8) or bytes. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The short form of a key or id shown to people: its first 12 hex digits. */
export function shortHash(hash: string): string {
  return hash.slice(0, 12);
}

/** sha256 (hex) of a file's bytes, streamed. */
export function hashFile(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolvePromise(h.digest('hex')));
  });
}
