import { describe, expect, it } from 'vitest';
import { meanCi95, pairedTTest, studentTCdf, studentTQuantile } from '../../src/experiment/stats';

describe('Student t', () => {
  it('quantiles match the printed tables', () => {
    // t(0.975, df) from any textbook table; df = 1 is tan(0.475 pi) exactly.
    const table: [number, number][] = [
      [1, 12.706204736],
      [2, 4.30265273],
      [3, 3.182446305],
      [4, 2.776445105],
      [9, 2.262157163],
      [10, 2.228138852],
      [30, 2.042272456],
    ];
    for (const [df, t] of table) expect(studentTQuantile(0.975, df)).toBeCloseTo(t, 7);
    expect(studentTQuantile(0.975, 1)).toBeCloseTo(Math.tan(0.475 * Math.PI), 9);
    expect(studentTQuantile(0.95, 5)).toBeCloseTo(2.015048373, 7);
    expect(studentTQuantile(0.025, 4)).toBeCloseTo(-2.776445105, 7);
  });

  it('the CDF is the quantile inverse and symmetric', () => {
    for (const df of [1, 2, 7, 25]) {
      for (const p of [0.6, 0.9, 0.99]) expect(studentTCdf(studentTQuantile(p, df), df)).toBeCloseTo(p, 10);
      expect(studentTCdf(-1.3, df) + studentTCdf(1.3, df)).toBeCloseTo(1, 12);
    }
    // df = 2 has a closed form: F(t) = 1/2 + t / (2 sqrt(2 + t^2)).
    expect(studentTCdf(1.7, 2)).toBeCloseTo(0.5 + 1.7 / (2 * Math.sqrt(2 + 1.7 ** 2)), 12);
  });
});

// Student's sleep data (Cushny and Peebles 1905): extra hours of sleep with two drugs in the same ten patients.
// R: t.test(extra ~ group, data = sleep, paired = TRUE) gives t = -4.0621, df = 9, p = 0.002833,
// 95% CI [-2.4598858, -0.7001142], mean difference -1.58.
const drug1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
const drug2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

describe('intervals and the paired t-test', () => {
  it('reproduces the sleep data paired test', () => {
    const t = pairedTTest(drug1, drug2);
    expect(t.mean).toBeCloseTo(-1.58, 10);
    expect(t.t!).toBeCloseTo(-4.062128, 5);
    expect(t.p!).toBeCloseTo(0.00283289, 7);
    expect(t.lo).toBeCloseTo(-2.4598858, 6);
    expect(t.hi).toBeCloseTo(-0.7001142, 6);
    expect(t.n).toBe(10);
  });

  it('a mean interval is mean ± t·s/√n', () => {
    // drug2: mean 2.33, sd 2.002249; R: t.test(sleep$extra[11:20]) -> 95% CI [0.8976775, 3.7623225].
    const ci = meanCi95(drug2);
    expect(ci.mean).toBeCloseTo(2.33, 10);
    expect(ci.lo).toBeCloseTo(0.8976775, 6);
    expect(ci.hi).toBeCloseTo(3.7623225, 6);
  });

  it('undefined statistics are null, not NaN', () => {
    expect(meanCi95([1.5])).toMatchObject({ mean: 1.5, lo: 1.5, hi: 1.5, half: 0, n: 1 });
    const same = pairedTTest([1, 2, 3], [0.5, 1.5, 2.5]);
    expect(same.t).toBeNull();
    expect(same.p).toBeNull();
    expect(() => pairedTTest([1], [1, 2])).toThrow(/length/);
  });
});
