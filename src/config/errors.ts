import { RingpipeError } from '../errors.js';

/** One problem found in a pipeline file. */
export interface ConfigIssue {
  /** The item concerned (its name in the file); undefined for problems of the file as a whole. */
  item?: string;
  /** The field concerned, dotted for nested fields (`inputs.1`, `lr_grid.learning_rate`). */
  field?: string;
  /** JSON pointer to the offending value, e.g. `/trained/inputs/1`. */
  pointer: string;
  /** What is wrong, in words. */
  message: string;
}

/**
 * A pipeline file is wrong. Codes: `ERR_CONFIG` (validation: see {@link ConfigError.issues}; every
 * issue names the item and the field), `ERR_CONFIG_READ` (the file cannot be read or is not JSON),
 * `ERR_CONFIG_SET` (a `--set` override is malformed or names no item).
 */
export class ConfigError extends RingpipeError {
  /** Every problem found (at least one). */
  readonly issues: readonly ConfigIssue[];
  /** The item of the first issue. */
  readonly item?: string;
  /** The field of the first issue. */
  readonly field?: string;
  /** The JSON pointer of the first issue. */
  readonly pointer?: string;
  /** The pipeline file, when known. */
  readonly file?: string;

  constructor(code: string, issues: readonly ConfigIssue[], options?: { file?: string; cause?: unknown }) {
    super(code, formatIssues(issues, options?.file), options);
    this.issues = issues;
    this.item = issues[0]?.item;
    this.field = issues[0]?.field;
    this.pointer = issues[0]?.pointer;
    this.file = options?.file;
  }
}

/** One line per issue: `item 'x', field 'y': message`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.item === undefined ? '' : issue.field === undefined ? `item '${issue.item}': ` : `item '${issue.item}', field '${issue.field}': `;
  return `${where}${issue.message}`;
}

function formatIssues(issues: readonly ConfigIssue[], file?: string): string {
  const head = file ? `${file}: ` : '';
  if (issues.length === 1) return head + formatIssue(issues[0]!);
  return `${head}${issues.length} problems:\n` + issues.map((i) => `  - ${formatIssue(i)}`).join('\n');
}

/** What a {@link StageError} may say about the call that failed. */
export interface StageErrorDetails {
  /** Index of the record. */
  record?: number;
  /** The call's arguments, shortened. */
  input?: string;
  /** The function's stack. */
  functionStack?: string;
}

/**
 * A stage could not run. Codes: `ERR_STAGE_FAILED` (the function threw; `cause` is its error),
 * `ERR_NOT_AVAILABLE` (a library stage type whose implementation is not installed or not built yet),
 * `ERR_STREAM_MISMATCH` (streaming inputs of different lengths), `ERR_ABORTED` (the run was cancelled),
 * `ERR_UPSTREAM_FAILED` (not run because an input failed).
 */
export class StageError extends RingpipeError {
  /** The stage (item name). */
  readonly stage: string;
  /** The branch id, or null. */
  readonly branch: string | null;
  /** Index of the record being processed when it failed, when there was one. */
  readonly record?: number;
  /** The arguments of the failing call, shortened to one line (the record, for a streaming stage). */
  readonly input?: string;
  /** The stack of the function's own error: where it threw. */
  readonly functionStack?: string;

  constructor(code: string, stage: string, branch: string | null, message: string, options?: StageErrorDetails & { cause?: unknown }) {
    super(code, `stage '${stage}'${branch ? ` [${branch}]` : ''}: ${message}`, options);
    this.stage = stage;
    this.branch = branch;
    this.record = options?.record;
    if (options?.input !== undefined) this.input = options.input;
    if (options?.functionStack !== undefined) this.functionStack = options.functionStack;
  }
}
