/**
 * The budget helper: trainable parameters of a run configuration and a GPU memory estimate, computed from
 * the model's shapes alone (pure, no GPU), so the Runs panel can show them while editing.
 */
import { expectedTensors, type ModelSpec } from '../model/config';
import { allLinearTargets, defaultTargets, selectTargets, type LinearInfo } from '../model/layout';
import {
  adapterAllocations,
  bufferBytes,
  graphAllocations,
  planBytes,
  trainingAllocations,
  type AdapterShape,
  type PlannedBuffer,
} from '../model/allocation-plan';
import { vocabTensorNames } from '../model/vocab-shards';
import { moduleK } from '../adapters/gralora/config';
import { methodDescriptor, plannedModuleParameters } from '../adapters/registry';
import type { GpuInfo, RunConfig, TargetPreset } from '../worker/protocol';
import { allocatesRanks, gradAccumOf, graloraKOf, hybridRankOf, resolvedExtras, structureOf } from './methods';

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
 * Trainable parameters (the registry's plannedModuleParameters): r(in+out) per target for LoRA and rsLoRA,
 * (r+h)(in+out) for GraLoRA (whatever k), each method's own count where it differs (DoRA's magnitudes). GoRA, GeLoRA
 * and AdaLoRA allocate ranks under the budget of a uniform rank-r LoRA: that budget is returned (their exact count
 * comes with the run's analysis).
 */
export function trainableParameters(spec: ModelSpec, c: BudgetConfig): number {
  if (c.method === 'full') return baseParameters(spec);
  return plannedModuleParameters(c.method, Math.max(0, Math.floor(c.rank)), { ...c.extras }, targetsOf(spec, c));
}

/** How trainableParameters relates to what the run will train. */
export function parameterCountKind(c: Pick<RunConfig, 'method' | 'rank' | 'extras'>): 'exact' | 'budget' | 'raw' {
  if (!allocatesRanks(c.method)) return 'exact';
  // GeLoRA's raw ranks come straight from the dimension growth, not from the budget.
  return resolvedExtras(c).geloraBudget === 'raw' ? 'raw' : 'budget';
}

// ---------------------------------------------------------------------------------------------- memory

const F32 = 4;

/**
 * The adapters a run configuration builds, as the allocation table sees them: every target at the configured rank
 * (GoRA and GeLoRA allocate their ranks under that budget: the uniform rank-r adapter stands for them), GraLoRA's k
 * lowered per module where it does not divide the module's shapes (moduleK, as the engine does).
 */
function adapterShapes(spec: ModelSpec, c: BudgetConfig): AdapterShape[] {
  if (c.method === 'full') return [];
  const rank = Math.max(0, Math.floor(c.rank));
  if (structureOf(c) === 'gralora') {
    const k = graloraKOf(c);
    const hybridRank = hybridRankOf(c);
    return targetsOf(spec, c).map((m) => ({
      kind: 'gralora',
      path: m.path,
      in: m.in,
      out: m.out,
      rank,
      k: moduleK(m, rank, k).k,
      hybridRank,
    }));
  }
  const recipe = methodDescriptor(c.method).recipe!;
  // AdaLoRA allocates its init_r triplets and prunes their Λ entries: its buffers never shrink.
  const kind: 'lora' | 'dora' | 'adalora' | 'residual-lora' =
    recipe.structure === 'dora' || recipe.structure === 'adalora'
      ? recipe.structure
      : recipe.init === 'pissa' || recipe.init === 'loraga'
        ? 'residual-lora'
        : 'lora';
  const r = kind === 'adalora' ? Number(resolvedExtras(c).initR ?? rank) : rank;
  return targetsOf(spec, c).map((m) => ({ kind, path: m.path, in: m.in, out: m.out, rank: r }));
}

/** What the studio's messages call a buffer of the table. */
function bufferName(spec: ModelSpec, b: PlannedBuffer): string {
  if (b.name.endsWith('.gora_grad')) return `GoRA gradient of ${b.name.slice(0, -'.gora_grad'.length)}`;
  const embed = spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  if (b.name === `${embed}.grad`) return 'embedding gradient';
  if (b.name === embed) return "embedding (the run's f32 copy)";
  return b.name;
}

export interface MemoryEstimate {
  /** Peak bytes: the base weights plus the larger of the two phases. */
  peak: number;
  training: number;
  /** GoRA's gradients or GeLoRA's hidden states (null for methods without a preparation phase). */
  preparation: number | null;
  /**
   * The largest single buffer (the one a GPU's per-buffer limits bite on). `vocab`: full fine-tuning's f32 copy of
   * the embedding or lm_head, or its gradient, which must be one buffer (the frozen weights are stored in shards).
   */
  largest: { what: string; bytes: number; vocab?: true };
}

/**
 * GPU bytes of a run: the base weights as loaded (baseWeightBytes: 16-bit checkpoints stay 16-bit) plus the sum of the
 * allocation table (src/model/allocation-plan.ts), the list of buffers TransformerGraph allocates from, with the
 * method's adapters (or full fine-tuning's f32 weight copy), the trainer's AdamW state and the split-K scratch of each
 * recorded list (listScratchBytes: GpuInfo.splitScratchBytes, from the GPU's matmul plan). Exact for LoRA, rsLoRA,
 * GraLoRA and full fine-tuning (test/model/allocation-plan.test.ts), except the few bytes of per-dispatch uniform
 * parameters and a split-K scratch the plan allows but no product of the list is large enough to use; GoRA and
 * GeLoRA train at ranks chosen later, counted at their rank-r budget. Preparation: GoRA holds an f32 gradient of
 * every target weight beside a training graph of gradient probes, and builds the adapters (and reads Ḡ·Aᵀ for their
 * init) before freeing them;
 * GeLoRA a forward-only graph, the sampled hidden states and the TwoNN distance matrix.
 */
export function memoryEstimate(
  spec: ModelSpec,
  c: RunConfig,
  baseWeightBytes = baseParameters(spec) * F32,
  listScratchBytes = 0,
): MemoryEstimate {
  const base = baseWeightBytes;
  const adapters = adapterShapes(spec, c);
  const shape = { batch: c.batch, seq: c.seq, recompute: c.recompute ?? 'none', listScratchBytes } as const;
  const trainingPlan = trainingAllocations(spec, {
    ...shape,
    train: c.method === 'full' ? 'full' : 'adapters',
    adapters,
    gradAccum: gradAccumOf(c),
  });
  const vocab = new Set(vocabTensorNames(spec).flatMap((n) => [n, `${n}.grad`]));
  const buffers: MemoryEstimate['largest'][] = trainingPlan.map((b) => ({
    what: bufferName(spec, b),
    bytes: b.bytes,
    ...(vocab.has(b.name) ? { vocab: true as const } : {}),
  }));
  let preparation: number | null = null;
  if (c.method === 'gora') {
    // Gradient probes on every target, their training graph, and the adapters built while the gradients are alive.
    const probes: AdapterShape[] = targetsOf(spec, c).map((m) => ({
      kind: 'gradient-probe',
      path: m.path,
      in: m.in,
      out: m.out,
    }));
    const plan = [
      ...adapterAllocations(probes),
      ...graphAllocations(spec, { ...shape, train: 'adapters', adapters: probes }),
      ...adapterAllocations(adapters),
    ];
    // GoRA's init reads Ḡ·Aᵀ of every layer from one f32 buffer (gora/init-layers.ts), while the gradients live.
    const k = structureOf(c) === 'gralora' ? graloraKOf(c) : 1;
    const products =
      Number(resolvedExtras(c).goraGamma) === 0 ? 0 : targetsOf(spec, c).reduce((n, m) => n + k * m.out * c.rank, 0);
    const init = products > 0 ? [{ what: 'GoRA gradient products (init)', bytes: bufferBytes([products]) }] : [];
    preparation = planBytes(plan) + init.reduce((n, b) => n + b.bytes, 0);
    buffers.push(...plan.map((b) => ({ what: bufferName(spec, b), bytes: b.bytes })), ...init);
  } else if (c.method === 'gelora') {
    const n = Number(resolvedExtras(c).geloraSamples);
    // TwoNN per stream: the points, their Gram matrix, the two nearest distances.
    const twonn = [
      { what: 'GeLoRA hidden states', bytes: bufferBytes([n, spec.hidden]) },
      { what: 'GeLoRA distance matrix', bytes: bufferBytes([n, n]) },
      { what: 'GeLoRA neighbours', bytes: bufferBytes([n, 2]) },
    ];
    preparation =
      planBytes(graphAllocations(spec, { ...shape, train: 'none' })) + twonn.reduce((s, b) => s + b.bytes, 0);
    buffers.push(...twonn);
  }
  const training = planBytes(trainingPlan);
  const largest = buffers.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  return { peak: base + Math.max(training, preparation ?? 0), training, preparation, largest };
}

/** The GPU limit a run's largest buffer exceeds, as a sentence, or null when it fits. */
export function bufferLimitProblem(
  m: MemoryEstimate,
  gpu: Pick<GpuInfo, 'maxBufferSize' | 'maxStorageBufferBindingSize'>,
): { text: string; limit: number; advice?: string } | null {
  const [name, limit] =
    gpu.maxStorageBufferBindingSize <= gpu.maxBufferSize
      ? ['maxStorageBufferBindingSize', gpu.maxStorageBufferBindingSize]
      : ['maxBufferSize', gpu.maxBufferSize];
  if (m.largest.bytes <= limit) return null;
  // The frozen embedding and lm_head are split into vocabulary shards; full fine-tuning's own copies are not.
  if (m.largest.vocab)
    return {
      text: `Full fine-tuning keeps the ${m.largest.what} in one buffer, which needs more than this GPU's ${name}`,
      limit,
      advice: 'Train an adapter method instead (they read the frozen embedding and lm_head in shards).',
    };
  return { text: `The ${m.largest.what} buffer needs more than this GPU's ${name}`, limit };
}
