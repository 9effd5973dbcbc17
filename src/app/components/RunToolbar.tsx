/**
 * The run list's controls: the current or archived view, filters by model, dataset and tag, grouping; a
 * configuration import and the metrics of the shown runs; what to do with the selected runs.
 */
import { useRef } from 'react';
import {
  choiceLabel,
  filterChoices,
  NO_FILTER,
  type FilterChoice,
  type RunFilter,
  type RunGrouping,
} from '../run-filter';
import { downloadText } from '../run-download';
import { hasMetrics, metricsCsv, metricsFileName, metricsJson, shownMetricsLabel } from '../run-metrics-export';
import { isActive, type RunList } from '../run-record';
import { useStudio } from '../store';
import { RunMenu, RunMenuItem } from './RunMenu';

const GROUPINGS: [RunGrouping, string][] = [
  ['none', 'No grouping'],
  ['model', 'By model'],
  ['dataset', 'By dataset'],
];

export function RunToolbar(props: {
  list: RunList;
  filter: RunFilter;
  onFilter(f: RunFilter): void;
  grouping: RunGrouping;
  onGrouping(g: RunGrouping): void;
}) {
  const { list, filter, onFilter } = props;
  const choices = filterChoices(list, filter.view);
  const archived = list.order.filter((id) => list.runs[id].archived).length;
  const current = list.order.length - archived;

  return (
    <div className="run-toolbar" data-testid="runs-toolbar">
      <div className="segmented">
        <button
          className={filter.view === 'current' ? 'on' : ''}
          aria-pressed={filter.view === 'current'}
          onClick={() => onFilter({ ...NO_FILTER, view: 'current' })}
          data-testid="runs-view-current"
        >
          Runs ({current})
        </button>
        <button
          className={filter.view === 'archived' ? 'on' : ''}
          aria-pressed={filter.view === 'archived'}
          disabled={archived === 0 && filter.view !== 'archived'}
          title={archived === 0 ? 'No archived runs (archive one from its More menu)' : 'Show the archived runs'}
          onClick={() => onFilter({ ...NO_FILTER, view: 'archived' })}
          data-testid="runs-view-archived"
        >
          Archived ({archived})
        </button>
      </div>
      <FilterSelect
        label="Model"
        value={filter.model}
        choices={choices.models}
        onChange={(model) => onFilter({ ...filter, model })}
        testId="runs-filter-model"
      />
      <FilterSelect
        label="Dataset"
        value={filter.dataset}
        choices={choices.datasets}
        onChange={(dataset) => onFilter({ ...filter, dataset })}
        testId="runs-filter-dataset"
      />
      <FilterSelect
        label="Tag"
        value={filter.tag}
        choices={choices.tags}
        onChange={(tag) => onFilter({ ...filter, tag })}
        testId="runs-filter-tag"
        disabled={choices.tags.length === 0}
        emptyTitle="No tags yet: add some from a run's More menu (Notes & tags)"
      />
      <label className="inline-select">
        <span className="muted">Group</span>
        <select
          value={props.grouping}
          onChange={(e) => props.onGrouping(e.target.value as RunGrouping)}
          data-testid="runs-group"
          aria-label="Group runs"
        >
          {GROUPINGS.map(([value, label]) => (
            <option key={value} value={value}>
              {label}
            </option>
          ))}
        </select>
      </label>
    </div>
  );
}

/**
 * The list's files: a run configuration to import as a draft, and the metrics of the runs the list shows (`shown`:
 * its view and filters, so archived runs only from the Archived view).
 */
export function RunFiles(props: { list: RunList; shown: readonly string[]; onImport(text: string): void }) {
  const importInput = useRef<HTMLInputElement>(null);
  const withMetrics = props.shown.map((id) => props.list.runs[id]).filter(hasMetrics);
  const title = 'The runs the list shows now: its view (current or archived) and its filters';
  const exportAll = (ext: 'csv' | 'json') =>
    downloadText(
      metricsFileName(withMetrics, ext),
      ext === 'csv' ? metricsCsv(withMetrics) : metricsJson(withMetrics),
      ext === 'csv' ? 'text/csv' : 'application/json',
    );
  return (
    <div className="run-toolbar-files">
      <button
        className="btn btn-ghost btn-sm"
        onClick={() => importInput.current?.click()}
        title="A new draft from a run configuration file (a run's More menu exports one)"
        data-testid="run-import-config"
      >
        Import config…
      </button>
      <input
        ref={importInput}
        type="file"
        accept=".json,application/json"
        hidden
        aria-label="Run configuration file"
        data-testid="run-config-input"
        onChange={async (e) => {
          const file = e.target.files?.[0];
          e.target.value = '';
          if (file) props.onImport(await file.text());
        }}
      />
      <RunMenu label="Export metrics ▾" testId="runs-export-all" alignRight>
        {(['csv', 'json'] as const).map((ext) => (
          <RunMenuItem
            key={ext}
            disabled={withMetrics.length === 0}
            onClick={() => exportAll(ext)}
            testId={`runs-export-${ext}`}
            title={title}
          >
            {shownMetricsLabel(withMetrics.length, props.shown.length, ext === 'csv' ? 'CSV' : 'JSON')}
          </RunMenuItem>
        ))}
      </RunMenu>
    </div>
  );
}

function FilterSelect(props: {
  label: string;
  value: string | null;
  choices: FilterChoice[];
  onChange(value: string | null): void;
  testId: string;
  disabled?: boolean;
  emptyTitle?: string;
}) {
  return (
    <label className="inline-select" title={props.disabled ? props.emptyTitle : undefined}>
      <span className="muted">{props.label}</span>
      <select
        value={props.value ?? ''}
        disabled={props.disabled}
        onChange={(e) => props.onChange(e.target.value === '' ? null : e.target.value)}
        data-testid={props.testId}
        aria-label={`Filter by ${props.label.toLowerCase()}`}
      >
        <option value="">All</option>
        {props.choices.map((c) => (
          <option key={c.value} value={c.value}>
            {choiceLabel(c.value)} ({c.count})
          </option>
        ))}
      </select>
    </label>
  );
}

/** What to do with the selected runs: archive or restore them, remove them (after a confirmation). */
export function RunBulkBar(props: { list: RunList; selected: string[]; onClear(): void }) {
  const { setRunsArchived, removeRuns } = useStudio.getState();
  const runs = props.selected.map((id) => props.list.runs[id]).filter((r) => r && !isActive(r));
  const ids = runs.map((r) => r.config.id);
  if (ids.length === 0) return null;
  const archivable = runs.filter((r) => !r.archived).length;
  const restorable = runs.length - archivable;
  const trained = runs.filter((r) => r.status !== 'draft').length;
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  const remove = () => {
    const what = trained > 0 ? ` (${n(trained, 'trained run')}: their metrics and adapters go too)` : '';
    if (!window.confirm(`Remove ${n(ids.length, 'run')}${what}? This cannot be undone.`)) return;
    removeRuns(ids);
    props.onClear();
  };
  return (
    <div className="run-bulk" data-testid="runs-bulk">
      <strong>{n(ids.length, 'run')} selected</strong>
      {archivable > 0 && (
        <button
          className="btn btn-sm"
          data-testid="runs-archive"
          onClick={() => {
            setRunsArchived(ids, true);
            props.onClear();
          }}
        >
          Archive {archivable}
        </button>
      )}
      {restorable > 0 && (
        <button
          className="btn btn-sm"
          data-testid="runs-restore"
          onClick={() => {
            setRunsArchived(ids, false);
            props.onClear();
          }}
        >
          Restore {restorable}
        </button>
      )}
      <button className="btn btn-danger btn-sm" data-testid="runs-remove" onClick={remove}>
        Remove {ids.length}…
      </button>
      <button className="link" onClick={props.onClear}>
        Clear the selection
      </button>
    </div>
  );
}
