// Command-line face of the cluster layer: `ringpipe agent`, `ringpipe cluster status` and
// `ringpipe cluster gc`. `registerClusterCommands(program, ...)` adds them to a commander program
// (the `ringpipe` CLI, or the standalone entry in bin.ts).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { bytes, line, table, type Io } from '../cli/format.js';
import { resolveGpus } from '../train/gpu.js';
import { runAgent, type AgentOptions } from './agent.js';
import type { ClusterOptions } from './connect.js';
import { ClusterError } from './errors.js';
import { collectClusterGarbage, formatDuration, parseDuration } from './gc.js';
import { initProject } from './init.js';
import { clusterStatus } from './status.js';

/** Connection flags shared by the cluster commands (values as commander parses them). */
export interface ConnectionFlags {
  nats?: string;
  project?: string;
  user?: string;
  passwordFile?: string;
  tokenFile?: string;
  creds?: string;
  nkey?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tls?: boolean;
  replicas?: number;
  /** Seconds (as parsed). */
  unreachableTimeout?: number;
}

const readSecretFile = (file: string, what: string): string => {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ClusterError('ERR_CLUSTER_OPTIONS', `cannot read the ${what} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
};

/**
 * Connection options from flags, then the environment: `RINGPIPE_NATS_URL` (or `NATS_URL`),
 * `RINGPIPE_PROJECT`, `NATS_USER`, `NATS_PASSWORD`, `NATS_TOKEN`, `NATS_CREDS`, `NATS_NKEY` (a seed
 * file), `NATS_CA`, `NATS_CERT`, `NATS_KEY`. Secrets come from files or the environment, never from
 * the command line (where `ps` would show them).
 */
export function connectionFromFlags(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): ClusterOptions {
  const servers = flags.nats ?? env.RINGPIPE_NATS_URL ?? env.NATS_URL;
  if (!servers) throw new ClusterError('ERR_CLUSTER_OPTIONS', 'no NATS server: pass --nats nats://host:4222 (or set RINGPIPE_NATS_URL)');
  const password = flags.passwordFile ? readSecretFile(flags.passwordFile, 'password') : env.NATS_PASSWORD;
  const token = flags.tokenFile ? readSecretFile(flags.tokenFile, 'token') : env.NATS_TOKEN;
  const ca = flags.tlsCa ?? env.NATS_CA, cert = flags.tlsCert ?? env.NATS_CERT, key = flags.tlsKey ?? env.NATS_KEY;
  const user = flags.user ?? env.NATS_USER;
  const creds = flags.creds ?? env.NATS_CREDS;
  const nkey = flags.nkey ?? env.NATS_NKEY;
  const project = flags.project ?? env.RINGPIPE_PROJECT;
  return {
    servers,
    ...(project ? { project } : {}),
    ...(user ? { user } : {}),
    ...(password ? { password } : {}),
    ...(token ? { token } : {}),
    ...(creds ? { credsFile: creds } : {}),
    ...(nkey ? { nkeyFile: nkey } : {}),
    ...(ca || cert || key ? { tls: { ...(ca ? { caFile: ca } : {}), ...(cert ? { certFile: cert } : {}), ...(key ? { keyFile: key } : {}) } } : flags.tls ? { tls: true } : {}),
    ...(flags.replicas ? { replicas: flags.replicas } : {}),
    ...(flags.unreachableTimeout !== undefined ? { unreachableTimeout: flags.unreachableTimeout * 1000 } : {}),
  };
}

/**
 * Adds the connection flags to a command (`servers: false`: all but --nats, for commands that name
 * the servers otherwise; `unreachable: false`: no --unreachable-timeout, for agents, which never give up).
 */
export function addConnectionFlags(cmd: Command, options: { servers?: boolean; unreachable?: boolean } = {}): Command {
  if (options.servers !== false) cmd.option('--nats <urls>', 'NATS server URL(s), comma-separated (default: $RINGPIPE_NATS_URL)');
  if (options.unreachable !== false) {
    cmd.addOption(new Option('--unreachable-timeout <seconds>', 'once the connection is lost, seconds to keep trying to reconnect before failing (default 120; 0: for ever)').argParser(secondsOrZero));
  }
  return cmd
    .option('--project <name>', "namespace of subjects, streams and buckets (default: $RINGPIPE_PROJECT or 'default')")
    .option('--user <name>', 'user name (password from --password-file or $NATS_PASSWORD)')
    .option('--password-file <file>', 'file holding the password')
    .option('--token-file <file>', 'file holding an authentication token (or $NATS_TOKEN)')
    .option('--creds <file>', 'NATS credentials file (JWT + NKey seed)')
    .option('--nkey <file>', 'file holding an NKey seed')
    .option('--tls', 'require TLS (system CAs)')
    .option('--tls-ca <file>', 'CA certificate (PEM) of the servers')
    .option('--tls-cert <file>', 'client certificate (PEM)')
    .option('--tls-key <file>', 'client key (PEM)')
    .addOption(new Option('--replicas <n>', 'replicas of the streams and buckets created (3 on a 3-server cluster)').argParser(positiveInt));
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new ClusterError('ERR_CLUSTER_OPTIONS', `expected a non-negative integer, got '${value}'`);
  return n;
}

const seconds = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new ClusterError('ERR_CLUSTER_OPTIONS', `expected a number of seconds > 0, got '${value}'`);
  return n;
};

const secondsOrZero = (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new ClusterError('ERR_CLUSTER_OPTIONS', `expected a number of seconds >= 0, got '${value}'`);
  return n;
};

/** `--gpus 0,1` | `all` | `none`. */
export function parseGpus(value: string | undefined): number[] {
  if (value === undefined || value === '' || value === 'none') return [];
  if (value === 'all') return resolveGpus('all').gpus;
  const list = value.split(',').map((s) => Number(s.trim()));
  return resolveGpus(list).gpus;
}

/** Options of `ringpipe agent`. */
export interface AgentFlags extends ConnectionFlags {
  gpus?: string;
  slots?: number;
  name?: string;
  root?: string;
  allowRoot?: string[];
  ackWait?: number;
  heartbeat?: number;
  idleExit?: number;
  maxItems?: number;
  grace?: number;
  killGrace?: number;
  startLimit?: number;
}

/** `ringpipe agent`: runs until interrupted (or idle/max items); returns the exit code. */
export async function agentCommand(flags: AgentFlags, io: Io, signal: AbortSignal): Promise<number> {
  const options: AgentOptions = {
    ...connectionFromFlags(flags),
    gpus: parseGpus(flags.gpus),
    ...(flags.slots !== undefined ? { slots: flags.slots } : {}),
    ...(flags.name ? { name: flags.name } : {}),
    ...(flags.root ? { root: flags.root } : {}),
    ...(flags.allowRoot?.length ? { allowRoots: flags.allowRoot } : {}),
    ...(flags.ackWait ? { ackWait: flags.ackWait * 1000 } : {}),
    ...(flags.heartbeat ? { heartbeat: flags.heartbeat * 1000 } : {}),
    ...(flags.idleExit ? { idleExit: flags.idleExit * 1000 } : {}),
    ...(flags.maxItems ? { maxItems: flags.maxItems } : {}),
    ...(flags.grace !== undefined ? { grace: flags.grace * 1000 } : {}),
    ...(flags.killGrace !== undefined ? { killGrace: flags.killGrace * 1000 } : {}),
    ...(flags.startLimit !== undefined ? { startLimit: flags.startLimit * 1000 } : {}),
    signal,
    log: (l) => line(io.err, `${new Date().toISOString().slice(11, 19)} ${l}`),
  };
  const summary = await runAgent(options);
  line(io.out, JSON.stringify(summary));
  return 0;
}

/** `ringpipe cluster status`; returns the exit code. */
export async function clusterStatusCommand(flags: ConnectionFlags & { json?: boolean }, io: Io): Promise<number> {
  const s = await clusterStatus(connectionFromFlags(flags));
  if (flags.json) {
    io.out.write(JSON.stringify(s) + '\n');
    return 0;
  }
  line(io.out, `project '${s.project}' on ${s.server}`);
  line(io.out, `work: ${s.work.queued} queued, ${s.work.running} running, ${s.work.done} done, ${s.work.failed} failed`);
  line(io.out, `agents: ${s.agents.length} (${s.capacity.slots} slots, ${s.capacity.gpus} GPUs, ${s.capacity.cores} cores)`);
  if (s.agents.length) {
    line(io.out, table(
      ['agent', 'host', 'slots', 'GPUs', 'running', 'done', 'failed', 'load', 'seen'],
      s.agents.map((a) => [a.name, a.host === hostname() ? `${a.host} (here)` : a.host, a.slots, a.gpus.join(',') || '-', a.running.map((r) => r.label).join(', ') || '-', a.done, a.failed, a.load.toFixed(2), `${a.lastSeenSeconds.toFixed(0)} s ago`]),
    ));
  }
  if (s.jobs.length) {
    line(io.out, table(
      ['job', 'name', 'created (UTC)', 'items', 'done', 'failed', 'running', 'queued'],
      s.jobs.map((j) => [j.id.slice(0, 12), j.name, j.createdAt.replace('T', ' ').slice(0, 19), j.items, j.done, j.failed, j.running, j.queued]),
    ));
  }
  return 0;
}

/** Options of `ringpipe cluster gc` (durations in milliseconds, as parsed). */
export interface ClusterGcFlags extends ConnectionFlags {
  olderThan?: number;
  dryRun?: boolean;
  cache?: boolean;
  json?: boolean;
}

const duration = (value: string): number => {
  const ms = parseDuration(value);
  if (ms === undefined) throw new ClusterError('ERR_CLUSTER_OPTIONS', `expected a duration such as 7d, 12h, 30m or 45s, got '${value}'`);
  return ms;
};

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const utc = (iso: string) => iso.replace('T', ' ').slice(0, 19);

/** `ringpipe cluster gc`; returns the exit code. */
export async function clusterGcCommand(flags: ClusterGcFlags, io: Io): Promise<number> {
  const r = await collectClusterGarbage(connectionFromFlags(flags), { ...(flags.olderThan !== undefined ? { olderThan: flags.olderThan } : {}), dryRun: !!flags.dryRun, cache: !!flags.cache });
  if (flags.json) {
    io.out.write(JSON.stringify(r) + '\n');
    return 0;
  }
  line(io.out, `project '${r.project}' on ${r.server}`);
  if (r.jobs.length) {
    line(io.out, table(['job', 'name', 'created (UTC)', 'finished (UTC)', 'items', 'failed'], r.jobs.map((j) => [j.id.slice(0, 12), j.name, utc(j.createdAt), utc(j.finishedAt), j.items, j.failed])));
  }
  const d = r.removed;
  line(io.out, `${r.dryRun ? 'would remove' : 'removed'} ${plural(r.jobs.length, 'job')} finished more than ${formatDuration(r.olderThan)} ago (${plural(d.results, 'result')}, ${plural(d.events, 'event')}, ${plural(d.checkpoints, 'checkpoint')}, ${plural(d.models, 'model file')}); kept ${plural(r.kept.unfinished, 'job')} with items in flight or not done, ${r.kept.recent} finished more recently`);
  if (flags.cache) {
    if (r.cacheSkipped) line(io.out, `shared cache left alone: ${r.cacheSkipped}`);
    else line(io.out, `${r.dryRun ? 'would remove' : 'removed'} ${plural(r.artifacts.length, 'shared-cache artifact')} (${bytes(r.artifacts.reduce((s, a) => s + a.bytes, 0))})`);
  }
  return 0;
}

/** Options of `ringpipe cluster init`. */
export interface ClusterInitFlags extends ConnectionFlags {
  link?: string[];
  ackWait?: number;
  json?: boolean;
}

/** `ringpipe cluster init`; returns the exit code. */
export async function clusterInitCommand(flags: ClusterInitFlags, io: Io): Promise<number> {
  const r = await initProject(connectionFromFlags(flags), { ...(flags.link?.length ? { links: flags.link } : {}), ...(flags.ackWait ? { ackWait: flags.ackWait * 1000 } : {}) });
  if (flags.json) {
    io.out.write(JSON.stringify(r) + '\n');
    return 0;
  }
  line(io.out, `project '${r.project}' on ${r.server}: ${r.created.length ? `created ${r.created.join(', ')}` : 'nothing to create'}${r.existed.length ? `; there already: ${r.existed.join(', ')}` : ''}`);
  return 0;
}

/**
 * Adds `agent`, `cluster status`, `cluster gc` and `cluster init` to `program`. `setCode` receives each command's exit code;
 * errors propagate to the caller (the CLI maps RingpipeErrors to exit code 1).
 */
export function registerClusterCommands(program: Command, io: Io, signal: AbortSignal, setCode: (code: number) => void): Command[] {
  const agent = addConnectionFlags(
    program
      .command('agent')
      .description('run work items of the cluster on this machine (sweep trials, preprocessing shards, pipelines) until interrupted'),
    { unreachable: false },
  )
    .option('--gpus <list>', "CUDA devices offered to GPU items: '0,1', 'all' (nvidia-smi) or 'none'", 'none')
    .addOption(new Option('--slots <n>', 'CPU items at a time (default: cores)').argParser(positiveInt))
    .option('--name <name>', 'agent name (default: host-pid)')
    .option('--root <dir>', 'project checkout: relative work modules resolve against it, and items run code and read pipelines only from under it (default: current directory)')
    .addOption(new Option('--allow-root <dir>', 'another directory items may take code from (repeatable)').argParser((v: string, all: string[] = []) => [...all, v]))
    .addOption(new Option('--ack-wait <seconds>', "time after which a dead agent's item goes to another agent (default 30)").argParser(seconds))
    .addOption(new Option('--heartbeat <seconds>', 'seconds between announcements (default 5)').argParser(seconds))
    .addOption(new Option('--idle-exit <seconds>', 'stop after this long without work').argParser(seconds))
    .addOption(new Option('--max-items <n>', 'stop after this many items').argParser(positiveInt))
    .addOption(new Option('--grace <seconds>', 'on Ctrl-C, time running items get to finish before they are given back (default 10)').argParser(secondsOrZero))
    .addOption(new Option('--kill-grace <seconds>', 'time an item past its timeout (or its grace) has to stop before its processes are killed (default 3)').argParser(secondsOrZero))
    .addOption(new Option('--start-limit <seconds>', 'time an item with a timeout may take to start (process, imports, connection) before its timeout counts (default 60)').argParser(seconds))
    .action(async (flags: AgentFlags) => {
      setCode(await agentCommand(flags, io, signal));
    });
  const cluster = program.command('cluster').description('the cluster: agents, capacity, work');
  const status = addConnectionFlags(cluster.command('status').description('agents with their capacity and load; queued, running and done work; jobs'))
    .option('--json', 'print JSON')
    .action(async (flags: ConnectionFlags & { json?: boolean }) => {
      setCode(await clusterStatusCommand(flags, io));
    });
  const gc = addConnectionFlags(cluster.command('gc').description("remove finished jobs' results, events, checkpoints and models (never work in flight)"))
    .addOption(new Option('--older-than <duration>', 'collect jobs whose last result is older than this: 7d, 12h, 30m, 45s').default(7 * 24 * 3600_000, '7d').argParser(duration))
    .option('--dry-run', 'only list what would be removed')
    .option('--cache', 'also remove shared-cache artifacts older than --older-than (only while no work is queued or running)')
    .option('--json', 'print JSON')
    .action(async (flags: ClusterGcFlags) => {
      setCode(await clusterGcCommand(flags, io));
    });
  const init = addConnectionFlags(cluster.command('init').description("create every stream, bucket and store of the project (for users that may not create them: docs/cluster.md, Security model)"))
    .addOption(new Option('--link <name>', 'also create the stream of this link (repeatable)').argParser((v: string, all: string[] = []) => [...all, v]))
    .addOption(new Option('--ack-wait <seconds>', "time after which a dead agent's item goes to another agent (default 30)").argParser(seconds))
    .option('--json', 'print JSON')
    .action(async (flags: ClusterInitFlags) => {
      setCode(await clusterInitCommand(flags, io));
    });
  return [agent, cluster, status, gc, init];
}
