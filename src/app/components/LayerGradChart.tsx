import { useMemo, useState } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { scaleColor } from '../analysis';
import { formatCount } from '../format';
import { smooth, thin } from '../smoothing';
import type { RunRecord } from '../run-record';
import type { ChartSettings } from '../store';
import { tooltipStyle } from './chart-style';

const MAX_POINTS = 600;

/** Block colours from the sequential scale, skipping its darkest end (invisible on the dark theme). */
const blockColor = (l: number, layers: number) => scaleColor(0.22 + (0.78 * l) / Math.max(1, layers - 1));

/** The gradient norm of each transformer block's trainables over the steps of one run (picked in a select). */
export function LayerGradChart({ runs, chart }: { runs: RunRecord[]; chart: ChartSettings }) {
  const candidates = runs.filter((r) => r.points.some((p) => p.layerGradNorms?.length));
  const [picked, setPicked] = useState<string | null>(null);
  const run = candidates.find((r) => r.config.id === picked) ?? candidates.at(-1);
  const { rows, layers } = useMemo(() => (run ? layerSeries(run, chart) : { rows: [], layers: 0 }), [run, chart]);
  if (!run) return null;
  const xLabel = chart.x === 'step' ? 'step' : 'supervised tokens';
  return (
    <div
      className="chart-box"
      data-testid="layer-grad-chart"
      data-run-id={run.config.id}
      data-layers={layers}
      data-points={rows.length}
    >
      <div className="chart-box-head">
        <div className="chart-title">Gradient norm per block (before clipping)</div>
        <label className="inline-select">
          <span className="muted">Run</span>
          <select
            value={run.config.id}
            onChange={(e) => setPicked(e.target.value)}
            aria-label="Run for the per-block gradient norms"
          >
            {candidates.map((r) => (
              <option key={r.config.id} value={r.config.id}>
                {r.config.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <ResponsiveContainer width="100%" height={220}>
        <LineChart data={rows} margin={{ top: 8, right: 16, bottom: 12, left: 0 }}>
          <CartesianGrid stroke="var(--grid)" />
          <XAxis
            type="number"
            dataKey="x"
            domain={['dataMin', 'dataMax']}
            allowDecimals={false}
            tickFormatter={(v: number) => formatCount(v)}
            stroke="var(--muted)"
            tick={{ fontSize: 11 }}
            label={{ value: xLabel, position: 'insideBottomRight', offset: -4, fill: 'var(--muted)', fontSize: 11 }}
          />
          <YAxis
            type="number"
            scale={chart.logScale ? 'log' : 'linear'}
            domain={['auto', 'auto']}
            allowDataOverflow
            stroke="var(--muted)"
            tick={{ fontSize: 11 }}
            tickFormatter={(v: number) => Number(v.toPrecision(3)).toString()}
            width={48}
          />
          <Tooltip
            contentStyle={tooltipStyle}
            labelFormatter={(v) => `${xLabel} ${formatCount(Number(v))}`}
            formatter={(v) => (typeof v === 'number' ? v.toFixed(4) : String(v))}
          />
          {Array.from({ length: layers }, (_, l) => (
            <Line
              key={l}
              dataKey={`b${l}`}
              name={`block ${l}`}
              stroke={blockColor(l, layers)}
              strokeWidth={1.6}
              dot={false}
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
      <div className="legend-row block-legend">
        {Array.from({ length: layers }, (_, l) => (
          <span key={l} className="legend-item">
            <span className="legend-line" style={{ background: blockColor(l, layers) }} />
            block {l}
          </span>
        ))}
      </div>
    </div>
  );
}

/** One row per step: x and b0..b(L-1), each block's norm smoothed like the other curves. */
function layerSeries(run: RunRecord, chart: ChartSettings) {
  const points = run.points.filter((p) => p.layerGradNorms?.length);
  const layers = Math.max(0, ...points.map((p) => p.layerGradNorms!.length));
  const smoothed = Array.from({ length: layers }, (_, l) =>
    smooth(
      points.map((p) => p.layerGradNorms![l] ?? NaN),
      chart.smoothing,
    ),
  );
  const rows = points.map((p, i) => {
    const row: Record<string, number> = { x: chart.x === 'step' ? p.step : p.tokens };
    for (let l = 0; l < layers; l++) {
      const v = smoothed[l][i];
      if (Number.isFinite(v) && (!chart.logScale || v > 0)) row[`b${l}`] = v;
    }
    return row;
  });
  return { rows: thin(rows, MAX_POINTS), layers };
}
