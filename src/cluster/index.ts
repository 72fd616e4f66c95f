// ringpipe past one machine, on NATS JetStream: network links between segments, work queues and
// agents (distributed sweeps and preprocessing), a shared artifact cache, cluster status.
export { ClusterError, ClusterRunError, LinkError, WorkError } from './errors.js';
export {
  ClusterConnection, DEFAULT_UNREACHABLE_TIMEOUT, Namespace, Redactor, checkName, clientOptions, clusterError, connectionLogger, describeConnectionEvent,
  isTransient, parseServers, redactUrl, retrying, useConnection,
  type ClusterOptions, type ClusterTarget, type ClusterTlsOptions, type ConnectionEvent,
} from './connect.js';
export { crc32, decodeRecord, encodeRecord, packValue, unpackValue, type EncodedRecord } from './frame.js';
export {
  LinkReader, LinkWriter, JetStreamSinkSegment, createLinkStream, jetstreamSink, jetstreamSource, jetstreamSourceRecords,
  type JetStreamLinkOptions, type LinkOptions, type LinkSummary,
} from './link.js';
export {
  Job, WorkQueue, jobId, listAgents, portableSpec, runJob, submitJob, workId,
  type AgentInfo, type ItemState, type JobRecord, type SubmitOptions, type WorkEvent, type WorkMessage, type WorkQueueOptions, type WorkResult, type WorkSpec,
} from './work.js';
export { registerWorkType, workTypes, type WorkTypeCode } from './registry.js';
export { codeRoots, trustedModule, trustedPath } from './trust.js';
export { runPipelineWork, type PipelineWork, type PipelineWorkEvent, type PipelineWorkResult, type PipelineWorkStage } from './builtins.js';
export {
  Agent, resolveWork, runAgent,
  type AgentOptions, type AgentSummary, type Checkpoint, type WorkContext, type WorkFunction,
} from './agent.js';
export { clusterStatus, type ClusterStatus, type JobStatus } from './status.js';
export { collectClusterGarbage, parseDuration, type ClusterGcOptions, type ClusterGcReport, type CollectedJob } from './gc.js';
export {
  agentCommand, clusterGcCommand, clusterInitCommand, clusterStatusCommand, connectionFromFlags, parseGpus, registerClusterCommands,
  type AgentFlags, type ClusterGcFlags, type ClusterInitFlags, type ConnectionFlags,
} from './cli.js';
export { initProject, type ProjectInitOptions, type ProjectInitReport } from './init.js';
export { SharedArtifactStore, sharedCache, type RemoteEntry, type SharedCacheOptions } from './cache.js';
export { runPipelineOnCluster, type ClusterRunOptions, type PipelineClusterOptions } from './remote-pipeline.js';
export { sweepClusterPath, type SweepClusterOptions } from './remote-sweep.js';
export { clusterDataPath, runSweepItem, type ClusterSweepOptions, type SweepItemPayload, type SweepItemResult } from './sweep.js';
