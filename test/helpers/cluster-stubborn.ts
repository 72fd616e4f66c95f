// Work functions that do not stop when asked (agents import this module by path): they show whether
// the agent really terminates an item, with the processes it started.
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import type { WorkContext } from '../../src/cluster/index.js';

/** Spins synchronously forever, appending to `marker` every 100 ms (it never returns to its event loop). */
export function spin(p: { marker: string }): never {
  let last = 0;
  for (;;) {
    if (Date.now() - last >= 100) {
      last = Date.now();
      appendFileSync(p.marker, 's');
    }
  }
}

/**
 * Ignores its signal: starts a child process that appends to `marker` at once and every 100 ms, appends to it
 * itself every 100 ms, and awaits a promise that never settles.
 */
export async function ignore(p: { marker: string }, ctx: WorkContext): Promise<never> {
  const code = `const f = () => require('node:fs').appendFileSync(${JSON.stringify(p.marker)}, 'c'); f(); setInterval(f, 100)`;
  spawn(process.execPath, ['-e', code], { stdio: 'ignore', env: ctx.env });
  setInterval(() => appendFileSync(p.marker, 'i'), 100);
  ctx.signal.addEventListener('abort', () => ctx.log('aborted, and not stopping'));
  return new Promise<never>(() => undefined);
}

/** A quick item: returns its argument and the process it ran in. */
export function quick(p: { x: number }) {
  return { x: p.x, pid: process.pid };
}
