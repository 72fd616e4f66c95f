// Installs a Debian package for the project's own scripts (nats-server for the cluster tests,
// libjemalloc2 for the image benchmarks, libjpeg62-turbo-dev for the addon's build), when this
// process may: root, with apt-get. Never downloads anything but Debian's packages.
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

export function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function run(cmd, args, timeoutMs) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`.trim() };
}

/**
 * Why packages cannot be installed here (no apt-get, not root), or undefined when they can.
 */
const aptGet = () => ['/usr/bin/apt-get', '/bin/apt-get'].find(executable);

export function aptUnavailable() {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!aptGet()) return 'no apt-get on this machine';
  if (!isRoot) return 'not running as root';
  return undefined;
}

/**
 * `apt-get install -y pkg`, with `apt-get update` and a second try when the first fails.
 * Returns `{ ok, output }` (the last lines of apt's output when it failed).
 */
export function aptInstall(pkg, log = (m) => process.stderr.write(`${m}\n`)) {
  const why = aptUnavailable();
  if (why) return { ok: false, output: why };
  const apt = aptGet();
  log(`installing ${pkg} with apt-get (Debian package ${pkg})`);
  let r = run(apt, ['install', '-y', '-q', pkg], 600_000);
  if (!r.ok) {
    log('apt-get install failed; running apt-get update and trying again');
    const u = run(apt, ['update', '-q'], 600_000);
    r = u.ok ? run(apt, ['install', '-y', '-q', pkg], 600_000) : u;
  }
  return { ok: r.ok, output: r.output.split('\n').slice(-5).join(' | ') };
}
