import { rankSummary } from '../analysis';
import { targetLabel } from '../budget';
import { formatCount, formatDuration, formatLoss, formatRate } from '../format';
import { methodName, methodParams } from '../methods';
import { useStudio } from '../store';
import { Panel, runColor } from './Panel';
import { formatPrep } from './RunProgress';

export function ComparisonPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const spec = useStudio((s) => s.model.card?.spec ?? null);
  const rows = order.map((id, i) => ({ run: runs[id], color: runColor(i) })).filter(({ run }) => run.summary);
  const finals = rows
    .map(({ run }) => run.summary!.finalValLoss)
    .filter((x): x is number => x !== null && Number.isFinite(x));
  const best = finals.length > 1 ? Math.min(...finals) : null;
  // Only datasets with reference answers (prompt/completion, Alpaca, chat) have an exact-match figure.
  const withExactMatch = rows.some(({ run }) => run.summary?.exactMatch);

  return (
    <Panel
      id="compare"
      step={6}
      title="Comparison"
      subtitle="Finished runs side by side. Perplexity is exp(validation loss); Δ is the change from the run's starting validation loss: the base model's, except GoRA's, which is measured after its gradient-based initialization."
    >
      {rows.length === 0 ? (
        <div className="empty" data-testid="comparison-empty">
          Finished runs appear here.
        </div>
      ) : (
        <div className="table-wrap">
          <table className="table" data-testid="comparison-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Method</th>
                <th className="num">Ranks</th>
                <th className="num">Trainable</th>
                <th
                  className="num"
                  title="The method's preparation phase before step 0 (GoRA's gradients, GeLoRA's dimensions)"
                >
                  Prep.
                </th>
                <th className="num">Steps</th>
                <th className="num" title="Validation loss at the end of the run">
                  Val loss
                </th>
                <th className="num">Perplexity</th>
                <th className="num">Δ vs start</th>
                {withExactMatch && (
                  <th className="num" title="Held-out examples whose greedy answer equals the reference exactly">
                    Exact match
                  </th>
                )}
                <th className="num">Time</th>
                <th className="num">Tokens/s</th>
                <th>Status</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ run, color }) => {
                const s = run.summary!;
                const c = run.config;
                const a = run.analysis;
                const delta =
                  s.finalValLoss !== null && s.initialValLoss !== null ? s.finalValLoss - s.initialValLoss : null;
                return (
                  <tr
                    key={c.id}
                    data-testid="comparison-row"
                    className={best !== null && s.finalValLoss === best ? 'best' : ''}
                  >
                    <td>
                      <span className="run-dot" style={{ background: color }} /> {c.name}
                    </td>
                    <td>
                      <span data-testid="comparison-method">{methodName(c)}</span>
                      <span className="cell-sub">
                        {c.method === 'full' ? 'every weight' : `${methodParams(c)} · ${targetLabel(c.targets, spec)}`}
                      </span>
                    </td>
                    <td className="num" data-testid="comparison-ranks">
                      {a && a.modules.length ? rankSummary(a) : '–'}
                    </td>
                    <td className="num" data-testid="comparison-params">
                      {formatCount(a?.trainableParameters ?? s.trainableParams)}
                    </td>
                    <td className="num" data-testid="comparison-prep">
                      {a && a.preparationMs >= 50 ? formatPrep(a.preparationMs) : a ? '–' : ''}
                    </td>
                    <td className="num">{s.steps}</td>
                    <td className="num" data-testid="final-val-loss">
                      {formatLoss(s.finalValLoss)}
                      {best !== null && s.finalValLoss === best && (
                        <span className="badge badge-ok badge-inline">best</span>
                      )}
                    </td>
                    <td className="num">
                      {s.finalValLoss !== null ? formatPerplexity(Math.exp(s.finalValLoss)) : '–'}
                    </td>
                    <td className={`num ${delta !== null ? (delta < 0 ? 'good' : 'bad') : ''}`}>
                      {delta !== null ? `${delta > 0 ? '+' : ''}${delta.toFixed(3)}` : '–'}
                    </td>
                    {withExactMatch && (
                      <td className="num" data-testid="comparison-exact-match">
                        {s.exactMatch ? `${(s.exactMatch.accuracy * 100).toFixed(0)}% of ${s.exactMatch.total}` : '–'}
                      </td>
                    )}
                    <td className="num">{formatDuration(s.elapsedMs)}</td>
                    <td className="num">{formatRate(s.tokensPerSecond)}</td>
                    <td>
                      <span className={`badge badge-status-${run.status}`}>{run.status}</span>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}

function formatPerplexity(p: number): string {
  if (!Number.isFinite(p)) return '–';
  return p >= 1000 ? formatCount(p) : p.toFixed(p >= 100 ? 0 : 2);
}
