/**
 * The experiment's charts: learning-rate sensitivity (validation loss against the rate on a log axis, one line per
 * configuration with its 95% band over seeds), training-loss curves at each configuration's chosen rate (the mean
 * over seeds with its band), and the rank per module of each configuration's chosen run.
 */
import { memo, useMemo } from 'react';
import { Area, CartesianGrid, ComposedChart, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { ModuleAllocation } from '../../engine/methods';
import { moduleCell } from '../../experiment/report/rank-heatmap-chart';
import { chosenRuns, meanLossCurve, representativeRun } from '../../experiment/report/selection';
import type { ExperimentResults } from '../../experiment/types';
import { GPT2_MODULES } from '../../model/layout';
import { formatLoss, formatLr } from '../format';
import { tooltipStyle } from './chart-style';
import { ModuleHeatmap, ScaleLegend } from './ModuleHeatmap';
import { runColor } from './Panel';

const axisStyle = { stroke: 'var(--muted)', tick: { fontSize: 11 } };
const lossTick = (v: number) => Number(v.toPrecision(3)).toString();

/** Drawn again only when the results change (a run finished), not with every step of the run training now. */
export const ExperimentCharts = memo(function ExperimentCharts({ results }: { results: ExperimentResults }) {
  return (
    <div className="experiment-charts">
      <LrSensitivity results={results} />
      <LossCurves results={results} />
      <ChosenRanks results={results} />
    </div>
  );
});

function Legend({ names }: { names: string[] }) {
  return (
    <div className="legend-row">
      {names.map((name, i) => (
        <span key={name} className="legend-item">
          <span className="legend-line" style={{ background: runColor(i) }} /> {name}
        </span>
      ))}
    </div>
  );
}

interface BandSeriesData {
  name: string;
  color: string;
  points: { mean: number; band: number[] }[];
}

/**
 * The tooltip, each series' 95% band (drawn first, under every line) and its mean line: the part the sensitivity
 * and loss charts share. Recharts reads its children directly, so this returns elements rather than a component.
 */
function bandSeries(series: BandSeriesData[], o: { label: (x: number) => string; bandOpacity: number; dots: boolean }) {
  return [
    <Tooltip
      key="tooltip"
      contentStyle={tooltipStyle}
      labelFormatter={(v) => o.label(Number(v))}
      formatter={(v) => (Array.isArray(v) ? v.map((x) => formatLoss(Number(x))).join(' – ') : formatLoss(Number(v)))}
    />,
    ...series.map((s) => (
      <Area
        key={`${s.name}-band`}
        data={s.points}
        dataKey="band"
        name={`${s.name} 95% band`}
        stroke="none"
        fill={s.color}
        fillOpacity={o.bandOpacity}
        isAnimationActive={false}
      />
    )),
    ...series.map((s) => (
      <Line
        key={s.name}
        data={s.points}
        dataKey="mean"
        name={s.name}
        stroke={s.color}
        strokeWidth={2}
        dot={o.dots ? { r: 3 } : false}
        isAnimationActive={false}
      />
    )),
  ];
}

function LrSensitivity({ results }: { results: ExperimentResults }) {
  const series = results.summary.map((s, i) => ({
    name: s.name,
    color: runColor(i),
    points: s.lrCurve.map((p) => ({ lr: p.lr, mean: p.valMean, band: p.valCi95 as [number, number] })),
  }));
  const lrs = [...new Set(series.flatMap((s) => s.points.map((p) => p.lr)))].sort((a, b) => a - b);
  if (lrs.length === 0) return null;
  return (
    <div className="chart-box" data-testid="experiment-lr-chart" data-series={series.length}>
      <div className="chart-title">Learning-rate sensitivity: validation loss (mean and 95% band over seeds)</div>
      <Legend names={series.map((s) => s.name)} />
      <ResponsiveContainer width="100%" height={260}>
        <ComposedChart margin={{ top: 8, right: 16, bottom: 12, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" />
          <XAxis
            type="number"
            dataKey="lr"
            scale="log"
            domain={[lrs[0] / 1.3, lrs[lrs.length - 1] * 1.3]}
            ticks={lrs}
            allowDuplicatedCategory={false}
            tickFormatter={(v: number) => formatLr(v)}
            {...axisStyle}
            label={{
              value: 'learning rate (log)',
              position: 'insideBottomRight',
              offset: -4,
              fill: 'var(--muted)',
              fontSize: 11,
            }}
          />
          <YAxis type="number" domain={['auto', 'auto']} tickFormatter={lossTick} width={52} {...axisStyle} />
          {bandSeries(series, { label: (v) => `lr ${formatLr(v)}`, bandOpacity: 0.15, dots: true })}
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}

function LossCurves({ results }: { results: ExperimentResults }) {
  const series = useMemo(
    () =>
      results.summary.map((s, i) => ({
        name: `${s.name} (lr ${formatLr(s.bestLr)})`,
        color: runColor(i),
        points: meanLossCurve(chosenRuns(results, s)).map((p) => ({ step: p.step, mean: p.mean, band: [p.lo, p.hi] })),
      })),
    [results],
  );
  if (!series.some((s) => s.points.length > 0)) return null;
  return (
    <div className="chart-box" data-testid="experiment-loss-chart">
      <div className="chart-title">
        Training loss at each configuration's chosen rate (mean and 95% band over seeds)
      </div>
      <Legend names={series.map((s) => s.name)} />
      <ResponsiveContainer width="100%" height={260}>
        <ComposedChart margin={{ top: 8, right: 16, bottom: 12, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" />
          <XAxis
            type="number"
            dataKey="step"
            domain={['dataMin', 'dataMax']}
            allowDuplicatedCategory={false}
            {...axisStyle}
            label={{ value: 'step', position: 'insideBottomRight', offset: -4, fill: 'var(--muted)', fontSize: 11 }}
          />
          <YAxis type="number" domain={['auto', 'auto']} tickFormatter={lossTick} width={52} {...axisStyle} />
          {bandSeries(series, { label: (v) => `step ${v.toFixed(0)}`, bandOpacity: 0.12, dots: false })}
        </ComposedChart>
      </ResponsiveContainer>
    </div>
  );
}

/** A run's ranks (path -> rank) as the heatmap's modules: layer and kind from the path, the rank as the value. */
export function rankModules(ranks: Record<string, number>): ModuleAllocation[] {
  return Object.entries(ranks).flatMap(([path, rank]) => {
    const cell = moduleCell(path);
    if (!cell) return [];
    // GPT-2's kinds keep their block (attn.c_proj and mlp.c_proj); Llama's are the last segment (q_proj).
    const kind = (GPT2_MODULES as string[]).includes(cell.rest)
      ? cell.rest
      : cell.rest.slice(cell.rest.lastIndexOf('.') + 1);
    return [{ path, layer: cell.layer, kind, in: 0, out: 0, rank, scale: 0, parameters: 0 }];
  });
}

function ChosenRanks({ results }: { results: ExperimentResults }) {
  const grids = results.summary.flatMap((s) => {
    const run = representativeRun(results, s);
    const modules = run ? rankModules(run.ranks) : [];
    return run && modules.length ? [{ summary: s, run, modules }] : [];
  });
  if (grids.length === 0) return null;
  const ranks = grids.flatMap((g) => g.modules.map((m) => m.rank));
  const domain: [number, number] = [Math.min(...ranks), Math.max(...ranks)];
  return (
    <section className="analysis-section" data-testid="experiment-ranks">
      <div className="analysis-head">
        <h3>Rank per module of each configuration's chosen run</h3>
        <ScaleLegend domain={domain} format={String} name="rank" />
      </div>
      <div className="analysis-grid">
        {grids.map(({ summary, run, modules }) => (
          <article key={summary.name} className="analysis-card" aria-label={`${summary.name} ranks`}>
            <div className="analysis-title">{summary.name}</div>
            <div className="analysis-sub">
              lr {formatLr(run.lr)}, seed {run.seed}
            </div>
            <ModuleHeatmap
              modules={modules}
              value={(m) => m.rank}
              label={(m) => String(m.rank)}
              details={(m) => [`rank ${m.rank}`]}
              domain={domain}
              testId="experiment-rank-heatmap"
              ariaLabel={`${summary.name}: rank per layer and module`}
              valueName="rank"
            />
          </article>
        ))}
      </div>
    </section>
  );
}
