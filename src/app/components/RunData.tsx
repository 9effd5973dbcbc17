/** What a run trains on at its sequence length: examples kept, truncated and dropped; and what else it should say. */
import type { Truncation } from '../../data/truncation';
import type { DataFit } from '../../worker/protocol';
import { formatInt } from '../format';
import type { RunRecord } from '../run-record';

export const TRUNCATION_OPTIONS: [Truncation, string][] = [
  ['keep-answer', 'Keep the answer'],
  ['right', 'Cut the end'],
];

export const TRUNCATION_HINT =
  'How examples longer than the sequence length are cut. Keep the answer: the prompt loses its beginning and the answer ' +
  "is kept (LLaMA-Factory's budget split). Cut the end: a plain cut at the sequence length (TRL), which can cut answers off. " +
  'Examples left without a supervised token are dropped. Plain text is split into pieces instead.';

/** "2,600 examples at 64 tokens: 2,537 truncated (keep the answer), none dropped". */
export function describeFit(fit: DataFit): string {
  const how = TRUNCATION_OPTIONS.find(([t]) => t === fit.truncation)?.[1].toLowerCase() ?? fit.truncation;
  const dropped = fit.dropped === 0 ? 'none dropped' : `${formatInt(fit.dropped)} dropped (no supervised token left)`;
  return `${formatInt(fit.examples)} examples at ${fit.seq} tokens: ${formatInt(fit.truncated)} truncated (${how}), ${dropped}`;
}

export function RunDataLine({ run }: { run: RunRecord }) {
  const skipped = run.summary?.skippedBatches ?? 0;
  if (!run.data && run.warnings.length === 0 && skipped === 0) return null;
  return (
    <div className="run-data" data-testid="run-data">
      {run.data && !run.data.problem && (
        <div className="run-settings" data-testid="run-data-fit">
          {describeFit(run.data)}
        </div>
      )}
      {[
        ...run.warnings,
        ...(skipped > 0
          ? [`${skipped} step${skipped > 1 ? 's' : ''} had no supervised token in the batch and made no update.`]
          : []),
      ].map((w, i) => (
        <div key={i} className="run-message" data-testid="run-warning">
          {w}
        </div>
      ))}
    </div>
  );
}
