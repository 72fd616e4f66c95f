// Where the CLI writes: a reader that goes away (`| head -1`) stops a command quietly.
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupProjects, cliProcess, makeProject } from './fixtures/config/helpers.js';

afterAll(cleanupProjects);

const ten = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
const wide = () => ({ g: { type: 'grid_search_parameters', a: ten, b: ten, c: ten, d: [0, 1, 2, 3, 4] }, s: { run: './steps.mjs#square', inputs: ['g'] } }); // 5,000 branches: more than a pipe holds

/** Runs the CLI as a process and closes its stdout after the first chunk, as `| head -1` does. */
async function closedAfterFirstChunk(args: string[]) {
  const run = cliProcess(args);
  let first = '';
  run.child.stdout!.once('data', (c) => {
    first = String(c);
    run.child.stdout!.destroy();
  });
  const r = await run;
  return { ...r, first };
}

describe('a closed stdout', () => {
  for (const args of [
    ['graph', 'PIPELINE', '--branches'],
    ['run', 'PIPELINE', '--dry-run'],
    ['run', 'PIPELINE', '--dry-run', '--json'],
  ]) {
    it(`ringpipe ${args.join(' ')} | head -1: no EPIPE stack, no error`, async () => {
      const p = makeProject(wide());
      const r = await closedAfterFirstChunk(args.map((a) => (a === 'PIPELINE' ? p.file : a)));
      expect(r.first.length).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(/EPIPE|Unhandled|^\s+at /m);
      expect(r.signal).toBeNull();
      expect(r.code).toBe(0);
    }, 60_000);
  }
});
