// `ringpipe cluster gc`: removes the data of finished jobs from a project's namespace.
//
// A job is collected when every item has a result, none is queued or running (in the work stream,
// or announced by a live agent), and its last result is older than `olderThan`. Its record goes
// first, then of its items the result, progress events, any checkpoint left behind and saved sweep
// models (`<item>/...`). Items are content-addressed and may belong to several jobs: an item that a
// kept job also lists is kept. Results no job lists (a collection cut short) go when old enough.
// The shared cache belongs to no job: only with `cache`, and only while no work is queued or
// running, are its artifacts older than `olderThan` removed.
import type { ObjectStore } from '@nats-io/obj';
import { useConnection, type ClusterConnection, type ClusterTarget } from './connect.js';
import type { RemoteEntry } from './cache.js';
import { values } from './status.js';
import { listAgents, WorkQueue, type JobRecord, type WorkResult } from './work.js';

/** Options of {@link collectClusterGarbage}. */
export interface ClusterGcOptions {
  /** Milliseconds since a job's last result after which it is collected (default 7 days). */
  olderThan?: number;
  /** Only report what would be removed. */
  dryRun?: boolean;
  /** Also remove shared-cache artifacts indexed longer than `olderThan` ago (default false). */
  cache?: boolean;
}

/** A job collected (or that would be). */
export interface CollectedJob {
  id: string;
  name: string;
  createdAt: string;
  /** Time of its last result. */
  finishedAt: string;
  items: number;
  failed: number;
}

/** What {@link collectClusterGarbage} did (or would do, with `dryRun`). */
export interface ClusterGcReport {
  server: string;
  project: string;
  dryRun: boolean;
  olderThan: number;
  jobs: CollectedJob[];
  /** Jobs kept: with items in flight or not done, or finished too recently. */
  kept: { unfinished: number; recent: number };
  /** What went with the jobs' items. */
  removed: { results: number; events: number; checkpoints: number; models: number };
  /** Shared-cache artifacts (with `cache`), and why none were looked at when work was in flight. */
  artifacts: { key: string; stage: string; bytes: number }[];
  cacheSkipped?: string;
}

const DAY = 24 * 3600_000;

/** Removes finished jobs' data (see the module comment). */
export async function collectClusterGarbage(target: ClusterTarget, options: ClusterGcOptions = {}): Promise<ClusterGcReport> {
  const { conn, owned } = await useConnection(target);
  try {
    const olderThan = options.olderThan ?? 7 * DAY;
    const dryRun = !!options.dryRun;
    const queue = await WorkQueue.open(conn);
    const names = WorkQueue.names(conn);
    const [jobs, results, agents, queued, events] = await Promise.all([
      conn.retry('cannot read jobs', conn.names.bucket('jobs'), () => values<JobRecord>(conn, 'jobs', queue.jobs)),
      conn.retry('cannot read results', conn.names.bucket('results'), () => values<WorkResult>(conn, 'results', queue.results)),
      listAgents(queue),
      conn.subjectCounts(names.work, conn.names.subject('work', '>')),
      conn.subjectCounts(names.events, names.eventsAll),
    ]);
    const inFlight = new Set(agents.flatMap((a) => a.running.map((r) => r.id)));
    for (const subject of queued.keys()) inFlight.add(subject.slice(subject.lastIndexOf('.') + 1));

    const now = Date.now();
    const { collected, kept, items } = plan(jobs, results, inFlight, now - olderThan);
    const [checkpoints, models] = await Promise.all([existingStore(conn, 'checkpoints'), existingStore(conn, 'models')]);
    const [ckNames, modelNames] = await Promise.all([
      checkpoints ? conn.objectNames('checkpoints').then((all) => all.filter((n) => items.has(n))) : [],
      models ? conn.objectNames('models').then((all) => all.filter((n) => items.has(n.slice(0, n.indexOf('/'))))) : [],
    ]);
    const eventCount = [...items].reduce((s, id) => s + (events.get(names.eventSubject(id)) ?? 0), 0);
    const report: ClusterGcReport = {
      server: conn.server(),
      project: conn.names.project,
      dryRun,
      olderThan,
      jobs: collected,
      kept,
      removed: { results: [...items].filter((id) => results.has(id)).length, events: eventCount, checkpoints: ckNames.length, models: modelNames.length },
      artifacts: [],
    };
    if (!dryRun) {
      for (const j of collected) await conn.retry('cannot remove a job', `${conn.names.bucket('jobs')}/${j.id}`, () => queue.jobs.purge(j.id));
      for (const id of items) {
        if (events.has(names.eventSubject(id))) await conn.retry('cannot purge events', names.eventSubject(id), () => conn.jsm.streams.purge(names.events, { filter: names.eventSubject(id) }));
      }
      for (const n of ckNames) await conn.retry('cannot delete a checkpoint', `${conn.names.bucket('checkpoints')}/${n}`, () => checkpoints!.delete(n));
      for (const n of modelNames) await conn.retry('cannot delete a model', `${conn.names.bucket('models')}/${n}`, () => models!.delete(n));
      for (const id of items) if (results.has(id)) await conn.retry('cannot remove a result', `${conn.names.bucket('results')}/${id}`, () => queue.results.purge(id));
    }
    if (options.cache) {
      if (queued.size || inFlight.size) report.cacheSkipped = `${inFlight.size} item(s) queued or running: a pipeline may be reading the shared cache`;
      else report.artifacts = await collectArtifacts(conn, now - olderThan, dryRun);
    }
    return report;
  } finally {
    if (owned) await conn.close();
  }
}

/**
 * Which jobs go (finished before `before`, nothing in flight) and which of their items: not those a
 * kept job lists or that are in flight; plus results no job lists, finished before `before`.
 */
function plan(jobs: Map<string, JobRecord>, results: Map<string, WorkResult>, inFlight: Set<string>, before: number) {
  const collected: CollectedJob[] = [];
  const kept = { unfinished: 0, recent: 0 };
  const keep = new Set<string>(inFlight);
  const drop: string[] = [];
  for (const job of jobs.values()) {
    const done = job.items.map((it) => results.get(it.id));
    const finished = done.every((r) => r) && !job.items.some((it) => inFlight.has(it.id));
    const last = finished ? Math.max(...done.map((r) => Date.parse(r!.finishedAt))) : NaN;
    if (finished && last < before) {
      collected.push({ id: job.id, name: job.name, createdAt: job.createdAt, finishedAt: new Date(last).toISOString(), items: job.items.length, failed: done.filter((r) => r!.status === 'failed').length });
      drop.push(...job.items.map((it) => it.id));
      continue;
    }
    if (finished) kept.recent++;
    else kept.unfinished++;
    for (const it of job.items) keep.add(it.id);
  }
  const listed = new Set([...jobs.values()].flatMap((j) => j.items.map((it) => it.id)));
  for (const r of results.values()) if (!listed.has(r.id) && Date.parse(r.finishedAt) < before) drop.push(r.id);
  collected.sort((a, b) => a.finishedAt.localeCompare(b.finishedAt));
  return { collected, kept, items: new Set(drop.filter((id) => !keep.has(id))) };
}

/** An object store of the project, if it exists (gc creates nothing). */
async function existingStore(conn: ClusterConnection, kind: string): Promise<ObjectStore | undefined> {
  return (await conn.streamExists(`OBJ_${conn.names.bucket(kind)}`)) ? conn.objectStore(kind) : undefined;
}

/** Removes shared-cache artifacts indexed before `before` (index entry first: readers look only at the index). */
async function collectArtifacts(conn: ClusterConnection, before: number, dryRun: boolean): Promise<ClusterGcReport['artifacts']> {
  if (!(await conn.streamExists(`KV_${conn.names.bucket('cache')}`))) return [];
  const [index, objects] = await Promise.all([conn.kv('cache', { history: 1 }), existingStore(conn, 'artifacts')]);
  const out: ClusterGcReport['artifacts'] = [];
  for (const [key, e] of await values<RemoteEntry>(conn, 'cache', index)) {
    if (Date.parse(e.manifest.createdAt) >= before) continue;
    out.push({ key, stage: e.manifest.stage, bytes: e.bytes });
    if (dryRun) continue;
    await conn.retry('cannot remove an artifact', `${conn.names.bucket('cache')}/${key}`, () => index.purge(key));
    await objects?.delete(e.object).catch(() => undefined);
  }
  return out;
}

const UNITS = { w: 7 * DAY, d: DAY, h: 3600_000, m: 60_000, s: 1_000 } as const;

/** `7d`, `12h`, `30m`, `45s`, `2w` (or a number of seconds) in milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([smhdw])?$/.exec(text.trim());
  return m ? Number(m[1]) * UNITS[(m[2] ?? 's') as keyof typeof UNITS] : undefined;
}

/** Milliseconds in the largest whole unit up to days: `7d`, `36h`, `0s`. */
export function formatDuration(ms: number): string {
  const [unit, size] = Object.entries(UNITS).find(([u, n]) => u !== 'w' && ms % n === 0 && ms >= n) ?? ['s', 1_000];
  return `${+(ms / size).toFixed(3)}${unit}`;
}
