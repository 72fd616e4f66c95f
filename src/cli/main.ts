#!/usr/bin/env node
// The `ringpipe` executable.
import { runCli } from './program.js';

const controller = new AbortController();
let interrupts = 0;
const onSignal = (sig: NodeJS.Signals) => {
  interrupts++;
  if (interrupts > 1) process.exit(130); // a second Ctrl-C: stop now
  process.stderr.write(`\n${sig}: stopping (press Ctrl-C again to quit at once)\n`);
  controller.abort(new Error(`interrupted by ${sig}`));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const code = await runCli(process.argv.slice(2), { out: process.stdout, err: process.stderr, tty: !!process.stderr.isTTY }, controller.signal);
process.exitCode = code;
