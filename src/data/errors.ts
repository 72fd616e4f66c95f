import { RingpipeError } from '../errors.js';

/**
 * A data file is not what it claims to be (`ERR_IDX_FORMAT`: bad magic, unknown element type,
 * truncated payload; `ERR_DATASET_MISMATCH`: images and labels disagree).
 */
export class DataFormatError extends RingpipeError {}

/** A dataset could not be found; the message lists every place that was searched (`ERR_DATASET_NOT_FOUND`). */
export class DatasetNotFoundError extends RingpipeError {
  /** The directories that were searched, in order. */
  readonly searched: readonly string[];
  constructor(message: string, searched: readonly string[]) {
    super('ERR_DATASET_NOT_FOUND', message);
    this.searched = searched;
  }
}
