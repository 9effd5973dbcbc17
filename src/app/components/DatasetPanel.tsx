import { useRef, useState } from 'react';
import { Bar, BarChart, CartesianGrid, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatBytes, formatCount, formatInt } from '../format';
import { pickHandles, reopenStore, useReopen } from '../reopen';
import { useStudio } from '../store';
import { DropZone } from './DropZone';
import { ReopenOffer } from './Reopen';
import { Alert, Panel, ProgressBar, Stat } from './Panel';
import type { DatasetPreview } from '../../worker/protocol';
import { FORMATS } from '../../data/detect';
import type { ColumnMap, ColumnRole, DatasetFormat } from '../../data/types';
import type { PromptJoin } from '../../data/tokenize';
import { describeFit } from './RunData';
import { describeDatasetLoading, loadingPercent, type DatasetLoading } from '../dataset-loading';

const ACCEPT = '.txt,.jsonl,.ndjson,.json,.csv,.tsv,.parquet,.gz';

const PROMPT_JOINS: [PromptJoin, string][] = [
  ['none', 'Nothing (as TRL)'],
  ['space', 'A space'],
  ['newline', 'A newline'],
  ['chat-template', 'Chat template (user → assistant)'],
];

const JOIN_WORDS: Record<PromptJoin, string> = {
  none: 'with nothing between them, as TRL does',
  space: 'with a space between them',
  newline: 'with a newline between them',
  'chat-template': "as a user and an assistant turn of the tokenizer's chat template",
};

const FORMAT_NAMES: Record<DatasetFormat, string> = {
  text: 'Plain text',
  prompt_completion: 'Prompt / completion',
  alpaca: 'Alpaca instructions',
  chat: 'Chat messages',
  tokens: 'Pre-tokenized ids',
};

export function DatasetPanel() {
  const dataset = useStudio((s) => s.dataset);
  const hasModel = useStudio((s) => s.model.card !== null);
  const canKeep = useReopen((s) => s.supported);
  const input = useRef<HTMLInputElement>(null);
  const p = dataset.preview;
  // The File System Access picker where the browser has one (its handle reopens after a reload), else the input.
  const choose = async () => {
    if (!canKeep) return input.current?.click();
    try {
      const handles = await pickHandles('dataset');
      if (handles) await reopenStore().getState().openHandles('dataset', handles);
    } catch {
      input.current?.click();
    }
  };

  return (
    <Panel
      id="dataset"
      step={2}
      title="Dataset"
      subtitle="Plain text, prompt/completion, Alpaca or chat messages, as .txt, .jsonl, .json, .csv or .parquet. The format is detected; you can choose it and map the columns."
    >
      <DropZone
        label="Drop a dataset file"
        testId="dataset-drop"
        compact={!!p}
        onFiles={(d, handles) => reopenStore().getState().open('dataset', d, handles.slice(0, 1))}
      >
        <div className="dropzone-inner">
          <div className="dropzone-icon" aria-hidden>
            ≣
          </div>
          <div>
            <div className="dropzone-title">{p ? 'Drop another file to replace it' : 'Drop a dataset file here'}</div>
            {!p && <div className="dropzone-hint">.txt · .jsonl · .json · .csv · .tsv · .parquet</div>}
          </div>
          <div className="dropzone-buttons">
            <button className="btn" data-testid="dataset-choose-file" onClick={() => void choose()}>
              Choose file…
            </button>
          </div>
        </div>
        <input
          ref={input}
          type="file"
          hidden
          accept={ACCEPT}
          data-testid="dataset-input"
          onChange={(e) => {
            // Plain <input> files carry no handle: the dataset cannot be reopened after a reload (reopen.ts says so).
            const f = e.target.files?.[0];
            if (f)
              reopenStore()
                .getState()
                .open('dataset', { files: [f] }, []);
            e.target.value = '';
          }}
        />
      </DropZone>
      <ReopenOffer slot="dataset" />

      {dataset.loading && <DatasetLoadingView loading={dataset.loading} current={p} />}
      {dataset.error && (
        <Alert kind="error" title="The dataset could not be loaded" testId="dataset-error">
          {dataset.error}
          {p && <div className="muted small">Still using {p.name}.</div>}
        </Alert>
      )}

      {p && (
        <div className="dataset-preview" data-testid="dataset-preview">
          <PreviewHeading preview={p} />
          {p.unmatched && (
            <Alert kind="warning" title="No format detected" testId="dataset-unmatched">
              {p.unmatched}
              <div className="muted small">Choose the format below and pick the field for each role.</div>
            </Alert>
          )}
          <FormatMapper key={`${p.name}|${p.format}|${JSON.stringify(p.override)}`} preview={p} />
          {!p.tokenized && !hasModel && (
            <Alert kind="info">Load a model to tokenize this dataset: token counts and examples appear then.</Alert>
          )}
          <div className="stats-grid">
            <Stat label="Rows" value={formatInt(p.rows)} />
            {p.tokenized && <Stat label="Examples" value={formatInt(p.examples)} />}
            {p.tokenized && (
              <Stat
                label="Tokens"
                value={formatCount(p.tokens)}
                hint={`${formatInt(p.tokens)} tokens`}
                testId="dataset-tokens"
              />
            )}
            {p.tokenized && (
              <Stat
                label="Supervised"
                value={`${p.tokens ? Math.round((100 * p.supervisedTokens) / p.tokens) : 0}%`}
                hint="Share of tokens the loss is computed on"
              />
            )}
            <Stat label="Skipped rows" value={formatInt(p.skipped)} />
            {p.fit && !p.fit.problem && (
              <Stat
                label={`Truncated at ${p.fit.seq}`}
                value={formatInt(p.fit.truncated)}
                testId="dataset-truncated"
                hint={`${describeFit(p.fit)}. The sequence length and truncation are those of the run being configured.`}
              />
            )}
            {p.fit && !p.fit.problem && (
              <Stat
                label="Dropped"
                value={formatInt(p.fit.dropped)}
                testId="dataset-dropped"
                hint="Examples left with no supervised token after truncation: not trained on"
              />
            )}
            {p.assistantTurns > 0 && (
              <Stat
                label="Empty turns"
                value={`${formatInt(p.emptyTurns)} / ${formatInt(p.assistantTurns)}`}
                testId="dataset-empty-turns"
                hint="Assistant turns the chat template renders empty (e.g. tool calls it does not write): never trained on"
              />
            )}
          </div>
          {p.fit?.problem && (
            <Alert kind="error" title="Nothing to train on at this length" testId="dataset-fit-problem">
              {p.fit.problem}
            </Alert>
          )}
          {p.format === 'prompt_completion' && (
            <div className="muted small" data-testid="dataset-join">
              Prompt and completion are joined {JOIN_WORDS[p.override.promptJoin ?? 'none']}; choose another separator
              above.
            </div>
          )}
          {p.warnings.length > 0 && (
            <Alert kind="warning" title={`${p.warnings.length} warning${p.warnings.length > 1 ? 's' : ''}`}>
              <ul className="plain-list">
                {p.warnings.map((w, i) => (
                  <li key={i}>{w}</li>
                ))}
              </ul>
            </Alert>
          )}
          {p.histogram.length > 0 && (
            <div className="mini-chart">
              <div className="mini-chart-title">Tokens per example</div>
              <ResponsiveContainer width="100%" height={130}>
                <BarChart
                  data={p.histogram.map((b) => ({ ...b, label: `${b.from}–${b.to - 1}` }))}
                  margin={{ top: 4, right: 8, bottom: 0, left: -18 }}
                >
                  <CartesianGrid vertical={false} stroke="var(--grid)" />
                  <XAxis dataKey="from" tick={{ fontSize: 11 }} stroke="var(--muted)" />
                  <YAxis tick={{ fontSize: 11 }} stroke="var(--muted)" allowDecimals={false} tickCount={3} />
                  <Tooltip
                    cursor={{ fill: 'rgba(255,255,255,0.04)' }}
                    contentStyle={{ background: 'var(--panel-2)', border: '1px solid var(--border)', borderRadius: 8 }}
                    labelFormatter={(_, items) => `${items?.[0]?.payload?.label ?? ''} tokens`}
                    formatter={(v) => [v, 'examples']}
                  />
                  <Bar dataKey="count" fill="var(--accent)" radius={[3, 3, 0, 0]} isAnimationActive={false} />
                </BarChart>
              </ResponsiveContainer>
            </div>
          )}
          <SampleList preview={p} />
        </div>
      )}
    </Panel>
  );
}

/**
 * A file being read or tokenized: its progress (a spinner while the amount is unknown) and, for a large file, its
 * first rows while the rest is read. The dataset in use (`current`) only changes once the file is done.
 */
function DatasetLoadingView({ loading, current }: { loading: DatasetLoading; current: DatasetPreview | null }) {
  const percent = loadingPercent(loading);
  // A new file (not the one in use re-tokenized for a new model, or its format applied).
  const replacing = current !== null && (loading.preview !== undefined || loading.name !== current.name);
  return (
    <div className="dataset-loading" data-testid="dataset-loading">
      {percent === null ? (
        <div className="loading-line">
          <span className="spinner" aria-hidden /> {describeDatasetLoading(loading)}
        </div>
      ) : (
        <div className="loading-line">
          <span data-testid="dataset-progress-text">{describeDatasetLoading(loading)}</span>
          <ProgressBar
            value={loading.done!}
            max={loading.total!}
            label={`${loading.stage} ${loading.name}`}
            testId="dataset-progress"
          />
        </div>
      )}
      {replacing && (
        <div className="muted small" data-testid="dataset-loading-note">
          Runs and experiments can start once {loading.name} is loaded; until then {current.name}, below, stays the
          dataset in use.
        </div>
      )}
      {loading.preview && <EarlyPreview preview={loading.preview} />}
    </div>
  );
}

/** A large file's first rows while the rest is read: what was detected, and the rows tokenized (with a model). */
function EarlyPreview({ preview }: { preview: DatasetPreview }) {
  const unmapped = Object.keys(preview.columns).length === 0 && preview.fields.length > 0;
  return (
    <div className="dataset-early-preview" data-testid="dataset-early-preview">
      <div className="muted small">
        Preview of the first rows while the rest is read: {formatInt(preview.rows)} rows so far. The format can be
        changed once the whole file is loaded.
      </div>
      <PreviewHeading preview={preview} />
      {unmapped && <div className="muted small">Fields: {preview.fields.join(', ')}</div>}
      {preview.unmatched && <div className="muted small">{preview.unmatched}</div>}
      <SampleList preview={preview} />
    </div>
  );
}

/** The file's name and size, the columns each role reads, and the format badge. */
function PreviewHeading({ preview: p }: { preview: DatasetPreview }) {
  return (
    <div className="card-title-row">
      <div>
        <div className="card-title">{p.name}</div>
        <div className="card-sub">
          {formatBytes(p.bytes)}
          {Object.keys(p.columns).length > 0 && (
            <span data-testid="dataset-columns">
              {` · columns: ${Object.entries(p.columns)
                .map(([role, field]) => (role === field ? role : `${role} ← ${field}`))
                .join(', ')}`}
            </span>
          )}
        </div>
      </div>
      <span className="badge badge-accent" data-testid="dataset-format">
        {p.format ? (FORMAT_NAMES[p.format] ?? p.format) : 'Unknown format'}
      </span>
    </div>
  );
}

/** The first examples decoded, supervised parts highlighted (only once the dataset is tokenized). */
function SampleList({ preview: p }: { preview: DatasetPreview }) {
  if (p.samples.length === 0) return null;
  return (
    <div className="samples">
      <div className="samples-head">
        <span>First examples</span>
        <span className="legend">
          <span className="swatch swatch-sup" /> supervised (loss) <span className="swatch swatch-ctx" /> context only
        </span>
      </div>
      {p.samples.map((s, i) => (
        <Sample key={`${p.name}-${i}`} index={i} sample={s} />
      ))}
    </div>
  );
}

type FormatChoice = DatasetFormat | 'auto';
const FORMAT_CHOICES = Object.keys(FORMAT_NAMES) as DatasetFormat[];

/**
 * The format select and one field select per role of the chosen format. Remounted (via `key`) whenever a
 * new preview arrives, so it always starts from what the worker is using; a refused mapping keeps the selects.
 */
function FormatMapper({ preview }: { preview: DatasetPreview }) {
  const setDatasetFormat = useStudio((s) => s.setDatasetFormat);
  const busy = useStudio((s) => s.dataset.loading !== null);
  const [format, setFormat] = useState<FormatChoice>(preview.override.format ?? 'auto');
  const [columns, setColumns] = useState<ColumnMap>(() => (preview.override.format ? { ...preview.columns } : {}));
  const [promptJoin, setPromptJoin] = useState<PromptJoin>(preview.override.promptJoin ?? 'none');
  const joins = format === 'prompt_completion' || (format === 'auto' && preview.format === 'prompt_completion');
  const roles = format === 'auto' ? [] : [...FORMATS[format].required, ...FORMATS[format].optional];

  const chooseFormat = (next: FormatChoice) => {
    setFormat(next);
    setColumns(next === 'auto' ? {} : suggestedColumns(next, preview));
  };
  const apply = () =>
    setDatasetFormat({
      format: format === 'auto' ? null : format,
      columns: format === 'auto' ? {} : columns,
      ...(joins && promptJoin !== 'none' ? { promptJoin } : {}),
    });

  return (
    <div className="format-mapper" data-testid="dataset-mapper">
      <label className="field format-field">
        <span className="field-label">Format</span>
        <select
          data-testid="dataset-format-select"
          value={format}
          onChange={(e) => chooseFormat(e.target.value as FormatChoice)}
        >
          <option value="auto">Auto-detect</option>
          {FORMAT_CHOICES.map((f) => (
            <option key={f} value={f}>
              {FORMAT_NAMES[f]}
            </option>
          ))}
        </select>
      </label>
      {format !== 'auto' &&
        roles.map((role) => (
          <RoleSelect
            key={role}
            role={role}
            required={FORMATS[format].required.includes(role)}
            fields={preview.fields}
            value={columns[role]}
            onChange={(field) => setColumns({ ...columns, [role]: field })}
          />
        ))}
      {joins && (
        <label className="field column-field">
          <span className="field-label">Between prompt and completion</span>
          <select
            data-testid="dataset-prompt-join"
            value={promptJoin}
            onChange={(e) => setPromptJoin(e.target.value as PromptJoin)}
          >
            {PROMPT_JOINS.map(([v, text]) => (
              <option key={v} value={v}>
                {text}
              </option>
            ))}
          </select>
        </label>
      )}
      <button className="btn btn-sm" data-testid="dataset-format-apply" disabled={busy} onClick={apply}>
        Apply
      </button>
    </div>
  );
}

function RoleSelect(props: {
  role: ColumnRole;
  required: boolean;
  fields: string[];
  value: string | undefined;
  onChange: (field: string | undefined) => void;
}) {
  return (
    <label className="field column-field">
      <span className="field-label">
        {props.role}
        {props.required && (
          <span className="field-required" title="required">
            {' '}
            *
          </span>
        )}
      </span>
      <select
        data-testid={`dataset-column-${props.role}`}
        value={props.value ?? ''}
        onChange={(e) => props.onChange(e.target.value || undefined)}
      >
        <option value="">{props.required ? '— choose —' : 'none'}</option>
        {props.fields.map((field) => (
          <option key={field} value={field}>
            {field}
          </option>
        ))}
      </select>
    </label>
  );
}

/** Starting selects for a format: what the worker resolved when it is the current one, else fields named like the role. */
function suggestedColumns(format: DatasetFormat, preview: DatasetPreview): ColumnMap {
  if (format === preview.format) return { ...preview.columns };
  const columns: ColumnMap = {};
  for (const role of [...FORMATS[format].required, ...FORMATS[format].optional]) {
    if (preview.fields.includes(role)) columns[role] = role;
  }
  return columns;
}

/** Long context (a prompt template, a system prompt) is shortened in the middle so the supervised part stays in view. */
const CONTEXT_HEAD = 60;
const CONTEXT_TAIL = 140;

function Sample({ index, sample }: { index: number; sample: DatasetPreview['samples'][number] }) {
  const [full, setFull] = useState(false);
  const long = sample.segments.some((seg) => !seg.supervised && seg.text.length > CONTEXT_HEAD + CONTEXT_TAIL + 40);
  return (
    <div className="sample" data-testid="dataset-sample">
      <div className="sample-meta">
        #{index + 1} · {sample.tokens} tokens · {sample.supervised} supervised
        {long && (
          <button className="link sample-toggle" onClick={() => setFull(!full)}>
            {full ? 'shorten' : 'show all'}
          </button>
        )}
      </div>
      <pre className="sample-text">
        {sample.segments.map((seg, j) => {
          if (seg.supervised)
            return (
              <span key={j} className="seg-sup">
                {seg.text}
              </span>
            );
          if (full || seg.text.length <= CONTEXT_HEAD + CONTEXT_TAIL + 40)
            return (
              <span key={j} className="seg-ctx">
                {seg.text}
              </span>
            );
          const hidden = seg.text.length - CONTEXT_HEAD - CONTEXT_TAIL;
          return (
            <span key={j} className="seg-ctx">
              {seg.text.slice(0, CONTEXT_HEAD)}
              <span className="seg-elided">[… {hidden} characters …]</span>
              {seg.text.slice(-CONTEXT_TAIL)}
            </span>
          );
        })}
      </pre>
    </div>
  );
}
