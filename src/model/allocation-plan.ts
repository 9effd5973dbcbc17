/**
 * The allocation table (llm.c's fill_in_activation_sizes): every GPU buffer a run allocates beside the base
 * weights, by name, shape and dtype, as a pure function of the model's shapes and the run's options (batch, seq,
 * train mode, recomputation, LM-head chunking, the adapters' shapes, the GPU's split-K scratch per list).
 *
 *   graphAllocations    what a TransformerGraph allocates: it allocates its own buffers from this list by name
 *                       (a buffer the list lacks, or one it lists that the graph never allocates, is an error) and
 *                       checks the bytes each adapter's bind() allocates against the list's entries for it
 *   adapterAllocations  what the method builds before the graph: adapter tensors and their gradients, GoRA's
 *                       gradient accumulators
 *   trainerAllocations  what a Trainer adds: AdamW moments, hyperparameters, norms, the metrics staging ring
 *   trainingAllocations a whole training run: all of the above (full fine-tuning: the run's f32 weight copy)
 *
 * Pure: the studio's memory estimate (src/app/budget.ts) sums the same lists without a GPU.
 */
import type { LinearAdapter } from './adapter';
import { numel, storageBytes, type DType } from '../gpu/tensor';
import { expectedTensors, type ModelSpec } from './config';
import { logitsChunkRows } from './lm-head';
import type { LayerBuffers, Recompute, TrainMode } from './transformer';

/** Who allocates a buffer, and when. */
export type BufferOwner =
  /** The method, before the graph: adapter tensors and gradients, GoRA's accumulators, full fine-tuning's weight copy. */
  | 'method'
  /** TransformerGraph, from this table: inputs, activations, logits, gradient scratch, full fine-tuning's gradients. */
  | 'graph'
  /** An adapter's bind() for the graph's rows (its saved activations and their gradients). */
  | 'adapter-bind'
  /** A recorded command list: split-K partial products (CommandList.scratch), where the GPU's matmul plan splits. */
  | 'list'
  /** Trainer: AdamW moments, hyperparameters, clip state, per-tensor norms, metrics staging. */
  | 'trainer';

export interface PlannedBuffer {
  /** The buffer's label, as the code that allocates it names it. */
  name: string;
  shape: readonly number[];
  dtype: DType;
  owner: BufferOwner;
  /** What Gpu.createBuffer reserves for it: a multiple of 16 bytes, at least 16. */
  bytes: number;
}

/** Bytes Gpu.createBuffer reserves for a tensor (it rounds every buffer up to 16 bytes). */
export function bufferBytes(shape: readonly number[], dtype: DType = 'f32'): number {
  return Math.max(16, Math.ceil(storageBytes(numel(shape), dtype) / 16) * 16);
}

export function planBytes(buffers: readonly PlannedBuffer[]): number {
  return buffers.reduce((n, b) => n + b.bytes, 0);
}

function buffer(name: string, shape: readonly number[], owner: BufferOwner, dtype: DType = 'f32'): PlannedBuffer {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${name}: invalid shape [${shape.join(', ')}]`);
  }
  return { name, shape, dtype, owner, bytes: bufferBytes(shape, dtype) };
}

// ------------------------------------------------------------------------------------------- adapters

/** An adapter as the table sees it: enough to list its tensors and what bind() allocates for a number of rows. */
export type AdapterShape =
  /** Dense LoRA: A [r, in], B [out, r]; bind: H and dH [rows, r]. */
  | { kind: 'lora'; path: string; in: number; out: number; rank: number }
  /** GraLoRA: A [k, in/k, r], B [k, r, out/k] (+ hybrid LoRA of rank h); bind: H', dH' (and H, dH when k > 1) [k, rows, r]. */
  | { kind: 'gralora'; path: string; in: number; out: number; rank: number; k: number; hybridRank: number }
  /**
   * DoRA: LoRA's A, B and the magnitude m [out]; bind: H and dH [rows, r], x·Wᵀ and g ⊙ dy [rows, out], the norm's
   * ‖W‖² per row [out], E [r, out] and G [r, r], n and g [2, out].
   */
  | { kind: 'dora'; path: string; in: number; out: number; rank: number }
  /**
   * AdaLoRA: lora_A [r, in], lora_E [r, 1], lora_B [out, r], A ⊙ E [r, in], the regularizer's [2r² + 2]; training adds
   * importance EMAs [2, ·] per tensor and one schedule, score and mask set for all modules; bind: H and dH [rows, r].
   */
  | { kind: 'adalora'; path: string; in: number; out: number; rank: number }
  /** GoRA's gradient probe: an f32 [out, in] accumulator, nothing per row. */
  | { kind: 'gradient-probe'; path: string; in: number; out: number }
  /** PiSSA / LoRA-GA: LoRA's pair, a frozen pair A₀ [r, in], B₀ [out, r]; bind: H, dH and one [rows, r]. */
  | { kind: 'residual-lora'; path: string; in: number; out: number; rank: number };

/** A trainable tensor's name (as Trainer names its moments) and shape. */
export interface TrainableShape {
  name: string;
  shape: readonly number[];
}

/**
 * The shape of a built adapter, read from its trainable tensors (what bind() allocates follows from them). An
 * adapter the table does not know is an error: its buffers would be missing from every estimate.
 */
export function adapterShapeOf(adapter: LinearAdapter): AdapterShape {
  const { path, in: inDim, out } = adapter.info;
  const shape = (suffix: string) => adapter.trainables.find((t) => t.name === `${path}.${suffix}`)?.param.shape;
  if (adapter.trainables.length === 0) return { kind: 'gradient-probe', path, in: inDim, out };
  const adaloraA = shape('lora_A');
  if (adaloraA && shape('lora_E')) return { kind: 'adalora', path, in: inDim, out, rank: adaloraA[0] };
  const loraA = shape('lora_A.weight');
  if (loraA && shape('lora_magnitude_vector')) return { kind: 'dora', path, in: inDim, out, rank: loraA[0] };
  if (loraA && 'initialPair' in adapter) return { kind: 'residual-lora', path, in: inDim, out, rank: loraA[0] };
  if (loraA) return { kind: 'lora', path, in: inDim, out, rank: loraA[0] };
  const graloraA = shape('gralora_A');
  if (graloraA) {
    return {
      kind: 'gralora',
      path,
      in: inDim,
      out,
      rank: graloraA[2],
      k: graloraA[0],
      hybridRank: shape('gralora_A_general.weight')?.[0] ?? 0,
    };
  }
  throw new Error(
    `${path}: the allocation plan (src/model/allocation-plan.ts) does not know this adapter (trainables ${adapter.trainables.map((t) => t.name).join(', ')})`,
  );
}

/** Trainable tensors of an adapter: [trainable name, buffer label, shape], in the adapter's `trainables` order. */
function adapterTrainables(a: AdapterShape): [string, string, number[]][] {
  const p = a.path;
  switch (a.kind) {
    case 'lora':
    case 'residual-lora':
      return [
        [`${p}.lora_A.weight`, `${p}.lora_A`, [a.rank, a.in]],
        [`${p}.lora_B.weight`, `${p}.lora_B`, [a.out, a.rank]],
      ];
    case 'gralora': {
      const out: [string, string, number[]][] = [
        [`${p}.gralora_A`, `${p}.gralora_A`, [a.k, a.in / a.k, a.rank]],
        [`${p}.gralora_B`, `${p}.gralora_B`, [a.k, a.rank, a.out / a.k]],
      ];
      if (a.hybridRank > 0) {
        out.push(
          [`${p}.gralora_A_general.weight`, `${p}.gralora_A_general`, [a.hybridRank, a.in]],
          [`${p}.gralora_B_general.weight`, `${p}.gralora_B_general`, [a.out, a.hybridRank]],
        );
      }
      return out;
    }
    case 'dora':
      return [
        [`${p}.lora_A.weight`, `${p}.lora_A`, [a.rank, a.in]],
        [`${p}.lora_B.weight`, `${p}.lora_B`, [a.out, a.rank]],
        [`${p}.lora_magnitude_vector`, `${p}.lora_magnitude_vector`, [a.out]],
      ];
    case 'adalora':
      return [
        [`${p}.lora_A`, `${p}.lora_A`, [a.rank, a.in]],
        [`${p}.lora_E`, `${p}.lora_E`, [a.rank, 1]],
        [`${p}.lora_B`, `${p}.lora_B`, [a.out, a.rank]],
      ];
    case 'gradient-probe':
      return [];
  }
}

/** What the method allocates for its adapters before any graph: every trainable and its gradient, GoRA's accumulators. */
export function adapterAllocations(adapters: readonly AdapterShape[]): PlannedBuffer[] {
  const out: PlannedBuffer[] = [];
  for (const a of adapters) {
    if (a.kind === 'gradient-probe') {
      out.push(buffer(`${a.path}.gora_grad`, [a.out, a.in], 'method'));
      continue;
    }
    const tensors = adapterTrainables(a);
    for (const [, label, shape] of tensors) out.push(buffer(label, shape, 'method'));
    for (const [, label, shape] of tensors) out.push(buffer(`${label}.grad`, shape, 'method'));
    if (a.kind === 'adalora') {
      out.push(buffer(`${a.path}.lora_AE`, [a.rank, a.in], 'method'));
      out.push(buffer(`${a.path}.adalora_orth`, [2 * a.rank * a.rank + 2], 'method'));
      for (const [, label, shape] of tensors) out.push(buffer(`${label}.ipt_ema`, [2, ...shape], 'method'));
    }
    if (a.kind === 'residual-lora')
      out.push(
        buffer(`${a.path}.lora_A0`, [a.rank, a.in], 'method'),
        buffer(`${a.path}.lora_B0`, [a.out, a.rank], 'method'),
      );
  }
  // AdaLoRA's rank allocator, once for all modules: the step's schedule, every triplet's score and the budget mask.
  const triplets = adapters.reduce((n, a) => n + (a.kind === 'adalora' ? a.rank : 0), 0);
  if (triplets > 0) {
    out.push(buffer('adalora.schedule', [4], 'method', 'u32'));
    out.push(buffer('adalora.scores', [triplets], 'method'), buffer('adalora.mask', [triplets], 'method'));
  }
  return out;
}

/** What an adapter's bind(gpu, rows) allocates. */
export function adapterBindAllocations(a: AdapterShape, rows: number): PlannedBuffer[] {
  const p = a.path;
  const lowRank = (label: string, r: number) => [
    buffer(`${label}_h`, [rows, r], 'adapter-bind'),
    buffer(`${label}_dh`, [rows, r], 'adapter-bind'),
  ];
  switch (a.kind) {
    case 'lora':
      return lowRank(`${p}.lora`, a.rank);
    case 'residual-lora':
      return [...lowRank(`${p}.lora`, a.rank), buffer(`${p}.lora_init_h`, [rows, a.rank], 'adapter-bind')];
    case 'gralora': {
      const plane = [a.k, rows, a.rank];
      const out = [
        buffer(`${p}.gralora_h_shuffled`, plane, 'adapter-bind'),
        buffer(`${p}.gralora_dh_shuffled`, plane, 'adapter-bind'),
      ];
      // k = 1 has nothing to shuffle: H and H' are one tensor.
      if (a.k > 1)
        out.push(buffer(`${p}.gralora_h`, plane, 'adapter-bind'), buffer(`${p}.gralora_dh`, plane, 'adapter-bind'));
      if (a.hybridRank > 0) out.push(...lowRank(`${p}.gralora_general`, a.hybridRank));
      return out;
    }
    case 'dora':
      return [
        ...lowRank(`${p}.lora`, a.rank),
        buffer(`${p}.dora_z`, [rows, a.out], 'adapter-bind'),
        buffer(`${p}.dora_dz`, [rows, a.out], 'adapter-bind'),
        buffer(`${p}.dora_wn2`, [a.out], 'adapter-bind'),
        buffer(`${p}.dora_E`, [a.rank, a.out], 'adapter-bind'),
        buffer(`${p}.dora_G`, [a.rank, a.rank], 'adapter-bind'),
        buffer(`${p}.dora_ng`, [2, a.out], 'adapter-bind'),
      ];
    case 'adalora':
      return lowRank(`${p}.adalora`, a.rank);
    case 'gradient-probe':
      return [];
  }
}

// -------------------------------------------------------------------------------------------- graph

/** One block's buffer fields (LayerBuffers' keys), in allocation order. */
export type LayerField = keyof LayerBuffers;

export interface BufferShape {
  name: string;
  shape: number[];
  dtype: DType;
}

/**
 * One block's buffers over `rows` tokens, by LayerBuffers field (null: this family has none; the MLP fields are
 * null with `ownMlp` false, when every block shares one set: mlpBufferShapes).
 */
export function layerBufferShapes(
  spec: ModelSpec,
  rows: number,
  prefix: string,
  ownMlp = true,
): Record<LayerField, BufferShape | null> {
  const R = rows;
  const d = spec.hidden;
  const qkvW = (spec.heads + 2 * spec.kvHeads) * spec.headDim;
  const gpt2 = spec.family === 'gpt2';
  const f = (shape: number[], name: string): BufferShape => ({ name: `${prefix}.${name}`, shape, dtype: 'f32' });
  const mlp = ownMlp ? mlpBufferShapes(spec, rows, prefix) : { fc1: null, fc2: null, act: null };
  return {
    resid: f([R, d], 'resid'),
    ln1: f([R, d], 'ln1'),
    ln1Mean: gpt2 ? f([R], 'ln1.mean') : null,
    ln1Rstd: f([R], 'ln1.rstd'),
    qkvPre: spec.qkNorm ? f([R, qkvW], 'qkv_pre') : null,
    qRstd: spec.qkNorm ? f([R * spec.heads], 'q_norm.rstd') : null,
    kRstd: spec.qkNorm ? f([R * spec.kvHeads], 'k_norm.rstd') : null,
    qkv: f([R, qkvW], 'qkv'),
    att: f([R, spec.heads * spec.headDim], 'att'),
    mid: f([R, d], 'mid'),
    ln2: f([R, d], 'ln2'),
    ln2Mean: gpt2 ? f([R], 'ln2.mean') : null,
    ln2Rstd: f([R], 'ln2.rstd'),
    ...mlp,
  };
}

/**
 * Recompute 'block': one block's buffers but its input, named block.*, shared by every block (each keeps its own
 * resid, layer{l}.resid).
 */
export function sharedBlockShapes(
  spec: ModelSpec,
  rows: number,
): Record<Exclude<LayerField, 'resid'>, BufferShape | null> {
  const { resid: _input, ...shared } = layerBufferShapes(spec, rows, 'block');
  return shared;
}

/** The MLP's pre-activations and activation ([rows, intermediate] each; GPT-2 has no second pre-activation). */
export function mlpBufferShapes(
  spec: ModelSpec,
  rows: number,
  prefix: string,
): Record<'fc1' | 'fc2' | 'act', BufferShape | null> {
  const f = (name: string): BufferShape => ({
    name: `${prefix}.${name}`,
    shape: [rows, spec.intermediate],
    dtype: 'f32',
  });
  return { fc1: f('fc1'), fc2: spec.family === 'gpt2' ? null : f('fc2'), act: f('act') };
}

/** The residual stream after the last block, its final norm and the norm's statistics. */
export function finalBufferShapes(
  spec: ModelSpec,
  rows: number,
  prefix: string,
): Record<'resid' | 'ln' | 'mean' | 'rstd', BufferShape | null> {
  const f = (shape: number[], name: string): BufferShape => ({ name: `${prefix}.${name}`, shape, dtype: 'f32' });
  return {
    resid: f([rows, spec.hidden], 'resid'),
    ln: f([rows, spec.hidden], 'ln'),
    mean: spec.family === 'gpt2' ? f([rows], 'mean') : null,
    rstd: f([rows], 'rstd'),
  };
}

export interface GraphPlanOptions {
  batch: number;
  seq: number;
  train: TrainMode;
  recompute?: Recompute;
  /** As GraphOptions.logitsChunkRows (default: lm-head.ts). */
  logitsChunkRows?: number;
  /** The adapters bound on the graph's rows, in the order of GraphOptions.adapters. */
  adapters?: readonly AdapterShape[];
  /**
   * Bytes of split-K scratch one recorded list holds on this GPU (kernels/matmul.ts listScratchBytes, the studio's
   * GpuInfo.splitScratchBytes); 0 where the GPU's matmul plan never splits.
   */
  listScratchBytes?: number;
}

/**
 * Every buffer a TransformerGraph built with these options allocates (owner 'graph'), what its adapters' bind()
 * allocates ('adapter-bind'), and the split-K scratch of its command lists ('list': the forward list, and the train
 * list when something trains).
 */
export function graphAllocations(spec: ModelSpec, o: GraphPlanOptions): PlannedBuffer[] {
  const R = o.batch * o.seq;
  const out: PlannedBuffer[] = [];
  const g = (name: string, shape: readonly number[], dtype: DType = 'f32') =>
    out.push(buffer(name, shape, 'graph', dtype));
  const shapes = (s: Record<string, BufferShape | null>) => {
    for (const b of Object.values(s)) if (b) g(b.name, b.shape, b.dtype);
  };
  const training = o.train !== 'none';

  // Inputs of a batch.
  g('tokens', [R], 'u32');
  g('targets', [R], 'i32');
  g('positions', [R], 'u32');
  g('gradScale', [1]);

  // Activations. Nothing reads a block's MLP buffers after its forward unless the backward does without
  // recomputing them: forward-only graphs and MLP recomputation keep one set for every block.
  // Block recomputation keeps only each block's input (resid) and one set of every other buffer, lse included,
  // which the backward refills block by block (sharedBlockShapes).
  if (training && o.recompute === 'block') {
    shapes(sharedBlockShapes(spec, R));
    g('block.lse', [o.batch, spec.heads, o.seq]);
    for (let l = 0; l < spec.layers; l++) g(`layer${l}.resid`, [R, spec.hidden]);
  } else {
    const sharedMlp = !training || o.recompute === 'mlp';
    if (sharedMlp) shapes(mlpBufferShapes(spec, R, 'mlp'));
    for (let l = 0; l < spec.layers; l++) {
      shapes(layerBufferShapes(spec, R, `layer${l}`, !sharedMlp));
      // Flash attention's logsumexp per query row and head; a forward-only graph never reads it back (one for all).
      if (training || l === 0) g(`layer${l}.lse`, [o.batch, spec.heads, o.seq]);
    }
  }
  shapes(finalBufferShapes(spec, R, 'final'));
  g('logits', [logitsChunkRows(R, spec.vocabSize, o.logitsChunkRows), spec.vocabSize]);
  g('losses', [R]);
  g('lossSum', [1]);
  if (spec.family !== 'gpt2') g('rope.inv_freq', [spec.headDim / 2]);

  for (const a of o.adapters ?? []) out.push(...adapterBindAllocations(a, R));

  // Full fine-tuning: a gradient for every base tensor.
  if (o.train === 'full') for (const t of expectedTensors(spec)) g(`${t.name}.grad`, t.shape);

  // Gradient scratch of the backward pass, reused across layers.
  if (training) {
    const d = spec.hidden;
    const qkvW = (spec.heads + 2 * spec.kvHeads) * spec.headDim;
    const ff = spec.intermediate;
    g('d.resid', [R, d]);
    g('d.ln', [R, d]);
    g('d.att', [R, spec.heads * spec.headDim]);
    g('d.qkv', [R, qkvW]);
    if (spec.qkNorm) g('d.qkv_pre', [R, qkvW]);
    g('d.attn_delta', [o.batch, spec.heads, o.seq]);
    g('d.act', [R, ff]);
    g('d.fc1', [R, ff]);
    if (spec.family !== 'gpt2') g('d.fc2', [R, ff]);
  }

  const scratch = o.listScratchBytes ?? 0;
  if (scratch > 0) {
    for (const list of training ? ['forward', 'train'] : ['forward'])
      out.push(buffer(`${list}.scratch`, [scratch / 4], 'list'));
  }
  return out;
}

// ------------------------------------------------------------------------------------------ trainer

/** The trainable tensors of a graph built with these options, in TransformerGraph.trainables order. */
export function trainableShapes(
  spec: ModelSpec,
  train: TrainMode,
  adapters: readonly AdapterShape[] = [],
): TrainableShape[] {
  if (train === 'none') return [];
  if (train === 'full') return expectedTensors(spec).map((t) => ({ name: t.name, shape: t.shape }));
  return adapters.flatMap((a) => adapterTrainables(a).map(([name, , shape]) => ({ name, shape })));
}

/**
 * Trainer's buffers: two AdamW moments per trainable, hyperparameters, clip state, per-tensor norms, 3 metrics slots;
 * with gradient accumulation (gradAccum > 1, `rows` tokens per micro-batch), the step's micro-batches side by side
 * and a running gradient sum per trainable.
 */
export function trainerAllocations(
  trainables: readonly TrainableShape[],
  accumulation: { gradAccum?: number; rows?: number } = {},
): PlannedBuffer[] {
  const n = trainables.length;
  const accum = accumulation.gradAccum ?? 1;
  const out = [
    buffer('adamw.hp', [8], 'trainer'),
    buffer('optimizer.state', [4], 'trainer'),
    buffer('grad.sumsq', [n], 'trainer'),
  ];
  for (const t of trainables)
    out.push(buffer(`${t.name}.adam_m`, t.shape, 'trainer'), buffer(`${t.name}.adam_v`, t.shape, 'trainer'));
  if (accum > 1) {
    const rows = accumulation.rows ?? 0;
    for (const t of trainables) out.push(buffer(`${t.name}.grad_accum`, t.shape, 'trainer'));
    out.push(
      buffer('accum.tokens', [accum * rows], 'trainer', 'u32'),
      buffer('accum.targets', [accum * rows], 'trainer', 'i32'),
      buffer('accum.positions', [accum * rows], 'trainer', 'u32'),
    );
  }
  // Staging (MAP_READ) for each micro-batch's loss sum, the gradient norm, the clip factor and the per-tensor norms.
  for (let i = 0; i < 3; i++) out.push(buffer(`metrics.${i}`, [accum + 2 + n], 'trainer'));
  return out;
}

// ------------------------------------------------------------------------------------- training run

export interface TrainingPlanOptions extends Omit<GraphPlanOptions, 'train'> {
  train: Exclude<TrainMode, 'none'>;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
}

/**
 * Everything a training run allocates beside the base weights, from the method's adapters to the trainer: for full
 * fine-tuning, the run's own f32 copy of every base tensor (the studio and the benches train a copy), its gradients
 * and moments; for adapters, their tensors, the graph's buffers and their moments.
 */
export function trainingAllocations(spec: ModelSpec, o: TrainingPlanOptions): PlannedBuffer[] {
  const adapters = o.train === 'full' ? [] : (o.adapters ?? []);
  const trainables =
    o.train === 'full'
      ? expectedTensors(spec).map((t) => buffer(t.name, t.shape, 'method'))
      : adapterAllocations(adapters);
  return [
    ...trainables,
    ...graphAllocations(spec, { ...o, adapters }),
    ...trainerAllocations(trainableShapes(spec, o.train, adapters), {
      gradAccum: o.gradAccum,
      rows: o.batch * o.seq,
    }),
  ];
}
