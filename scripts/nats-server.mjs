#!/usr/bin/env node
// Makes sure a `nats-server` binary is available (ringpipe's cluster tests and benchmarks start
// real servers on loopback).
//
//   node scripts/nats-server.mjs --ensure   find it, or install it (Debian/Ubuntu, as root), print its path
//   node scripts/nats-server.mjs --which    print its path, or exit 1 with the reason
//
// Looked for, in order: $NATS_SERVER (a path), PATH, /usr/sbin, /usr/bin, /usr/local/bin. When it is
// missing and this process runs as root with apt-get available, `apt-get install -y nats-server` is
// run (after `apt-get update` when the package is unknown). Otherwise it fails with a message that
// says how to install it; it never downloads anything else.
import { spawnSync } from 'node:child_process';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { aptInstall, aptUnavailable, executable } from './apt.mjs';

const BINARY = 'nats-server';
const EXTRA_DIRS = ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin'];

/** Thrown when nats-server is neither present nor installable. `code` is stable. */
export class NatsServerMissingError extends Error {
  constructor(message) {
    super(message);
    this.name = 'NatsServerMissingError';
    this.code = 'ERR_NATS_SERVER_MISSING';
  }
}

/** The path of nats-server, or undefined. */
export function findNatsServer(env = process.env) {
  if (env.NATS_SERVER) return executable(env.NATS_SERVER) ? env.NATS_SERVER : undefined;
  const dirs = [...(env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const p = join(dir, BINARY);
    if (executable(p)) return p;
  }
  return undefined;
}

/** `nats-server --version`, e.g. "2.9.10", or undefined when it does not answer. */
export function natsServerVersion(path) {
  const r = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const m = /v?(\d+\.\d+\.\d+)/.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`);
  return m ? m[1] : undefined;
}

/**
 * Finds nats-server, installing it with apt-get when missing and allowed (root + apt-get).
 * Returns `{ path, version, installed }`; throws {@link NatsServerMissingError} otherwise.
 */
export function ensureNatsServer({ install = true, log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const found = findNatsServer();
  if (found) return { path: found, version: natsServerVersion(found), installed: false };
  const hint = 'install it (Debian/Ubuntu: `apt-get install -y nats-server`; or a release from https://github.com/nats-io/nats-server/releases) or set NATS_SERVER to its path';
  if (process.env.NATS_SERVER) throw new NatsServerMissingError(`NATS_SERVER=${process.env.NATS_SERVER} is not an executable file: ${hint}`);
  if (!install) throw new NatsServerMissingError(`nats-server was not found in PATH or ${EXTRA_DIRS.join(', ')}: ${hint}`);
  const why = aptUnavailable();
  if (why) {
    throw new NatsServerMissingError(`nats-server was not found in PATH or ${EXTRA_DIRS.join(', ')}, and it cannot be installed automatically (${why}): ${hint}`);
  }
  log('nats-server is missing');
  const r = aptInstall(BINARY, log);
  const path = findNatsServer();
  if (!r.ok || !path) throw new NatsServerMissingError(`could not install nats-server with apt-get: ${r.output}; ${hint}`);
  return { path, version: natsServerVersion(path), installed: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  try {
    const r = ensureNatsServer({ install: !args.includes('--which') });
    console.log(r.path);
    if (r.installed) console.error(`installed nats-server ${r.version ?? ''}`.trim());
  } catch (err) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
}
