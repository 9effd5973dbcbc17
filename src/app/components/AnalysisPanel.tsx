import type { RunRecord } from '../run-record';
import { useStudio } from '../store';
import { archivedCount, visibleRuns } from '../visible-runs';
import { GeloraDimensions } from './GeloraDimensions';
import { GoraImportance } from './GoraImportance';
import { MethodTimeline } from './MethodTimeline';
import { Panel } from './Panel';
import { RankHeatmaps } from './RankHeatmaps';
import { SpectrumCaptured } from './SpectrumCaptured';

/** A run whose method reported what it chose before step 0 (every adapter method does; full fine-tuning has no modules). */
export interface AnalyzedRun {
  run: RunRecord & { analysis: NonNullable<RunRecord['analysis']> };
  color: string;
}

const hasModules = (r: RunRecord) => (r.analysis?.modules.length ?? 0) > 0;

export function AnalysisPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  // Archived runs leave the heatmaps and timelines.
  const analyzed = visibleRuns({ runs, order }).filter((r): r is AnalyzedRun => hasModules(r.run));
  const archived = archivedCount({ runs, order }, hasModules);
  const gora = analyzed.filter((r) => r.run.analysis.allocation === 'gora');
  const gelora = analyzed.filter((r) => r.run.analysis.gelora);
  const spectra = analyzed.filter((r) => r.run.analysis.modules.some((m) => m.singularValues?.length));
  const adalora = analyzed.filter((r) => r.run.analysis.allocation === 'adalora');
  const dora = analyzed.filter((r) => r.run.analysis.structure === 'dora');
  return (
    <Panel
      id="allocation"
      step={5}
      title="Rank allocation"
      subtitle="What each method chose before step 0, and what it changes while training: the rank of every adapted module (layers × modules), GoRA's gradient importance, GeLoRA's intrinsic dimensions, the singular values PiSSA and LoRA-GA start from, AdaLoRA's ranks and DoRA's magnitudes over time."
    >
      {analyzed.length === 0 ? (
        <div className="empty" data-testid="allocation-empty">
          {archived > 0
            ? `Every analyzed run is archived (${archived}): restore one from the Runs list's Archived view to see its ranks.`
            : 'Start a run: its per-module ranks appear here once its method has allocated them.'}
        </div>
      ) : (
        <>
          <RankHeatmaps runs={analyzed} />
          {gora.length > 0 && <GoraImportance runs={gora} />}
          {gelora.length > 0 && <GeloraDimensions runs={gelora} />}
          {spectra.length > 0 && <SpectrumCaptured runs={spectra} />}
          {adalora.length > 0 && <MethodTimeline runs={adalora} quantity="ranks" />}
          {dora.length > 0 && <MethodTimeline runs={dora} quantity="magnitudeDrift" />}
        </>
      )}
    </Panel>
  );
}
