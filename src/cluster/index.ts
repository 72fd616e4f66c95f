/**
 * `ringpipe/cluster`: ringpipe past one machine, on NATS JetStream: network links between segments,
 * work queues and agents (distributed sweeps and preprocessing), a shared artifact cache, cluster
 * status. See docs/cluster.md.
 *
 * @example
 * import { runJob } from 'ringpipe/cluster';
 * const results = await runJob({ servers: 'nats://localhost:4222', project: 'demo' }, [{ run: './steps.js#square', payload: { x: 3 } }]);
 *
 * @packageDocumentation
 */

/** Errors of the cluster: every one names the server, and the subject where there is one. */
export { ClusterError, ClusterRunError, LinkError, WorkError } from './errors.js';
/** Connections: server lists, credentials and TLS, namespaces per project, redaction of secrets, retries. */
export {
  ClusterConnection, DEFAULT_UNREACHABLE_TIMEOUT, Namespace, Redactor, checkName, clientOptions, clusterError, connectionLogger, describeConnectionEvent,
  isTransient, parseServers, redactUrl, retrying, useConnection,
  type ClusterOptions, type ClusterTarget, type ClusterTlsOptions, type ConnectionEvent,
} from './connect.js';
/** Records on the wire: the rings' record codec in link messages, with CRC-32. */
export { crc32, decodeRecord, encodeRecord, packValue, unpackValue, type EncodedRecord } from './frame.js';
/** Links: a stream between machines over JetStream, as segments (`jetstreamSink`, `jetstreamSource`) or on its own. */
export {
  LinkReader, LinkWriter, JetStreamSinkSegment, createLinkStream, jetstreamSink, jetstreamSource, jetstreamSourceRecords,
  type JetStreamLinkOptions, type LinkOptions, type LinkSummary,
} from './link.js';
/** Work: items and jobs (`runJob`, `submitJob`), the work queue, agents listed, results. */
export {
  Job, WorkQueue, jobId, listAgents, portableSpec, runJob, submitJob, workId,
  type AgentInfo, type ItemState, type JobRecord, type SubmitOptions, type WorkEvent, type WorkMessage, type WorkQueueOptions, type WorkResult, type WorkSpec,
} from './work.js';
/** Work types: named code agents run for items (`ringpipe:pipeline`, `ringpipe:sweep-trials`, your own). */
export { registerWorkType, workTypes, type WorkTypeCode } from './registry.js';
/** An agent's roots: the files work code and pipelines may come from. */
export { codeRoots, trustedModule, trustedPath } from './trust.js';
/** The `ringpipe:pipeline` work type: a JSON pipeline (or some of its stage runs) on an agent. */
export { runPipelineWork, type PipelineWork, type PipelineWorkEvent, type PipelineWorkResult, type PipelineWorkStage } from './builtins.js';
/** Agents: pull the work they have room for and run it, each item in a process of its own. */
export {
  Agent, resolveWork, runAgent,
  type AgentOptions, type AgentSummary, type Checkpoint, type WorkContext, type WorkFunction,
} from './agent.js';
/** A project's agents, work and recent jobs (`ringpipe cluster status`). */
export { clusterStatus, type ClusterStatus, type JobStatus } from './status.js';
/** Removing what finished jobs left behind (`ringpipe cluster gc`). */
export { collectClusterGarbage, parseDuration, type ClusterGcOptions, type ClusterGcReport, type CollectedJob } from './gc.js';
/** The `ringpipe agent` and `ringpipe cluster` commands. */
export {
  agentCommand, clusterGcCommand, clusterInitCommand, clusterStatusCommand, connectionFromFlags, parseGpus, registerClusterCommands,
  type AgentFlags, type ClusterGcFlags, type ClusterInitFlags, type ConnectionFlags,
} from './cli.js';
/** Creating a project's streams, buckets and stores at once (`ringpipe cluster init`). */
export { initProject, type ProjectInitOptions, type ProjectInitReport } from './init.js';
/** The shared artifact cache: an object store and its index, the local cache in front. */
export { SharedArtifactStore, sharedCache, type RemoteEntry, type SharedCacheOptions } from './cache.js';
/** JSON pipelines on the cluster: one work item per branch. */
export { runPipelineOnCluster, type ClusterRunOptions, type PipelineClusterOptions } from './remote-pipeline.js';
/** Sweeps on the cluster: the data path `sweep({ cluster })` builds. */
export { sweepClusterPath, type SweepClusterOptions } from './remote-sweep.js';
/** Distributed sweeps: trials as work items, run on agents with their GPUs. */
export { clusterDataPath, runSweepItem, type ClusterSweepOptions, type SweepItemPayload, type SweepItemResult } from './sweep.js';
