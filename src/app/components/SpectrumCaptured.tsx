import type { ModuleAllocation } from '../../engine/methods';
import { capturedSpectrum } from '../analysis';
import type { AnalyzedRun } from './AnalysisPanel';
import { ModuleHeatmap, ScaleLegend } from './ModuleHeatmap';
import { RunTitle } from './RankHeatmaps';

/**
 * PiSSA and LoRA-GA start from the top singular triplets of a matrix (W itself, or the accumulated gradient):
 * the sum of the singular values each module's init captured, and the values themselves in its details.
 */
export function SpectrumCaptured({ runs }: { runs: AnalyzedRun[] }) {
  return (
    <section className="analysis-section" data-testid="spectrum-section">
      <div className="analysis-head">
        <h3>PiSSA / LoRA-GA: singular values captured</h3>
        <span className="muted small">
          Σ σᵢ of the r triplets each module starts from: of W (PiSSA) or of the accumulated gradient (LoRA-GA).
        </span>
      </div>
      <div className="analysis-grid">
        {runs.map(({ run, color }) => {
          const sums = run.analysis.modules.map(capturedSpectrum);
          const domain: [number, number] = [Math.min(...sums), Math.max(...sums)];
          const source = run.analysis.init === 'loraga' ? 'gradient' : 'W';
          return (
            <article
              key={run.config.id}
              className="analysis-card"
              data-testid="spectrum-card"
              aria-label={`${run.config.name} singular values`}
            >
              <RunTitle name={run.config.name} color={color} />
              <div className="analysis-sub">
                SVD of {source} · {run.analysis.svd ?? 'exact'}
              </div>
              <ModuleHeatmap
                modules={run.analysis.modules}
                value={capturedSpectrum}
                label={(m) => compact(capturedSpectrum(m))}
                details={spectrumDetails}
                domain={domain}
                testId="spectrum-heatmap"
                ariaLabel={`${run.config.name}: singular values captured per layer and module`}
                valueName="singular values"
              />
              <ScaleLegend domain={domain} format={compact} name="Σ σ" />
            </article>
          );
        })}
      </div>
    </section>
  );
}

function compact(v: number): string {
  return Math.abs(v) >= 100 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(1) : v.toPrecision(3);
}

function spectrumDetails(m: ModuleAllocation): string[] {
  const s = m.singularValues ?? [];
  return [`Σ σ ${compact(capturedSpectrum(m))}`, `σ ${s.map(compact).join(', ')}`, `rank ${m.rank}`];
}
