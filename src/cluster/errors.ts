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
 * | `ERR_CLUSTER_AUTH` | the server refused the credentials, or a permission is missing |
 * | `ERR_CLUSTER_TIMEOUT` | the server did not answer in time |
 * | `ERR_CLUSTER_JETSTREAM` | JetStream refused a request (missing stream, limits, not enabled, ...) |
 * | `ERR_CLUSTER_CLOSED` | the connection was closed while an operation ran |
 * | `ERR_LINK_CHECKSUM` | a record of a network link arrived damaged |
 * | `ERR_LINK_SEQUENCE` | a network link's records are missing or out of order beyond repair |
 * | `ERR_LINK_RESTARTED` | a link's writer started over while its reader was reading |
 * | `ERR_LINK_TIMEOUT` | a link reader waited longer than its timeout for the next record |
 * | `ERR_WORK_INVALID` | a work item cannot be published or run (bad spec, unknown code, too large) |
 * | `ERR_WORK_TIMEOUT` | a job did not finish within its timeout |
 * | `ERR_REMOTE_CACHE` | the shared cache holds a damaged artifact |
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
