import { RingpipeError } from '../errors.js';

/** A command line that makes no sense: unknown item, bad option value (`ERR_USAGE`, exit code 2). */
export class UsageError extends RingpipeError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}
