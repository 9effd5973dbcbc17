/** A started experiment: runs done of all, the run training now (its rate, seed and step), the ETA, and every run's status. */
import { useEffect, useState } from 'react';
import { formatDuration, formatLoss, formatLr } from '../format';
import { experimentEta, isExperimentActive, plannedRuns, resultKey, type ExperimentRecord } from '../experiment-record';
import { useStudio } from '../store';
import { ProgressBar } from './Panel';

/** The page clock, ticking every second while `on` (the ETA counts down between step reports). */
function useNow(on: boolean): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!on) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [on]);
  return now;
}

export function ExperimentProgress({ record: r }: { record: ExperimentRecord }) {
  const active = isExperimentActive(r);
  const now = useNow(active);
  const planned = plannedRuns(r);
  const finished = new Set(r.results.map(resultKey)).size;
  const total = planned.length;
  const eta = active ? experimentEta(r, now) : null;
  const c = r.current;
  return (
    <div className="experiment-progress" data-testid="experiment-progress">
      <div className="progress-row">
        <ProgressBar value={finished} max={total} label={`${r.experiment.name} runs finished`} />
        <span className="progress-text" data-testid="experiment-runs-done">
          {finished}/{total} runs
          {eta !== null && <> · ETA {formatDuration(eta)}</>}
        </span>
      </div>
      {active && (
        <div className="run-stage" data-testid="experiment-current">
          <span className="spinner" aria-hidden />{' '}
          {c ? (
            <>
              Run {c.index + 1} of {c.total}: <strong>{c.run.name}</strong> at lr {formatLr(c.run.lr)}, seed{' '}
              {c.run.seed}
              {c.step &&
                (c.step.phase ? (
                  <> · {c.step.phase}</>
                ) : (
                  <>
                    {' '}
                    · step {c.step.step}/{c.step.steps}
                    {c.step.loss !== null && <> · loss {formatLoss(c.step.loss)}</>}
                  </>
                ))}
            </>
          ) : (
            (r.stage ?? 'Waiting for the GPU')
          )}
        </div>
      )}
      {active && c && r.stage && <div className="run-settings">{r.stage}</div>}
      <ExperimentRunList record={r} />
    </div>
  );
}

type RunState = 'done' | 'failed' | 'running' | 'waiting' | 'not-run';

/** Every planned run with its status, losses, error, and its adapter's export. */
function ExperimentRunList({ record: r }: { record: ExperimentRecord }) {
  const exportRun = useStudio((s) => s.exportExperimentRun);
  const exporting = useStudio((s) => s.exporting);
  const planned = plannedRuns(r);
  if (planned.length === 0) return null;
  const results = new Map(r.results.map((x) => [resultKey(x), x]));
  const active = isExperimentActive(r);
  const stateOf = (key: string): RunState => {
    const x = results.get(key);
    if (x) return x.status;
    if (r.current?.run.key === key) return 'running';
    return active ? 'waiting' : 'not-run';
  };
  return (
    <details className="experiment-runs" open={planned.length <= 12}>
      <summary>Runs ({planned.length})</summary>
      <div className="table-wrap">
        <table className="table">
          <thead>
            <tr>
              <th>Configuration</th>
              <th className="num">lr</th>
              <th className="num">Seed</th>
              <th>Status</th>
              <th className="num">Val loss</th>
              <th className="num">Test loss</th>
              <th className="num">Time</th>
              <th>Adapter</th>
            </tr>
          </thead>
          <tbody>
            {planned.map((p) => {
              const x = results.get(p.key);
              const state = stateOf(p.key);
              const adapterId = `${r.id}:${p.key}`;
              return (
                <tr key={p.key} data-testid="experiment-run" data-status={state} data-key={p.key}>
                  <td>{p.name}</td>
                  <td className="num">{formatLr(p.lr)}</td>
                  <td className="num">{p.seed}</td>
                  <td>
                    <span className={`badge badge-inline badge-run-${state}`}>{state.replace('-', ' ')}</span>
                    {x?.status === 'failed' && (
                      <span className="cell-sub error-text" data-testid="experiment-run-error">
                        {x.error ?? 'failed (no reason reported)'}
                      </span>
                    )}
                  </td>
                  <td className="num">{formatLoss(x?.valLoss)}</td>
                  <td className="num">{formatLoss(x?.testLoss)}</td>
                  <td className="num">{x ? formatDuration(x.elapsedMs) : '–'}</td>
                  <td>
                    {r.adapters.includes(p.key) && (
                      <button
                        className="btn btn-ghost btn-sm"
                        disabled={exporting[adapterId] === true}
                        onClick={() => exportRun(r.id, p.key)}
                        aria-label={`Export the adapter of ${p.name} at lr ${formatLr(p.lr)}, seed ${p.seed}`}
                      >
                        Export
                      </button>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </details>
  );
}
