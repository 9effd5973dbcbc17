import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';
import type { AnalyzedRun } from './AnalysisPanel';
import { tooltipStyle } from './chart-style';
import { RunTitle } from './RankHeatmaps';

/**
 * GeLoRA: the intrinsic dimension d_ℓ of the residual stream before block ℓ (ℓ = 0..L), and the rank of each
 * block, r_ℓ = max(d_{ℓ+1} − d_ℓ, 0) + 1 as the formula gives it (raw) and as trained (after the budget fit).
 */
export function GeloraDimensions({ runs }: { runs: AnalyzedRun[] }) {
  return (
    <section className="analysis-section">
      <div className="analysis-head">
        <h3>GeLoRA: intrinsic dimension</h3>
        <span className="muted small">
          TwoNN estimate of each residual stream; a block's rank grows with the dimension it adds.
        </span>
      </div>
      {runs.map(({ run, color }) => {
        const g = run.analysis.gelora!;
        const dims = g.dims.map((d, l) => ({ l, d: Number(d.toFixed(2)) }));
        const blocks = g.ranks.map((rank, l) => ({ block: l, raw: g.rawRanks[l], rank }));
        return (
          <article
            key={run.config.id}
            className="analysis-card"
            data-testid="gelora-card"
            aria-label={`${run.config.name} intrinsic dimensions`}
          >
            <RunTitle name={run.config.name} color={color} />
            <div className="analysis-sub">
              {g.samples} samples per stream · budget factor {Number(g.budgetFactor.toPrecision(3))} · scale{' '}
              {Number(g.scale.toPrecision(3))}
            </div>
            <div className="gelora-charts">
              <div className="chart-box" data-testid="gelora-dims" data-dims={JSON.stringify(dims.map((p) => p.d))}>
                <div className="chart-title">
                  Intrinsic dimension <span className="symbol">d_ℓ</span> of the hidden states
                </div>
                <ResponsiveContainer width="100%" height={200}>
                  <LineChart data={dims} margin={{ top: 8, right: 16, bottom: 14, left: 0 }}>
                    <CartesianGrid stroke="var(--grid)" />
                    <XAxis
                      dataKey="l"
                      stroke="var(--muted)"
                      tick={{ fontSize: 11 }}
                      label={{
                        value: 'ℓ (0 = embeddings)',
                        position: 'insideBottomRight',
                        offset: -6,
                        fill: 'var(--muted)',
                        fontSize: 11,
                      }}
                    />
                    <YAxis stroke="var(--muted)" tick={{ fontSize: 11 }} width={40} domain={[0, 'auto']} />
                    <Tooltip contentStyle={tooltipStyle} labelFormatter={(l) => `h_${l}`} />
                    <Line
                      dataKey="d"
                      name="d_ℓ"
                      stroke={color}
                      strokeWidth={2}
                      dot={{ r: 3, fill: color }}
                      isAnimationActive={false}
                    />
                  </LineChart>
                </ResponsiveContainer>
              </div>
              <div className="chart-box" data-testid="gelora-ranks" data-ranks={JSON.stringify(g.ranks)}>
                <div className="chart-title">Rank per block: formula vs trained</div>
                <ResponsiveContainer width="100%" height={200}>
                  <BarChart data={blocks} margin={{ top: 8, right: 16, bottom: 14, left: 0 }}>
                    <CartesianGrid stroke="var(--grid)" vertical={false} />
                    <XAxis
                      dataKey="block"
                      stroke="var(--muted)"
                      tick={{ fontSize: 11 }}
                      label={{
                        value: 'block',
                        position: 'insideBottomRight',
                        offset: -6,
                        fill: 'var(--muted)',
                        fontSize: 11,
                      }}
                    />
                    <YAxis stroke="var(--muted)" tick={{ fontSize: 11 }} width={40} allowDecimals={false} />
                    <Tooltip
                      contentStyle={tooltipStyle}
                      labelFormatter={(b) => `block ${b}`}
                      cursor={{ fill: 'rgba(255,255,255,0.04)' }}
                    />
                    <Legend wrapperStyle={{ fontSize: 12 }} />
                    <Bar dataKey="raw" name="raw r_ℓ" fill="var(--faint)" isAnimationActive={false} />
                    <Bar dataKey="rank" name="trained r_ℓ" fill={color} isAnimationActive={false} />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </div>
          </article>
        );
      })}
    </section>
  );
}
