/**
 * From runs to conclusions: each configuration's rate is chosen on validation loss alone (the test split never
 * picks anything), then its test loss over seeds is reported with a 95% interval and compared, seed by seed, with
 * the baseline at the baseline's own chosen rate. The words say only what the interval allows.
 */
import { withinBudget } from './budget';
import { mean, meanCi95, pairedTTest } from './stats';
import type { Experiment, ExperimentResults, ExperimentRunResult, MethodSummary, PairedDifference } from './types';

const done = (r: ExperimentRunResult) => r.status === 'done' && r.valLoss !== null && r.testLoss !== null;

/**
 * The rate with the lowest mean validation loss over its finished seeds (ties: the lower rate). A rate where some
 * seed diverged is only chosen when every rate had a failure: a mean over the seeds that survived would flatter it.
 */
export function bestLearningRate(runs: ExperimentRunResult[]): number | null {
  const byLr = new Map<number, number[]>();
  for (const r of runs.filter(done)) byLr.set(r.lr, [...(byLr.get(r.lr) ?? []), r.valLoss!]);
  const failedLrs = new Set(runs.filter((r) => r.status === 'failed').map((r) => r.lr));
  const clean = [...byLr].filter(([lr]) => !failedLrs.has(lr));
  let best: number | null = null;
  let bestLoss = Infinity;
  for (const [lr, losses] of (clean.length ? clean : [...byLr]).sort((a, b) => a[0] - b[0])) {
    const m = mean(losses);
    if (m < bestLoss) {
      bestLoss = m;
      best = lr;
    }
  }
  return best;
}

function formatP(p: number | null): string {
  if (p === null) return 'p undefined';
  return p < 0.001 ? 'p < 0.001' : `p = ${p < 0.01 ? p.toFixed(3) : p.toFixed(2)}`;
}

/** "GraLoRA lower by 0.031 ± 0.012 nats (p = 0.02)", or "no difference resolved with 3 seeds". */
export function verdictOf(name: string, baseline: string, d: PairedDifference | null): string {
  if (!d) return `${name} is the baseline`;
  if (d.nPairs < 2)
    return `no difference resolved with ${d.nPairs} seed${d.nPairs === 1 ? '' : 's'} (at least 2 are needed)`;
  const resolved = d.diffCi95[0] > 0 || d.diffCi95[1] < 0;
  if (!resolved) return `no difference from ${baseline} resolved with ${d.nPairs} seeds`;
  const half = (d.diffCi95[1] - d.diffCi95[0]) / 2;
  const direction = d.diffMean < 0 ? 'lower' : 'higher';
  return `${name} ${direction} than ${baseline} by ${Math.abs(d.diffMean).toFixed(3)} ± ${half.toFixed(3)} nats (${formatP(d.pValue)})`;
}

export function summarize(
  e: Experiment,
  runs: ExperimentRunResult[],
  ctx: { referenceParams: number; splitSizes: ExperimentResults['splitSizes'] },
): ExperimentResults {
  const runsOf = (name: string) => runs.filter((r) => r.name === name);
  const chosen = new Map<string, { lr: number; bySeed: Map<number, ExperimentRunResult> }>();
  for (const m of e.methods) {
    const lr = bestLearningRate(runsOf(m.name));
    if (lr === null) continue;
    const bySeed = new Map(
      runsOf(m.name)
        .filter((r) => r.lr === lr && done(r))
        .map((r) => [r.seed, r]),
    );
    chosen.set(m.name, { lr, bySeed });
  }
  const base = chosen.get(e.baseline);
  const summary: MethodSummary[] = [];
  for (const m of e.methods) {
    const c = chosen.get(m.name);
    if (!c) continue;
    const picked = [...c.bySeed.values()].sort((a, b) => a.seed - b.seed);
    const test = meanCi95(picked.map((r) => r.testLoss!));
    const ems = picked.map((r) => r.exactMatch).filter((x): x is number => x !== undefined);
    let vsBaseline: PairedDifference | null = null;
    if (m.name !== e.baseline && base) {
      // Pairs share a seed: the same split, batches and order for both methods.
      const seeds = picked.map((r) => r.seed).filter((s) => base.bySeed.has(s));
      const t = pairedTTest(
        seeds.map((s) => c.bySeed.get(s)!.testLoss!),
        seeds.map((s) => base.bySeed.get(s)!.testLoss!),
      );
      vsBaseline = { diffMean: t.mean, diffCi95: [t.lo, t.hi], pValue: t.p, nPairs: t.n };
    }
    const lrs = [
      ...new Set(
        runsOf(m.name)
          .filter(done)
          .map((r) => r.lr),
      ),
    ].sort((a, b) => a - b);
    const trainableParams = Math.round(mean(picked.map((r) => r.trainableParams)));
    const grid = [...(m.lrs ?? e.lrs)].sort((a, b) => a - b);
    const edge =
      grid.length < 2 ? undefined : c.lr === grid[0] ? 'lowest' : c.lr === grid.at(-1) ? 'highest' : undefined;
    summary.push({
      name: m.name,
      method: m.method,
      bestLr: c.lr,
      valLossMean: mean(picked.map((r) => r.valLoss!)),
      testLossMean: test.mean,
      testLossCi95: [test.lo, test.hi],
      nSeeds: picked.length,
      ...(ems.length ? { exactMatchMean: mean(ems) } : {}),
      trainableParams,
      budgetRatio: trainableParams / ctx.referenceParams,
      vsBaseline,
      verdict: verdictOf(m.name, e.baseline, vsBaseline),
      ...(edge ? { lrAtGridEdge: edge as 'lowest' | 'highest' } : {}),
      lrCurve: lrs.map((lr) => {
        const ci = meanCi95(
          runsOf(m.name)
            .filter((r) => r.lr === lr && done(r))
            .map((r) => r.valLoss!),
        );
        return { lr, valMean: ci.mean, valCi95: [ci.lo, ci.hi] as [number, number], n: ci.n };
      }),
    });
  }
  return {
    experiment: e,
    runs,
    baseline: e.baseline,
    summary,
    referenceParams: ctx.referenceParams,
    best: bestOf(summary, e.baseline),
    splitSizes: ctx.splitSizes,
  };
}

/**
 * The "best" badge: the configuration with the lowest mean test loss, only when the evidence separates it. A
 * challenger needs its paired interval against the baseline below 0; the baseline needs every other interval above
 * 0. Either way it must be within the budget, so a cheaper or dearer adapter never wins on its size alone.
 */
export function bestOf(summary: MethodSummary[], baseline: string): string[] {
  const ranked = summary.filter((s) => Number.isFinite(s.testLossMean)).sort((a, b) => a.testLossMean - b.testLossMean);
  const top = ranked[0];
  if (!top || ranked.length < 2 || !withinBudget(top.budgetRatio)) return [];
  if (top.name === baseline) {
    const others = ranked.slice(1);
    return others.every((s) => s.vsBaseline && s.vsBaseline.nPairs >= 2 && s.vsBaseline.diffCi95[0] > 0)
      ? [top.name]
      : [];
  }
  const d = top.vsBaseline;
  return d && d.nPairs >= 2 && d.diffCi95[1] < 0 ? [top.name] : [];
}
