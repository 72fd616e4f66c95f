import { RingpipeError } from '../errors.js';

/** A command line that makes no sense: unknown item, bad option value (`ERR_USAGE`, exit code 2). */
export class UsageError extends RingpipeError {
  constructor(message: string) {
    super('ERR_USAGE', message);
  }
}

/** Why a command's signal was aborted when its reader went away (`| head -1`): it stops without a word. */
export class OutputClosedError extends RingpipeError {
  constructor() {
    super('ERR_OUTPUT_CLOSED', 'its output was closed');
  }
}

/** Whether a command was stopped because nobody reads its output any more (say nothing then). */
export function outputClosed(signal: AbortSignal): boolean {
  return signal.aborted && signal.reason instanceof OutputClosedError;
}
