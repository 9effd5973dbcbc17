import { trainableParameters, trainingBytes, baseParameters, targetLabel } from '../budget';
import { formatBytes, formatCount, formatDuration, formatInt, formatLoss, formatLr, formatRate } from '../format';
import { isActive, useStudio, type RunRecord } from '../store';
import type { MethodId, ModelCard, RunConfig, TargetPreset } from '../../worker/protocol';
import { NumberField, SelectField } from './Fields';
import { Alert, Panel, ProgressBar, runColor } from './Panel';

const METHOD_OPTIONS: [MethodId, string][] = [
  ['lora', 'LoRA'],
  ['rslora', 'rsLoRA (α/√r)'],
  ['full', 'Full fine-tune'],
];

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
          <button className="btn" onClick={addRun} data-testid="add-run">+ Add run</button>
          <button className="btn btn-primary" disabled={drafts === 0 || !card || !hasDataset} onClick={startAll} data-testid="start-all">
            {drafts > 1 ? `Start all ${drafts} drafts` : drafts === 1 ? 'Start draft' : 'Start all'}
          </button>
        </>
      }
    >
      {software && (
        <Alert kind="warning" title="Software GPU" testId="software-gpu">
          The browser gave us a CPU implementation of WebGPU (SwiftShader), not your graphics card. Everything works, 10 to 100 times
          slower: keep runs small, or enable hardware acceleration in the browser settings (and check <code>chrome://gpu</code>).
        </Alert>
      )}
      {(!card || !hasDataset) && (
        <Alert kind="info">
          {!card && !hasDataset ? 'Load a model and a dataset to start training.' : !card ? 'Load a model to start training.' : 'Load a dataset to start training.'}{' '}
          Or press <em>Try the demo</em>: a 260K-parameter story model, a Shakespeare excerpt and three runs to compare.
        </Alert>
      )}
      {order.length === 0 ? (
        <div className="empty">No runs yet. <button className="link" onClick={addRun}>Add one</button>.</div>
      ) : (
        <div className="run-list">
          {order.map((id, i) => <RunCard key={id} run={runs[id]} color={runColor(i)} card={card} />)}
        </div>
      )}
    </Panel>
  );
}

function RunCard({ run, color, card }: { run: RunRecord; color: string; card: ModelCard | null }) {
  const { updateRun, startRun, cancelRun, removeRun, duplicateRun } = useStudio.getState();
  const c = run.config;
  const draft = run.status === 'draft';
  const active = isActive(run);
  const set = (patch: Partial<RunConfig>) => updateRun(c.id, patch);

  return (
    <article className={`run-card status-${run.status}`} data-testid="run-card" data-run-id={c.id} data-status={run.status} aria-label={c.name}>
      <div className="run-head">
        <span className="run-dot" style={{ background: color }} aria-hidden />
        {draft ? (
          <input className="run-name-input" value={c.name} size={Math.max(10, c.name.length + 1)} aria-label="Run name" onChange={(e) => set({ name: e.target.value })} />
        ) : (
          <h3 className="run-name">{c.name}</h3>
        )}
        <span className={`badge badge-status-${run.status}`} data-testid="run-status">{STATUS_TEXT[run.status]}</span>
        <div className="run-buttons">
          {draft && <button className="btn btn-primary btn-sm" data-testid="run-start" onClick={() => startRun(c.id)}>Start</button>}
          {active && <button className="btn btn-danger btn-sm" data-testid="run-cancel" onClick={() => cancelRun(c.id)}>Cancel</button>}
          <button className="btn btn-ghost btn-sm" onClick={() => duplicateRun(c.id)} title="A new draft with the same settings">
            {draft ? 'Duplicate' : 'Run again'}
          </button>
          {!active && <button className="icon-btn" aria-label={`Remove ${c.name}`} title="Remove" onClick={() => removeRun(c.id)}>×</button>}
        </div>
      </div>

      {draft ? <RunForm config={c} card={card} set={set} /> : <RunSettingsLine run={run} card={card} />}
      <Budget config={c} card={card} />

      {!draft && <RunProgressView run={run} />}
      {run.message && (
        <div className={`run-message ${run.status === 'failed' ? 'error' : ''}`} data-testid="run-message">{run.message}</div>
      )}
    </article>
  );
}

function RunForm({ config: c, card, set }: { config: RunConfig; card: ModelCard | null; set(p: Partial<RunConfig>): void }) {
  const lora = c.method !== 'full';
  const targetOptions: [TargetPreset, string][] = [
    ['qv', card?.family === 'gpt2' ? 'c_attn (PEFT default)' : 'q, v (PEFT default)'],
    ['all-linear', 'All linear layers'],
  ];
  return (
    <div className="run-form">
      <SelectField wide label="Method" value={c.method} options={METHOD_OPTIONS} onChange={(method) => set({ method })} />
      <NumberField label="Rank" value={c.rank} integer disabled={!lora} onChange={(rank) => set({ rank })} />
      <NumberField label="Alpha" value={c.alpha} disabled={!lora} onChange={(alpha) => set({ alpha })}
        hint={c.method === 'rslora' ? 'Scale α/√r' : 'Scale α/r'} />
      <SelectField wide label="Targets" value={c.targets} options={targetOptions} disabled={!lora} onChange={(targets) => set({ targets })} />
      <NumberField label="Learning rate" value={c.lr} onChange={(lr) => set({ lr })} hint="Peak learning rate (linear warmup, then cosine decay to 10%)" />
      <NumberField label="Steps" value={c.steps} integer onChange={(steps) => set({ steps })} />
      <NumberField label="Batch" value={c.batch} integer onChange={(batch) => set({ batch })} hint="Sequences per step" />
      <NumberField label="Seq. length" value={c.seq} integer onChange={(seq) => set({ seq })} hint="Tokens per sequence" />
      <NumberField label="Warmup" value={c.warmupSteps} integer onChange={(warmupSteps) => set({ warmupSteps })} hint="Linear warmup steps" />
      <NumberField label="Val. examples" value={c.valExamples} integer onChange={(valExamples) => set({ valExamples })}
        hint="Held-out examples for the validation loss (0 = none)" />
      <NumberField label="Eval every" value={c.evalEvery} integer onChange={(evalEvery) => set({ evalEvery })}
        hint="Validation every N steps (0 = start and end only)" />
      <NumberField label="Seed" value={c.seed} integer onChange={(seed) => set({ seed })} />
    </div>
  );
}

function RunSettingsLine({ run, card }: { run: RunRecord; card: ModelCard | null }) {
  const c = run.config;
  const parts = [
    c.method === 'full' ? 'full fine-tune' : `${c.method === 'rslora' ? 'rsLoRA' : 'LoRA'} r=${c.rank} α=${c.alpha} on ${targetLabel(c.targets, card?.spec)}`,
    `lr ${formatLr(c.lr)}`,
    `${c.steps} steps × ${c.batch} × ${c.seq} tokens`,
  ];
  if (run.modelName) parts.push(`${run.modelName}${run.datasetName ? ` on ${run.datasetName}` : ''}`);
  return <div className="run-settings">{parts.join(' · ')}</div>;
}

function Budget({ config, card }: { config: RunConfig; card: ModelCard | null }) {
  if (!card) return null;
  let params: number;
  let bytes: number;
  try {
    params = trainableParameters(card.spec, config);
    bytes = trainingBytes(card.spec, config);
  } catch (err) {
    return <div className="budget error">{(err as Error).message}</div>;
  }
  const share = params / baseParameters(card.spec);
  return (
    <div className="budget" data-testid="run-budget">
      <span><strong>{formatCount(params)}</strong> trainable parameters ({share >= 0.01 ? `${(100 * share).toFixed(1)}%` : `${(100 * share).toFixed(2)}%`} of the model)</span>
      <span className="muted">≈ {formatBytes(bytes)} GPU memory</span>
      <span className="muted">{formatInt(config.steps * config.batch * config.seq)} tokens to train on</span>
    </div>
  );
}

function RunProgressView({ run }: { run: RunRecord }) {
  const last = run.points.at(-1);
  const lastEval = run.evals.at(-1);
  const p = run.progress;
  const steps = run.config.steps;
  const done = last ? last.step + 1 : 0;
  const active = isActive(run);
  const stage = run.stage ?? (run.status === 'queued' ? 'Waiting for the GPU' : null);
  return (
    <div className="run-progress">
      {active && (
        <div className="progress-row">
          <ProgressBar value={done} max={steps} indeterminate={run.status !== 'training' && done === 0} label={`${run.config.name} progress`} />
          <span className="progress-text" data-testid="run-step">
            {done}/{steps}
            {p?.etaMs != null && run.status === 'training' && done < steps && <> · ETA {formatDuration(p.etaMs)}</>}
          </span>
        </div>
      )}
      {active && stage && <div className="run-stage"><span className="spinner" aria-hidden /> {stage}</div>}
      {(last || run.summary) && (
        <div className="run-metrics">
          <Metric label="Loss" value={formatLoss(last?.loss)} />
          <Metric label="Val loss" value={formatLoss(run.summary?.finalValLoss ?? lastEval?.loss)} />
          <Metric label="Tokens/s" value={formatRate(active ? last?.tokensPerSecond : run.summary?.tokensPerSecond ?? last?.tokensPerSecond)} />
          <Metric label="Grad norm" value={formatLoss(last?.gradNorm, 2)} />
          <Metric label="LR" value={last ? formatLr(last.lr) : '–'} />
          <Metric label="Steps" value={`${done}/${steps}`} />
          <Metric label="Time" value={formatDuration(run.summary?.elapsedMs ?? last?.elapsedMs)} />
          <Metric label="GPU memory" value={p ? formatBytes(p.gpuBytes) : run.summary ? formatBytes(run.summary.peakGpuBytes) : '–'} />
        </div>
      )}
    </div>
  );
}

function Metric({ label, value }: { label: string; value: string }) {
  return (
    <div className="metric">
      <span className="metric-label">{label}</span>
      <span className="metric-value">{value}</span>
    </div>
  );
}
