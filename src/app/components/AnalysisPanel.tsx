import type { RunRecord } from '../run-record';
import { useStudio } from '../store';
import { GeloraDimensions } from './GeloraDimensions';
import { GoraImportance } from './GoraImportance';
import { Panel, runColor } from './Panel';
import { RankHeatmaps } from './RankHeatmaps';

/** A run whose method reported what it chose before step 0 (every adapter method does; full fine-tuning has no modules). */
export interface AnalyzedRun {
  run: RunRecord & { analysis: NonNullable<RunRecord['analysis']> };
  color: string;
}

export function AnalysisPanel() {
  const runs = useStudio((s) => s.runs);
  const order = useStudio((s) => s.order);
  const analyzed = order
    .map((id, i) => ({ run: runs[id], color: runColor(i) }))
    .filter((r): r is AnalyzedRun => (r.run.analysis?.modules.length ?? 0) > 0);
  const gora = analyzed.filter((r) => r.run.analysis.allocation === 'gora');
  const gelora = analyzed.filter((r) => r.run.analysis.gelora);
  return (
    <Panel
      id="allocation"
      step={5}
      title="Rank allocation"
      subtitle="What each method chose before step 0: the rank of every adapted module (layers × modules), GoRA's gradient importance and GeLoRA's intrinsic dimensions."
    >
      {analyzed.length === 0 ? (
        <div className="empty" data-testid="allocation-empty">
          Start a run: its per-module ranks appear here once its method has allocated them.
        </div>
      ) : (
        <>
          <RankHeatmaps runs={analyzed} />
          {gora.length > 0 && <GoraImportance runs={gora} />}
          {gelora.length > 0 && <GeloraDimensions runs={gelora} />}
        </>
      )}
    </Panel>
  );
}
