// Real nats-server processes for tests and benchmarks: loopback only, JetStream on, a temporary
// store directory each, free ports, optional credentials, single servers or a 3-server cluster with
// routes. Everything started here is killed and its directory removed by stopAll() (call it in
// afterAll), and at the latest when this process exits.
//
// nats-server must be installed: ensureServer() finds it or installs it (apt-get, as root) and
// otherwise throws with the reason, so the tests that need it FAIL instead of being skipped.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { ensureNatsServer } from '../../scripts/nats-server.mjs';

let binary: string | undefined;

/** Path of nats-server; installs it when missing and possible, else throws saying why. */
export function ensureServer(): string {
  if (binary) return binary;
  try {
    binary = ensureNatsServer({ log: (m) => process.stderr.write(`[nats] ${m}\n`) }).path;
  } catch (err) {
    throw new Error(`cluster tests need a real nats-server and none could be found or installed: ${(err as Error).message}`);
  }
  return binary;
}

/** A free TCP port on 127.0.0.1 (bound once and released; nats-server cannot use port 0 for routes). */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

/** `n` distinct free ports: all are held at once while they are picked (one at a time, the OS may hand out the same port twice). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = Array.from({ length: n }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (s) =>
          new Promise<number>((resolve, reject) => {
            s.unref();
            s.once('error', reject);
            s.listen(0, '127.0.0.1', () => resolve((s.address() as { port: number }).port));
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

export interface ServerOptions {
  /** Name of the server (also its JetStream server_name). */
  name?: string;
  /** Required credentials. */
  auth?: { user: string; password: string } | { token: string };
  /** Largest message the server accepts (bytes). Default: the server's 1 MiB. */
  maxPayload?: number;
  /** JetStream file store limit in bytes (default 2 GiB). */
  maxFileStore?: number;
  /** TLS: the server's certificate and key (PEM files); with `caFile` and `verify`, client certificates are required. */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean };
  /** Configuration files copied (unchanged) beside the server's own and included by it, e.g. accounts. */
  include?: string[];
  /** Environment of the server process (variables its configuration refers to). */
  env?: Record<string, string>;
  /** Credentials the readiness check connects with, when `include`d accounts require them. */
  login?: { user: string; password: string };
}

/** One running (or stopped) nats-server. */
export interface TestServer {
  readonly name: string;
  /** nats://127.0.0.1:port (no credentials in it). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly process: ChildProcess | undefined;
  /** The server's log so far. */
  log(): string;
  /** SIGKILL (default) or SIGTERM, and wait until it is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again with the same ports and store. */
  restart(): Promise<void>;
}

interface Internal extends TestServer {
  start(): Promise<void>;
}

const running = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHook = false;

function installExitHook() {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const p of running) p.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function configText(o: {
  name: string; port: number; dir: string; opts: ServerOptions;
  cluster?: { port: number; routes: number[]; name: string };
}): string {
  const lines = [
    `server_name: ${JSON.stringify(o.name)}`,
    `listen: "127.0.0.1:${o.port}"`,
    `jetstream { store_dir: ${JSON.stringify(join(o.dir, 'js'))}, max_memory_store: 268435456, max_file_store: ${o.opts.maxFileStore ?? 2147483648} }`,
  ];
  if (o.opts.maxPayload) lines.push(`max_payload: ${o.opts.maxPayload}`);
  const t = o.opts.tls;
  if (t) {
    const ca = t.caFile ? `, ca_file: ${JSON.stringify(t.caFile)}` : '';
    lines.push(`tls { cert_file: ${JSON.stringify(t.certFile)}, key_file: ${JSON.stringify(t.keyFile)}${ca}, verify: ${t.verify ? 'true' : 'false'}, timeout: 5 }`);
  }
  const a = o.opts.auth;
  if (a && 'token' in a) lines.push(`authorization { token: ${JSON.stringify(a.token)} }`);
  else if (a) lines.push(`authorization { user: ${JSON.stringify(a.user)}, password: ${JSON.stringify(a.password)} }`);
  for (const f of o.opts.include ?? []) lines.push(`include ./${basename(f)}`);
  if (o.cluster) {
    const routes = o.cluster.routes.map((p) => `"nats-route://127.0.0.1:${p}"`).join(', ');
    lines.push(`cluster { name: ${JSON.stringify(o.cluster.name)}, listen: "127.0.0.1:${o.cluster.port}", routes: [${routes}] }`);
  }
  return lines.join('\n') + '\n';
}

function makeServer(name: string, port: number, dir: string, config: string, opts: ServerOptions): Internal {
  const confFile = join(dir, 'server.conf');
  const logFile = join(dir, 'server.log');
  writeFileSync(confFile, config);
  for (const f of opts.include ?? []) copyFileSync(f, join(dir, basename(f)));
  let proc: ChildProcess | undefined;
  const log = () => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  const server: Internal = {
    name,
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    get process() {
      return proc;
    },
    log,
    async start() {
      const fd = openSync(logFile, 'a');
      try {
        proc = spawn(ensureServer(), ['-c', confFile], { stdio: ['ignore', fd, fd], env: { ...process.env, ...opts.env } });
      } finally {
        closeSync(fd);
      }
      const p = proc;
      running.add(p);
      p.once('exit', () => running.delete(p));
      // Ready when it listens (a TCP connect works); JetStream readiness is waited for by callers.
      const deadline = Date.now() + 20_000;
      for (;;) {
        if (p.exitCode !== null || p.signalCode !== null) {
          throw new Error(`nats-server '${name}' exited at start (${p.exitCode ?? p.signalCode}); its log:\n${log().slice(-2000)}`);
        }
        if (/Server is ready/.test(log())) return;
        if (Date.now() > deadline) throw new Error(`nats-server '${name}' did not become ready in 20 s; its log:\n${log().slice(-2000)}`);
        await delay(25);
      }
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      const p = proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill(signal);
      await Promise.race([gone, delay(15_000)]);
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await gone;
      }
    },
    async restart() {
      await server.kill('SIGTERM');
      await server.start();
    },
  };
  return server;
}

/** Starts one server with JetStream. */
export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  ensureServer();
  installExitHook();
  const name = opts.name ?? `rp-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), 'ringpipe-nats-'));
  dirs.add(dir);
  // A port picked here may be taken before the server binds it: retry a few times.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const s = makeServer(name, port, dir, configText({ name, port, dir, opts }), opts);
    try {
      await s.start();
      await waitForJetStream(s.url, opts.auth ?? opts.login, 20_000, opts.tls);
      return s;
    } catch (err) {
      await s.kill();
      if (attempt >= 2 || !/address already in use/i.test(s.log())) throw err;
    }
  }
}

/** Starts a cluster of `size` servers (routes between all), JetStream on each; resolves once JetStream answers. */
export async function startCluster(size = 3, opts: Omit<ServerOptions, 'name'> = {}): Promise<TestServer[]> {
  ensureServer();
  installExitHook();
  const clusterName = `rp-${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
  // Ports picked here may be taken by another test's server before ours bind them: retry a few times.
  for (let attempt = 0; ; attempt++) {
    const ports = await freePorts(2 * size);
    const clientPorts = ports.slice(0, size);
    const routePorts = ports.slice(size);
    const servers: Internal[] = [];
    for (let i = 0; i < size; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'ringpipe-nats-'));
      dirs.add(dir);
      const name = `${clusterName}-n${i + 1}`;
      const config = configText({ name, port: clientPorts[i]!, dir, opts, cluster: { name: clusterName, port: routePorts[i]!, routes: routePorts.filter((_, j) => j !== i) } });
      servers.push(makeServer(name, clientPorts[i]!, dir, config, opts));
    }
    try {
      await Promise.all(servers.map((s) => s.start()));
      for (const s of servers) await waitForJetStream(s.url, opts.auth, 45_000, opts.tls);
      return servers;
    } catch (err) {
      await Promise.all(servers.map((s) => s.kill()));
      if (attempt >= 2 || !servers.some((s) => /address already in use/i.test(s.log()))) throw err;
    }
  }
}

/** Waits until JetStream answers an account-info request through `url` (a clustered meta leader is elected). */
export async function waitForJetStream(url: string, auth?: ServerOptions['auth'], timeoutMs = 20_000, tls?: ServerOptions['tls']): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const nc = await connect({
      servers: url,
      timeout: 2_000,
      reconnect: false,
      ...(auth && 'token' in auth ? { token: auth.token } : auth ? { user: auth.user, pass: auth.password } : {}),
      ...(tls ? { tls: { ...(tls.caFile ? { caFile: tls.caFile } : {}), ...(tls.verify ? { certFile: tls.certFile, keyFile: tls.keyFile } : {}) } } : {}),
    }).catch((e) => {
      last = e;
      return undefined;
    });
    if (nc) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 });
        await jsm.getAccountInfo();
        return;
      } catch (e) {
        last = e;
      } finally {
        await nc.close().catch(() => undefined);
      }
    }
    await delay(200);
  }
  throw new Error(`JetStream at ${url} did not become available in ${timeoutMs / 1000} s: ${(last as Error)?.message ?? last}`);
}

/** Kills every server started here and removes their directories. */
export async function stopAll(): Promise<void> {
  const procs = [...running];
  await Promise.all(
    procs.map(
      (p) =>
        new Promise<void>((resolve) => {
          if (p.exitCode !== null || p.signalCode !== null) return resolve();
          const t = setTimeout(resolve, 10_000);
          p.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          p.kill('SIGKILL');
        }),
    ),
  );
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}
