import { describe, expect, it } from 'vitest';
import { MedianStoppingRule, SuccessiveHalving, createStoppingRule, median, quantile } from '../src/sweep/early-stopping.js';

describe('median stopping rule', () => {
  it('stops a trial whose best so far is worse than the median of the others running averages', () => {
    const rule = new MedianStoppingRule({ graceEpochs: 1, minTrials: 3 }, { metric: 'val_acc' });
    // Three finished trials; running averages at epoch 2: 0.75, 0.8, 0.85 -> median 0.8.
    for (const [id, vals] of [
      ['a', [0.7, 0.8]],
      ['b', [0.75, 0.85]],
      ['c', [0.8, 0.9]],
    ] as const) {
      vals.forEach((v, i) => expect(rule.report(id, i + 1, v).stop).toBe(false));
    }
    expect(rule.report('weak', 1, 0.5).stop).toBe(false); // grace epoch
    const d = rule.report('weak', 2, 0.79);
    expect(d.stop).toBe(true);
    expect(d.reason).toMatch(/best val_acc 0.79 by epoch 2 is worse than the median 0.8 of 3 other trial/);
    // Its best so far counts, not its last value.
    expect(rule.report('ok', 1, 0.81).stop).toBe(false);
    expect(rule.report('ok', 2, 0.6).stop).toBe(false);
  });

  it('needs minTrials others at that epoch, and minimises losses', () => {
    const rule = new MedianStoppingRule({ graceEpochs: 0, minTrials: 2 }, { metric: 'val_loss' });
    rule.report('a', 1, 0.5);
    expect(rule.report('b', 1, 0.9).stop).toBe(false); // only one other
    expect(rule.report('c', 1, 0.7).stop).toBe(false); // median of 0.5 and 0.9 = 0.7; not worse
    expect(rule.report('d', 1, 0.71).stop).toBe(true);
    expect(rule.report('e', 1, 0.4).stop).toBe(false);
  });

  it('other trials count only once they reached the epoch', () => {
    const rule = new MedianStoppingRule({ graceEpochs: 0, minTrials: 1 }, { metric: 'acc' });
    rule.report('a', 1, 0.9);
    expect(rule.report('b', 2, 0.1).stop).toBe(false); // nobody else at epoch 2
  });
});

describe('successive halving (asynchronous)', () => {
  it('rungs at minEpochs * eta^k', () => {
    expect(new SuccessiveHalving({ minEpochs: 1, reductionFactor: 3 }, { metric: 'acc' }).rungEpochs(30)).toEqual([1, 3, 9, 27]);
    expect(new SuccessiveHalving({ minEpochs: 2, reductionFactor: 2 }, { metric: 'acc' }).rungEpochs(16)).toEqual([2, 4, 8, 16]);
  });

  it('keeps the top 1/eta at each rung against what the others recorded', () => {
    const rule = new SuccessiveHalving({ minEpochs: 1, reductionFactor: 2 }, { metric: 'val_acc' });
    expect(rule.report('a', 1, 0.6).stop).toBe(false); // first at the rung
    expect(rule.report('b', 1, 0.8).stop).toBe(false); // better than the cutoff 0.6
    const c = rule.report('c', 1, 0.65); // cutoff: median of 0.6, 0.8 = 0.7
    expect(c.stop).toBe(true);
    expect(c.reason).toMatch(/rung epoch 1 is not in the top 1\/2 \(cutoff 0.7 from 2 other/);
    expect(rule.report('a', 2, 0.1).stop).toBe(false); // epoch 2 is a rung: first there
    expect(rule.report('b', 3, 0.1).stop).toBe(false); // epoch 3 is not a rung
    expect(rule.report('b', 2, 0.05).stop).toBe(true);
  });

  it('for losses the cutoff is the 1/eta quantile', () => {
    const rule = new SuccessiveHalving({ minEpochs: 1, reductionFactor: 3, minTrials: 3 }, { metric: 'val_loss' });
    for (const [id, v] of [['a', 0.3], ['b', 0.6], ['c', 0.9]] as const) expect(rule.report(id, 1, v).stop).toBe(false);
    // cutoff = quantile([0.3, 0.6, 0.9], 1/3) = 0.5
    expect(rule.report('d', 1, 0.49).stop).toBe(false);
    expect(rule.report('e', 1, 0.55).stop).toBe(true);
    expect(rule.report('f', 1, NaN).stop).toBe(true);
  });

  it('validates options', () => {
    expect(() => createStoppingRule({ rule: 'successive-halving', reductionFactor: 1 }, { metric: 'acc' })).toThrow(/reductionFactor must be an integer >= 2/);
    expect(() => createStoppingRule({ rule: 'median', minTrials: 0 }, { metric: 'acc' })).toThrow(/minTrials/);
    expect(() => createStoppingRule({ rule: 'hyperband' } as never, { metric: 'acc' })).toThrow(/'median' or 'successive-halving'/);
  });
});

describe('statistics', () => {
  it('median and quantile (linear interpolation)', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([0, 10], 0.7)).toBeCloseTo(7);
  });
});
