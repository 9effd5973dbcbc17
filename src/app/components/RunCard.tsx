/**
 * One run in the Runs panel: its head (selection, name, status, the buttons its status allows, the "More" menu),
 * the form while it is a draft or its settings after, its notes and tags, budget, progress and messages.
 */
import { useState } from 'react';
import type { ModelCard, RunConfig } from '../../worker/protocol';
import { slug } from '../../worker/snippets';
import { targetLabel } from '../budget';
import { formatLr } from '../format';
import { gradAccumOf, methodOptionsText, methodShort } from '../methods';
import { cliCommand } from '../run-cli-command';
import { runConfigJson } from '../run-config-json';
import { copyText, downloadText } from '../run-download';
import { hasMetrics, metricsCsv, metricsFileName, metricsJson } from '../run-metrics-export';
import { invalidFieldsProblem, isActive, type RunRecord } from '../run-record';
import { useDatasetWait, useStudio } from '../store';
import { FieldValidity } from './Fields';
import { RunBudget } from './RunBudget';
import { CheckpointLine, ResumeButton } from './RunCheckpoint';
import { RunCliCommandBox } from './RunCliCommand';
import { RunDataLine } from './RunData';
import { RunForm } from './RunForm';
import { RunMenu, RunMenuItem } from './RunMenu';
import { RunNotes } from './RunNotes';
import { RunProgressView } from './RunProgress';

const STATUS_TEXT: Record<RunRecord['status'], string> = {
  draft: 'Draft',
  queued: 'Queued',
  preparing: 'Preparing',
  training: 'Training',
  done: 'Done',
  cancelled: 'Cancelled',
  failed: 'Failed',
  interrupted: 'Interrupted',
};

export function RunCard(props: {
  run: RunRecord;
  color: string;
  card: ModelCard | null;
  selected: boolean;
  onSelect(selected: boolean): void;
}) {
  const { run, color, card } = props;
  const { updateRun, startRun, cancelRun, removeRun, duplicateRun, setFieldValidity, setRunsArchived } =
    useStudio.getState();
  const [editingNotes, setEditingNotes] = useState(false);
  const [showCli, setShowCli] = useState(false);
  const c = run.config;
  const draft = run.status === 'draft';
  const active = isActive(run);
  const set = (patch: Partial<RunConfig>) => updateRun(c.id, patch);
  const invalid = invalidFieldsProblem(run.invalidFields);
  // Not while a dataset file loads: the run would train on the previous one.
  const datasetWait = useDatasetWait();
  const startBlocked = invalid ?? datasetWait;

  const copyCli = async () => {
    setShowCli(true);
    const s = useStudio.getState();
    const command = cliCommand(run, { card: s.model.card, dataset: s.dataset.preview });
    if (await copyText(command.text)) s.toast('info', 'CLI command copied.');
  };
  const remove = () => {
    // A draft is only settings; a run that trained takes its metrics and adapter with it.
    if (!draft && !window.confirm(`Remove "${c.name}" with its metrics and adapter? This cannot be undone.`)) return;
    removeRun(c.id);
  };

  return (
    <article
      className={`run-card status-${run.status}${run.archived ? ' archived' : ''}`}
      data-testid="run-card"
      data-run-id={c.id}
      data-status={run.status}
      data-archived={run.archived || undefined}
      data-checkpoint-step={run.checkpoint?.kept ? run.checkpoint.step : undefined}
      aria-label={c.name}
    >
      <div className="run-head">
        <input
          type="checkbox"
          className="run-select"
          checked={props.selected}
          disabled={active}
          aria-label={`Select ${c.name}`}
          title={active ? 'Cancel it to archive or remove it' : 'Select for archiving or removing several runs'}
          data-testid="run-select"
          onChange={(e) => props.onSelect(e.target.checked)}
        />
        <span className="run-dot" style={{ background: color }} aria-hidden />
        {draft ? (
          <input
            className="run-name-input"
            value={c.name}
            size={Math.max(10, c.name.length + 1)}
            aria-label="Run name"
            onChange={(e) => set({ name: e.target.value })}
          />
        ) : (
          <h3 className="run-name">{c.name}</h3>
        )}
        <span className={`badge badge-status-${run.status}`} data-testid="run-status">
          {STATUS_TEXT[run.status]}
        </span>
        {run.archived && <span className="badge">Archived</span>}
        <div className="run-buttons">
          {draft && (
            <button
              className="btn btn-primary btn-sm"
              data-testid="run-start"
              disabled={startBlocked !== null}
              title={startBlocked ?? undefined}
              onClick={() => startRun(c.id)}
            >
              Start
            </button>
          )}
          {active && (
            <button className="btn btn-danger btn-sm" data-testid="run-cancel" onClick={() => cancelRun(c.id)}>
              Cancel
            </button>
          )}
          <ResumeButton run={run} />
          <button
            className="btn btn-ghost btn-sm"
            onClick={() => duplicateRun(c.id)}
            title="A new draft with the same settings"
          >
            {draft ? 'Duplicate' : 'Run again'}
          </button>
          <RunMenu label="More ▾" testId="run-menu" alignRight title="Notes, exports, the CLI command, archive">
            <RunMenuItem onClick={() => setEditingNotes(true)} testId="run-notes-menu">
              Notes & tags…
            </RunMenuItem>
            <RunMenuItem onClick={() => void copyCli()} testId="run-copy-cli">
              Copy as CLI command
            </RunMenuItem>
            <RunMenuItem
              onClick={() => downloadText(`${slug(c.name)}-config.json`, runConfigJson(c), 'application/json')}
              testId="run-export-config"
            >
              Export config (JSON)
            </RunMenuItem>
            <RunMenuItem
              disabled={!hasMetrics(run)}
              title={hasMetrics(run) ? undefined : 'No metrics yet: start the run first'}
              onClick={() => downloadText(metricsFileName([run], 'csv'), metricsCsv([run]), 'text/csv')}
              testId="run-export-csv"
            >
              Export metrics (CSV)
            </RunMenuItem>
            <RunMenuItem
              disabled={!hasMetrics(run)}
              title={hasMetrics(run) ? undefined : 'No metrics yet: start the run first'}
              onClick={() => downloadText(metricsFileName([run], 'json'), metricsJson([run]), 'application/json')}
              testId="run-export-json"
            >
              Export metrics (JSON)
            </RunMenuItem>
            {!active && (
              <RunMenuItem onClick={() => setRunsArchived([c.id], !run.archived)} testId="run-archive">
                {run.archived ? 'Restore from the archive' : 'Archive'}
              </RunMenuItem>
            )}
          </RunMenu>
          {!active && (
            <button className="icon-btn" aria-label={`Remove ${c.name}`} title="Remove" onClick={remove}>
              ×
            </button>
          )}
        </div>
      </div>

      <RunNotes
        run={run}
        editing={editingNotes}
        onEdit={() => setEditingNotes(true)}
        onDone={() => setEditingNotes(false)}
      />
      {showCli && <RunCliCommandBox run={run} onClose={() => setShowCli(false)} />}

      {draft ? (
        <FieldValidity.Provider value={fieldValidity(c.id, setFieldValidity)}>
          <RunForm config={c} card={card} set={set} />
        </FieldValidity.Provider>
      ) : (
        <RunSettingsLine run={run} card={card} />
      )}
      {draft && invalid && (
        <div className="run-message error" data-testid="run-invalid">
          {invalid}
        </div>
      )}
      <RunDataLine run={run} />
      <RunBudget config={c} card={card} analysis={run.analysis} />

      {!draft && <RunProgressView run={run} />}
      <CheckpointLine run={run} />
      {run.message && (
        <div className={`run-message ${run.status === 'failed' ? 'error' : ''}`} data-testid="run-message">
          {run.message}
        </div>
      )}
    </article>
  );
}

/** One stable callback per run, so fields do not re-report on every render. */
const validityCallbacks = new Map<string, (field: string, valid: boolean) => void>();
function fieldValidity(id: string, setFieldValidity: (id: string, field: string, valid: boolean) => void) {
  let cb = validityCallbacks.get(id);
  if (!cb) validityCallbacks.set(id, (cb = (field, valid) => setFieldValidity(id, field, valid)));
  return cb;
}

function RunSettingsLine({ run, card }: { run: RunRecord; card: ModelCard | null }) {
  const c = run.config;
  const options = methodOptionsText(c);
  const parts = [
    c.method === 'full'
      ? 'full fine-tune'
      : `${methodShort(c)} α=${c.alpha} on ${targetLabel(c.targets, card?.spec)}${options ? ` (${options})` : ''}`,
    `lr ${formatLr(c.lr)}`,
    gradAccumOf(c) > 1
      ? `${c.steps} steps × (${c.batch} × ${gradAccumOf(c)} micro-batches) × ${c.seq} tokens`
      : `${c.steps} steps × ${c.batch} × ${c.seq} tokens`,
    ...(c.truncation === 'right' ? ['truncation: right'] : []),
  ];
  if (run.modelName) parts.push(`${run.modelName}${run.datasetName ? ` on ${run.datasetName}` : ''}`);
  return <div className="run-settings">{parts.join(' · ')}</div>;
}
