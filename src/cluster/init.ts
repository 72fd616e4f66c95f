// `ringpipe cluster init`: creates every stream, consumer, KV bucket and object store of a project
// at once. Whoever first touches a project creates them otherwise; where agents and submitters are
// not allowed to create streams (docs/cluster.md, Security model), an administrator runs this once.
import { checkName, useConnection, type ClusterTarget } from './connect.js';
import { createLinkStream } from './link.js';
import { WorkQueue, type WorkQueueOptions } from './work.js';

/** Options of {@link initProject}. */
export interface ProjectInitOptions extends WorkQueueOptions {
  /** Links whose streams to create as well (their writers and readers then create nothing). */
  links?: readonly string[];
}

/** What {@link initProject} found and made. */
export interface ProjectInitReport {
  project: string;
  server: string;
  /** Streams (work queue, events, KV buckets `KV_…`, object stores `OBJ_…`, links) created now. */
  created: string[];
  /** Streams that were there already (left as they were, but for the work queue's consumers' ack wait when given). */
  existed: string[];
}

const BUCKETS = ['results', 'jobs', 'agents', 'cache'];
const STORES = ['checkpoints', 'models', 'artifacts'];

/** Creates what a project uses (nothing that exists is changed, but the consumers' `ackWait` when given). */
export async function initProject(target: ClusterTarget, options: ProjectInitOptions = {}): Promise<ProjectInitReport> {
  const { conn, owned } = await useConnection(target);
  try {
    const n = conn.names;
    const links = (options.links ?? []).map((l) => checkName('link', l));
    const streams = [
      n.stream('WORK'), n.stream('EVENTS'),
      ...BUCKETS.map((k) => `KV_${n.bucket(k)}`), ...STORES.map((k) => `OBJ_${n.bucket(k)}`),
      ...links.map((l) => n.stream(`LINK_${l}`)),
    ];
    const existed = new Set<string>();
    for (const s of streams) if (await conn.streamExists(s)) existed.add(s);
    await WorkQueue.open(conn, options);
    await Promise.all([conn.kv('cache', { history: 1 }), ...STORES.map((k) => conn.objectStore(k))]);
    for (const l of links) await createLinkStream(conn, l);
    return { project: n.project, server: conn.server(), created: streams.filter((s) => !existed.has(s)), existed: streams.filter((s) => existed.has(s)) };
  } finally {
    if (owned) await conn.close();
  }
}
