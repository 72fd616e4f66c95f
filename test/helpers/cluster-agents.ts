// Agents as child processes (`src/cluster/bin.ts agent ...` through tsx), for tests and benchmarks.
// Every agent started here is SIGKILLed by killAgents() and when this process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repoRoot, 'src', 'cluster', 'bin.ts');
const children = new Set<ChildProcess>();
let hooked = false;

export interface SpawnedAgent {
  readonly name: string;
  readonly process: ChildProcess;
  /** Everything it printed (stdout + stderr). */
  output(): string;
  /** Resolves with the exit code (or signal) when it exits. */
  readonly exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

/** Starts `ringpipe agent` with `args` (e.g. ['--nats', url, '--project', p, '--slots', '1']). */
export function spawnAgent(name: string, args: string[], env: NodeJS.ProcessEnv = {}): SpawnedAgent {
  if (!hooked) {
    hooked = true;
    process.once('exit', () => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  const proc = spawn(process.execPath, ['--import', 'tsx', bin, 'agent', '--name', name, '--root', repoRoot, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    proc.once('exit', (code, signal) => {
      children.delete(proc);
      resolve(code ?? signal ?? -1);
    }),
  );
  return { name, process: proc, output: () => out, exited, kill: (s = 'SIGKILL') => void proc.kill(s) };
}

/** SIGKILLs every agent still running and waits for them to exit. */
export async function killAgents(): Promise<void> {
  const all = [...children];
  await Promise.all(all.map((c) => new Promise<void>((r) => {
    if (c.exitCode !== null || c.signalCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGKILL');
  })));
}

/** Runs the cluster CLI (`src/cluster/bin.ts args...`) to completion; resolves with its exit code and output. */
export function runClusterCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', bin, ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`cluster CLI ${args.join(' ')} did not finish in ${timeoutMs / 1000} s; stdout: ${stdout || '(none)'}; stderr: ${stderr || '(none)'}`));
    }, timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}
