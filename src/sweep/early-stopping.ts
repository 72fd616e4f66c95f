/**
 * Early stopping across the trials of a sweep, decided at epoch boundaries.
 *
 * - Median stopping rule (Golovin et al., "Google Vizier", 2017): stop a trial at epoch s when its
 *   best value so far is worse than the median, over the other trials that reached epoch s, of their
 *   running averages up to s.
 * - Successive halving, asynchronous (Li et al., "ASHA", 2020): rungs at epochs
 *   `minEpochs * reductionFactor^k`; a trial reaching a rung is stopped when its value is worse than
 *   the `1 - 1/reductionFactor` quantile of the values other trials recorded at that rung.
 *
 * Both are asynchronous: a trial is compared with whatever the others have reported so far, so it
 * works with waves of concurrent trials.
 */
import { InvalidArgumentError } from '../errors.js';
import { isBetter, resolveMode, type MonitorMode } from '../train/monitor.js';

/** A rule's verdict on a trial at an epoch, with the reason when it stops it. */
export interface StopDecision {
  stop: boolean;
  reason?: string;
}

/** A sweep-level early-stopping rule. */
export interface StoppingRule {
  /** Records `value` of `trialId`'s metric at `epoch` (1-based, increasing) and decides. */
  report(trialId: string, epoch: number, value: number): StopDecision;
}

/**
 * The median rule: stop a trial whose best so far is worse than the median of the other trials'
 * running averages at the same epoch.
 */
export interface MedianStoppingOptions {
  rule: 'median';
  /** Never stop a trial at or before this epoch. Default 1. */
  graceEpochs?: number;
  /** Other trials needed at an epoch before anyone is stopped there. Default 3. */
  minTrials?: number;
}

/**
 * Asynchronous successive halving: at each rung keep the top 1/reductionFactor of the trials that
 * reached it.
 */
export interface SuccessiveHalvingOptions {
  rule: 'successive-halving';
  /** Epoch of the first rung. Default 1. */
  minEpochs?: number;
  /** Keep roughly 1 in `reductionFactor` trials at each rung. Default 3. */
  reductionFactor?: number;
  /** Other trials needed at a rung before anyone is stopped there. Default 1. */
  minTrials?: number;
}

/** Early-stopping configuration of a sweep. */
export type EarlyStoppingRuleOptions = MedianStoppingOptions | SuccessiveHalvingOptions;

/** The metric a rule ranks trials by, and its direction. */
export interface RuleMetric {
  /** Metric name (for messages). */
  metric: string;
  mode?: MonitorMode;
}

/** Builds a rule from its options. */
export function createStoppingRule(options: EarlyStoppingRuleOptions, metric: RuleMetric): StoppingRule {
  if (options?.rule === 'median') return new MedianStoppingRule(options, metric);
  if (options?.rule === 'successive-halving') return new SuccessiveHalving(options, metric);
  throw new InvalidArgumentError(`earlyStopping.rule must be 'median' or 'successive-halving', got '${String((options as { rule?: unknown })?.rule)}'`);
}

function positiveInt(name: string, v: number | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`earlyStopping.${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Median of sorted-or-not numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Quantile with linear interpolation (numpy's default), q in [0, 1]. */
export function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

const fmt = (v: number) => (Number.isFinite(v) ? Number(v.toPrecision(4)).toString() : String(v));

export class MedianStoppingRule implements StoppingRule {
  private readonly grace: number;
  private readonly minTrials: number;
  private readonly mode: 'min' | 'max';
  private readonly metric: string;
  /** trial -> values by epoch (index epoch-1). */
  private readonly values = new Map<string, number[]>();

  constructor(options: Omit<MedianStoppingOptions, 'rule'>, metric: RuleMetric) {
    this.grace = positiveInt('graceEpochs', options.graceEpochs, 1, 0);
    this.minTrials = positiveInt('minTrials', options.minTrials, 3);
    this.metric = metric.metric;
    this.mode = resolveMode(metric.metric, metric.mode);
  }

  report(trialId: string, epoch: number, value: number): StopDecision {
    const own = this.record(trialId, epoch, value);
    if (epoch <= this.grace) return { stop: false };
    const averages: number[] = [];
    for (const [id, vs] of this.values) {
      if (id === trialId || vs.length < epoch) continue;
      const upTo = vs.slice(0, epoch).filter(Number.isFinite);
      if (upTo.length) averages.push(upTo.reduce((a, b) => a + b, 0) / upTo.length);
    }
    if (averages.length < this.minTrials) return { stop: false };
    const best = own.slice(0, epoch).reduce((b, v) => (isBetter(v, b, this.mode) ? v : b), NaN);
    const med = median(averages);
    if (!Number.isFinite(best) || isBetter(med, best, this.mode)) {
      return {
        stop: true,
        reason: `median rule: best ${this.metric} ${fmt(best)} by epoch ${epoch} is worse than the median ${fmt(med)} of ${averages.length} other trial(s)' running averages`,
      };
    }
    return { stop: false };
  }

  private record(trialId: string, epoch: number, value: number): number[] {
    if (!Number.isInteger(epoch) || epoch < 1) throw new InvalidArgumentError(`epoch must be an integer >= 1, got ${epoch}`);
    let vs = this.values.get(trialId);
    if (!vs) this.values.set(trialId, (vs = []));
    while (vs.length < epoch - 1) vs.push(NaN);
    vs[epoch - 1] = value;
    return vs;
  }
}

export class SuccessiveHalving implements StoppingRule {
  private readonly minEpochs: number;
  private readonly eta: number;
  private readonly minTrials: number;
  private readonly mode: 'min' | 'max';
  private readonly metric: string;
  /** rung epoch -> trial -> value */
  private readonly rungs = new Map<number, Map<string, number>>();

  constructor(options: Omit<SuccessiveHalvingOptions, 'rule'>, metric: RuleMetric) {
    this.minEpochs = positiveInt('minEpochs', options.minEpochs, 1);
    this.eta = positiveInt('reductionFactor', options.reductionFactor, 3, 2);
    this.minTrials = positiveInt('minTrials', options.minTrials, 1);
    this.metric = metric.metric;
    this.mode = resolveMode(metric.metric, metric.mode);
  }

  /** Epochs at which trials are compared, up to `maxEpoch`. */
  rungEpochs(maxEpoch: number): number[] {
    const out: number[] = [];
    for (let e = this.minEpochs; e <= maxEpoch; e *= this.eta) out.push(e);
    return out;
  }

  report(trialId: string, epoch: number, value: number): StopDecision {
    if (!this.isRung(epoch)) return { stop: false };
    let rung = this.rungs.get(epoch);
    if (!rung) this.rungs.set(epoch, (rung = new Map()));
    const others = [...rung].filter(([id]) => id !== trialId).map(([, v]) => v).filter(Number.isFinite);
    rung.set(trialId, value);
    if (others.length < this.minTrials) return { stop: false };
    // Keep the top 1/eta: the cutoff is the (1 - 1/eta) quantile for 'max', the 1/eta quantile for 'min'.
    const q = this.mode === 'max' ? 1 - 1 / this.eta : 1 / this.eta;
    const cutoff = quantile(others, q);
    if (!Number.isFinite(value) || isBetter(cutoff, value, this.mode)) {
      return {
        stop: true,
        reason: `successive halving: ${this.metric} ${fmt(value)} at rung epoch ${epoch} is not in the top 1/${this.eta} (cutoff ${fmt(cutoff)} from ${others.length} other trial(s))`,
      };
    }
    return { stop: false };
  }

  private isRung(epoch: number): boolean {
    for (let e = this.minEpochs; e <= epoch; e *= this.eta) if (e === epoch) return true;
    return false;
  }
}
