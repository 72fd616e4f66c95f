import { RingpipeError } from '../errors.js';

/**
 * An image could not be read or decoded: a missing or unreadable path, an empty file, a truncated
 * or corrupt image, a file that is not an image, or pixel dimensions over the configured limit.
 *
 * `code` is always `ERR_IMAGE_DECODE`; `path` names the file (or is undefined for an in-memory
 * buffer), `reason` is a short human-readable cause, and `cause` holds the underlying error.
 */
export class ImageDecodeError extends RingpipeError {
  /** The file that failed, or `undefined` when the input was a buffer. */
  readonly path: string | undefined;
  /** Why it failed, e.g. `file not found`, `empty file (0 bytes)`, `corrupt or truncated image: ...`. */
  readonly reason: string;
  /** The dataset index of the sample, when known. */
  readonly index: number | undefined;

  constructor(path: string | undefined, reason: string, options?: { cause?: unknown; index?: number }) {
    const what = path !== undefined ? `'${path}'` : 'buffer input';
    const at = options?.index !== undefined ? ` (sample ${options.index})` : '';
    super('ERR_IMAGE_DECODE', `cannot decode image ${what}${at}: ${reason}`, options);
    this.path = path;
    this.reason = reason;
    this.index = options?.index;
  }
}
