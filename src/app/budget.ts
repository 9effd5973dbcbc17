/**
 * The budget helper: trainable parameters of a run configuration and a GPU memory estimate, computed from
 * the model's shapes alone (pure, no GPU), so the Runs panel can show them while editing.
 */
import { expectedTensors, type ModelSpec } from '../model/config';
import { allLinearTargets, defaultTargets, selectTargets, type LinearInfo } from '../model/layout';
import { logitsChunkRows } from '../model/lm-head';
import type { GpuInfo, RunConfig, TargetPreset } from '../worker/protocol';
import { allocatesRanks, GELORA_DEFAULTS, graloraKOf, hybridRankOf, structureOf } from './methods';

export function targetNames(spec: ModelSpec, preset: TargetPreset): string[] {
  return preset === 'all-linear' ? allLinearTargets(spec) : defaultTargets(spec);
}

/** "q,v" / "c_attn" / "all linear" for tables. */
export function targetLabel(preset: TargetPreset, spec?: ModelSpec | null): string {
  if (preset === 'all-linear') return 'all linear';
  if (spec?.family === 'gpt2') return 'c_attn';
  return 'q,v';
}

export function baseParameters(spec: ModelSpec): number {
  return expectedTensors(spec).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
}

function targetsOf(spec: ModelSpec, c: Pick<RunConfig, 'targets'>): LinearInfo[] {
  return selectTargets(spec, targetNames(spec, c.targets));
}

type BudgetConfig = Pick<RunConfig, 'method' | 'rank' | 'targets' | 'extras'>;

/**
 * Trainable parameters: r(in+out) per target for LoRA and rsLoRA, (r+h)(in+out) for GraLoRA (whatever k).
 * GoRA and GeLoRA allocate ranks under the budget of a uniform rank-r LoRA: that budget is returned
 * (their exact count comes with the run's analysis).
 */
export function trainableParameters(spec: ModelSpec, c: BudgetConfig): number {
  if (c.method === 'full') return baseParameters(spec);
  const rank = Math.max(0, Math.floor(c.rank)) + hybridRankOf(c);
  return targetsOf(spec, c).reduce((n, m) => n + rank * (m.in + m.out), 0);
}

/** How trainableParameters relates to what the run will train. */
export function parameterCountKind(c: Pick<RunConfig, 'method' | 'extras'>): 'exact' | 'budget' | 'raw' {
  if (!allocatesRanks(c.method)) return 'exact';
  // GeLoRA's raw ranks come straight from the dimension growth, not from the budget.
  return c.method === 'gelora' && (c.extras?.geloraBudget ?? GELORA_DEFAULTS.budget) === 'raw' ? 'raw' : 'budget';
}

// ---------------------------------------------------------------------------------------------- memory

const F32 = 4;

/**
 * Float32 bytes of one TransformerGraph (see src/model/transformer.ts); `train` adds the gradient scratch. The
 * MLP buffers (fc1, fc2, act) exist once when nothing keeps them per block: forward-only graphs, and training
 * with the MLP recomputed.
 */
function graphBytes(spec: ModelSpec, c: RunConfig, train: boolean): number {
  const rows = c.batch * c.seq;
  const d = spec.hidden;
  const qkv = (spec.heads + 2 * spec.kvHeads) * spec.headDim;
  const att = spec.heads * spec.headDim;
  const ff = spec.intermediate;
  // Flash attention keeps one logsumexp per query row and head.
  const perLayer = rows * (5 * d + 2 * qkv + att + 4) + c.batch * spec.heads * c.seq;
  const mlp = rows * 3 * ff * (!train || c.recompute === 'mlp' ? 1 : spec.layers);
  const activations = spec.layers * perLayer + mlp + rows * (2 * d + 2);
  const logits = logitsChunkRows(rows, spec.vocabSize) * spec.vocabSize;
  const scratch = train ? rows * (2 * d + att + qkv + 3 * ff) + c.batch * spec.heads * c.seq : 0;
  return (activations + logits + scratch) * F32;
}

/** What each bound adapter keeps per row: LoRA's H and dH (r each); GraLoRA's H, H' and their gradients (k·r each) + hybrid. */
function adapterActivationBytes(spec: ModelSpec, c: RunConfig): number {
  if (c.method === 'full') return 0;
  const rows = c.batch * c.seq;
  const perRow = structureOf(c) === 'gralora'
    ? (graloraKOf(c) > 1 ? 4 : 2) * graloraKOf(c) * c.rank + 2 * hybridRankOf(c)
    : 2 * c.rank;
  return targetsOf(spec, c).length * rows * perRow * F32;
}

export interface MemoryEstimate {
  /** Peak bytes: the base weights plus the larger of the two phases. */
  peak: number;
  training: number;
  /** GoRA's gradients or GeLoRA's hidden states (null for methods without a preparation phase). */
  preparation: number | null;
  /** The largest single buffer (the one a GPU's per-buffer limits bite on). */
  largest: { what: string; bytes: number };
}

/**
 * Approximate GPU bytes of a run: base weights as loaded (baseWeightBytes: 16-bit checkpoints stay 16-bit),
 * everything else float32: trainable state (weights, gradients, two
 * AdamW moments); the training graph (validation reuses it), the adapters' activations and the split-K scratch
 * of its command lists (listScratchBytes, from the GPU's matmul plan); for GoRA the preparation phase holds an f32 gradient of every target weight (Σ in·out) beside
 * a training graph, for GeLoRA a forward graph and the TwoNN distance matrix. The run reports the real figure.
 */
export function memoryEstimate(spec: ModelSpec, c: RunConfig, baseWeightBytes = baseParameters(spec) * F32, listScratchBytes = 0): MemoryEstimate {
  const base = baseWeightBytes;
  const trainable = trainableParameters(spec, c);
  const adapters = adapterActivationBytes(spec, c);
  // A training graph records two lists (the forward for validation, forward + backward), each with its own
  // split-K scratch where the GPU's matmul plan splits (GpuInfo.splitScratchBytes); a forward-only graph one.
  const training = 4 * F32 * trainable + graphBytes(spec, c, true) + adapters + 2 * listScratchBytes;
  const targets = c.method === 'full' ? [] : targetsOf(spec, c);
  const rows = c.batch * c.seq;
  const buffers: { what: string; bytes: number }[] = [
    { what: 'logits', bytes: logitsChunkRows(rows, spec.vocabSize) * spec.vocabSize * F32 },
  ];
  let preparation: number | null = null;
  if (c.method === 'gora') {
    const grads = targets.reduce((n, t) => n + t.in * t.out * F32, 0);
    // The adapters (weights and gradients) are built while the gradients are still alive, for the init.
    preparation = grads + graphBytes(spec, c, true) + 2 * F32 * trainable + 2 * listScratchBytes;
    const widest = targets.reduce<LinearInfo | null>((w, t) => (!w || t.in * t.out > w.in * w.out ? t : w), null);
    if (widest) buffers.push({ what: `GoRA gradient of ${widest.path}`, bytes: widest.in * widest.out * F32 });
  } else if (c.method === 'gelora') {
    const n = c.extras?.geloraSamples ?? GELORA_DEFAULTS.samples;
    preparation = graphBytes(spec, c, false) + (n * spec.hidden + n * n + 2 * n) * F32 + listScratchBytes;
    buffers.push({ what: 'GeLoRA distance matrix', bytes: n * n * F32 });
  }
  if (c.method === 'full') buffers.push({ what: 'embedding gradient', bytes: spec.vocabSize * spec.hidden * F32 });
  const largest = buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { peak: base + Math.max(training, preparation ?? 0), training, preparation, largest };
}

/** The GPU limit a run's largest buffer exceeds, as a sentence, or null when it fits. */
export function bufferLimitProblem(m: MemoryEstimate, gpu: Pick<GpuInfo, 'maxBufferSize' | 'maxStorageBufferBindingSize'>): { text: string; limit: number } | null {
  const [name, limit] = gpu.maxStorageBufferBindingSize <= gpu.maxBufferSize
    ? ['maxStorageBufferBindingSize', gpu.maxStorageBufferBindingSize]
    : ['maxBufferSize', gpu.maxBufferSize];
  if (m.largest.bytes <= limit) return null;
  return { text: `The ${m.largest.what} buffer needs more than this GPU's ${name}`, limit };
}
