// `ringpipe cluster status`: agents, their capacity and load, queued/running/done work, jobs.
import type { KV } from '@nats-io/kv';
import { useConnection, type ClusterConnection, type ClusterTarget } from './connect.js';
import { listAgents, WorkQueue, type AgentInfo, type JobRecord, type WorkResult } from './work.js';

/** A job's progress. */
export interface JobStatus {
  id: string;
  name: string;
  createdAt: string;
  items: number;
  done: number;
  failed: number;
  running: number;
  /** Items neither done nor running (waiting in the queue, or not published yet). */
  queued: number;
}

/** A project's state on the cluster. */
export interface ClusterStatus {
  /** Server answering (no credentials). */
  server: string;
  project: string;
  /** Live agents (their announcement has not expired), with seconds since their last heartbeat. */
  agents: (AgentInfo & { lastSeenSeconds: number })[];
  /** Work items: waiting in the queue, held by an agent, with a result. */
  work: { queued: number; running: number; done: number; failed: number };
  /** Capacity of the live agents. */
  capacity: { slots: number; gpus: number; cores: number };
  /** Jobs, most recent first. */
  jobs: JobStatus[];
}

/** Every live value of the project's KV bucket `kind` (opened as `kv`), by key. */
export async function values<T>(conn: ClusterConnection, kind: string, kv: KV): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  for (const k of await conn.kvKeys(kind)) {
    const e = await kv.get(k);
    if (e?.operation === 'PUT') out.set(k, e.json<T>());
  }
  return out;
}

/** Reads the state of the project's agents, work queue and jobs. */
export async function clusterStatus(target: ClusterTarget, options: { maxJobs?: number } = {}): Promise<ClusterStatus> {
  const { conn, owned } = await useConnection(target);
  try {
    const queue = await WorkQueue.open(conn);
    const [agents, counts, results, jobs] = await Promise.all([
      listAgents(queue),
      queue.counts(),
      conn.retry('cannot read results', conn.names.bucket('results'), () => values<WorkResult>(conn, 'results', queue.results)),
      conn.retry('cannot read jobs', conn.names.bucket('jobs'), () => values<JobRecord>(conn, 'jobs', queue.jobs)),
    ]);
    const now = Date.now();
    const running = new Set(agents.flatMap((a) => a.running.map((r) => r.id)));
    let done = 0, failed = 0;
    for (const r of results.values()) r.status === 'ok' ? done++ : failed++;
    const jobList: JobStatus[] = [...jobs.values()]
      .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
      .slice(0, options.maxJobs ?? 20)
      .map((j) => {
        let d = 0, f = 0, run = 0;
        for (const it of j.items) {
          const r = results.get(it.id);
          if (r) r.status === 'ok' ? d++ : f++;
          else if (running.has(it.id)) run++;
        }
        return { id: j.id, name: j.name, createdAt: j.createdAt, items: j.items.length, done: d, failed: f, running: run, queued: j.items.length - d - f - run };
      });
    return {
      server: conn.server(),
      project: conn.names.project,
      agents: agents.map((a) => ({ ...a, lastSeenSeconds: Math.max(0, (now - Date.parse(a.heartbeatAt)) / 1000) })),
      work: { queued: counts.queued, running: counts.running, done, failed },
      capacity: {
        slots: agents.reduce((s, a) => s + a.slots, 0),
        gpus: agents.reduce((s, a) => s + a.gpus.length, 0),
        cores: agents.reduce((s, a) => s + a.cores, 0),
      },
      jobs: jobList,
    };
  } finally {
    if (owned) await conn.close();
  }
}
