import { RingpipeError } from '../errors.js';

/**
 * No TensorFlow.js backend could be loaded (`ERR_BACKEND_UNAVAILABLE`); `attempts` says why each
 * candidate failed.
 */
export class BackendError extends RingpipeError {
  readonly attempts: readonly BackendAttempt[];
  constructor(message: string, attempts: readonly BackendAttempt[]) {
    super('ERR_BACKEND_UNAVAILABLE', message);
    this.attempts = attempts;
  }
}

/** One candidate of the backend resolution and the reason it was not used (if it was not). */
export interface BackendAttempt {
  /** npm package or backend tried, e.g. `@tensorflow/tfjs-node-gpu` or `wasm`. */
  candidate: string;
  /** Why it was not used; absent for the one that was. */
  reason?: string;
}

/**
 * A trainer could not do what it was asked (`ERR_TRAINER_MODULE`: the user's module is missing or
 * does not export a model factory; `ERR_TRAINER_RECORD`: a record is not a batch or marker the trainer
 * understands; `ERR_TRAINER_STATE`: methods called out of order; `ERR_TRAINER_SAVE`: saving failed;
 * `ERR_TRAINER_RESUME`: a checkpoint to resume from is incomplete or does not fit the model).
 */
export class TrainerError extends RingpipeError {}

/** GPU detection or assignment failed (`ERR_GPU`). */
export class GpuError extends RingpipeError {}
