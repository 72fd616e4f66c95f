// `ringpipe demo [--out DIR] [--quick] [--seed N]`: the embedded example (src/demo/demo.ts) end to end
// on generated data: image preprocessing on the engine, then a small sweep; prints the results table.
import type { DemoResult } from '../../demo/demo.js';
import { paramString } from '../../sweep/format.js';
import { UsageError } from '../errors.js';
import { cellValue, line, seconds, table, type Io } from '../format.js';

/** Options of `ringpipe demo`. */
export interface DemoCommandOptions {
  /** Keep the result files here. */
  out?: string;
  /** The smaller run. */
  quick?: boolean;
  /** Seed of data, split and shuffling. */
  seed?: number;
}

/** commander argument parser for `--seed`. */
export function seedArg(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < 0) throw new UsageError(`expected a non-negative integer seed, got '${value}'`);
  return n;
}

const acc = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(3) : '');

/** The results table: one row per trial. */
export function demoTable(r: DemoResult): string {
  const rows = r.sweep.trials.map((t) => {
    const shown = Object.fromEntries(r.searched.map((k) => [k, t.params[k]]));
    const failed = t.state === 'failed';
    return [
      t.id,
      paramString(shown),
      t.state,
      String(t.history.length),
      failed ? 'failed' : acc(t.score),
      failed ? 'failed' : acc(t.testAccuracy),
      t.backend ?? '',
      t.seconds === undefined ? '' : seconds(t.seconds),
    ];
  });
  return table(['trial', 'params', 'status', 'epochs', 'val accuracy', 'test accuracy', 'backend', 'time'], rows);
}

/** `ringpipe demo`; returns the exit code (0 ok, 1 a failed step, a failed trial or an implausibly low accuracy). */
export async function demoCommand(opts: DemoCommandOptions, io: Io, signal: AbortSignal): Promise<number> {
  line(io.err, `ringpipe demo${opts.quick ? ' --quick' : ''}: synthetic images -> preprocessing on the engine -> a sweep of TensorFlow.js MLPs`);
  // Loaded on use: the demo pulls in sharp, the image pipeline and the sweep, which other commands do not need.
  const { DEMO_MIN_ACCURACY, runDemo } = await import('../../demo/demo.js');
  const r = await runDemo({
    out: opts.out,
    quick: opts.quick,
    seed: opts.seed,
    signal,
    log: (s) => line(io.err, s),
    console: io.tty ? 'table' : 'lines',
    consoleStream: { write: (s: string) => io.err.write(s), isTTY: io.tty },
  });

  const s = r.sweep;
  line(io.out, '');
  line(io.out, `Results: ${s.trials.length} trials, ${r.split.train} training / ${r.split.validation} validation / ${r.split.test} test images, ${r.config.epochs} epochs; chance accuracy ${r.chance.toFixed(3)}`);
  line(io.out, demoTable(r));
  const failed = s.trials.filter((t) => t.state === 'failed');
  for (const t of failed) line(io.out, `trial ${t.id} failed: ${t.error?.message ?? 'unknown error'}`);
  if (s.best) {
    line(io.out, `best: trial ${s.best.id} (${paramString(Object.fromEntries(r.searched.map((k) => [k, s.best!.params[k]])))}): validation accuracy ${acc(s.best.score)} at epoch ${s.best.epoch}, test accuracy ${acc(s.best.testAccuracy)}`);
  }
  const backends = [...new Set(s.trials.map((t) => t.backendDetail).filter(Boolean))];
  if (backends.length) line(io.out, `backend: ${backends.join('; ')}`);
  line(
    io.out,
    `preprocessing: ${r.preprocess.images} images -> [${r.preprocess.sampleShape.join(', ')}] ${r.preprocess.dtype} tensors by ${r.preprocess.workers} engine workers in ${seconds(r.preprocess.seconds)} (${cellValue(Math.round(r.preprocess.imagesPerSecond))} images/s)`,
  );
  if (s.files) {
    const names = ['results.json', 'results.csv', 'history.csv', 'learning-curves.html', ...(s.best?.modelDir ? ['best-model/'] : [])];
    line(io.out, `result files: ${r.out} (${names.join(', ')})`);
    if (!r.kept) line(io.out, '  (a temporary folder, now removed with the generated data; run with --out DIR to keep them)');
  }
  line(io.out, `done in ${seconds(r.seconds)}`);

  if (failed.length) {
    line(io.err, `error: ${failed.length} of ${s.trials.length} trials failed`);
    return 1;
  }
  if (!s.best || !(s.best.score >= DEMO_MIN_ACCURACY)) {
    line(io.err, `error: the best validation accuracy (${acc(s.best?.score) || 'none'}) is not above ${DEMO_MIN_ACCURACY}: something in the pipeline is broken`);
    return 1;
  }
  return 0;
}
