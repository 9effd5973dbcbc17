/**
 * The budget table: each configuration's trainable parameters against the reference LoRA's, ranks matched on the
 * loaded model; a configuration outside ±5% is flagged ("⚠ 84% of the budget").
 */
import { useMemo } from 'react';
import { budgetTable, matchBudget } from '../../experiment/budget';
import type { Experiment } from '../../experiment/types';
import type { ModelSpec } from '../../model/config';
import type { ExperimentBudget } from '../../worker/protocol';
import { formatInt } from '../format';
import { METHOD_LABEL } from '../methods';

/** "100%", "84%", "104.7%": whole percents unless that would hide a difference near the ±5% edge. */
export function budgetPercent(ratio: number): string {
  const pct = 100 * ratio;
  return Math.abs(pct - Math.round(pct)) < 0.05 ? `${Math.round(pct)}%` : `${pct.toFixed(1)}%`;
}

/** The budget cell's text: the share, flagged when outside ±5%. */
export function budgetText(row: { ratio: number; flagged: boolean }): string {
  return row.flagged ? `⚠ ${budgetPercent(row.ratio)} of the budget` : budgetPercent(row.ratio);
}

/** The draft's table, computed here (the model's shapes are all it needs). */
export function ExperimentBudgetTable({ experiment, spec }: { experiment: Experiment; spec: ModelSpec }) {
  const table = useMemo(() => {
    try {
      const matched = matchBudget(spec, experiment);
      return { budget: budgetTable(spec, matched), matched };
    } catch {
      return null;
    }
  }, [experiment, spec]);
  if (!table) return null;
  return <BudgetTableView budget={table.budget} experiment={table.matched} />;
}

/** A budget table as the worker planned it (or as the draft computes it). */
export function BudgetTableView({ budget, experiment }: { budget: ExperimentBudget; experiment: Experiment }) {
  const method = (name: string) => experiment.methods.find((m) => m.name === name);
  return (
    <div className="experiment-budget" data-testid="experiment-budget">
      <div className="small-title">
        Parameter budget: a rank-{experiment.referenceRank} LoRA on the baseline's targets ={' '}
        <strong>{formatInt(budget.referenceParams)}</strong> trainable parameters (±5%)
      </div>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th>Configuration</th>
              <th>Method</th>
              <th className="num">Rank</th>
              <th className="num">Trainable params</th>
              <th className="num">Budget</th>
            </tr>
          </thead>
          <tbody>
            {budget.rows.map((row) => {
              const m = method(row.name);
              return (
                <tr key={row.name} data-testid="budget-row" data-flagged={row.flagged || undefined}>
                  <td>{row.name}</td>
                  <td>{m ? METHOD_LABEL[m.method] : '–'}</td>
                  <td className="num">{m ? `${m.rank}${m.rankMatched ? ' (matched)' : ''}` : '–'}</td>
                  <td className="num">
                    {row.kind === 'budget' ? '≈ ' : ''}
                    {formatInt(row.params)}
                    {row.kind === 'budget' && (
                      <span className="cell-sub">ranks allocated at the start of each run</span>
                    )}
                  </td>
                  <td className={`num ${row.flagged ? 'budget-flag' : ''}`} data-testid="budget-ratio">
                    {budgetText(row)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}
