/**
 * Every error ringpipe throws is a RingpipeError with a stable `code`, so callers can branch on
 * `err.code` instead of parsing messages.
 */
export class RingpipeError extends Error {
  /** Stable identifier, e.g. `ERR_RING_CLOSED`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The native addon is missing or failed to load. */
export class NativeLoadError extends RingpipeError {}
/** Invalid argument or option given to a public API. */
export class InvalidArgumentError extends RingpipeError {
  constructor(message: string) {
    super('ERR_INVALID_ARG', message);
  }
}
/** Shared memory could not be created or opened (`ERR_SHM_FULL`, `ERR_REGION_CREATE`, `ERR_REGION_OPEN`). */
export class RegionError extends RingpipeError {}
/** A ring refused an operation (`ERR_RECORD_TOO_LARGE`, `ERR_RING_CLOSED`, `ERR_RING_ABORTED`, `ERR_PEER_DEAD`, `ERR_TIMEOUT`). */
export class RingError extends RingpipeError {}
