import { targetLabel } from '../budget';
import { formatLr } from '../format';
import { gradAccumOf, methodOptionsText, methodShort } from '../methods';
import { invalidFieldsProblem, isActive, type RunRecord } from '../run-record';
import { useStudio } from '../store';
import { FieldValidity } from './Fields';
import { RunDataLine } from './RunData';
import type { ModelCard, RunConfig } from '../../worker/protocol';
import { Alert, Panel, runColor } from './Panel';
import { RunBudget } from './RunBudget';
import { CheckpointLine, ResumeButton } from './RunCheckpoint';
import { RunForm } from './RunForm';
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

export function RunsPanel() {
  const order = useStudio((s) => s.order);
  const runs = useStudio((s) => s.runs);
  const card = useStudio((s) => s.model.card);
  const hasDataset = useStudio((s) => s.dataset.preview !== null);
  const addRun = useStudio((s) => s.addRun);
  const startAll = useStudio((s) => s.startAllDrafts);
  const drafts = order.filter((id) => runs[id].status === 'draft').length;
  const software = useStudio((s) => s.gpu.status === 'ready' && s.gpu.info.software);

  return (
    <Panel
      id="runs"
      step={3}
      title="Runs"
      subtitle="Configure several runs and queue them: they train one after another on your GPU. Parameter counts and memory update as you edit."
      actions={
        <>
          <button className="btn" onClick={addRun} data-testid="add-run">
            + Add run
          </button>
          <button
            className="btn btn-primary"
            disabled={drafts === 0 || !card || !hasDataset}
            onClick={startAll}
            data-testid="start-all"
          >
            {drafts > 1 ? `Start all ${drafts} drafts` : drafts === 1 ? 'Start draft' : 'Start all'}
          </button>
        </>
      }
    >
      {software && (
        <Alert kind="warning" title="Software GPU" testId="software-gpu">
          The browser gave us a CPU implementation of WebGPU (SwiftShader), not your graphics card. Everything works, 10
          to 100 times slower: keep runs small, or enable hardware acceleration in the browser settings (and check{' '}
          <code>chrome://gpu</code>).
        </Alert>
      )}
      {(!card || !hasDataset) && (
        <Alert kind="info">
          {!card && !hasDataset
            ? 'Load a model and a dataset to start training.'
            : !card
              ? 'Load a model to start training.'
              : 'Load a dataset to start training.'}{' '}
          Or press <em>Try the demo</em>: a 260K-parameter story model, a Shakespeare excerpt and four methods to
          compare at the same parameter budget.
        </Alert>
      )}
      {order.length === 0 ? (
        <div className="empty">
          No runs yet.{' '}
          <button className="link" onClick={addRun}>
            Add one
          </button>
          .
        </div>
      ) : (
        <div className="run-list">
          {order.map((id, i) => (
            <RunCard key={id} run={runs[id]} color={runColor(i)} card={card} />
          ))}
        </div>
      )}
    </Panel>
  );
}

function RunCard({ run, color, card }: { run: RunRecord; color: string; card: ModelCard | null }) {
  const { updateRun, startRun, cancelRun, removeRun, duplicateRun, setFieldValidity } = useStudio.getState();
  const c = run.config;
  const draft = run.status === 'draft';
  const active = isActive(run);
  const set = (patch: Partial<RunConfig>) => updateRun(c.id, patch);
  const invalid = invalidFieldsProblem(run.invalidFields);

  return (
    <article
      className={`run-card status-${run.status}`}
      data-testid="run-card"
      data-run-id={c.id}
      data-status={run.status}
      data-checkpoint-step={run.checkpoint?.kept ? run.checkpoint.step : undefined}
      aria-label={c.name}
    >
      <div className="run-head">
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
        <div className="run-buttons">
          {draft && (
            <button
              className="btn btn-primary btn-sm"
              data-testid="run-start"
              disabled={invalid !== null}
              title={invalid ?? undefined}
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
          {!active && (
            <button className="icon-btn" aria-label={`Remove ${c.name}`} title="Remove" onClick={() => removeRun(c.id)}>
              ×
            </button>
          )}
        </div>
      </div>

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
