// Connecting to NATS: servers, credentials and TLS passed through to the official client, names
// namespaced per project, and errors that name the server and subject but never a secret.
import { readFileSync } from 'node:fs';
import {
  credsAuthenticator, nkeyAuthenticator,
  type Authenticator, type ConnectionOptions, type NatsConnection,
} from '@nats-io/transport-node';
import {
  DiscardPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType,
  type JetStreamClient, type JetStreamManager, type StreamConfig, type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { Objm, type ObjectStore, type ObjectStoreOptions } from '@nats-io/obj';
import { ClusterError } from './errors.js';
import { connectNats } from './transport.js';

/** TLS settings handed to the client (files are read by the client; PEM text may be given instead). */
export interface ClusterTlsOptions {
  /** CA certificate file (PEM) that signed the server's certificate. */
  caFile?: string;
  /** Client certificate file (PEM), for servers that verify clients. */
  certFile?: string;
  /** Client private key file (PEM). */
  keyFile?: string;
  /** CA certificate as PEM text. */
  ca?: string;
  /** Client certificate as PEM text. */
  cert?: string;
  /** Client private key as PEM text. */
  key?: string;
  /** TLS before the NATS handshake (the server must be configured with `handshake_first`). */
  handshakeFirst?: boolean;
}

/**
 * Where the cluster is and how to authenticate. Secrets given here (password, token, nkey seed,
 * credentials, keys, passwords inside URLs) are handed to the client only: they are removed from
 * every error message and never logged.
 */
export interface ClusterOptions {
  /**
   * Server URL(s): `nats://host:4222`, `tls://host:4222`, a comma-separated list or an array. Give
   * several servers of a cluster so the client can reconnect to another one.
   * `nats://user:password@host` and `nats://token@host` are accepted (and redacted).
   */
  servers: string | string[];
  /**
   * Namespace of every subject, stream, KV bucket and object store ringpipe uses (letters, digits,
   * `-`; default `default`). Two projects on one server never see each other's work, links or cache.
   */
  project?: string;
  /** User name (with `password`). */
  user?: string;
  /** Password (with `user`). */
  password?: string;
  /** Authentication token. */
  token?: string;
  /** NKey seed (`SU...`) of the user. */
  nkeySeed?: string;
  /** File holding the NKey seed. */
  nkeyFile?: string;
  /** Credentials file (JWT + NKey seed), as made by `nsc`. */
  credsFile?: string;
  /** TLS: `true` to require TLS with the system CAs, or certificates. */
  tls?: boolean | ClusterTlsOptions;
  /** Connection name shown by the server's monitoring (default `ringpipe`). */
  name?: string;
  /** Milliseconds to wait for a connection and for each request (default 10 000). */
  timeout?: number;
  /** Replicas of the streams, buckets and stores ringpipe creates (default 1; 3 on a 3-server cluster). */
  replicas?: number;
  /** Storage of the streams and buckets ringpipe creates (default `file`). */
  storage?: 'file' | 'memory';
  /**
   * Milliseconds the servers may stay unreachable once the connection is lost (every reconnect
   * attempt failing) before waiting and requests fail with `ERR_CLUSTER_UNREACHABLE`. Work already
   * submitted goes on; running the same thing again re-attaches. Default 120 000; 0: never give up
   * (what agents do). A connection that goes silent without closing is noticed as lost within
   * about 30 s (pings every 10 s).
   */
  unreachableTimeout?: number;
  /** Told, as it happens, that the connection was lost, of each reconnect attempt, of the reconnection, and of giving up. */
  onConnection?: (event: ConnectionEvent) => void;
}

/** What happens to a connection (see {@link ClusterOptions.onConnection}); times in milliseconds. */
export type ConnectionEvent =
  | { type: 'disconnected'; server: string }
  | { type: 'reconnecting'; attempt: number; downFor: number; /** undefined when it never gives up */ giveUpIn?: number }
  | { type: 'reconnected'; server: string; downFor: number; attempts: number }
  | { type: 'unreachable'; downFor: number; attempts: number; error: ClusterError };

/** Default of {@link ClusterOptions.unreachableTimeout}. */
export const DEFAULT_UNREACHABLE_TIMEOUT = 120_000;

const secs = (ms: number) => `${Math.round(ms / 1000)} s`;

/** A connection event as one line of a log. */
export function describeConnectionEvent(e: ConnectionEvent): string {
  switch (e.type) {
    case 'disconnected':
      return `lost the connection to NATS (server ${e.server}): reconnecting`;
    case 'reconnecting':
      return `reconnecting (attempt ${e.attempt}, ${secs(e.downFor)} without a server${e.giveUpIn !== undefined ? `, giving up in ${secs(e.giveUpIn)}` : ''})`;
    case 'reconnected':
      return `reconnected to NATS (server ${e.server}) after ${secs(e.downFor)} (${e.attempts} attempt${e.attempts === 1 ? '' : 's'})`;
    case 'unreachable':
      return e.error.message;
  }
}

/**
 * A listener that writes connection events to `log`: the loss and the reconnection at once,
 * reconnect attempts the first time and then at most every `everyMs`. (Giving up is not logged: it
 * is the error the waiting operation fails with.)
 */
export function connectionLogger(log: (line: string) => void, everyMs = 5_000): (e: ConnectionEvent) => void {
  let last = 0;
  return (e) => {
    if (e.type === 'unreachable') return;
    if (e.type === 'reconnecting') {
      if (e.attempt > 1 && Date.now() - last < everyMs) return;
      last = Date.now();
    }
    log(describeConnectionEvent(e));
  };
}

const PROJECT_RE = /^[A-Za-z0-9-]{1,64}$/;
/** Names inside a project (links, agents, jobs): letters, digits and `-`. */
export const NAME_RE = /^[A-Za-z0-9-]{1,128}$/;

/**
 * Names of one project's resources. The project is the second token of every subject
 * (`rp.<project>.…`) and part of every stream (`RP_<project>_…`), bucket and object store
 * (`rp_<project>_…`); project names cannot contain `_` or `.`, so no two projects' names collide.
 */
export class Namespace {
  constructor(readonly project: string) {
    if (!PROJECT_RE.test(project)) {
      throw new ClusterError('ERR_CLUSTER_OPTIONS', `project '${project}' is not a valid project name: use 1-64 letters, digits and '-'`);
    }
  }
  /** A subject: `rp.<project>.<parts…>`. */
  subject(...parts: string[]): string {
    return ['rp', this.project, ...parts].join('.');
  }
  /** A stream name: `RP_<project>_<kind>`. */
  stream(kind: string): string {
    return `RP_${this.project}_${kind}`;
  }
  /** A KV bucket or object store name: `rp_<project>_<kind>`. */
  bucket(kind: string): string {
    return `rp_${this.project}_${kind}`;
  }
}

/** Checks a name used inside a project (a link, an agent, a job name). */
export function checkName(what: string, name: string): string {
  if (!NAME_RE.test(name)) throw new ClusterError('ERR_CLUSTER_OPTIONS', `${what} '${name}' is not valid: use 1-128 letters, digits and '-'`);
  return name;
}

/** `nats://user:secret@host:4222` → `nats://host:4222` (any user info removed). */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1');
}

/** Removes known secrets from text. */
export class Redactor {
  #secrets: string[] = [];
  /** Adds secrets to remove from every text (shorter than 3 characters: ignored). */
  add(...secrets: (string | undefined)[]): void {
    for (const s of secrets) if (s && s.length >= 3 && !this.#secrets.includes(s)) this.#secrets.push(s);
    this.#secrets.sort((a, b) => b.length - a.length);
  }
  /** `s` with every known secret and every URL's user info replaced by `***`. */
  text(s: string): string {
    let out = s;
    for (const secret of this.#secrets) out = out.split(secret).join('***');
    return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@');
  }
}

/** Server URLs without their credentials, and the credentials that were in them. */
interface ParsedServers {
  urls: string[];
  user?: string;
  password?: string;
  token?: string;
}

/** Splits server URLs and takes credentials out of them. */
export function parseServers(servers: string | string[]): ParsedServers {
  const list = (Array.isArray(servers) ? servers : [servers]).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new ClusterError('ERR_CLUSTER_OPTIONS', 'no NATS server given (e.g. nats://127.0.0.1:4222)');
  const out: ParsedServers = { urls: [] };
  for (const raw of list) {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `nats://${raw}`;
    let u: URL;
    try {
      u = new URL(withScheme);
    } catch {
      throw new ClusterError('ERR_CLUSTER_OPTIONS', `'${redactUrl(withScheme)}' is not a server URL (e.g. nats://host:4222)`);
    }
    if (u.username || u.password) {
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      if (pass) {
        out.user ??= user;
        out.password ??= pass;
      } else out.token ??= user;
    }
    out.urls.push(`${u.protocol}//${u.host}`);
  }
  return out;
}

/** Turns any error of the client into a {@link ClusterError} naming the server and subject, secrets removed. */
export function clusterError(err: unknown, what: string, ctx: { server: string; subject?: string; redactor?: Redactor }): ClusterError {
  if (err instanceof ClusterError) return err;
  const red = (s: string) => (ctx.redactor ? ctx.redactor.text(s) : s);
  const e = err as { name?: string; message?: string; code?: unknown; cause?: unknown };
  const msg = red(String(e?.message ?? err));
  const causeMsg = e?.cause instanceof Error ? red(e.cause.message) : '';
  const all = `${e?.name ?? ''} ${msg} ${causeMsg}`;
  let code = 'ERR_CLUSTER_JETSTREAM';
  if (/authoriz|authenticat|permission/i.test(all)) code = 'ERR_CLUSTER_AUTH';
  else if (/timeout|timed out/i.test(all)) code = 'ERR_CLUSTER_TIMEOUT';
  else if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ConnectionError|connection refused|no servers|CONNECTION_REFUSED/i.test(all)) code = 'ERR_CLUSTER_CONNECT';
  else if (/closed|draining/i.test(all)) code = 'ERR_CLUSTER_CLOSED';
  const where = `server ${ctx.server}${ctx.subject ? `, ${ctx.subject}` : ''}`;
  let detail = causeMsg && !msg.includes(causeMsg) ? `${msg}: ${causeMsg}` : msg;
  if (code === 'ERR_CLUSTER_AUTH' && /authorization violation/i.test(detail)) detail = `the server refused the credentials (${detail})`;
  const safeCause = new Error(detail);
  safeCause.name = e?.name ?? 'Error';
  return new ClusterError(code, `${what} (${where}): ${detail}`, { server: ctx.server, subject: ctx.subject, cause: safeCause });
}

/** True for errors worth retrying: the server is switching leaders, restarting, or slow. */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: string; name?: string; message?: string };
  if (e?.code === 'ERR_CLUSTER_TIMEOUT' || e?.code === 'ERR_CLUSTER_CONNECT') return true;
  const text = `${e?.name ?? ''} ${e?.message ?? ''} ${(e as { cause?: Error })?.cause?.message ?? ''}`;
  return /timeout|timed out|no responders|503|not available|leader|reconnect|disconnect|ECONNRESET|ECONNREFUSED|insufficient resources|stream is offline|temporarily/i.test(text);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `op`, retrying transient failures (leader elections, a server restarting) with backoff for
 * at most `forMs` of time connected (`downMs`: milliseconds the connection has spent lost so far;
 * time without a server does not count, its own bound is the connection's `lost` signal); other
 * failures, and the last transient one, are thrown as {@link ClusterError}.
 */
export async function retrying<T>(
  op: () => Promise<T>,
  ctx: { what: string; server: () => string; subject?: string; redactor?: Redactor; forMs?: number; signal?: AbortSignal; downMs?: () => number; lost?: AbortSignal },
): Promise<T> {
  const start = Date.now();
  const down0 = ctx.downMs?.() ?? 0;
  const spent = () => Date.now() - start - ((ctx.downMs?.() ?? 0) - down0);
  for (let attempt = 0; ; attempt++) {
    if (ctx.lost?.aborted) throw ctx.lost.reason;
    try {
      return await op();
    } catch (err) {
      if (ctx.lost?.aborted) throw ctx.lost.reason;
      const wrapped = clusterError(err, ctx.what, { server: ctx.server(), subject: ctx.subject, redactor: ctx.redactor });
      if (!isTransient(err) || spent() >= (ctx.forMs ?? 30_000) || ctx.signal?.aborted) throw wrapped;
      await sleep(Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)));
    }
  }
}

/** The client options for `options`, and the redactor that knows their secrets. */
export function clientOptions(options: ClusterOptions): { client: ConnectionOptions; redactor: Redactor; servers: string[] } {
  const parsed = parseServers(options.servers);
  const redactor = new Redactor();
  const user = options.user ?? parsed.user;
  const password = options.password ?? parsed.password;
  const token = options.token ?? parsed.token;
  redactor.add(password, token, options.nkeySeed);
  const authenticators: Authenticator[] = [];
  const readSecret = (file: string, what: string): Uint8Array => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ClusterError('ERR_CLUSTER_OPTIONS', `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  if (options.credsFile) {
    const creds = readSecret(options.credsFile, 'credentials file');
    redactor.add(...(Buffer.from(creds).toString('utf8').match(/[A-Za-z0-9_=.-]{20,}/g) ?? []));
    authenticators.push(credsAuthenticator(creds));
  }
  if (options.nkeySeed || options.nkeyFile) {
    const seedText = options.nkeySeed ?? Buffer.from(readSecret(options.nkeyFile!, 'NKey seed file')).toString('utf8').trim();
    redactor.add(seedText);
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seedText)));
  }
  const tls = options.tls === true ? {} : options.tls || undefined;
  if (tls && typeof tls === 'object') redactor.add(tls.key);
  const client: ConnectionOptions = {
    servers: parsed.urls,
    name: options.name ?? 'ringpipe',
    timeout: options.timeout ?? 10_000,
    // Reconnection is the client's job: keep trying, with jitter, across the cluster's servers.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // A server that goes silent without closing the connection (a partition, a stopped process) is
    // noticed after maxPingOut unanswered pings, then reconnected to like a closed one.
    pingInterval: 10_000,
    maxPingOut: 3,
    ...(user !== undefined ? { user } : {}),
    ...(password !== undefined ? { pass: password } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(authenticators.length ? { authenticator: authenticators } : {}),
    ...(tls ? { tls } : {}),
  };
  return { client, redactor, servers: parsed.urls.map(redactUrl) };
}

/**
 * An open connection to a NATS server with JetStream, for one project. Create it with
 * {@link ClusterConnection.open}; close it with {@link ClusterConnection.close}.
 */
export class ClusterConnection {
  readonly names: Namespace;
  readonly replicas: number;
  /** Whether `replicas` was asked for (only then are existing streams changed to it). */
  private readonly replicasGiven: boolean;
  readonly storage: StorageType;
  readonly timeout: number;
  readonly redactor: Redactor;
  /** The configured servers, without credentials. */
  readonly servers: string[];
  private kvm?: Kvm;
  private objm?: Objm;
  private readonly buckets = new Map<string, Promise<KV>>();
  private readonly stores = new Map<string, Promise<ObjectStore>>();
  private readonly streams = new Map<string, Promise<StreamInfo>>();
  /** Milliseconds the servers may stay unreachable (0: for ever). */
  readonly unreachableTimeout: number;
  private readonly lostController = new AbortController();
  /** Aborted (with an `ERR_CLUSTER_UNREACHABLE` ClusterError) once the servers stayed unreachable for `unreachableTimeout`. */
  readonly lost: AbortSignal = this.lostController.signal;
  private readonly listeners = new Set<(e: ConnectionEvent) => void>();
  private downSince?: number;
  private downBefore = 0;
  private attempts = 0;
  private connectedSince = Date.now();
  private giveUp?: NodeJS.Timeout;
  /** Permissions the server refused lately (its -ERR comes apart from the operation that caused it). */
  private readonly refusals: { subject: string; message: string; at: number }[] = [];

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    options: ClusterOptions,
    redactor: Redactor,
    servers: string[],
  ) {
    this.names = new Namespace(options.project ?? 'default');
    this.replicas = options.replicas ?? 1;
    this.replicasGiven = options.replicas !== undefined;
    this.storage = options.storage === 'memory' ? StorageType.Memory : StorageType.File;
    this.timeout = options.timeout ?? 10_000;
    this.redactor = redactor;
    this.servers = servers;
    this.unreachableTimeout = options.unreachableTimeout ?? DEFAULT_UNREACHABLE_TIMEOUT;
    if (options.onConnection) this.listeners.add(options.onConnection);
    void this.watch();
  }

  /** Adds a listener of connection events; returns the function that removes it. */
  onConnection(listener: (e: ConnectionEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: ConnectionEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /** Follows the client's status: lost, each reconnect attempt, back; gives up after `unreachableTimeout`. */
  private async watch(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type === 'disconnect') {
        if (this.downSince !== undefined) continue;
        this.downSince = Date.now();
        this.attempts = 0;
        this.emit({ type: 'disconnected', server: `nats://${redactUrl(st.server)}` });
        if (this.unreachableTimeout > 0 && !this.lost.aborted) this.giveUp = setTimeout(() => this.unreachable(st.server), this.unreachableTimeout);
      } else if (st.type === 'reconnecting' && this.downSince !== undefined) {
        const downFor = Date.now() - this.downSince;
        this.emit({ type: 'reconnecting', attempt: ++this.attempts, downFor, ...(this.unreachableTimeout > 0 && !this.lost.aborted ? { giveUpIn: Math.max(0, this.unreachableTimeout - downFor) } : {}) });
      } else if (st.type === 'error' && /permissions violation/i.test(String(st.error?.message))) {
        const subject = (st.error as { subject?: string }).subject ?? '';
        this.refusals.push({ subject, message: this.redactor.text(st.error.message), at: Date.now() });
        if (this.refusals.length > 20) this.refusals.shift();
      } else if (st.type === 'reconnect' && this.downSince !== undefined) {
        clearTimeout(this.giveUp);
        const downFor = Date.now() - this.downSince;
        this.downBefore += downFor;
        this.downSince = undefined;
        this.connectedSince = Date.now();
        this.emit({ type: 'reconnected', server: `nats://${redactUrl(st.server)}`, downFor, attempts: this.attempts });
      }
    }
    clearTimeout(this.giveUp);
  }

  private unreachable(server: string): void {
    const downFor = Date.now() - (this.downSince ?? Date.now());
    const where = `nats://${redactUrl(server)}`;
    const error = new ClusterError(
      'ERR_CLUSTER_UNREACHABLE',
      `lost the connection to NATS (server ${where}${this.servers.length > 1 ? `; servers ${this.servers.join(',')}` : ''}) and could not reconnect within ${secs(this.unreachableTimeout)} (${this.attempts} attempts): giving up. Work already submitted goes on; run the same again to re-attach (the bound is the unreachableTimeout option, --unreachable-timeout)`,
      { server: where },
    );
    this.lostController.abort(error);
    this.emit({ type: 'unreachable', downFor, attempts: this.attempts, error });
  }

  /**
   * The permission the server refused since `since` (ms) for a subject starting with `prefix`, as an
   * `ERR_CLUSTER_AUTH` error. Some refusals (a pull request) reach the client only as such a
   * notice, while the operation itself merely times out.
   */
  permissionDenied(prefix: string, since: number, what: string): ClusterError | undefined {
    const r = [...this.refusals].reverse().find((x) => x.at >= since && x.subject.startsWith(prefix));
    return r && new ClusterError('ERR_CLUSTER_AUTH', `${what} (server ${this.server()}, ${r.subject}): ${r.message}`, { server: this.server(), subject: r.subject });
  }

  /** Whether the connection is lost now (reconnecting). */
  get down(): boolean {
    return this.downSince !== undefined;
  }

  /** Milliseconds since the connection was (re)established; 0 while it is lost. */
  connectedFor(): number {
    return this.downSince !== undefined ? 0 : Date.now() - this.connectedSince;
  }

  /** Milliseconds this connection has spent lost, in all. */
  downMs(): number {
    return this.downBefore + (this.downSince !== undefined ? Date.now() - this.downSince : 0);
  }

  /** Connects (and checks that JetStream answers). Throws a {@link ClusterError} naming the server. */
  static async open(options: ClusterOptions): Promise<ClusterConnection> {
    if (options.project !== undefined) new Namespace(options.project); // validate before connecting
    if (options.replicas !== undefined && (!Number.isInteger(options.replicas) || options.replicas < 1 || options.replicas > 5)) {
      throw new ClusterError('ERR_CLUSTER_OPTIONS', `replicas must be an integer from 1 to 5, got ${options.replicas}`);
    }
    const { client, redactor, servers } = clientOptions(options);
    const where = servers.join(',');
    let nc: NatsConnection;
    try {
      nc = await connectNats(client);
    } catch (err) {
      const e = clusterError(err, 'cannot connect to NATS', { server: where, redactor });
      const missing = e.code === 'ERR_CLUSTER_AUTH' ? missingCredentials(options) : undefined;
      if (missing) throw new ClusterError('ERR_CLUSTER_AUTH', `cannot connect to NATS (server ${where}): the server requires credentials and ${missing}`, { server: where, cause: e.cause });
      throw e;
    }
    try {
      const jsOpts = { timeout: options.timeout ?? 10_000 };
      const jsm = await jetstreamManager(nc, jsOpts);
      return new ClusterConnection(nc, jetstream(nc, jsOpts), jsm, options, redactor, servers);
    } catch (err) {
      await nc.close().catch(() => undefined);
      const e = clusterError(err, 'JetStream is not available', { server: where, redactor });
      throw new ClusterError(e.code === 'ERR_CLUSTER_JETSTREAM' ? 'ERR_CLUSTER_JETSTREAM' : e.code, `${e.message} (start nats-server with JetStream: nats-server -js)`, { server: where, cause: e.cause });
    }
  }

  /** The server this connection is on now (`nats://host:port`), or the configured list. */
  server(): string {
    try {
      const s = this.nc.getServer();
      return s ? `nats://${redactUrl(s)}` : this.servers.join(',');
    } catch {
      return this.servers.join(',');
    }
  }

  /** Largest message the server accepts (bytes). */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 1024 * 1024;
  }

  /** Wraps an error of the client: names this server and `subject`, removes secrets. */
  error(err: unknown, what: string, subject?: string): ClusterError {
    return clusterError(err, what, { server: this.server(), subject, redactor: this.redactor });
  }

  /**
   * Runs `op`, retrying transient failures for at most `forMs` of connected time (default: 30 s);
   * while the connection is lost it waits for it, until the connection gives up (`lost`).
   */
  retry<T>(what: string, subject: string | undefined, op: () => Promise<T>, forMs = 30_000, signal?: AbortSignal): Promise<T> {
    return retrying(op, { what, subject, server: () => this.server(), redactor: this.redactor, forMs, signal, downMs: () => this.downMs(), lost: this.lost });
  }

  /**
   * Creates a stream, or updates it when its subjects or limits differ (unless `update` is false). The name and subjects are
   * taken as given (use {@link names}). Replicas and storage default to the connection's.
   */
  ensureStream(config: Partial<StreamConfig> & { name: string; subjects: string[] }, options: { update?: boolean } = {}): Promise<StreamInfo> {
    let p = this.streams.get(config.name);
    if (!p) {
      p = this.mayNotCreate(config.name, this.retry(`cannot create stream ${config.name}`, config.name, async () => {
        const want: Partial<StreamConfig> & { name: string } = {
          num_replicas: this.replicas,
          storage: this.storage,
          discard: DiscardPolicy.Old,
          retention: RetentionPolicy.Limits,
          ...config,
        };
        try {
          const info = await this.jsm.streams.info(config.name);
          const c = info.config;
          // Storage and retention cannot change; replicas change only when asked for (a client that
          // did not say must not shrink a replicated stream).
          const fixed = new Set<string>(['storage', 'retention', ...(this.replicasGiven ? [] : ['num_replicas'])]);
          const differs = (Object.keys(want) as (keyof StreamConfig)[]).some((k) => !fixed.has(k) && JSON.stringify(c[k]) !== JSON.stringify(want[k]));
          if (!differs || options.update === false) return info;
          const update = { ...c, ...want, storage: c.storage, retention: c.retention };
          if (!this.replicasGiven) update.num_replicas = c.num_replicas;
          return await this.jsm.streams.update(config.name, update);
        } catch (err) {
          if (!/not found/i.test(String((err as Error).message))) throw err;
          return await this.jsm.streams.add(want);
        }
      }));
      this.streams.set(config.name, p);
      p.catch(() => this.streams.delete(config.name));
    }
    return p;
  }

  /** A permission refused while creating (or changing) `name`: says who can create it. */
  private mayNotCreate<T>(name: string, p: Promise<T>): Promise<T> {
    return p.catch((err: ClusterError) => {
      if (err?.code !== 'ERR_CLUSTER_AUTH') throw err;
      throw new ClusterError('ERR_CLUSTER_AUTH', `${err.message}. This user may not create or change ${name}: a user who may (an administrator) creates a project's streams, buckets and stores once with \`ringpipe cluster init --project ${this.names.project}\` (docs/cluster.md, Security model)`, { server: err.server ?? this.server(), subject: name, cause: err.cause });
    });
  }

  /** Whether stream `name` exists. */
  streamExists(name: string): Promise<boolean> {
    return this.retry('cannot look up a stream', name, async () => {
      try {
        await this.jsm.streams.info(name);
        return true;
      } catch (err) {
        if (/not found/i.test(String((err as Error).message))) return false;
        throw err;
      }
    });
  }

  /** A KV bucket of this project (`rp_<project>_<kind>`), created when missing. */
  kv(kind: string, options: Partial<KvOptions> = {}): Promise<KV> {
    const name = this.names.bucket(kind);
    let p = this.buckets.get(name);
    if (!p) {
      this.kvm ??= new Kvm(this.js);
      const kvm = this.kvm;
      p = this.mayNotCreate(name, this.retry(`cannot open KV bucket ${name}`, name, () =>
        kvm.create(name, { replicas: this.replicas, storage: this.storage, ...options }),
      ));
      this.buckets.set(name, p);
      p.catch(() => this.buckets.delete(name));
    }
    return p;
  }

  /**
   * Messages per subject of `stream` under `filter` (empty when the stream does not exist): one
   * request, paged by the client. Listing by subject counts has an end; `kv.keys()` and
   * `store.list()` count the entries first and wait for that many, so an entry replaced while they
   * list leaves them waiting for ever (`cluster gc` hung so under load).
   */
  async subjectCounts(stream: string, filter: string): Promise<Map<string, number>> {
    const subjects = await this.retry('cannot read a stream', stream, async () => {
      try {
        return (await this.jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
      } catch (err) {
        if (/not found/i.test(String((err as Error).message))) return {};
        throw err;
      }
    });
    return new Map(Object.entries(subjects));
  }

  /** The keys of this project's KV bucket `kind`, with a value or a delete marker (callers `get` each and skip what is not a PUT). */
  async kvKeys(kind: string): Promise<string[]> {
    const prefix = `$KV.${this.names.bucket(kind)}.`;
    return [...(await this.subjectCounts(`KV_${this.names.bucket(kind)}`, `${prefix}>`)).keys()].map((s) => s.slice(prefix.length)).sort();
  }

  /** The names of the live (not deleted) objects in this project's object store `kind`. */
  async objectNames(kind: string): Promise<string[]> {
    const stream = `OBJ_${this.names.bucket(kind)}`;
    const names: string[] = [];
    for (const subject of (await this.subjectCounts(stream, `$O.${this.names.bucket(kind)}.M.>`)).keys()) {
      const m = await this.retry('cannot read an object', subject, () => this.jsm.streams.getMessage(stream, { last_by_subj: subject }));
      const info = m?.json<{ name: string; deleted?: boolean }>();
      if (info && !info.deleted) names.push(info.name);
    }
    return names.sort();
  }

  /** An object store of this project (`rp_<project>_<kind>`), created when missing. */
  objectStore(kind: string, options: Partial<ObjectStoreOptions> = {}): Promise<ObjectStore> {
    const name = this.names.bucket(kind);
    let p = this.stores.get(name);
    if (!p) {
      this.objm ??= new Objm(this.js);
      const objm = this.objm;
      p = this.mayNotCreate(name, this.retry(`cannot open object store ${name}`, name, () =>
        objm.create(name, { replicas: this.replicas, storage: this.storage, ...options }),
      ));
      this.stores.set(name, p);
      p.catch(() => this.stores.delete(name));
    }
    return p;
  }

  /** Flushes and closes the connection (without a server: closes at once, nothing can be flushed). */
  async close(): Promise<void> {
    clearTimeout(this.giveUp);
    if (this.nc.isClosed()) return;
    if (!this.down) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.nc.drain().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, this.timeout)))]);
      clearTimeout(timer);
    }
    await this.nc.close().catch(() => undefined);
  }
}

/** What is missing when `options` carry no usable credentials (fields, or user info in a URL); undefined when some were given. */
function missingCredentials(options: ClusterOptions): string | undefined {
  const p = parseServers(options.servers);
  const user = options.user ?? p.user, password = options.password ?? p.password;
  if (options.token || p.token || options.nkeySeed || options.nkeyFile || options.credsFile || (user && password)) return undefined;
  if (user) return `user '${user}' was given without a password (--password-file FILE or $NATS_PASSWORD; option password)`;
  if (password) return 'a password was given without a user (--user NAME; option user)';
  return 'none were given (--user with --password-file or $NATS_PASSWORD, --token-file or $NATS_TOKEN, --nkey, --creds; options user and password, token, nkeyFile, credsFile)';
}

/** Options or an open connection: functions that take either open (and later close) their own. */
export type ClusterTarget = ClusterOptions | ClusterConnection;

/** An open connection for `target`, and whether the caller owns it (must close it). */
export async function useConnection(target: ClusterTarget): Promise<{ conn: ClusterConnection; owned: boolean }> {
  if (target instanceof ClusterConnection) return { conn: target, owned: false };
  return { conn: await ClusterConnection.open(target), owned: true };
}
