import { formatBytes, formatDuration, formatLoss, formatLr, formatRate } from '../format';
import { isActive, type RunRecord } from '../run-record';
import { ProgressBar } from './Panel';

/** A started run: the preparation phase with its own bar, then the training bar, then the metrics. */
export function RunProgressView({ run }: { run: RunRecord }) {
  const last = run.points.at(-1);
  const lastEval = run.evals.at(-1);
  const p = run.progress;
  const steps = run.config.steps;
  const done = last ? last.step + 1 : 0;
  const active = isActive(run);
  const preparing = active && run.status !== 'training' && done === 0;
  const stage = run.stage ?? (run.status === 'queued' ? 'Waiting for the GPU' : null);
  const prepMs = run.analysis?.preparationMs;
  return (
    <div className="run-progress">
      {preparing && run.prepare && run.prepare.total > 1 ? (
        <PrepareProgress run={run} />
      ) : (
        active && (
          <>
            <div className="progress-row">
              <ProgressBar value={done} max={steps} indeterminate={preparing} label={`${run.config.name} progress`} />
              <span className="progress-text" data-testid="run-step">
                {done}/{steps}
                {p?.etaMs != null && run.status === 'training' && done < steps && <> · ETA {formatDuration(p.etaMs)}</>}
              </span>
            </div>
            {(preparing && run.prepare ? run.prepare.phase : stage) && (
              <div className="run-stage">
                <span className="spinner" aria-hidden /> {preparing && run.prepare ? run.prepare.phase : stage}
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
