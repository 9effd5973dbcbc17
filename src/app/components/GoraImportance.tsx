import type { ModuleAllocation } from '../../engine/methods';
import type { AnalyzedRun } from './AnalysisPanel';
import { ModuleHeatmap, ScaleLegend } from './ModuleHeatmap';
import { RunTitle } from './RankHeatmaps';

/** GoRA's importance share a_l = I_l / Σ I per module: what its ranks are proportional to (before clamping). */
export function GoraImportance({ runs }: { runs: AnalyzedRun[] }) {
  return (
    <section className="analysis-section">
      <div className="analysis-head">
        <h3>GoRA: gradient importance</h3>
        <span className="muted small">
          Share a_l of each module's importance mean|W ⊙ Ḡ| (in %), over the first N training batches.
        </span>
      </div>
      <div className="analysis-grid">
        {runs.map(({ run, color }) => {
          const shares = run.analysis.modules.map(share);
          const domain: [number, number] = [Math.min(...shares), Math.max(...shares)];
          const info = run.analysis.gora;
          return (
            <article
              key={run.config.id}
              className="analysis-card"
              data-testid="importance-card"
              aria-label={`${run.config.name} importance`}
            >
              <RunTitle name={run.config.name} color={color} />
              {info && (
                <div className="analysis-sub">
                  {info.importance} over {info.steps} batches · γ {info.gamma} · r {info.rankMin}–{info.rankMax}
                </div>
              )}
              <ModuleHeatmap
                modules={run.analysis.modules}
                value={share}
                label={(m) => (100 * share(m)).toFixed(1)}
                details={importanceDetails}
                domain={domain}
                testId="importance-heatmap"
                ariaLabel={`${run.config.name}: importance share per layer and module`}
                valueName="importance"
              />
              <ScaleLegend domain={domain} format={(v) => `${(100 * v).toFixed(1)}%`} name="share" />
            </article>
          );
        })}
      </div>
    </section>
  );
}

const share = (m: ModuleAllocation) => m.share ?? 0;

function importanceDetails(m: ModuleAllocation): string[] {
  const lines = [`share ${(100 * share(m)).toFixed(2)}%`, `rank ${m.rank}`];
  if (m.importance !== undefined) lines.push(`importance ${m.importance.toExponential(3)}`);
  if (m.gradNorm !== undefined) lines.push(`‖Ḡ‖ ${m.gradNorm.toExponential(2)}`);
  if (m.initNorm !== undefined) lines.push(`‖ΔW₀‖ ${m.initNorm.toExponential(2)}`);
  return lines;
}
