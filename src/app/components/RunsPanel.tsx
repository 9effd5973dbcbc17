/**
 * The Runs panel: adding runs (a copy of the last, or a preset), clearing drafts, starting them; the run list
 * with its view (current or archived), filters, groups (run-filter.ts, kept across reloads by ui-prefs.ts) and
 * selection, and one RunCard per run.
 */
import { useMemo, useState } from 'react';
import { filterRuns, groupRuns, narrows, NO_FILTER, validFilter, type RunFilter } from '../run-filter';
import { isActive } from '../run-record';
import { useDatasetWait, useStudio } from '../store';
import { useRunListPrefs } from '../ui-prefs';
import { Alert, Panel, runColor } from './Panel';
import { RunAddButtons } from './RunAddMenu';
import { RunCard } from './RunCard';
import { RunBulkBar, RunFiles, RunToolbar } from './RunToolbar';

export function RunsPanel() {
  const order = useStudio((s) => s.order);
  const runs = useStudio((s) => s.runs);
  const card = useStudio((s) => s.model.card);
  const hasDataset = useStudio((s) => s.dataset.preview !== null);
  const datasetWait = useDatasetWait();
  const addRun = useStudio((s) => s.addRun);
  const startAll = useStudio((s) => s.startAllDrafts);
  const drafts = order.filter((id) => runs[id].status === 'draft').length;
  const software = useStudio((s) => s.gpu.status === 'ready' && s.gpu.info.software);

  const [{ filter: chosenFilter, grouping }, setListPrefs] = useRunListPrefs();
  const setFilter = (filter: RunFilter) => setListPrefs({ filter });
  const [selection, setSelection] = useState<ReadonlySet<string>>(() => new Set());
  const [importProblems, setImportProblems] = useState<string[]>([]);

  const list = useMemo(() => ({ runs, order }), [runs, order]);
  // A pick whose runs are all gone (removed, archived) no longer filters.
  const filter = validFilter(list, chosenFilter);
  const shown = filterRuns(list, filter);
  const groups = groupRuns(list, shown, grouping);
  const hiddenByFilter = narrows(filter)
    ? filterRuns(list, { ...NO_FILTER, view: filter.view }).length - shown.length
    : 0;
  // Only runs still listed and not training can be selected.
  const selected = shown.filter((id) => selection.has(id) && !isActive(runs[id]));
  const selectable = shown.filter((id) => !isActive(runs[id]));
  const select = (id: string, on: boolean) =>
    setSelection((s) => {
      const next = new Set(s);
      if (on) next.add(id);
      else next.delete(id);
      return next;
    });

  return (
    <Panel
      id="runs"
      step={3}
      title="Runs"
      subtitle="Configure several runs and queue them: they train one after another on your GPU. Parameter counts and memory update as you edit."
      actions={
        <>
          <RunAddButtons />
          <button
            className="btn btn-primary"
            disabled={drafts === 0 || !card || !hasDataset || datasetWait !== null}
            title={datasetWait ?? undefined}
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
          The browser gave us a CPU implementation of WebGPU (a software adapter such as SwiftShader), not your graphics
          card. Everything works, 10 to 100 times slower: keep runs small, or enable hardware acceleration in the
          browser settings (and check <code>chrome://gpu</code> in Chrome, or <code>about:support</code> in Firefox).
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
      {importProblems.length > 0 && (
        <div className="run-message error run-import-error" role="alert" data-testid="run-import-error">
          <div className="run-import-error-head">
            <strong>The run configuration was not imported:</strong>
            <button className="icon-btn" aria-label="Dismiss" onClick={() => setImportProblems([])}>
              ×
            </button>
          </div>
          <ul>
            {importProblems.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </div>
      )}
      {order.length > 0 && (
        <RunToolbar
          list={list}
          filter={filter}
          onFilter={(f) => {
            setFilter(f);
            setSelection(new Set());
          }}
          grouping={grouping}
          onGrouping={(g) => setListPrefs({ grouping: g })}
        />
      )}
      <div className="run-list-head">
        {selectable.length > 0 && (
          <label className="check">
            <input
              type="checkbox"
              checked={selected.length === selectable.length}
              onChange={(e) => setSelection(new Set(e.target.checked ? selectable : []))}
              data-testid="runs-select-all"
            />
            Select all shown
          </label>
        )}
        <RunBulkBar list={list} selected={selected} onClear={() => setSelection(new Set())} />
        {hiddenByFilter > 0 && (
          <span className="muted" data-testid="runs-filter-hidden">
            {hiddenByFilter} run{hiddenByFilter > 1 ? 's' : ''} hidden by the filter ·{' '}
            <button className="link" onClick={() => setFilter({ ...NO_FILTER, view: filter.view })}>
              Show all
            </button>
          </span>
        )}
        <RunFiles
          list={list}
          shown={shown}
          onImport={(text) => setImportProblems(useStudio.getState().importRunConfig(text))}
        />
      </div>
      {order.length === 0 ? (
        <div className="empty">
          No runs yet.{' '}
          <button className="link" onClick={addRun}>
            Add one
          </button>
          .
        </div>
      ) : shown.length === 0 && hiddenByFilter === 0 ? (
        <div className="empty" data-testid="runs-empty-view">
          {filter.view === 'archived' ? 'No archived runs.' : 'Every run is archived: see "Archived".'}
        </div>
      ) : (
        <div className="run-list">
          {groups.map((g) => (
            <div key={g.key} className="run-group" data-testid={g.key ? 'run-group' : undefined}>
              {g.key && (
                <h3 className="run-group-head">
                  {g.label} <span className="muted">({g.ids.length})</span>
                </h3>
              )}
              {g.ids.map((id) => (
                <RunCard
                  key={id}
                  run={runs[id]}
                  // Colors follow the run's place in the whole list: the charts use the same.
                  color={runColor(order.indexOf(id))}
                  card={card}
                  selected={selection.has(id)}
                  onSelect={(on) => select(id, on)}
                />
              ))}
            </div>
          ))}
        </div>
      )}
    </Panel>
  );
}
