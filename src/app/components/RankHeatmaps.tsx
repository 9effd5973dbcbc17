import type { ModuleAllocation } from '../../engine/methods';
import { rankRange, rankSummary } from '../analysis';
import { formatCount, formatInt } from '../format';
import { methodShort } from '../methods';
import type { AnalyzedRun } from './AnalysisPanel';
import { ModuleHeatmap, ScaleLegend } from './ModuleHeatmap';
import { formatPrep } from './RunProgress';

/** Every analyzed run's ranks side by side, on one colour scale so equal colours mean equal ranks across runs. */
export function RankHeatmaps({ runs }: { runs: AnalyzedRun[] }) {
  const ranges = runs.map((r) => rankRange(r.run.analysis)!);
  const domain: [number, number] = [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
  return (
    <section className="analysis-section">
      <div className="analysis-head">
        <h3>Rank per module</h3>
        <ScaleLegend domain={domain} format={String} name="rank" />
      </div>
      <div className="analysis-grid">
        {runs.map(({ run, color }) => (
          <article
            key={run.config.id}
            className="analysis-card"
            data-testid="rank-card"
            data-run-id={run.config.id}
            aria-label={`${run.config.name} ranks`}
          >
            <RunTitle name={run.config.name} color={color} />
            <div className="analysis-sub">
              {methodShort(run.config)} · ranks {rankSummary(run.analysis)} ·{' '}
              {formatCount(run.analysis.trainableParameters)} params
              {run.analysis.preparationMs >= 50 && <> · preparation {formatPrep(run.analysis.preparationMs)}</>}
            </div>
            <ModuleHeatmap
              modules={run.analysis.modules}
              value={(m) => m.rank}
              label={(m) => String(m.rank)}
              details={rankDetails}
              domain={domain}
              testId="rank-heatmap"
              ariaLabel={`${run.config.name}: rank per layer and module`}
              valueName="rank"
            />
          </article>
        ))}
      </div>
    </section>
  );
}

export function RunTitle({ name, color }: { name: string; color: string }) {
  return (
    <div className="analysis-title">
      <span className="run-dot" style={{ background: color }} /> {name}
    </div>
  );
}

function rankDetails(m: ModuleAllocation): string[] {
  const lines = [`rank ${m.rank}`, `scale ${Number(m.scale.toPrecision(3))}`, `${formatInt(m.parameters)} params`];
  if (m.k !== undefined) lines.push(`k ${m.k}${m.hybridRank ? `, hybrid r ${m.hybridRank}` : ''}`);
  if (m.importance !== undefined) lines.push(`importance ${m.importance.toExponential(2)}`);
  if (m.share !== undefined) lines.push(`share ${(100 * m.share).toFixed(1)}%`);
  return lines;
}
