// Credentials and TLS against real nats-servers: a wrong password fails with a clear error naming
// the server, and no secret ever appears in an error or in the CLI's output; tokens; TLS with a CA
// and client certificates; unreachable servers.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterConnection, LinkWriter, Redactor, clusterStatus, redactUrl } from '../src/cluster/index.js';
import { freePort, startServer, stopAll, type TestServer } from './helpers/nats.js';
import { killAgents, runClusterCli } from './helpers/cluster-agents.js';

const PASSWORD = 's3cret-Pa55word-xyz';
const WRONG = 'wr0ng-Pa55word-abc';
const TOKEN = 'tok-0123456789-abcdef';
let withPassword: TestServer, withToken: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'rp-auth-'));

beforeAll(async () => {
  [withPassword, withToken] = await Promise.all([
    startServer({ auth: { user: 'alice', password: PASSWORD } }),
    startServer({ auth: { token: TOKEN } }),
  ]);
}, 60_000);
afterAll(async () => {
  await killAgents();
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const failure = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a failure'); }, (e) => e as Error & { code: string; server?: string });
const noSecret = (text: string) => {
  for (const s of [PASSWORD, WRONG, TOKEN, 'wrong-token-42']) expect(text).not.toContain(s);
};
const everything = (e: Error) => `${e.message}\n${e.stack}\n${JSON.stringify(e)}\n${(e.cause as Error)?.message ?? ''}\n${(e.cause as Error)?.stack ?? ''}`;

describe('credentials', () => {
  it('user/password: the right one connects; a wrong one fails naming the server, never showing a password', async () => {
    const ok = await ClusterConnection.open({ servers: withPassword.url, user: 'alice', password: PASSWORD, project: 'auth' });
    const w = await LinkWriter.open(ok, { link: 'a' });
    await w.write('works');
    await w.end();
    await ok.close();

    const err = await failure(ClusterConnection.open({ servers: withPassword.url, user: 'alice', password: WRONG, timeout: 5_000 }));
    expect(err.code).toBe('ERR_CLUSTER_AUTH');
    expect(err.server).toBe(withPassword.url);
    expect(err.message).toContain(withPassword.url);
    expect(err.message).toMatch(/authori[sz]ation/i);
    noSecret(everything(err));

    // The same with the password inside the URL.
    const inUrl = withPassword.url.replace('nats://', `nats://alice:${WRONG}@`);
    const err2 = await failure(ClusterConnection.open({ servers: inUrl, timeout: 5_000 }));
    expect(err2.code).toBe('ERR_CLUSTER_AUTH');
    expect(err2.message).toContain(withPassword.url);
    noSecret(everything(err2));
    const good = await ClusterConnection.open({ servers: withPassword.url.replace('nats://', `nats://alice:${PASSWORD}@`) });
    expect(good.server()).toBe(withPassword.url);
    await good.close();

    // No credentials at all, or half of them: said so, rather than "refused the credentials".
    const err3 = await failure(ClusterConnection.open({ servers: withPassword.url, timeout: 5_000 }));
    expect(err3.code).toBe('ERR_CLUSTER_AUTH');
    expect(err3.message).toMatch(/requires credentials and none were given \(--user with --password-file/);
    const err4 = await failure(ClusterConnection.open({ servers: withPassword.url, user: 'alice', timeout: 5_000 }));
    expect(err4.message).toMatch(/user 'alice' was given without a password/);
  });

  it('token: a wrong token fails without showing it', async () => {
    const ok = await ClusterConnection.open({ servers: withToken.url, token: TOKEN });
    await ok.close();
    const err = await failure(ClusterConnection.open({ servers: withToken.url, token: 'wrong-token-42', timeout: 5_000 }));
    expect(err.code).toBe('ERR_CLUSTER_AUTH');
    expect(err.message).toContain(withToken.url);
    noSecret(everything(err));
  });

  it('the CLI reads secrets from files or the environment; a wrong password exits 1 naming the server, printing no secret', async () => {
    const right = join(dir, 'right'), wrong = join(dir, 'wrong');
    writeFileSync(right, `${PASSWORD}\n`);
    writeFileSync(wrong, `${WRONG}\n`);
    const bad = await runClusterCli(['cluster', 'status', '--nats', withPassword.url, '--user', 'alice', '--password-file', wrong]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(withPassword.url);
    expect(bad.stderr).toMatch(/authori[sz]ation/i);
    noSecret(bad.stdout + bad.stderr);
    const agent = await runClusterCli(['agent', '--nats', withPassword.url, '--user', 'alice', '--idle-exit', '1'], { NATS_PASSWORD: WRONG });
    expect(agent.code).toBe(1);
    noSecret(agent.stdout + agent.stderr);
    const good = await runClusterCli(['cluster', 'status', '--nats', withPassword.url, '--user', 'alice', '--password-file', right, '--json']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout).server).toBe(withPassword.url);
    noSecret(good.stdout + good.stderr);
    const status = await clusterStatus({ servers: withPassword.url, user: 'alice', password: PASSWORD });
    noSecret(JSON.stringify(status));
  }, 90_000);

  it('the CLI says when no credential was given', async () => {
    const r = await runClusterCli(['cluster', 'status', '--nats', withPassword.url], { NATS_PASSWORD: '', NATS_USER: '', NATS_TOKEN: '' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the server requires credentials and none were given/);
  });

  it('a port that accepts connections but is no NATS server (or a stopped one) fails within the timeout and the CLI exits 1', async () => {
    const silent = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const url = `nats://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const t0 = Date.now();
      const err = await failure(ClusterConnection.open({ servers: url, timeout: 1_500 }));
      expect(err.code).toBe('ERR_CLUSTER_TIMEOUT');
      expect(err.message).toContain(url);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // The process ends by itself: nothing of the failed dial keeps it alive.
      const r = await runClusterCli(['cluster', 'status', '--nats', url], {}, 40_000);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot connect to NATS (server ${url}): timeout`);
    } finally {
      silent.close();
    }
  }, 60_000);

  it('an unreachable server fails with ERR_CLUSTER_CONNECT naming it', async () => {
    const port = await freePort();
    const url = `nats://127.0.0.1:${port}`;
    const err = await failure(ClusterConnection.open({ servers: url.replace('nats://', `nats://bob:${PASSWORD}@`), timeout: 2_000 }));
    expect(err.code).toBe('ERR_CLUSTER_CONNECT');
    expect(err.message).toContain(url);
    noSecret(everything(err));
  });

  it('redaction helpers remove user info and known secrets', () => {
    expect(redactUrl(`nats://alice:${PASSWORD}@host:4222`)).toBe('nats://host:4222');
    const r = new Redactor();
    r.add(PASSWORD);
    expect(r.text(`failed with ${PASSWORD} at tls://u:p@h:1`)).toBe('failed with *** at tls://***@h:1');
  });
});

describe('TLS', () => {
  const pki = join(dir, 'pki');
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki, stdio: 'pipe' });
  let tlsServer: TestServer;

  beforeAll(async () => {
    execFileSync('mkdir', ['-p', pki]);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    // The client checks the server's name against 'localhost' when it connects to an IP address.
    ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ringpipe test CA');
    writeFileSync(join(pki, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext');
    writeFileSync(join(pki, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    ssl('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=ringpipe-client');
    ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext');
    tlsServer = await startServer({ tls: { certFile: join(pki, 'server.pem'), keyFile: join(pki, 'server.key'), caFile: join(pki, 'ca.pem'), verify: true } });
  }, 60_000);

  it('connects with the CA and a client certificate; fails clearly without them', async () => {
    const tls = { caFile: join(pki, 'ca.pem'), certFile: join(pki, 'client.pem'), keyFile: join(pki, 'client.key') };
    const conn = await ClusterConnection.open({ servers: tlsServer.url.replace('nats://', 'tls://'), tls, project: 'tls' });
    const w = await LinkWriter.open(conn, { link: 'secure' });
    await w.write({ ok: true });
    expect((await w.end()).records).toBe(1);
    await conn.close();
    // Without a client certificate the server refuses; without the CA the client refuses the server.
    const noCert = await failure(ClusterConnection.open({ servers: tlsServer.url, tls: { caFile: tls.caFile }, timeout: 3_000 }));
    expect(noCert).toBeInstanceOf(Error);
    expect(noCert.message).toContain(`127.0.0.1:${tlsServer.port}`);
    const noCa = await failure(ClusterConnection.open({ servers: tlsServer.url, tls: { certFile: tls.certFile, keyFile: tls.keyFile }, timeout: 3_000 }));
    expect(noCa.message).toContain(`127.0.0.1:${tlsServer.port}`);
    expect(noCa.message).not.toContain('BEGIN');
  });
});
