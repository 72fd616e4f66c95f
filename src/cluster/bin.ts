#!/usr/bin/env node
// Standalone entry of the cluster commands: `node dist/cluster/bin.js agent --nats URL ...` and
// `node dist/cluster/bin.js cluster status --nats URL` (the same commands `ringpipe` offers).
import { Command, CommanderError } from 'commander';
import { RingpipeError } from '../errors.js';
import { registerClusterCommands } from './cli.js';

const controller = new AbortController();
let interrupts = 0;
const onSignal = (sig: NodeJS.Signals) => {
  if (++interrupts > 1) process.exit(130);
  process.stderr.write(`\n${sig}: stopping (again to quit at once)\n`);
  controller.abort(new Error(`interrupted by ${sig}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const io = { out: process.stdout, err: process.stderr, tty: !!process.stderr.isTTY };
let code = 0;
const program = new Command('ringpipe').exitOverride();
const commands = registerClusterCommands(program, io, controller.signal, (c) => (code = c));
for (const c of commands) c.exitOverride();
try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch (err) {
  if (err instanceof CommanderError) code = err.exitCode === 0 ? 0 : 2;
  else {
    process.stderr.write(`error: ${err instanceof RingpipeError || err instanceof Error ? err.message : String(err)}\n`);
    code = err instanceof RingpipeError && err.code === 'ERR_CLUSTER_OPTIONS' ? 2 : 1;
  }
}
process.exitCode = code;
