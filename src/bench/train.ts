/**
 * LoRA training throughput on a real model through the production path (trainRun: TransformerGraph,
 * Trainer, pipelined steps). Batches are synthetic: full rows of random token ids, so every step
 * processes exactly batch x seq tokens and the data pipeline costs nothing measurable.
 */
import type { Example } from '../data/index';
import { trainRun } from '../engine/train-run';
import type { Gpu } from '../gpu/gpu';
import type { ModelWeights } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { Rng } from '../util/random';
import { median } from './timing';

export interface TrainBenchConfig {
  label: string;
  /** PEFT target_modules, or ['all-linear']. */
  targets: string[];
  rank: number;
  batch: number;
  seq: number;
  /** Steps timed after the warm-up steps. */
  steps: number;
  warmupSteps: number;
}

export interface TrainBenchResult {
  impl: string;
  label: string;
  targets: string;
  rank: number;
  batch: number;
  seq: number;
  steps: number;
  trainableParams: number;
  /** Time from the call to the first step's submit: graphs built, buffers allocated, pipelines compiled. */
  setupMs: number;
  msPerStep: number;
  /** batch x seq tokens (every position is computed) per second of steady-state step time. */
  tokensPerSecond: number;
  submitsPerStep: number | null;
  buffersCreatedAfterStep0: number | null;
  /** Step 0's loss: the base model's (LoRA B starts at 0), so every implementation must agree on it. */
  firstLoss: number;
  finalLoss: number;
  error?: string;
}

/** The LoRA step both implementations train (rank 8, alpha = rank: scale 1) on one PEFT target set, e.g. "q_proj,v_proj". */
export function loraStepConfig(
  targets: string,
  shape: Pick<TrainBenchConfig, 'batch' | 'seq' | 'steps' | 'warmupSteps'>,
): TrainBenchConfig {
  return { label: targets, targets: targets.split(','), rank: 8, ...shape };
}

/** What identifies a result row: the implementation and its configuration. */
export function trainResultHead(impl: string, c: TrainBenchConfig) {
  return {
    impl,
    label: c.label,
    targets: c.targets.join(','),
    rank: c.rank,
    batch: c.batch,
    seq: c.seq,
    steps: c.steps,
  };
}

/** An implementation's row when its step could not run (or it could not load): the error in place of the figures. */
export function failedTrainResult(
  impl: string,
  c: TrainBenchConfig,
  error: string,
  losses = { firstLoss: NaN, finalLoss: NaN },
): TrainBenchResult {
  return {
    ...trainResultHead(impl, c),
    trainableParams: 0,
    setupMs: NaN,
    msPerStep: NaN,
    tokensPerSecond: NaN,
    submitsPerStep: null,
    buffersCreatedAfterStep0: null,
    ...losses,
    error,
  };
}

export function syntheticExamples(count: number, seq: number, vocab: number, seed: number): Example[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => {
    const ids = Array.from({ length: seq }, () => rng.int(vocab));
    return { inputIds: ids, labels: ids.slice() };
  });
}

/**
 * Steady-state ms per step from the pipelined runner's completion times: steps complete one after the
 * other, so the median gap between consecutive completions after the warm-up is the step time.
 */
export function steadyStepMs(doneAtMs: number[], warmupSteps: number): number {
  const gaps: number[] = [];
  for (let i = Math.max(1, warmupSteps); i < doneAtMs.length; i++) gaps.push(doneAtMs[i] - doneAtMs[i - 1]);
  return median(gaps);
}

export async function benchTrain(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  c: TrainBenchConfig,
): Promise<TrainBenchResult> {
  const spec = weights.spec;
  const totalSteps = c.warmupSteps + c.steps;
  const base = trainResultHead('ours', c);
  const doneAt: number[] = [];
  let firstSubmitAt = NaN;
  let firstLoss = NaN;
  let finalLoss = NaN;
  const t0 = performance.now();
  try {
    const result = await trainRun(
      gpu,
      weights,
      tokenizer,
      syntheticExamples(c.batch * totalSteps, c.seq, spec.vocabSize, 1),
      {
        method: 'lora',
        rank: c.rank,
        alpha: c.rank,
        targets: c.targets,
        seed: 0,
        steps: totalSteps,
        batch: c.batch,
        seq: c.seq,
        lr: 1e-3,
        warmupSteps: 0,
        weightDecay: 0,
        maxGradNorm: 1,
        minLrRatio: 1,
        validationFraction: 0,
        evalEvery: 0,
        packing: false,
      },
      {
        onStep: (m) => {
          // elapsedMs counts from just before step 0's submit.
          if (doneAt.length === 0) {
            firstSubmitAt = performance.now() - m.elapsedMs;
            firstLoss = m.loss;
          }
          doneAt.push(m.elapsedMs);
          finalLoss = m.loss;
        },
      },
    );
    gpu.checkErrors('bench train');
    const msPerStep = steadyStepMs(doneAt, c.warmupSteps);
    let trainableParams = 0;
    for (const a of result.state.adapters.values()) for (const t of a.trainables) trainableParams += t.param.size;
    return {
      ...base,
      trainableParams,
      setupMs: firstSubmitAt - t0,
      msPerStep,
      tokensPerSecond: (c.batch * c.seq) / (msPerStep / 1000),
      submitsPerStep: result.submitsPerStep,
      buffersCreatedAfterStep0: result.buffersCreatedAfterStep0,
      firstLoss,
      finalLoss,
    };
  } catch (e) {
    return failedTrainResult('ours', c, (e as Error).message, { firstLoss, finalLoss });
  }
}
