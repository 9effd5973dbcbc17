/**
 * One experiment: its head (name, status, the buttons its status allows), the definition form while it is a
 * draft, then its progress, budget, runs and results. The definition's file (export, import, the CLI command)
 * is handled here too.
 */
import { useMemo, useRef, useState } from 'react';
import { experimentCliCommand } from '../../experiment/report/cli-command';
import type { ModelCard } from '../../worker/protocol';
import { invalidExperimentFields, reportFileName } from '../experiment-actions';
import {
  canResumeExperiment,
  definitionJson,
  experimentResumeProblem,
  isExperimentActive,
  liveResults,
  runCount,
  type ExperimentRecord,
} from '../experiment-record';
import { formatLr } from '../format';
import { useDatasetWait, useStudio } from '../store';
import { BudgetTableView } from './ExperimentBudget';
import { ExperimentForm } from './ExperimentForm';
import { ExperimentProgress } from './ExperimentProgress';
import { ExperimentResultsView } from './ExperimentResults';
import { FieldValidity } from './Fields';

const STATUS_TEXT: Record<ExperimentRecord['status'], string> = {
  draft: 'Draft',
  queued: 'Queued',
  running: 'Running',
  done: 'Done',
  stopped: 'Stopped',
  failed: 'Failed',
  interrupted: 'Interrupted',
};

/** The file a definition is saved as, and the folder the CLI writes to: both from the experiment's name. */
function fileBase(name: string): string {
  return reportFileName(name).replace(/-report\.zip$/, '');
}

/** Saves text as a file through the browser's downloads. */
function downloadText(fileName: string, text: string, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function ExperimentCard({ record: r, card }: { record: ExperimentRecord; card: ModelCard | null }) {
  const actions = useStudio.getState();
  const dataset = useStudio((s) => s.dataset.preview);
  const [cli, setCli] = useState<string | null>(null);
  const [importError, setImportError] = useState<string | null>(null);
  const importInput = useRef<HTMLInputElement>(null);
  const draft = r.status === 'draft';
  const active = isExperimentActive(r);
  // Summarized again only when a run finishes (not on every step report): the fields liveResults reads.
  const { final, plan, results: finished } = r;
  const results = useMemo(() => liveResults({ ...r, final, plan, results: finished }), [final, plan, finished]);
  const resumeProblem = canResumeExperiment(r) ? experimentResumeProblem(r, card, dataset) : null;
  const invalid = invalidExperimentFields(r.invalidFields);
  // Not while a dataset file loads: the experiment would train on the previous one.
  const datasetWait = useDatasetWait();
  const startBlocked = invalid ?? datasetWait;
  const e = r.experiment;
  const base = fileBase(e.name);

  const copyCli = () => {
    const command = experimentCliCommand(`${base}.json`, base);
    setCli(command);
    void navigator.clipboard?.writeText(command).then(
      () => actions.toast('info', 'CLI command copied (save the definition as the file it names).'),
      () => {},
    );
  };
  const importFile = async (file: File) => {
    setImportError(actions.importExperiment(await file.text(), r.id));
  };

  return (
    <article
      className={`run-card experiment-card status-${r.status}`}
      data-testid="experiment-card"
      data-experiment-id={r.id}
      data-status={r.status}
      aria-label={e.name}
    >
      <div className="run-head">
        {draft ? (
          <input
            className="run-name-input"
            value={e.name}
            size={Math.max(12, e.name.length + 1)}
            aria-label="Experiment name"
            onChange={(ev) => actions.updateExperiment(r.id, (x) => ({ ...x, name: ev.target.value }))}
          />
        ) : (
          <h3 className="run-name">{e.name}</h3>
        )}
        <span className={`badge badge-status-${r.status}`} data-testid="experiment-status">
          {STATUS_TEXT[r.status]}
        </span>
        <div className="run-buttons">
          {draft && (
            <button
              className="btn btn-primary btn-sm"
              data-testid="experiment-start"
              disabled={startBlocked !== null}
              title={startBlocked ?? `Train ${runCount(e)} runs, one after another`}
              onClick={() => actions.startExperiment(r.id)}
            >
              Start {runCount(e)} runs
            </button>
          )}
          {active && (
            <button
              className="btn btn-danger btn-sm"
              data-testid="experiment-stop"
              onClick={() => actions.cancelExperiment(r.id)}
            >
              Stop
            </button>
          )}
          {canResumeExperiment(r) && (
            <button
              className="btn btn-primary btn-sm"
              data-testid="experiment-resume"
              disabled={resumeProblem !== null}
              title={resumeProblem ?? 'Continue with the runs not finished yet (the finished ones are kept)'}
              onClick={() => actions.resumeExperiment(r.id)}
            >
              Resume
            </button>
          )}
          {draft && (
            <>
              <button className="btn btn-ghost btn-sm" onClick={() => importInput.current?.click()}>
                Import JSON
              </button>
              <input
                ref={importInput}
                type="file"
                accept=".json,application/json"
                hidden
                aria-label="Experiment definition file"
                data-testid="experiment-import-input"
                onChange={(ev) => {
                  const file = ev.target.files?.[0];
                  ev.target.value = '';
                  if (file) void importFile(file);
                }}
              />
            </>
          )}
          <button
            className="btn btn-ghost btn-sm"
            data-testid="experiment-export-json"
            onClick={() => downloadText(`${base}.json`, `${JSON.stringify(definitionJson(e), null, 2)}\n`)}
          >
            Export JSON
          </button>
          <button className="btn btn-ghost btn-sm" data-testid="experiment-copy-cli" onClick={copyCli}>
            Copy as CLI command
          </button>
          {!draft && (
            <button
              className="btn btn-ghost btn-sm"
              onClick={() => actions.duplicateExperiment(r.id)}
              title="A new draft with the same definition"
            >
              Edit a copy
            </button>
          )}
          {!active && (
            <button
              className="icon-btn"
              aria-label={`Remove ${e.name}`}
              title="Remove (with its runs' adapters)"
              onClick={() => actions.removeExperiment(r.id)}
            >
              ×
            </button>
          )}
        </div>
      </div>
      {cli && (
        <div className="experiment-cli">
          Save the definition as <code>{base}.json</code> (Export JSON), then run:{' '}
          <code className="code-block" data-testid="experiment-cli-command">
            {cli}
          </code>
        </div>
      )}
      {importError && (
        <div className="run-message error pre-line" role="alert" data-testid="experiment-import-error">
          {importError}
        </div>
      )}

      {draft ? (
        <FieldValidity.Provider value={fieldValidity(r.id, actions.setExperimentFieldValidity)}>
          <ExperimentForm
            experiment={e}
            lrMode={r.lrMode}
            card={card}
            set={(update) => actions.updateExperiment(r.id, update)}
            setLrMode={(mode) => actions.setExperimentLrMode(r.id, mode)}
          />
        </FieldValidity.Provider>
      ) : (
        <ExperimentSettingsLine record={r} />
      )}
      {draft && invalid && (
        <div className="run-message error" data-testid="experiment-invalid">
          {invalid}
        </div>
      )}
      {r.message && (
        <div
          className={`run-message pre-line ${r.status === 'failed' || draft ? 'error' : ''}`}
          role={r.status === 'failed' || draft ? 'alert' : undefined}
          data-testid="experiment-message"
        >
          {r.message}
        </div>
      )}
      {resumeProblem && (
        <div className="run-settings" data-testid="experiment-resume-problem">
          {resumeProblem}
        </div>
      )}
      {!draft && <ExperimentProgress record={r} />}
      {!draft && r.plan && (
        <details className="experiment-plan-budget">
          <summary>Parameter budget</summary>
          <BudgetTableView budget={r.plan.budget} experiment={r.plan.experiment} />
        </details>
      )}
      {!draft && results && <ExperimentResultsView record={r} results={results} />}
    </article>
  );
}

/** One stable callback per experiment, so fields do not re-report on every render. */
const validityCallbacks = new Map<string, (field: string, valid: boolean) => void>();
function fieldValidity(id: string, setValidity: (id: string, field: string, valid: boolean) => void) {
  let cb = validityCallbacks.get(id);
  if (!cb) validityCallbacks.set(id, (cb = (field, valid) => setValidity(id, field, valid)));
  return cb;
}

/** What a started experiment runs: its configurations, grid, shared settings, and the files it ran on. */
function ExperimentSettingsLine({ record: r }: { record: ExperimentRecord }) {
  const e = r.plan?.experiment ?? r.experiment;
  const rates = [...new Set(e.methods.flatMap((m) => m.lrs ?? e.lrs))].sort((a, b) => a - b);
  const parts = [
    e.methods.map((m) => `${m.name} (${m.method} r${m.rank}${m.rankMatched ? ' matched' : ''})`).join(', '),
    `lr ${rates.map(formatLr).join(', ')}`,
    `seeds ${e.seeds.join(', ')}`,
    e.train.gradAccum > 1
      ? `${e.train.steps} steps × (${e.train.batch} × ${e.train.gradAccum} micro-batches) × ${e.train.seqLen ?? '–'} tokens`
      : `${e.train.steps} steps × ${e.train.batch} × ${e.train.seqLen ?? '–'} tokens`,
    `baseline ${e.baseline}`,
  ];
  if (r.modelName) parts.push(`${r.modelName}${r.datasetName ? ` on ${r.datasetName}` : ''}`);
  return (
    <div className="run-settings" data-testid="experiment-settings">
      {parts.join(' · ')}
    </div>
  );
}
