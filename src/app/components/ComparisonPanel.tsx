import { useId } from 'react';
import { rankSummary } from '../analysis';
import { targetLabel } from '../budget';
import {
  BEST_RULE,
  type ComparisonGroup,
  type ComparisonRow,
  comparisonGroups,
  isFailed,
  isListed,
  truncateMessage,
  type VerdictNote,
  verdictNote,
} from '../comparison';
import { formatCount, formatDuration, formatLoss, formatRate } from '../format';
import { methodName, methodParams } from '../methods';
import { runColor } from '../palette';
import { useStudio } from '../store';
import { archivedCount, unarchivedRuns } from '../visible-runs';
import { Panel } from './Panel';
import { formatPrep } from './RunProgress';

type Spec = Parameters<typeof targetLabel>[1];

export function ComparisonPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const spec = useStudio((s) => s.model.card?.spec ?? null);
  // Archived runs neither show nor compete for "best"; the full order keeps every run's colour.
  const groups = comparisonGroups(unarchivedRuns(runs), order);
  const archived = archivedCount({ runs, order }, isListed);

  return (
    <Panel
      id="compare"
      step={6}
      title="Comparison"
      subtitle="Finished runs side by side, one table per model and dataset (losses on different ones do not compare). Perplexity is exp(validation loss); Δ is the change from the run's starting validation loss: the base model's, except GoRA's, which is measured after its gradient-based initialization."
    >
      {groups.length === 0 ? (
        <div className="empty" data-testid="comparison-empty">
          {archived > 0
            ? `Every finished run is archived (${archived}): restore one from the Runs list's Archived view to compare it.`
            : 'Finished runs appear here.'}
        </div>
      ) : (
        groups.map((g) => <GroupTable key={g.key} group={g} spec={spec} nameOf={(id) => runs[id]?.config.name ?? id} />)
      )}
      {groups.length > 0 && archived > 0 && (
        <p className="muted small comparison-archived-note" data-testid="comparison-archived-note">
          {archived} archived run{archived > 1 ? 's are' : ' is'} left out.
        </p>
      )}
    </Panel>
  );
}

function GroupTable(props: { group: ComparisonGroup; spec: Spec; nameOf: (id: string) => string }) {
  const { group, spec } = props;
  const verdict = group.verdict;
  const bestId = verdict.kind === 'best' ? verdict.id : null;
  const note = verdictNote(verdict, props.nameOf);
  // Only datasets with reference answers (prompt/completion, Alpaca, chat) have an exact-match figure.
  const withExactMatch = group.rows.some(({ run }) => !isFailed(run) && run.summary?.exactMatch);
  const headingId = useId();
  return (
    <section className="analysis-section" data-testid="comparison-group" aria-labelledby={headingId}>
      <div className="analysis-head">
        <h3 id={headingId} data-testid="comparison-group-title">
          {group.model} <span className="muted">on</span> {group.dataset}
        </h3>
        <span className="muted" title={BEST_RULE}>
          {bestId
            ? `best: ${props.nameOf(bestId)}`
            : note
              ? `no best (${note.text})`
              : 'no best (it takes two runs with a validation loss)'}
        </span>
      </div>
      {/* Fits its panel: headers and long texts wrap; below ~1000 px the low-priority columns fold into the run's cell. */}
      <div className="table-wrap comparison-wrap">
        <table className="table comparison-table" data-testid="comparison-table">
          <thead>
            <tr>
              <th className="col-run">Run</th>
              <th className="col-method">Method</th>
              <th className="num">Ranks</th>
              <th className="num">Trainable</th>
              <th
                className="num prio-low"
                title="The method's preparation phase before step 0 (GoRA's gradients, GeLoRA's dimensions)"
              >
                Prep.
              </th>
              <th className="num">Steps</th>
              <th className="num" title={`Validation loss at the end of the run. ${BEST_RULE}`}>
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
              <th className="num prio-low">Tokens/s</th>
              <th>Status</th>
            </tr>
          </thead>
          <tbody>
            {group.rows.map((row) => (
              <RunRow
                key={row.run.config.id}
                row={row}
                spec={spec}
                best={row.run.config.id === bestId}
                note={note?.id === row.run.config.id ? note : null}
                withExactMatch={withExactMatch}
              />
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function RunRow(props: {
  row: ComparisonRow;
  spec: Spec;
  best: boolean;
  note: VerdictNote | null;
  withExactMatch: boolean;
}) {
  const { run, index } = props.row;
  const s = run.summary;
  const c = run.config;
  const a = run.analysis;
  const trainable = a?.trainableParameters ?? s?.trainableParams;
  const prep = a && a.preparationMs >= 50 ? formatPrep(a.preparationMs) : null;
  const rate = formatRate(s?.tokensPerSecond);
  // The low-priority columns' figures, shown under the name when those columns fold away (narrow panels).
  const folded = [prep && `prep. ${prep}`, rate !== '–' && `${rate} tokens/s`].filter(Boolean).join(' · ');
  return (
    <tr data-testid="comparison-row" data-status={run.status} className={props.best ? 'best' : ''}>
      <td className="col-run">
        <span className="run-dot" style={{ background: runColor(index) }} /> {c.name}
        {folded && <span className="cell-sub prio-folded">{folded}</span>}
      </td>
      <td className="col-method">
        <span data-testid="comparison-method">{methodName(c)}</span>
        <span className="cell-sub">
          {c.method === 'full' ? 'every weight' : `${methodParams(c)} · ${targetLabel(c.targets, props.spec)}`}
        </span>
      </td>
      <td className="num" data-testid="comparison-ranks">
        {a?.modules.length ? rankSummary(a) : '–'}
      </td>
      <td className="num" data-testid="comparison-params">
        {trainable != null ? formatCount(trainable) : '–'}
      </td>
      <td className="num prio-low" data-testid="comparison-prep">
        {prep ?? (a ? '–' : '')}
      </td>
      <td className="num">{s ? s.steps : '–'}</td>
      {isFailed(run) ? (
        <FailureCell message={run.message ?? s?.message ?? null} span={props.withExactMatch ? 4 : 3} />
      ) : (
        <LossCells run={run} best={props.best} note={props.note} withExactMatch={props.withExactMatch} />
      )}
      <td className="num">{formatDuration(s?.elapsedMs)}</td>
      <td className="num prio-low">{rate}</td>
      <td>
        <span className={`badge badge-status-${run.status}`}>{run.status}</span>
      </td>
    </tr>
  );
}

/** A failed run's loss figures are NaN or the last good adapter's: its message takes their place. */
function FailureCell(props: { message: string | null; span: number }) {
  const message = props.message ?? 'The run failed without a message.';
  return (
    <td colSpan={props.span} className="error-text" data-testid="comparison-failure" title={message}>
      {truncateMessage(message)}
    </td>
  );
}

function LossCells(props: {
  run: ComparisonRow['run'];
  best: boolean;
  note: VerdictNote | null;
  withExactMatch: boolean;
}) {
  const s = props.run.summary;
  const final = s?.finalValLoss ?? null;
  const start = s?.initialValLoss ?? null;
  const delta = final !== null && start !== null && Number.isFinite(final - start) ? final - start : null;
  return (
    <>
      <td className="num" data-testid="final-val-loss">
        {formatLoss(final)}
        {props.best && (
          <span className="badge badge-ok badge-inline" title={BEST_RULE}>
            best
          </span>
        )}
        {props.note && (
          <span
            className="badge badge-warn badge-inline"
            data-testid="comparison-no-best"
            title={`${props.note.why} ${BEST_RULE}`}
          >
            {props.note.text}
          </span>
        )}
      </td>
      <td className="num">{final !== null ? formatPerplexity(Math.exp(final)) : '–'}</td>
      <td className={`num ${delta !== null ? (delta < 0 ? 'good' : 'bad') : ''}`}>
        {delta !== null ? `${delta > 0 ? '+' : ''}${delta.toFixed(3)}` : '–'}
      </td>
      {props.withExactMatch && (
        <td className="num" data-testid="comparison-exact-match">
          {s?.exactMatch ? `${(s.exactMatch.accuracy * 100).toFixed(0)}% of ${s.exactMatch.total}` : '–'}
        </td>
      )}
    </>
  );
}

function formatPerplexity(p: number): string {
  if (!Number.isFinite(p)) return '–';
  return p >= 1000 ? formatCount(p) : p.toFixed(p >= 100 ? 0 : 2);
}
