import { useEffect, useState } from 'react';
import type { ModuleAllocation } from '../../engine/methods';
import { snapshotsOf, type SnapshotQuantity } from '../analysis';
import { formatInt } from '../format';
import type { AnalyzedRun } from './AnalysisPanel';
import { ModuleHeatmap, ScaleLegend } from './ModuleHeatmap';
import { RunTitle } from './RankHeatmaps';

interface QuantityView {
  title: string;
  note: string;
  /** The colour scale's name and how a value reads in a cell and in the legend. */
  name: string;
  cell(v: number): string;
  legend(v: number): string;
  details(v: number, m: ModuleAllocation): string[];
}

const VIEWS: Record<SnapshotQuantity, QuantityView> = {
  ranks: {
    title: 'AdaLoRA: rank over time',
    note: 'The triplets each module keeps (nonzero Λ entries), measured at every evaluation; AdaLoRA prunes them on its budget schedule.',
    name: 'rank',
    cell: String,
    legend: String,
    details: (v, m) => [`rank ${v}`, ...(m.initRank !== undefined ? [`of init_r ${m.initRank}`] : [])],
  },
  magnitudeDrift: {
    title: 'DoRA: magnitude drift',
    note: 'How far each module’s magnitude vector m has moved from ‖W‖ per row, ‖m − ‖W‖‖ / ‖‖W‖‖, at every evaluation.',
    name: 'drift',
    cell: (v) => (100 * v).toFixed(v < 0.1 ? 2 : 1),
    legend: (v) => `${(100 * v).toFixed(2)}%`,
    details: (v, m) => [
      `drift ${(100 * v).toFixed(3)}%`,
      ...(m.weightNormMean !== undefined ? [`mean ‖W‖ row ${m.weightNormMean.toPrecision(3)}`] : []),
    ],
  },
};

/** A per-module quantity that changes while training, one heatmap per run with a step slider (and playback). */
export function MethodTimeline({ runs, quantity }: { runs: AnalyzedRun[]; quantity: SnapshotQuantity }) {
  const view = VIEWS[quantity];
  const series = runs.map((r) => ({ ...r, snaps: snapshotsOf(r.run.analysis, quantity) }));
  const shown = series.filter((s) => s.snaps.length > 0);
  const values = shown.flatMap((s) => s.snaps.flatMap((snap) => snap[quantity]));
  const domain: [number, number] = values.length ? [Math.min(...values), Math.max(...values)] : [0, 1];
  return (
    <section className="analysis-section" data-testid={`timeline-${quantity}`}>
      <div className="analysis-head">
        <h3>{view.title}</h3>
        <ScaleLegend domain={domain} format={view.legend} name={view.name} />
      </div>
      <span className="muted small">{view.note}</span>
      {shown.length === 0 ? (
        <div className="empty">The first measurement comes with the run’s first evaluation (and its end).</div>
      ) : (
        <div className="analysis-grid">
          {shown.map(({ run, color, snaps }) => (
            <TimelineCard
              key={run.config.id}
              name={run.config.name}
              color={color}
              modules={run.analysis.modules}
              steps={snaps.map((s) => s.step)}
              valuesAt={(i) => snaps[i][quantity]}
              view={view}
              domain={domain}
              testId={`timeline-${quantity}`}
            />
          ))}
        </div>
      )}
    </section>
  );
}

function TimelineCard(props: {
  name: string;
  color: string;
  modules: ModuleAllocation[];
  steps: number[];
  valuesAt(i: number): number[];
  view: QuantityView;
  domain: [number, number];
  testId: string;
}) {
  const last = props.steps.length - 1;
  // Follows the newest snapshot until the user picks one.
  const [picked, setPicked] = useState<number | null>(null);
  const [playing, setPlaying] = useState(false);
  const index = Math.min(picked ?? last, last);
  useEffect(() => {
    if (!playing) return;
    const timer = setInterval(() => {
      setPicked((i) => {
        const next = (i ?? 0) + 1;
        if (next >= last) setPlaying(false);
        return Math.min(next, last);
      });
    }, 600);
    return () => clearInterval(timer);
  }, [playing, last]);
  const values = props.valuesAt(index);
  const byPath = new Map(props.modules.map((m, i) => [m.path, values[i]]));
  const value = (m: ModuleAllocation) => byPath.get(m.path) ?? 0;
  const total = values.reduce((n, v) => n + v, 0);
  return (
    <article
      className="analysis-card"
      data-testid={`${props.testId}-card`}
      aria-label={`${props.name} ${props.view.name}`}
    >
      <RunTitle name={props.name} color={props.color} />
      <div className="analysis-sub" data-testid={`${props.testId}-step`}>
        step {formatInt(props.steps[index])} ·{' '}
        {props.view.name === 'rank'
          ? `${formatInt(total)} triplets kept`
          : `mean ${props.view.legend(total / Math.max(1, values.length))}`}
      </div>
      <div className="timeline-controls">
        <button
          type="button"
          className="btn btn-sm"
          disabled={last === 0}
          onClick={() => {
            if (!playing && index >= last) setPicked(0);
            setPlaying(!playing);
          }}
          aria-label={playing ? 'Pause' : 'Play the snapshots from the first'}
        >
          {playing ? 'Pause' : 'Play'}
        </button>
        <input
          type="range"
          min={0}
          max={last}
          value={index}
          disabled={last === 0}
          aria-label={`${props.name}: snapshot (step ${props.steps[index]})`}
          onChange={(e) => {
            setPlaying(false);
            setPicked(Number(e.target.value));
          }}
        />
      </div>
      <ModuleHeatmap
        modules={props.modules}
        value={value}
        label={(m) => props.view.cell(value(m))}
        details={(m) => props.view.details(value(m), m)}
        domain={props.domain}
        testId={`${props.testId}-heatmap`}
        ariaLabel={`${props.name}: ${props.view.name} per layer and module at step ${props.steps[index]}`}
        valueName={props.view.name}
      />
    </article>
  );
}
