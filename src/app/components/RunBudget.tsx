import type { MethodAnalysis } from '../../engine/methods';
import type { GpuInfo, ModelCard, RunConfig } from '../../worker/protocol';
import { baseParameters, bufferLimitProblem, memoryEstimate, parameterCountKind, trainableParameters } from '../budget';
import { formatBytes, formatCount } from '../format';
import { useStudio } from '../store';
import { TrainTokensText } from './RunProgress';

/** Trainable parameters (the run's exact count once its analysis arrived), memory estimate and per-buffer limit check. */
export function RunBudget({
  config,
  card,
  analysis,
}: {
  config: RunConfig;
  card: ModelCard | null;
  analysis: MethodAnalysis | null;
}) {
  const gpu = useStudio((s) => (s.gpu.status === 'ready' ? s.gpu.info : null));
  if (!card) return null;
  let params: number;
  let memory: ReturnType<typeof memoryEstimate>;
  try {
    params = trainableParameters(card.spec, config);
    memory = memoryEstimate(card.spec, config, card.weightBytes, gpu?.splitScratchBytes ?? 0);
  } catch (err) {
    return <div className="budget error">{(err as Error).message}</div>;
  }
  const kind = parameterCountKind(config);
  const exact = analysis?.trainableParameters ?? (kind === 'exact' ? params : null);
  const share = (exact ?? params) / baseParameters(card.spec);
  return (
    <div className="budget-group">
      <div className="budget" data-testid="run-budget">
        <span data-testid="run-params">
          {exact !== null ? (
            <>
              <strong>{formatCount(exact)}</strong> trainable parameters ({formatShare(share)} of the model)
            </>
          ) : (
            <>
              <strong>≈ {formatCount(params)}</strong> trainable parameters{' '}
              {kind === 'budget'
                ? '(≈ budget, exact after allocation)'
                : '(raw ranks: a rank-r LoRA would have this many; exact after allocation)'}
            </>
          )}
        </span>
        {analysis && kind !== 'exact' && analysis.loraEquivalentParameters > 0 && (
          <span className="muted">
            {formatShare(analysis.trainableParameters / analysis.loraEquivalentParameters, true)} of the rank-
            {config.rank} LoRA budget
          </span>
        )}
        <span className="muted" title={memoryTitle(memory)}>
          ≈ {formatBytes(memory.peak)} GPU memory
          {memory.preparation !== null && memory.preparation > memory.training ? ' (peak in preparation)' : ''}
        </span>
        <TrainTokensText config={config} />
      </div>
      {gpu && <BufferLimit memory={memory} gpu={gpu} />}
    </div>
  );
}

function BufferLimit({ memory, gpu }: { memory: ReturnType<typeof memoryEstimate>; gpu: GpuInfo }) {
  const problem = bufferLimitProblem(memory, gpu);
  if (!problem) return null;
  return (
    <div className="budget error" data-testid="run-limit">
      {problem.text}: {formatBytes(memory.largest.bytes)} &gt; {formatBytes(problem.limit)}.{' '}
      {problem.advice ?? (
        <>
          Lower the batch or the sequence length
          {memory.largest.what.startsWith('GeLoRA') ? ', or the GeLoRA samples' : ''}.
        </>
      )}
    </div>
  );
}

function memoryTitle(m: ReturnType<typeof memoryEstimate>): string {
  const parts = [`training ${formatBytes(m.training)}`];
  if (m.preparation !== null) parts.push(`preparation ${formatBytes(m.preparation)}`);
  parts.push(`largest buffer: ${m.largest.what}, ${formatBytes(m.largest.bytes)}`);
  return `Beside the base weights: ${parts.join(' · ')}`;
}

function formatShare(share: number, coarse = false): string {
  if (coarse || share >= 0.01) return `${(100 * share).toFixed(coarse ? 0 : 1)}%`;
  return `${(100 * share).toFixed(2)}%`;
}
