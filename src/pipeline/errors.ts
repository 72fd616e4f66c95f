// Errors of the pipeline layer: a graph that cannot run as declared. (Errors raised while a run
// goes on are the runtime's: src/runtime/errors.ts.)
import { RingpipeError } from '../errors.js';

/** The graph cannot run as declared (names the segment or stream). */
export class PipelineValidationError extends RingpipeError {
  constructor(message: string) {
    super('ERR_PIPELINE_INVALID', message);
  }
}
