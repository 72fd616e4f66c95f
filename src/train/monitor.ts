/** Tracking of one metric across epochs: best value, best epoch, epochs without improvement. */
import { InvalidArgumentError } from '../errors.js';

/** Which direction is better for a metric. `'auto'`: `'min'` when its name contains "loss", else `'max'`. */
export type MonitorMode = 'min' | 'max' | 'auto';

/** A metric to watch, its direction, and the smallest change that counts. */
export interface MonitorOptions {
  /** Metric name as reported per epoch, e.g. `'val_loss'`, `'val_acc'`, `'loss'`. */
  monitor: string;
  /** Default `'auto'`. */
  mode?: MonitorMode;
  /** Smallest change that counts as an improvement. Default 0. */
  minDelta?: number;
}

export function resolveMode(metric: string, mode: MonitorMode = 'auto'): 'min' | 'max' {
  if (mode === 'min' || mode === 'max') return mode;
  if (mode !== 'auto') throw new InvalidArgumentError(`mode must be 'min', 'max' or 'auto', got '${String(mode)}'`);
  return metric.includes('loss') ? 'min' : 'max';
}

/** True when `a` is better than `b` by more than `minDelta` in direction `mode`. */
export function isBetter(a: number, b: number, mode: 'min' | 'max', minDelta = 0): boolean {
  if (!Number.isFinite(a)) return false;
  if (!Number.isFinite(b)) return true;
  return mode === 'min' ? a < b - minDelta : a > b + minDelta;
}

/** Follows one metric epoch by epoch: its best value and epoch, and epochs since it improved. */
export class MetricMonitor {
  readonly metric: string;
  readonly mode: 'min' | 'max';
  readonly minDelta: number;
  best = NaN;
  bestEpoch = 0;
  /** Epochs since the last improvement. */
  sinceBest = 0;

  constructor(options: MonitorOptions) {
    if (!options.monitor) throw new InvalidArgumentError('monitor: a metric name is required');
    this.metric = options.monitor;
    this.mode = resolveMode(options.monitor, options.mode);
    this.minDelta = options.minDelta ?? 0;
    if (!(this.minDelta >= 0)) throw new InvalidArgumentError(`minDelta must be >= 0, got ${options.minDelta}`);
  }

  /**
   * Records the metrics of `epoch`; returns true when the monitored value improved.
   * @throws InvalidArgumentError when the metric is missing, naming the metrics there are.
   */
  update(epoch: number, metrics: Readonly<Record<string, number>>): boolean {
    const v = metrics[this.metric];
    if (v === undefined) {
      throw new InvalidArgumentError(`monitored metric '${this.metric}' is not reported (have: ${Object.keys(metrics).join(', ')})`);
    }
    if (isBetter(v, this.best, this.mode, this.minDelta) || (this.bestEpoch === 0 && Number.isFinite(v))) {
      this.best = v;
      this.bestEpoch = epoch;
      this.sinceBest = 0;
      return true;
    }
    this.sinceBest++;
    return false;
  }
}
