// ringpipe past one machine, on NATS JetStream: network links between segments, work queues and
// agents (distributed sweeps and preprocessing), a shared artifact cache, cluster status.
export { ClusterError, LinkError, WorkError } from './errors.js';
export {
  ClusterConnection, Namespace, Redactor, checkName, clientOptions, clusterError, isTransient, parseServers, redactUrl, retrying, useConnection,
  type ClusterOptions, type ClusterTarget, type ClusterTlsOptions,
} from './connect.js';
export { crc32, decodeRecord, encodeRecord, packValue, unpackValue, type EncodedRecord } from './frame.js';
export {
  LinkReader, LinkWriter, JetStreamSinkSegment, jetstreamSink, jetstreamSource, jetstreamSourceRecords,
  type JetStreamLinkOptions, type LinkOptions, type LinkSummary,
} from './link.js';
export {
  Job, WorkQueue, jobId, listAgents, portableSpec, runJob, submitJob, workId,
  type AgentInfo, type ItemState, type JobRecord, type SubmitOptions, type WorkEvent, type WorkMessage, type WorkQueueOptions, type WorkResult, type WorkSpec,
} from './work.js';
export { registerWorkType, workTypes } from './registry.js';
export { runPipelineWork, type PipelineWork, type PipelineWorkResult } from './builtins.js';
export {
  Agent, resolveWork, runAgent,
  type AgentOptions, type AgentSummary, type Checkpoint, type WorkContext, type WorkFunction,
} from './agent.js';
export { clusterStatus, type ClusterStatus, type JobStatus } from './status.js';
export { agentCommand, clusterStatusCommand, connectionFromFlags, parseGpus, registerClusterCommands, type AgentFlags, type ConnectionFlags } from './cli.js';
export { SharedArtifactStore, sharedCache, type RemoteEntry, type SharedCacheOptions } from './cache.js';
export { clusterDataPath, runSweepItem, type ClusterSweepOptions, type SweepItemPayload, type SweepItemResult } from './sweep.js';
