import { useMemo } from 'react';
import { experimentEta } from '../experiment-record';
import { formatBytes, formatDuration, formatInt, formatLoss, formatLr, formatRate } from '../format';
import { isPackedFormat, queueEta, runPhase, trainTokens } from '../progress';
import { isActive, type RunRecord } from '../run-record';
import { useStudio } from '../store';
import type { RunConfig } from '../../worker/protocol';
import { ProgressBar } from './Panel';

/** A started run: the preparation phase with its own bar, then the training bar, then the metrics. */
export function RunProgressView({ run }: { run: RunRecord }) {
  const last = run.points.at(-1);
  const lastEval = run.evals.at(-1);
  const p = run.progress;
  const steps = run.config.steps;
  const done = last ? last.step + 1 : 0;
  const active = isActive(run);
  const phase = runPhase(run);
  const training = phase?.kind === 'training';
  const prepMs = run.analysis?.preparationMs;
  const queue = useQueue(active);
  const entry = queue?.entries.get(run.config.id);
  return (
    <div className="run-progress">
      {phase?.kind === 'preparing' && run.prepare && run.prepare.total > 1 ? (
        <PrepareProgress run={run} />
      ) : (
        phase && (
          <>
            <div className="progress-row">
              <ProgressBar value={done} max={steps} indeterminate={!training} label={`${run.config.name} progress`} />
              <span className="progress-text" data-testid="run-step">
                {done}/{steps}
                {training && entry && (
                  <EtaText runMs={entry.remainingMs ?? p?.etaMs ?? null} queueMs={queue!.totalMs} />
                )}
              </span>
            </div>
            {phase.text && (
              <div className="run-stage" data-testid="run-phase">
                <span className="spinner" aria-hidden /> {phase.text}
                {phase.kind === 'waiting' && entry?.startsInMs != null && entry.startsInMs > 0 && (
                  <span className="muted" data-testid="run-queue-eta">
                    {' '}
                    · starts in ≈ {formatDuration(entry.startsInMs)}
                  </span>
                )}
              </div>
            )}
          </>
        )
      )}
      {(last || run.summary) && (
        <div className="run-metrics">
          <Metric label="Loss" value={formatLoss(last?.loss)} />
          <Metric label="Val loss" value={formatLoss(run.summary?.finalValLoss ?? lastEval?.loss)} />
          <Metric
            label="Tokens/s"
            value={formatRate(active ? last?.tokensPerSecond : (run.summary?.tokensPerSecond ?? last?.tokensPerSecond))}
          />
          <Metric label="Grad norm" value={formatLoss(last?.gradNorm, 2)} />
          <Metric label="LR" value={last ? formatLr(last.lr) : '–'} />
          <Metric label="Steps" value={`${done}/${steps}`} />
          {prepMs !== undefined && prepMs >= 50 && <Metric label="Preparation" value={formatPrep(prepMs)} />}
          <Metric label="Time" value={formatDuration(run.summary?.elapsedMs ?? last?.elapsedMs)} />
          <Metric
            label="GPU memory"
            value={p ? formatBytes(p.gpuBytes) : run.summary ? formatBytes(run.summary.peakGpuBytes) : '–'}
          />
        </div>
      )}
      {run.analysis && run.analysis.warnings.length > 0 && (
        <ul className="run-warnings" data-testid="run-warnings">
          {run.analysis.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** GoRA's gradient accumulation, GeLoRA's hidden states and dimensions: "GoRA: accumulating gradients 12/32". */
function PrepareProgress({ run }: { run: RunRecord }) {
  const { phase, done, total } = run.prepare!;
  return (
    <div className="progress-row prepare-row">
      <ProgressBar value={done} max={total} label={`${run.config.name} preparation`} />
      <span className="progress-text prepare-text" data-testid="run-prepare">
        {phase} {done}/{total}
      </span>
    </div>
  );
}

/** The queue of runs (only while this run is in it: finished cards do not recompute it on every step). */
function useQueue(active: boolean) {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const experiments = useStudio((s) => s.experiments);
  return useMemo(() => {
    if (!active) return null;
    // An experiment training now holds the GPU: the queued runs start after it.
    const running = Object.values(experiments ?? {}).find((e) => e.status === 'running');
    return queueEta(runs, order, running ? experimentEta(running, Date.now()) : 0);
  }, [active, runs, order, experiments]);
}

/** "· ETA 35s · queue 2m 10s": this run's time left, then every queued run's (with their validation passes). */
function EtaText({ runMs, queueMs }: { runMs: number | null; queueMs: number | null }) {
  if (runMs === null) return null;
  return (
    <>
      <span title="This run's remaining steps and validation passes, the final one included">
        {' '}
        · ETA {formatDuration(runMs)}
      </span>
      {queueMs !== null && queueMs > runMs + 500 && (
        <span
          data-testid="run-queue-total"
          title="Every queued run, each with its validation passes, at the pace measured on this model"
        >
          {' '}
          · queue {formatDuration(queueMs)}
        </span>
      )}
    </>
  );
}

/**
 * "≈ 61,440 supervised tokens to train on": padding and prompt tokens excluded, from the dataset at the run's
 * length (the run's own fit once started, else the preview's when it is at this run's length).
 */
export function TrainTokensText({ config }: { config: RunConfig }) {
  // A started run keeps what it was tokenized with; a draft reads the dataset loaded now.
  const fit = useStudio((s) => {
    const run = s.runs[config.id];
    return run && run.status !== 'draft' ? run.data : (s.dataset.preview?.fit ?? null);
  });
  const packed = useStudio((s) => {
    const run = s.runs[config.id];
    if (run && run.status !== 'draft') return isPackedFormat(run.datasetFormat);
    return s.dataset.preview?.format === 'text';
  });
  // A finished run counted them as it went: no estimate needed.
  const trained = useStudio((s) => s.runs[config.id]?.summary?.tokens ?? null);
  if (trained !== null)
    return (
      <span className="muted" data-testid="run-train-tokens" title="Tokens the loss was computed on">
        {formatInt(trained)} supervised tokens trained on
      </span>
    );
  const t = trainTokens(config, fit, packed);
  if (t.supervised === null)
    return (
      <span
        className="muted"
        data-testid="run-train-tokens"
        title="Rows x sequence length, padding included: the supervised count shows once the dataset is tokenized at this run's length"
      >
        {formatInt(t.positions)} token positions to train on
      </span>
    );
  return (
    <span
      className="muted"
      data-testid="run-train-tokens"
      title={`Tokens the loss is computed on (prompts and padding excluded), estimated from the dataset at ${config.seq} tokens; ${formatInt(t.positions)} positions in all`}
    >
      ≈ {formatInt(t.supervised)} supervised tokens to train on
    </span>
  );
}

export function formatPrep(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms);
}

function Metric({ label, value }: { label: string; value: string }) {
  return (
    <div className="metric">
      <span className="metric-label">{label}</span>
      <span className="metric-value">{value}</span>
    </div>
  );
}
