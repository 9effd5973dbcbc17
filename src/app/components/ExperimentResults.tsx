/**
 * The experiment's results as they stand (they fill in as runs finish): the summary table, the report download and
 * the charts. A "best" badge only for the names the summary's evidence separates (results.best).
 */
import { withinBudget } from '../../experiment/budget';
import { hasExactMatch, summaryRows } from '../../experiment/report/summary-rows';
import type { ExperimentResults as Results } from '../../experiment/types';
import { formatInt } from '../format';
import { isExperimentActive, type ExperimentRecord } from '../experiment-record';
import { useStudio } from '../store';
import { budgetText } from './ExperimentBudget';
import { ExperimentCharts } from './ExperimentCharts';

export function ExperimentResultsView({ record, results }: { record: ExperimentRecord; results: Results }) {
  const download = useStudio((s) => s.downloadExperimentReport);
  const partial = record.final === null;
  return (
    <section className="experiment-results" aria-label={`${record.experiment.name} results`}>
      <div className="experiment-section-head">
        <h4>
          Results
          {partial && (
            <span className="muted small" data-testid="experiment-partial">
              {' '}
              · so far ({record.results.length} of {record.plan?.runs.length ?? '?'} runs;{' '}
              {isExperimentActive(record) ? 'updating as runs finish' : 'not finished'})
            </span>
          )}
        </h4>
        <button className="btn btn-sm" onClick={() => download(record.id)} data-testid="experiment-report">
          Download report
        </button>
      </div>
      <SummaryTable results={results} />
      <p className="muted small">
        Each configuration's learning rate is the one with the lowest mean validation loss; the test loss is measured at
        that rate only, with a 95% interval over seeds, and compared with the baseline seed by seed (paired t-test).
        Split: {results.splitSizes.train} train, {results.splitSizes.validation} validation, {results.splitSizes.test}{' '}
        test examples. Budget: {formatInt(results.referenceParams)} trainable parameters.
      </p>
      <ExperimentCharts results={results} />
    </section>
  );
}

function SummaryTable({ results }: { results: Results }) {
  const rows = summaryRows(results);
  const exact = hasExactMatch(rows);
  if (rows.length === 0)
    return <div className="empty">No configuration has a finished run yet: the table fills in as runs finish.</div>;
  return (
    <div className="table-wrap">
      <table className="table" data-testid="experiment-summary">
        <thead>
          <tr>
            <th>Configuration</th>
            <th className="num">Trainable params</th>
            <th className="num">Chosen lr</th>
            <th className="num">Val loss</th>
            <th className="num">Test loss ± 95% CI</th>
            <th className="num">Seeds</th>
            {exact && <th className="num">Exact match</th>}
            <th>vs baseline (Δ test loss, 95% CI, p)</th>
            <th>Verdict</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((row, i) => {
            const s = results.summary[i];
            const flagged = !withinBudget(s.budgetRatio);
            return (
              <tr
                key={row.name}
                className={row.best ? 'best' : ''}
                data-testid="experiment-summary-row"
                data-name={row.name}
              >
                <td>
                  <strong>{row.name}</strong>
                  {row.method !== row.name && <span className="muted"> {row.method}</span>}
                  {row.isBaseline && <span className="badge badge-inline">baseline</span>}
                  {row.best && (
                    <span className="badge badge-inline badge-ok" data-testid="experiment-best">
                      best
                    </span>
                  )}
                </td>
                <td className="num">
                  {row.params}
                  <span className={`cell-sub ${flagged ? 'budget-flag' : ''}`} data-testid="summary-budget">
                    {budgetText({ ratio: s.budgetRatio, flagged })}
                  </span>
                </td>
                <td className="num">{row.bestLr}</td>
                <td className="num">{row.valLoss}</td>
                <td className="num" data-testid="summary-test-loss">
                  {row.testLoss}
                </td>
                <td className="num">{row.seeds}</td>
                {exact && <td className="num">{row.exactMatch ?? '–'}</td>}
                <td className="mono-cell">{row.vsBaseline}</td>
                <td className="verdict-cell">{row.verdict}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
