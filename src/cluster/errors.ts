// Errors of the cluster layer. Every one names the server (credentials removed) and, where there is
// one, the subject, stream, bucket or object involved; secrets never appear in a message.
import { RingpipeError } from '../errors.js';

/**
 * A cluster operation failed. Codes:
 *
 * | code | when |
 * | --- | --- |
 * | `ERR_CLUSTER_OPTIONS` | invalid connection or namespace options |
 * | `ERR_CLUSTER_CONNECT` | no server could be reached |
 * | `ERR_CLUSTER_UNREACHABLE` | the connection was lost and no server came back within `unreachableTimeout` (`--unreachable-timeout`) |
 * | `ERR_CLUSTER_AUTH` | the server refused the credentials, or a permission is missing |
 * | `ERR_CLUSTER_TIMEOUT` | the server did not answer in time |
 * | `ERR_CLUSTER_JETSTREAM` | JetStream refused a request (missing stream, limits, not enabled, ...) |
 * | `ERR_CLUSTER_CLOSED` | the connection was closed while an operation ran |
 * | `ERR_LINK_CHECKSUM` | a record of a network link arrived damaged |
 * | `ERR_LINK_SEQUENCE` | a network link's records are missing or out of order beyond repair |
 * | `ERR_LINK_RESTARTED` | a link's writer started over while its reader was reading |
 * | `ERR_LINK_TIMEOUT` | a link reader waited longer than its timeout for the next record, or its writer for the reader |
 * | `ERR_LINK_CLOSED` | a link writer was used after closing, or a reader's consumer stopped |
 * | `ERR_WORK_INVALID` | a work item cannot be published or run (bad spec, unknown code, too large) |
 * | `ERR_WORK_REFUSED` | an agent refused an item's code or files: a URL other than file:, a built-in module, or a path outside its root and allowed roots (symlinks resolved) |
 * | `ERR_WORK_TIMEOUT` | a job did not finish within its timeout; an item ran past its `timeout`, or did not start within the agent's `startLimit` (then it was stopped, or killed) |
 * | `ERR_WORK_CRASHED` | an item's process ended without a result (it exited, or was killed by a signal) |
 * | `ERR_REMOTE_CACHE` | the shared cache holds a damaged artifact |
 * | `ERR_CLUSTER_NOT_SHIPPABLE` | a run asked for the cluster lacks something agents need (e.g. a closure instead of `module#export`) |
 * | `ERR_CLUSTER_NOT_DISTRIBUTABLE` | a run cannot be split into work items (e.g. a JSON pipeline without search items) |
 */
export class ClusterError extends RingpipeError {
  /** The server (URL without credentials), when known. */
  readonly server?: string;
  /** The subject, stream, bucket or object involved, when there is one. */
  readonly subject?: string;
  constructor(code: string, message: string, options: { server?: string; subject?: string; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.server !== undefined) this.server = options.server;
    if (options.subject !== undefined) this.subject = options.subject;
  }
}

/** A network link failed (`ERR_LINK_*`). */
export class LinkError extends ClusterError {}

/** A work item or job failed (`ERR_WORK_*`). */
export class WorkError extends ClusterError {}

/**
 * A sweep or pipeline cannot run on the cluster as given (`ERR_CLUSTER_NOT_SHIPPABLE`,
 * `ERR_CLUSTER_NOT_DISTRIBUTABLE`): raised before anything is submitted.
 */
export class ClusterRunError extends ClusterError {
  /** The option (or pipeline item) at fault, e.g. `cluster.build` or `data`. */
  readonly option?: string;
  constructor(code: 'ERR_CLUSTER_NOT_SHIPPABLE' | 'ERR_CLUSTER_NOT_DISTRIBUTABLE', message: string, options: { option?: string; server?: string; cause?: unknown } = {}) {
    super(code, message, options);
    if (options.option !== undefined) this.option = options.option;
  }
}
