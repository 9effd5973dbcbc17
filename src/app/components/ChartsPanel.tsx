import { useMemo } from 'react';
import { CartesianGrid, ComposedChart, Line, ResponsiveContainer, Scatter, Tooltip, XAxis, YAxis } from 'recharts';
import { formatCount } from '../format';
import { hasMetrics } from '../run-metrics-export';
import type { RunRecord } from '../run-record';
import { smooth, thin } from '../smoothing';
import { useStudio, type ChartSettings } from '../store';
import { archivedCount, visibleRuns } from '../visible-runs';
import { Segmented } from './Fields';
import { tooltipStyle } from './chart-style';
import { useHiddenRuns } from './hidden-runs';
import { LayerGradChart } from './LayerGradChart';
import { Panel } from './Panel';
import { RunLegend } from './RunLegend';

/** Points drawn per series: enough for any screen, few enough to stay smooth with long runs. */
const MAX_POINTS = 800;

interface Series {
  id: string;
  name: string;
  color: string;
  loss: { x: number; y: number }[];
  raw: { x: number; y: number }[];
  val: { x: number; y: number }[];
  grad: { x: number; y: number }[];
}

function buildSeries(run: RunRecord, color: string, chart: ChartSettings): Series {
  const xOf = (p: { step: number; tokens: number }) => (chart.x === 'step' ? p.step : p.tokens);
  const usable = run.points.filter((p) => Number.isFinite(p.loss) && (!chart.logScale || p.loss > 0));
  const losses = smooth(
    usable.map((p) => p.loss),
    chart.smoothing,
  );
  const grads = smooth(
    usable.map((p) => p.gradNorm),
    chart.smoothing,
  );
  return {
    id: run.config.id,
    name: run.config.name,
    color,
    loss: thin(
      usable.map((p, i) => ({ x: xOf(p), y: losses[i] })),
      MAX_POINTS,
    ),
    raw:
      chart.smoothing > 0
        ? thin(
            usable.map((p) => ({ x: xOf(p), y: p.loss })),
            MAX_POINTS,
          )
        : [],
    val: run.evals.filter((e) => Number.isFinite(e.loss)).map((e) => ({ x: xOf(e), y: e.loss })),
    grad: thin(
      usable
        .map((p, i) => ({ x: xOf(p), y: grads[i] }))
        .filter((p) => Number.isFinite(p.y) && (!chart.logScale || p.y > 0)),
      MAX_POINTS,
    ),
  };
}

export function ChartsPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const chart = useStudio((s) => s.chart);
  const setChart = useStudio((s) => s.setChart);
  const [hidden, toggleRun] = useHiddenRuns();

  // Archived runs leave the charts; the others keep the colours of their places in the whole list.
  const visible = useMemo(() => visibleRuns({ runs, order }), [runs, order]);
  const series = useMemo(
    () => visible.filter(({ run }) => hasMetrics(run)).map(({ run, color }) => buildSeries(run, color, chart)),
    [visible, chart],
  );
  const archived = archivedCount({ runs, order }, hasMetrics);
  const xLabel = chart.x === 'step' ? 'step' : 'supervised tokens';
  const hasPoints = series.some((s) => s.loss.length > 0 || s.val.length > 0);
  // The legend lists every run; the charts draw the ones it has not hidden.
  const shown = series.filter((s) => !hidden.has(s.id));

  const xAxis = (
    <XAxis
      type="number"
      dataKey="x"
      domain={['dataMin', 'dataMax']}
      allowDecimals={false}
      allowDuplicatedCategory={false}
      tickFormatter={(v: number) => formatCount(v)}
      stroke="var(--muted)"
      tick={{ fontSize: 11 }}
      label={{ value: xLabel, position: 'insideBottomRight', offset: -4, fill: 'var(--muted)', fontSize: 11 }}
    />
  );
  const yAxis = (id: string) => (
    <YAxis
      yAxisId={id}
      type="number"
      scale={chart.logScale ? 'log' : 'linear'}
      domain={['auto', 'auto']}
      allowDataOverflow
      stroke="var(--muted)"
      tick={{ fontSize: 11 }}
      tickFormatter={(v: number) => (Math.abs(v) >= 100 ? formatCount(v) : Number(v.toPrecision(3)).toString())}
      width={48}
    />
  );

  return (
    <Panel
      id="charts"
      step={4}
      title="Training curves"
      subtitle="Training loss of every run, overlaid; diamonds are validation loss. Click a run in the legend to hide or show its lines. Below: the gradient norm of every run, and of each transformer block of one run."
      actions={
        <div className="chart-controls">
          <label className="slider">
            <span>Smoothing</span>
            <input
              type="range"
              min={0}
              max={0.99}
              step={0.01}
              value={chart.smoothing}
              aria-label="Smoothing"
              onChange={(e) => setChart({ smoothing: Number(e.target.value) })}
            />
            <span className="slider-value">{chart.smoothing.toFixed(2)}</span>
          </label>
          <label className="check">
            <input
              type="checkbox"
              checked={chart.logScale}
              onChange={(e) => setChart({ logScale: e.target.checked })}
            />{' '}
            Log scale
          </label>
          <Segmented
            label="X axis"
            value={chart.x}
            options={[
              ['step', 'Step'],
              ['tokens', 'Tokens'],
            ]}
            onChange={(x) => setChart({ x })}
          />
        </div>
      }
    >
      {!hasPoints ? (
        <div className="empty chart-empty" data-testid="loss-chart-empty">
          {series.length === 0 && archived > 0
            ? `Every run with metrics is archived (${archived}): restore one from the Runs list's Archived view to draw its curves.`
            : 'Start a run: its loss curve appears here as it trains.'}
        </div>
      ) : (
        <>
          <RunLegend
            entries={series.map((s) => ({
              id: s.id,
              name: s.name,
              color: s.color,
              points: s.loss.length,
              evals: s.val.length,
            }))}
            hidden={hidden}
            onToggle={toggleRun}
          >
            <span className="legend-item muted">
              <span className="legend-diamond" /> validation
            </span>
            {archived > 0 && (
              <span className="legend-item muted" data-testid="charts-archived-note">
                {archived} archived run{archived > 1 ? 's' : ''} not drawn
              </span>
            )}
          </RunLegend>
          <div
            className="chart-box"
            data-testid="loss-chart"
            data-points={series.reduce((n, s) => n + s.loss.length, 0)}
          >
            <div className="chart-title">Loss</div>
            <ResponsiveContainer width="100%" height={300}>
              <ComposedChart margin={{ top: 8, right: 16, bottom: 12, left: 0 }}>
                <CartesianGrid stroke="var(--grid)" />
                {xAxis}
                {yAxis('loss')}
                <Tooltip
                  contentStyle={tooltipStyle}
                  labelFormatter={(v) => `${xLabel} ${formatCount(Number(v))}`}
                  formatter={(v) => (typeof v === 'number' ? v.toFixed(4) : String(v))}
                />
                {shown.map(
                  (s) =>
                    s.raw.length > 0 && (
                      <Line
                        key={`${s.id}-raw`}
                        yAxisId="loss"
                        data={s.raw}
                        dataKey="y"
                        name={`${s.name} (raw)`}
                        stroke={s.color}
                        strokeOpacity={0.22}
                        dot={false}
                        isAnimationActive={false}
                        legendType="none"
                        tooltipType="none"
                      />
                    ),
                )}
                {shown.map((s) => (
                  <Line
                    key={s.id}
                    yAxisId="loss"
                    data={s.loss}
                    dataKey="y"
                    name={s.name}
                    stroke={s.color}
                    strokeWidth={2}
                    dot={false}
                    isAnimationActive={false}
                  />
                ))}
                {shown.map(
                  (s) =>
                    s.val.length > 0 && (
                      <Scatter
                        key={`${s.id}-val`}
                        yAxisId="loss"
                        data={s.val}
                        dataKey="y"
                        name={`${s.name} · validation`}
                        fill={s.color}
                        shape="diamond"
                        isAnimationActive={false}
                        line={{ stroke: s.color, strokeDasharray: '4 4', strokeOpacity: 0.7 }}
                      />
                    ),
                )}
              </ComposedChart>
            </ResponsiveContainer>
          </div>
          <div className="chart-box" data-testid="grad-chart">
            <div className="chart-title">Gradient norm (before clipping at 1.0)</div>
            <ResponsiveContainer width="100%" height={200}>
              <ComposedChart margin={{ top: 8, right: 16, bottom: 12, left: 0 }}>
                <CartesianGrid stroke="var(--grid)" />
                {xAxis}
                {yAxis('grad')}
                <Tooltip
                  contentStyle={tooltipStyle}
                  labelFormatter={(v) => `${xLabel} ${formatCount(Number(v))}`}
                  formatter={(v) => (typeof v === 'number' ? v.toFixed(3) : String(v))}
                />
                {shown.map((s) => (
                  <Line
                    key={s.id}
                    yAxisId="grad"
                    data={s.grad}
                    dataKey="y"
                    name={s.name}
                    stroke={s.color}
                    strokeWidth={1.6}
                    dot={false}
                    isAnimationActive={false}
                  />
                ))}
              </ComposedChart>
            </ResponsiveContainer>
          </div>
          <LayerGradChart runs={visible.map(({ run }) => run)} chart={chart} />
        </>
      )}
    </Panel>
  );
}
