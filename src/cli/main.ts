#!/usr/bin/env node
// The `ringpipe` executable. Signal handlers come first: a SIGTERM while the commands load (a few
// hundred ms) then cancels the command like any other, instead of killing the process.
import { OutputClosedError } from './errors.js';

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

// A reader that went away (`ringpipe ... | head -1`) closes our stdout: stop the command quietly, as
// a signal would, instead of dying on an unhandled EPIPE with a stack. Later writes go nowhere.
let outputClosed = false;
const onOutputError = (err: NodeJS.ErrnoException) => {
  if (outputClosed) return;
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  outputClosed = true;
  controller.abort(new OutputClosedError());
};
process.stdout.on('error', onOutputError);
process.stderr.on('error', onOutputError);

const { runCli } = await import('./program.js');
const code = await runCli(process.argv.slice(2), { out: process.stdout, err: process.stderr, tty: !!process.stderr.isTTY }, controller.signal);
process.exitCode = code;
