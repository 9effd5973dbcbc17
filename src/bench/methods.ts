/**
 * Training throughput per method on one model, through the production path (trainRun), with what issue 6 asks
 * to see beside it: the preparation phase's time, model FLOPs utilization against the matmul peak measured in
 * the same run, and the run's GPU memory by category.
 */
import type { MethodOptions } from '../engine/methods';
import { trainRun } from '../engine/train-run';
import type { Gpu } from '../gpu/gpu';
import type { ModelWeights } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { modelFlopsPerToken } from './flops';
import { steadyStepMs, syntheticExamples } from './train';

export interface MethodBenchConfig {
  label: string;
  options: Omit<MethodOptions, 'seed'>;
  batch: number;
  seq: number;
  steps: number;
  warmupSteps: number;
}

export type MemoryCategory = 'weights' | 'adapters' | 'gradients' | 'optimizer' | 'activations' | 'scratch';

export interface MethodBenchResult {
  label: string;
  method: string;
  batch: number;
  seq: number;
  trainableParams: number;
  preparationMs: number;
  msPerStep: number;
  tokensPerSecond: number;
  /** Model FLOPs per token of one training step (see modelFlopsPerToken). */
  flopsPerToken: number;
  /** Bytes of the run's buffers by category, after its last step (the base weights are shared and counted once). */
  memory: Record<MemoryCategory, number>;
  /** The highest bytes the run held at once, base weights included (the preparation phase can set it). */
  peakBytes: number;
  error?: string;
}

/** A buffer's category from its label (labels are set where tensors are created). */
export function memoryCategory(label: string, weightNames: Set<string>): MemoryCategory {
  if (weightNames.has(label)) return 'weights';
  // AdaLoRA's importance EMAs are optimizer-like state, kept per element of A, E and B.
  if (/\.adam_[mv]$|\.ipt_ema$/.test(label)) return 'optimizer';
  if (/\.grad$/.test(label) || label === 'grad.sumsq') return 'gradients';
  // PiSSA's and LoRA-GA's frozen initial pair (lora_A0, lora_B0) is part of the adapter.
  if (/\.(lora_[ABE]0?|lora_magnitude_vector|gralora_[AB](_general)?)$/.test(label)) return 'adapters';
  if (/\.params$|\.scratch$|^metrics\.|^adamw\.hp$|^optimizer\.state$/.test(label)) return 'scratch';
  return 'activations';
}

export async function benchMethod(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  c: MethodBenchConfig,
): Promise<MethodBenchResult> {
  const spec = weights.spec;
  const total = c.warmupSteps + c.steps;
  const base = { label: c.label, method: c.options.method, batch: c.batch, seq: c.seq };
  const memory: Record<MemoryCategory, number> = {
    weights: 0,
    adapters: 0,
    gradients: 0,
    optimizer: 0,
    activations: 0,
    scratch: 0,
  };
  const weightTensors = weights.allTensors();
  const weightNames = new Set(weightTensors.map((t) => t.label));
  for (const t of weightTensors) memory.weights += t.buffer.size;
  const mark = gpu.mark();
  // Buffers other sections left alive are not this run's: count its peak above them, plus the base weights.
  const before = gpu.liveBytes;
  gpu.peakBytes = before;
  const runPeak = () => gpu.peakBytes - before + memory.weights;
  const doneAt: number[] = [];
  try {
    // Enough synthetic rows for the preparation phase's batches too.
    const examples = syntheticExamples(c.batch * (total + 64), c.seq, spec.vocabSize, 1);
    const result = await trainRun(
      gpu,
      weights,
      tokenizer,
      examples,
      {
        ...c.options,
        seed: 0,
        steps: total,
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
      { onStep: (m) => doneAt.push(m.elapsedMs) },
    );
    gpu.checkErrors(`bench ${c.label}`);
    for (const b of gpu.createdSince(mark)) memory[memoryCategory(b.label, weightNames)] += b.size;
    const msPerStep = steadyStepMs(doneAt, c.warmupSteps);
    return {
      ...base,
      trainableParams: result.state.analysis.trainableParameters,
      preparationMs: result.state.analysis.preparationMs,
      msPerStep,
      tokensPerSecond: (c.batch * c.seq) / (msPerStep / 1000),
      flopsPerToken: modelFlopsPerToken(spec, c.seq, c.options.method === 'full'),
      memory,
      peakBytes: runPeak(),
    };
  } catch (e) {
    return {
      ...base,
      trainableParams: 0,
      preparationMs: NaN,
      msPerStep: NaN,
      tokensPerSecond: NaN,
      flopsPerToken: NaN,
      memory,
      peakBytes: runPeak(),
      error: (e as Error).message,
    };
  } finally {
    // Each configuration's buffers go back before the next one (full fine-tuning trains the shared weights in place:
    // run it last).
    await gpu.freeSince(mark);
  }
}

/** The per-method configurations at one rank-8 budget on every linear layer. */
export function methodConfigs(batch: number, seq: number, steps: number, warmupSteps: number): MethodBenchConfig[] {
  const common = { rank: 8, alpha: 16, targets: ['all-linear'] };
  const runs: [string, MethodBenchConfig['options']][] = [
    ['LoRA r8', { ...common, method: 'lora' }],
    ['GoRA r_ref 8 (N 8)', { ...common, method: 'gora', goraSteps: 8, rankMin: 2, rankMax: 16 }],
    ['GraLoRA r8 k2', { ...common, method: 'gralora', graloraK: 2 }],
    ['GeLoRA r_ref 8', { ...common, method: 'gelora', geloraSamples: 512 }],
    ['DoRA r8', { ...common, method: 'dora' }],
    ['PiSSA r8', { ...common, method: 'pissa' }],
    ['LoRA-GA r8 (N 8)', { ...common, method: 'loraga', loragaBatches: 8 }],
    ['AdaLoRA r8 (init_r 12)', { ...common, method: 'adalora' }],
    ['Full fine-tuning', { ...common, method: 'full' }],
  ];
  return runs.map(([label, options]) => ({ label, options, batch, seq, steps, warmupSteps }));
}
