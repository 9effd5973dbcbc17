/**
 * The transformer's explicit forward and backward passes (llm.c style), recorded once into command lists.
 *
 * ForwardPass records the forward over a fixed number of token rows: embedding, every block, final norm and lm
 * head. Two graphs share it and differ only in their buffers and in where a layer's attention finds its keys:
 *   TransformerGraph  training and evaluation over batch x seq rows: attention over the batch's own rows,
 *                     activations saved per layer for the backward pass recorded here. Base weights are frozen
 *                     unless full fine-tuning is on: frozen weights get no gradient buffers, only input
 *                     gradients flow through them.
 *   DecodeGraph       (decode-graph.ts) incremental decoding: a few new tokens attend over a KV cache.
 *
 * Activations per layer (rows = batch * seq in training):
 *   resid[l]  input of block l         ln1[l]  normed input        qkv[l]  q|k|v after RoPE
 *   att[l]    attention output          lse[l] softmax logsumexp    mid[l]  resid after attention
 *   ln2[l]    normed mid                fc1[l]/fc2[l] MLP pre-activations  act[l]  MLP activation
 *
 * TransformerGraph allocates every buffer from the allocation table (allocation-plan.ts), the same list the
 * studio's memory estimate sums. With recompute 'block' only resid is per layer; the others are one set (block.*)
 * that the backward pass refills block by block (ForwardPass.block).
 */
import type { BoundAdapter, LinearAdapter, Trainable } from './adapter';
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { listScratchBytes, matmul, type MatView } from '../kernels/matmul';
import {
  rmsnormForward,
  rmsnormBackward,
  rmsnormWeightGrad,
  layernormForward,
  layernormBackward,
  layernormParamGrad,
} from '../kernels/norm';
import { ropeForward, ropeBackward } from '../kernels/rope';
import { flashAttentionBackward, flashAttentionForward } from '../kernels/flash-attention';
import { swigluForward, swigluBackward, geluForward, geluBackward } from '../kernels/activation';
import { biasAdd, biasGrad } from '../kernels/bias';
import { embedForward, embedBackward, positionEmbedBackward } from '../kernels/embed';
import { crossEntropyForward, crossEntropyForwardBackward } from '../kernels/xent';
import { sum } from '../kernels/reduce';
import {
  adapterBindAllocations,
  adapterShapeOf,
  finalBufferShapes,
  graphAllocations,
  layerBufferShapes,
  mlpBufferShapes,
  planBytes,
  sharedBlockShapes,
  type BufferShape,
  type PlannedBuffer,
} from './allocation-plan';
import type { ModelSpec } from './config';
import { logitsChunkRows } from './lm-head';
import { layerLinears, type LinearInfo, type ModuleKind } from './layout';
import { ropeInverseFrequencies } from './rope-freqs';
import type { ModelWeights } from './weights';
import { RECOMPUTE_MODES, type Recompute } from './recompute';

export type TrainMode = 'none' | 'adapters' | 'full';

export interface GraphOptions {
  batch: number;
  seq: number;
  train: TrainMode;
  /** Adapters keyed by module path (LinearInfo.path). */
  adapters?: Map<string, LinearAdapter>;
  /**
   * 'mlp': every block shares one set of MLP buffers (fc1, fc2, act: the largest activations) and the backward
   * pass recomputes a block's from its saved ln2 (two more GEMMs per block) instead of keeping them all.
   * Forward-only graphs always share them. 'block': every block keeps only its input (resid) and shares one set
   * of all its other buffers (lse included); the backward pass re-runs each block's forward from its input before
   * its backward (the last block's buffers are still in place): about one more forward pass per step. Ignored by
   * forward-only graphs. Default 'none'.
   */
  recompute?: Recompute;
  /**
   * Rows of logits computed at a time (the LM head and the loss run chunk by chunk over one [chunk, vocab]
   * buffer). Default: every row when the logits fit in LOGITS_CHUNK_BYTES (lm-head.ts), else as many rows as do.
   */
  logitsChunkRows?: number;
}

export { RECOMPUTE_MODES, type Recompute } from './recompute';

/** One block's forward buffers over the pass's rows. */
export interface LayerBuffers {
  resid: Tensor;
  ln1: Tensor;
  ln1Mean: Tensor | null;
  ln1Rstd: Tensor;
  qkvPre: Tensor | null;
  qRstd: Tensor | null;
  kRstd: Tensor | null;
  qkv: Tensor;
  att: Tensor;
  mid: Tensor;
  ln2: Tensor;
  ln2Mean: Tensor | null;
  ln2Rstd: Tensor;
  fc1: Tensor;
  fc2: Tensor | null;
  act: Tensor;
}

/** The residual stream after the last block, its final norm and the norm's statistics. */
export interface FinalBuffers {
  resid: Tensor;
  ln: Tensor;
  mean: Tensor | null;
  rstd: Tensor;
}

/** The MLP's pre-activations and activation: the largest per-layer buffers ([rows, intermediate] each). */
export type MlpBuffers = Pick<LayerBuffers, 'fc1' | 'fc2' | 'act'>;

/** Allocates a buffer the allocation table describes (a graph: from its own table, checked by name). */
type Allocate = (b: BufferShape) => Tensor;

/** Tensors for a record of shapes (null stays null). */
function allocateAll<K extends string>(
  shapes: Record<K, BufferShape | null>,
  allocate: Allocate,
): Record<K, Tensor | null> {
  const out = {} as Record<K, Tensor | null>;
  for (const key of Object.keys(shapes) as K[]) out[key] = shapes[key] ? allocate(shapes[key]!) : null;
  return out;
}

const plainAllocate =
  (gpu: Gpu): Allocate =>
  (b) =>
    gpu.tensor(b.shape, b.name, b.dtype);

export function allocateMlpBuffers(
  gpu: Gpu,
  spec: ModelSpec,
  rows: number,
  prefix: string,
  allocate = plainAllocate(gpu),
): MlpBuffers {
  const m = allocateAll(mlpBufferShapes(spec, rows, prefix), allocate);
  return { fc1: m.fc1!, fc2: m.fc2, act: m.act! };
}

/**
 * Allocates one block's buffers for `rows` tokens (allocation-plan.ts: the family decides which optional ones
 * exist). `mlp`: MLP buffers shared by every block (a forward-only graph, or a training graph that recomputes them).
 */
export function allocateLayerBuffers(
  gpu: Gpu,
  spec: ModelSpec,
  rows: number,
  prefix: string,
  mlp?: MlpBuffers,
  allocate = plainAllocate(gpu),
): LayerBuffers {
  const a = allocateAll(layerBufferShapes(spec, rows, prefix, !mlp), allocate);
  return {
    resid: a.resid!,
    ln1: a.ln1!,
    ln1Mean: a.ln1Mean,
    ln1Rstd: a.ln1Rstd!,
    qkvPre: a.qkvPre,
    qRstd: a.qRstd,
    kRstd: a.kRstd,
    qkv: a.qkv!,
    att: a.att!,
    mid: a.mid!,
    ln2: a.ln2!,
    ln2Mean: a.ln2Mean,
    ln2Rstd: a.ln2Rstd!,
    ...(mlp ?? { fc1: a.fc1!, fc2: a.fc2, act: a.act! }),
  };
}

/** `resid`: the stream the last block writes, when the caller owns it (decoding alternates two). */
export function allocateFinalBuffers(
  gpu: Gpu,
  spec: ModelSpec,
  rows: number,
  prefix: string,
  resid?: Tensor,
  allocate = plainAllocate(gpu),
): FinalBuffers {
  const shapes = finalBufferShapes(spec, rows, prefix);
  const f = allocateAll(resid ? { ...shapes, resid: null } : shapes, allocate);
  return { resid: resid ?? f.resid!, ln: f.ln!, mean: f.mean, rstd: f.rstd! };
}

/** Columns of the fused q|k|v buffer: q heads, then k and v kv-heads. */
export function qkvWidth(spec: ModelSpec): number {
  return (spec.heads + 2 * spec.kvHeads) * spec.headDim;
}

/**
 * Records layer `layer`'s attention: reads q, k and v (after RoPE and the qk-norm, columns of qkv
 * [rows, qkvWidth]) and writes att [rows, heads * headDim]. The training graph attends over its own rows;
 * the decoding graph stores k|v into its cache and attends over that.
 */
export type AttentionStep = (list: CommandList, layer: number, qkv: Tensor, att: Tensor) => void;

/** Full fine-tuning: gradient buffers for every base tensor, keyed by checkpoint name. */
class FullGrads {
  readonly grads = new Map<string, Tensor>();
  readonly trainables: Trainable[] = [];
  constructor(weights: ModelWeights, allocate: (name: string) => Tensor) {
    weights.requireUnsharded('Full fine-tuning');
    const tied = weights.spec.tieWordEmbeddings;
    for (const name of weights.names()) {
      const p = weights.get(name);
      const g = allocate(`${name}.grad`);
      if (g.size !== p.size)
        throw new Error(`${name}.grad: the allocation plan has ${g.size} values, the tensor ${p.size}`);
      this.grads.set(name, g);
      const isMatrix = p.shape.length === 2;
      const isEmbed = name === weights.embedName;
      this.trainables.push({ name, param: p, grad: g, decay: isMatrix, lrScale: 1, accumulates: isEmbed && tied });
    }
  }
  get(name: string): Tensor {
    const g = this.grads.get(name);
    if (!g) throw new Error(`no gradient for ${name}`);
    return g;
  }
}

/**
 * The model's forward pass over a fixed number of token rows, whose ids and positions are read from two u32
 * tensors: embedding, every block (norm, q|k|v projections with bias and adapters, qk-norm, RoPE, attention,
 * output projection, norm, MLP), final norm and lm head. It binds the adapters for its rows; the training
 * graph's backward pass reuses the bound adapters (their saved activations) and the helpers below.
 */
export class ForwardPass {
  readonly spec: ModelSpec;
  readonly qkvWidth: number;
  private readonly bound = new Map<string, BoundAdapter>();
  /** Bytes each adapter's bind() allocated for this pass's rows, by module path. */
  readonly boundBytes = new Map<string, number>();
  private readonly invFreq: Tensor | null;

  constructor(
    gpu: Gpu,
    private readonly weights: ModelWeights,
    readonly rows: number,
    /** u32 [rows]: token ids and positions (RoPE, GPT-2's learned positions). */
    readonly inputs: { tokens: Tensor; positions: Tensor },
    adapters?: Map<string, LinearAdapter>,
    allocate: Allocate = plainAllocate(gpu),
  ) {
    const spec = (this.spec = weights.spec);
    this.qkvWidth = qkvWidth(spec);
    this.invFreq = null;
    if (spec.family !== 'gpt2') {
      this.invFreq = allocate({ name: 'rope.inv_freq', shape: [spec.headDim / 2], dtype: 'f32' });
      gpu.upload(this.invFreq, ropeInverseFrequencies(spec));
    }
    for (const [path, adapter] of adapters ?? []) {
      const before = gpu.liveBytes;
      this.bound.set(path, adapter.bind(gpu, rows, weights.get(adapter.info.weight)));
      this.boundBytes.set(path, gpu.liveBytes - before);
    }
  }

  /**
   * Records the forward: block l reads layers[l].resid and writes the next block's resid (final.resid after
   * the last). With logits, the final norm and the lm head follow; without, the pass ends at final.resid.
   */
  record(
    list: CommandList,
    layers: LayerBuffers[],
    final: FinalBuffers,
    attention: AttentionStep,
    logits: Tensor | null,
  ): void {
    const { spec, weights, rows: R } = this;
    const d = spec.hidden;
    const gpt2 = spec.family === 'gpt2';
    // One gather per vocabulary shard: the first writes every row (0 for ids in later shards, plus GPT-2's
    // positions), each later one adds its rows' values to the rows whose ids it holds.
    weights.vocabShards(weights.embedName).forEach((s, k) =>
      embedForward(list, {
        tokens: this.inputs.tokens,
        table: s.tensor,
        out: layers[0]?.resid ?? final.resid,
        rows: R,
        width: d,
        vocab: s.rows,
        rowStart: s.rowStart,
        accumulate: k > 0,
        ...(gpt2 && k === 0 ? { positions: this.inputs.positions, posTable: weights.get('wpe.weight') } : {}),
      }),
    );
    for (let l = 0; l < spec.layers; l++)
      this.block(list, l, layers[l], l + 1 < spec.layers ? layers[l + 1].resid : final.resid, attention);
    if (!logits) return;
    this.finalNorm(list, final);
    this.lmHead(list, final, logits, 0, R);
  }

  /**
   * Records block l: reads a.resid and writes `next` (the next block's input, or a scratch buffer when the training
   * graph re-runs the block in its backward pass: recompute 'block'). Every other buffer of `a` is overwritten.
   */
  block(list: CommandList, l: number, a: LayerBuffers, next: Tensor, attention: AttentionStep): void {
    const { spec } = this;
    const d = spec.hidden;
    const gpt2 = spec.family === 'gpt2';
    const m = this.modules(l);
    this.norm(list, a.resid, a.ln1, l, 1, a.ln1Mean, a.ln1Rstd);
    // q|k|v into one fused buffer: Llama writes three column slices, GPT-2's c_attn is fused already.
    const qkvOut = a.qkvPre ?? a.qkv;
    if (gpt2) {
      this.linear(list, m['attn.c_attn'], dense(a.ln1, d), dense(qkvOut, this.qkvWidth));
    } else {
      const hd = spec.headDim;
      this.linear(list, m.q_proj, dense(a.ln1, d), { t: qkvOut, ld: this.qkvWidth, offset: 0 });
      this.linear(list, m.k_proj, dense(a.ln1, d), { t: qkvOut, ld: this.qkvWidth, offset: spec.heads * hd });
      this.linear(list, m.v_proj, dense(a.ln1, d), {
        t: a.qkv,
        ld: this.qkvWidth,
        offset: (spec.heads + spec.kvHeads) * hd,
      });
      if (a.qkvPre) this.qkNormForward(list, l, a);
      this.rope(list, a.qkv, false);
    }
    attention(list, l, a.qkv, a.att);
    // mid = resid + att·Woᵀ: copy the residual, then accumulate the projection into it.
    list.copy(a.resid, a.mid);
    this.linear(list, gpt2 ? m['attn.c_proj'] : m.o_proj, dense(a.att, spec.heads * spec.headDim), dense(a.mid, d), 1);
    this.norm(list, a.mid, a.ln2, l, 2, a.ln2Mean, a.ln2Rstd);
    list.copy(a.mid, next);
    this.mlpActivation(list, l, a);
    this.linear(list, gpt2 ? m['mlp.c_proj'] : m.down_proj, dense(a.act, spec.intermediate), dense(next, d), 1);
  }

  /** final.ln = norm(final.resid). */
  finalNorm(list: CommandList, final: FinalBuffers): void {
    this.norm(list, final.resid, final.ln, -1, 0, final.mean, final.rstd);
  }

  /** logits[0..rows) = final.ln[rowStart..rowStart + rows) · W_lmᵀ (a chunk of rows, or all of them). */
  lmHead(list: CommandList, final: FinalBuffers, logits: Tensor, rowStart: number, rows: number): void {
    const { spec } = this;
    const d = spec.hidden;
    // One product per vocabulary shard, into its columns of the logits.
    for (const s of this.weights.lmHeadShards) {
      matmul(list, {
        a: { t: final.ln, ld: d, offset: rowStart * d },
        b: { t: s.tensor, ld: d },
        c: { t: logits, ld: spec.vocabSize, offset: s.rowStart },
        M: rows,
        N: s.rows,
        K: d,
        transB: true,
      });
    }
  }

  /**
   * The MLP up to its activation, from ln2: fc1 (and fc2) = ln2 · Wᵀ (+ bias, + adapters), act = GELU / SwiGLU.
   * The training graph calls it again in the backward pass when it recomputes instead of saving.
   */
  mlpActivation(list: CommandList, l: number, a: LayerBuffers): void {
    const { spec } = this;
    const d = spec.hidden;
    const ff = spec.intermediate;
    const m = this.modules(l);
    if (spec.family === 'gpt2') {
      this.linear(list, m['mlp.c_fc'], dense(a.ln2, d), dense(a.fc1, ff));
      geluForward(list, { x: a.fc1, out: a.act, n: a.fc1.size });
    } else {
      this.linear(list, m.gate_proj, dense(a.ln2, d), dense(a.fc1, ff));
      this.linear(list, m.up_proj, dense(a.ln2, d), dense(a.fc2!, ff));
      swigluForward(list, { gate: a.fc1, up: a.fc2!, out: a.act, n: a.fc1.size });
    }
  }

  /** The layer's linear modules by kind. */
  modules(layer: number): Record<ModuleKind, LinearInfo> {
    return Object.fromEntries(layerLinears(this.spec, layer).map((m) => [m.kind, m])) as Record<ModuleKind, LinearInfo>;
  }

  /** The adapter bound on a module for this pass's rows, if any. */
  adapter(path: string): BoundAdapter | undefined {
    return this.bound.get(path);
  }

  /**
   * y (+)= x·Wᵀ (+ bias) (+ adapter). beta 1 accumulates into y (residual connections). An adapter that rescales
   * the base output (DoRA) gets x·Wᵀ in its own buffer and writes y itself, before the bias.
   */
  private linear(list: CommandList, info: LinearInfo, x: MatView, y: MatView, beta: 0 | 1 = 0): void {
    const W = this.weights.get(info.weight);
    const R = this.rows;
    const bound = this.bound.get(info.path);
    const rescale = bound?.rescalesBase;
    matmul(list, {
      a: x,
      b: { t: W, ld: info.conv1d ? info.out : info.in },
      c: rescale ? rescale.base : y,
      M: R,
      N: info.out,
      K: info.in,
      transB: !info.conv1d,
      beta: rescale ? 0 : beta,
    });
    if (rescale) rescale.forward(list, x, y, beta);
    if (info.bias) biasAdd(list, { y, bias: this.weights.get(info.bias), rows: R, cols: info.out });
    if (!rescale) bound?.forward(list, x, y);
  }

  private norm(
    list: CommandList,
    x: Tensor,
    out: Tensor,
    layer: number,
    which: 0 | 1 | 2,
    mean: Tensor | null,
    rstd: Tensor,
  ): void {
    const { spec, rows: R } = this;
    const name = this.normName(layer, which);
    if (spec.family === 'gpt2') {
      layernormForward(list, {
        x: { t: x },
        out: { t: out },
        weight: this.weights.get(`${name}.weight`),
        bias: this.weights.get(`${name}.bias`),
        mean: mean!,
        rstd,
        rows: R,
        width: spec.hidden,
        eps: spec.normEps,
      });
    } else {
      rmsnormForward(list, {
        x: { t: x },
        out: { t: out },
        weight: this.weights.get(`${name}.weight`),
        rstd,
        rows: R,
        width: spec.hidden,
        eps: spec.normEps,
      });
    }
  }

  /** Checkpoint name of a norm: which 1 = before attention, 2 = before the MLP, 0 = final. */
  normName(layer: number, which: 0 | 1 | 2): string {
    if (this.spec.family === 'gpt2') return which === 0 ? 'ln_f' : `h.${layer}.ln_${which}`;
    if (which === 0) return 'model.norm';
    return `model.layers.${layer}.${which === 1 ? 'input_layernorm' : 'post_attention_layernorm'}`;
  }

  /** q, k and v as column slices of a fused [rows, qkvWidth] buffer (activations or their gradients). */
  qkvViews(qkv: Tensor): { q: MatView; k: MatView; v: MatView } {
    const { spec } = this;
    const hd = spec.headDim;
    const ld = this.qkvWidth;
    return {
      q: { t: qkv, ld, offset: 0 },
      k: { t: qkv, ld, offset: spec.heads * hd },
      v: { t: qkv, ld, offset: (spec.heads + spec.kvHeads) * hd },
    };
  }

  /** RoPE on q and k in place (backward: on their gradients): k's heads follow q's, so one dispatch rotates both. */
  rope(list: CommandList, qkv: Tensor, backward: boolean): void {
    const { spec, rows: R } = this;
    const op = backward ? ropeBackward : ropeForward;
    op(list, {
      x: { t: qkv, ld: this.qkvWidth, offset: 0 },
      positions: this.inputs.positions,
      invFreq: this.invFreq!,
      tokens: R,
      heads: spec.heads + spec.kvHeads,
      headDim: spec.headDim,
    });
  }

  /** Qwen3: RMSNorm over each head of q and k (weights [headDim]), from qkvPre into qkv. */
  private qkNormForward(list: CommandList, l: number, a: LayerBuffers): void {
    const { spec, rows: R } = this;
    const hd = spec.headDim;
    for (const [which, heads, offset, rstd] of this.qkNormParts(a)) {
      rmsnormForward(list, {
        x: { t: a.qkvPre!, offset, ld: this.qkvWidth, groups: heads },
        out: { t: a.qkv, offset, ld: this.qkvWidth, groups: heads },
        weight: this.weights.get(`model.layers.${l}.self_attn.${which}.weight`),
        rstd,
        rows: R * heads,
        width: hd,
        eps: spec.normEps,
      });
    }
  }

  /** Qwen3's two per-head norms: [weight name, heads, column offset in qkv, saved rstd]. */
  qkNormParts(a: LayerBuffers): [string, number, number, Tensor][] {
    const { spec } = this;
    return [
      ['q_norm', spec.heads, 0, a.qRstd!],
      ['k_norm', spec.kvHeads, spec.heads * spec.headDim, a.kRstd!],
    ];
  }
}

/**
 * Training and evaluation over a fixed batch x seq shape: the forward (+ loss) list and, when something
 * trains, the forward + loss + backward list. Attention runs over the batch's own rows (packed documents
 * attend only to themselves), FlashAttention-style: it saves one logsumexp per query row and head, and the
 * backward recomputes the probabilities. Every buffer comes from the allocation table (`plan`).
 */
export class TransformerGraph {
  readonly rows: number;
  readonly spec: ModelSpec;
  /** Token ids, next-token targets (-100 = ignored) and positions of the current batch. */
  readonly tokens: Tensor;
  readonly targets: Tensor;
  readonly positions: Tensor;
  /** 1 / number of supervised targets of the batch (written per step). */
  readonly gradScale: Tensor;
  /**
   * [chunkRows, vocab]: after a forward, the last LM-head chunk's logits (every row's when chunkRows = rows, the
   * default for small vocabularies); the training list leaves their gradient there.
   */
  readonly logits: Tensor;
  readonly losses: Tensor;
  /** [0] = summed loss of the batch. */
  readonly lossSum: Tensor;
  readonly forwardList: CommandList;
  /** Forward + loss + backward: every trainable's gradient is written. */
  readonly backwardList: CommandList | null;
  readonly trainables: Trainable[];
  /**
   * The allocation table of this graph (allocation-plan.ts graphAllocations): the buffers it allocated (owner
   * 'graph'), its adapters' bind() buffers and its lists' split-K scratch.
   */
  readonly plan: readonly PlannedBuffer[];

  private readonly pass: ForwardPass;
  private readonly acts: LayerBuffers[] = [];
  /** Per layer, the attention's logsumexp [batch, heads, seq], saved for the backward pass. */
  private readonly lse: Tensor[] = [];
  private readonly final: FinalBuffers;
  private readonly full: FullGrads | null;
  private readonly qkvWidth: number;
  private readonly recomputeMlp: boolean;
  /** Recompute 'block': acts share every buffer but resid, and the backward re-runs each block's forward. */
  private readonly recomputeBlock: boolean;
  /** Allocates a buffer of the plan by name (the backward's scratch is allocated while recording). */
  private readonly alloc: (name: string) => Tensor;
  /** Rows per LM-head chunk (logits holds one chunk: [chunkRows, vocab]). */
  readonly chunkRows: number;

  constructor(
    private readonly gpu: Gpu,
    private readonly weights: ModelWeights,
    readonly opts: GraphOptions,
  ) {
    const spec = (this.spec = weights.spec);
    const R = (this.rows = opts.batch * opts.seq);
    this.qkvWidth = qkvWidth(spec);
    const recompute = opts.recompute ?? 'none';
    if (!RECOMPUTE_MODES.includes(recompute))
      throw new Error(`recompute must be one of ${RECOMPUTE_MODES.join(', ')}, got "${recompute}"`);
    this.recomputeMlp = recompute === 'mlp' && opts.train !== 'none';
    this.recomputeBlock = recompute === 'block' && opts.train !== 'none';

    // Every buffer by name from the table; whatever the table lists must have been allocated once the lists are recorded.
    const adapterShapes = [...(opts.adapters?.values() ?? [])].map(adapterShapeOf);
    this.plan = graphAllocations(spec, {
      batch: opts.batch,
      seq: opts.seq,
      train: opts.train,
      recompute,
      logitsChunkRows: opts.logitsChunkRows,
      adapters: adapterShapes,
      listScratchBytes: listScratchBytes(gpu.device),
    });
    const pending = new Map(this.plan.filter((b) => b.owner === 'graph').map((b) => [b.name, b]));
    const t = (this.alloc = (name: string) => {
      const b = pending.get(name);
      if (!b)
        throw new Error(
          `TransformerGraph: ${name} is not in the allocation plan (src/model/allocation-plan.ts), or was allocated twice`,
        );
      pending.delete(name);
      return gpu.tensor(b.shape, b.name, b.dtype);
    });
    const allocate: Allocate = (b) => t(b.name);

    this.tokens = t('tokens');
    this.targets = t('targets');
    this.positions = t('positions');
    this.gradScale = t('gradScale');

    if (this.recomputeBlock) {
      // One set of a block's buffers for every block (the backward refills it block by block); each keeps its input.
      const shared = allocateAll(sharedBlockShapes(spec, R), allocate);
      const lse = t('block.lse');
      for (let l = 0; l < spec.layers; l++) {
        this.acts.push({ ...(shared as Omit<LayerBuffers, 'resid'>), resid: t(`layer${l}.resid`) });
        this.lse.push(lse);
      }
    } else {
      // Nothing reads a block's MLP buffers after its forward unless the backward does without recomputing them.
      const sharedMlp =
        opts.train === 'none' || this.recomputeMlp ? allocateMlpBuffers(gpu, spec, R, 'mlp', allocate) : undefined;
      for (let l = 0; l < spec.layers; l++) {
        this.acts.push(allocateLayerBuffers(gpu, spec, R, `layer${l}`, sharedMlp, allocate));
        // A forward-only graph never reads them back: one buffer serves every layer.
        this.lse.push(opts.train === 'none' && l > 0 ? this.lse[0] : t(`layer${l}.lse`));
      }
    }
    this.final = allocateFinalBuffers(gpu, spec, R, 'final', undefined, allocate);
    this.chunkRows = logitsChunkRows(R, spec.vocabSize, opts.logitsChunkRows);
    this.logits = t('logits');
    this.losses = t('losses');
    this.lossSum = t('lossSum');

    this.pass = new ForwardPass(
      gpu,
      weights,
      R,
      { tokens: this.tokens, positions: this.positions },
      opts.adapters,
      allocate,
    );
    adapterShapes.forEach((a) => {
      const want = planBytes(adapterBindAllocations(a, R));
      const got = this.pass.boundBytes.get(a.path);
      if (got !== want)
        throw new Error(
          `${a.path}: its adapter allocated ${got} bytes for ${R} rows; the allocation plan (src/model/allocation-plan.ts) lists ${want}`,
        );
    });
    this.full = opts.train === 'full' ? new FullGrads(weights, t) : null;
    this.trainables =
      opts.train === 'full'
        ? this.full!.trainables
        : opts.train === 'adapters'
          ? [...(opts.adapters?.values() ?? [])].flatMap((a) => a.trainables)
          : [];

    this.forwardList = gpu.list('forward');
    this.recordForward(this.forwardList);
    this.forEachChunk((r0, n) => {
      this.pass.lmHead(this.forwardList, this.final, this.logits, r0, n);
      crossEntropyForward(this.forwardList, {
        logits: this.logits,
        targets: this.targets,
        losses: this.losses,
        rows: n,
        rowOffset: r0,
        vocab: spec.vocabSize,
      });
    });
    sum(this.forwardList, { x: this.losses, n: R, out: this.lossSum, outIndex: 0 });

    if (opts.train !== 'none') {
      const list = (this.backwardList = gpu.list('train'));
      this.recordForward(list);
      this.recordBackward(list);
    } else {
      this.backwardList = null;
    }
    if (pending.size)
      throw new Error(
        `TransformerGraph: the allocation plan lists buffers the graph did not allocate: ${[...pending.keys()].join(', ')}`,
      );
  }

  // ------------------------------------------------------------------ forward

  /** The blocks and the final norm; the LM head and the loss follow chunk by chunk (forEachChunk). */
  private recordForward(list: CommandList): void {
    this.pass.record(
      list,
      this.acts,
      this.final,
      (into, layer, qkv, att) => this.attention(into, layer, qkv, att),
      null,
    );
    this.pass.finalNorm(list, this.final);
  }

  /** Calls fn(first row, rows) for each LM-head chunk in order. */
  private forEachChunk(fn: (rowStart: number, rows: number) => void): void {
    for (let r0 = 0; r0 < this.rows; r0 += this.chunkRows) fn(r0, Math.min(this.chunkRows, this.rows - r0));
  }

  /** Causal attention over the batch's rows; packed rows attend only to their own document. */
  private attention(list: CommandList, layer: number, qkv: Tensor, att: Tensor): void {
    const args = {
      ...this.pass.qkvViews(qkv),
      out: { t: att, ld: this.spec.heads * this.spec.headDim },
      // Packed rows: every document attends only to itself (positions restart at 0 where one begins).
      positions: this.positions,
      ...this.attentionShape(),
    };
    flashAttentionForward(list, { ...args, lse: this.lse[layer] });
  }

  private attentionShape() {
    const { spec } = this;
    return {
      batch: this.opts.batch,
      seq: this.opts.seq,
      heads: spec.heads,
      kvHeads: spec.kvHeads,
      headDim: spec.headDim,
      scale: 1 / Math.sqrt(spec.headDim),
    };
  }

  /**
   * The residual stream entering block l (l = 0: the embedding output, with positions for GPT-2), or leaving
   * the last block (l = layers, before the final norm). Valid after a forward pass; [rows, hidden].
   */
  residualStream(l: number): Tensor {
    if (!Number.isInteger(l) || l < 0 || l > this.spec.layers)
      throw new Error(`residual stream ${l} does not exist (0..${this.spec.layers})`);
    return l < this.spec.layers ? this.acts[l].resid : this.final.resid;
  }

  // ----------------------------------------------------------------- backward

  private recordBackward(list: CommandList): void {
    const { spec, weights, rows: R } = this;
    const d = spec.hidden;
    const V = spec.vocabSize;
    const gpt2 = spec.family === 'gpt2';
    const full = this.full;
    const hd = spec.headDim;
    const t = this.alloc;

    // Gradient scratch, reused across layers (the backward pass walks layers one at a time).
    const dresid = t('d.resid');
    const dln = t('d.ln');
    const datt = t('d.att');
    const dqkv = t('d.qkv');
    const dqkvPre = spec.qkNorm ? t('d.qkv_pre') : null;
    // Attention backward scratch: the per-row delta = rowsum(dout ∘ out).
    const delta = t('d.attn_delta');
    const dact = t('d.act');
    const dfc1 = t('d.fc1');
    const dfc2 = gpt2 ? null : t('d.fc2');

    for (const tr of this.trainables) if (tr.accumulates) list.clear(tr.grad);

    // LM head and loss chunk by chunk: a chunk's logits are overwritten by their gradient (scaled by
    // 1/supervised tokens), which flows into its rows of dln_f (and into the LM-head weight when it trains).
    const f = this.final;
    const dlogits = this.logits;
    this.forEachChunk((r0, n) => {
      this.pass.lmHead(list, f, this.logits, r0, n);
      crossEntropyForwardBackward(list, {
        logits: this.logits,
        targets: this.targets,
        losses: this.losses,
        dlogits,
        gradScale: this.gradScale,
        rows: n,
        rowOffset: r0,
        vocab: V,
      });
      // dln_f[chunk] = dlogits · W_lm  [n, d]: summed over the vocabulary shards (their columns of dlogits).
      weights.lmHeadShards.forEach((s, k) =>
        matmul(list, {
          a: { t: dlogits, ld: V, offset: s.rowStart },
          b: { t: s.tensor, ld: d },
          c: { t: dln, ld: d, offset: r0 * d },
          M: n,
          N: d,
          K: s.rows,
          beta: k > 0 ? 1 : 0,
        }),
      );
      if (full) {
        // dW_lm (+)= dlogitsᵀ · ln_f[chunk]; a tied embedding accumulates from the start (cleared above).
        const lmName = spec.tieWordEmbeddings ? weights.embedName : 'lm_head.weight';
        matmul(list, {
          a: dense(dlogits, V),
          b: { t: f.ln, ld: d, offset: r0 * d },
          c: dense(full.get(lmName), d),
          M: V,
          N: d,
          K: n,
          transA: true,
          beta: spec.tieWordEmbeddings || r0 > 0 ? 1 : 0,
        });
      }
    });
    sum(list, { x: this.losses, n: R, out: this.lossSum, outIndex: 0 });
    this.normBackward(list, -1, 0, f.resid, dln, dresid, f.mean, f.rstd, false);

    for (let l = spec.layers - 1; l >= 0; l--) {
      const a = this.acts[l];
      const m = this.pass.modules(l);
      // Shared MLP buffers hold the last block's values after the forward; earlier blocks recompute theirs.
      if (this.recomputeMlp && l < spec.layers - 1) this.pass.mlpActivation(list, l, a);
      // Shared block buffers likewise: earlier blocks re-run their whole forward (adapters, qk-norm, RoPE, attention
      // and its lse) from their saved input. Its output must not overwrite layer l+1's input, nor dresid (d(next)):
      // it goes to dln, which nothing reads until the MLP backward below overwrites it (beta 0).
      if (this.recomputeBlock && l < spec.layers - 1)
        this.pass.block(list, l, a, dln, (into, layer, qkv, att) => this.attention(into, layer, qkv, att));
      // MLP: next = mid + act·W_downᵀ ; dresid holds d(next).
      if (gpt2) {
        this.linearBackward(
          list,
          m['mlp.c_proj'],
          dense(a.act, spec.intermediate),
          dense(dresid, d),
          dense(dact, spec.intermediate),
        );
        geluBackward(list, { dout: dact, x: a.fc1, dx: dfc1, n: dfc1.size });
        this.linearBackward(list, m['mlp.c_fc'], dense(a.ln2, d), dense(dfc1, spec.intermediate), dense(dln, d));
      } else {
        this.linearBackward(
          list,
          m.down_proj,
          dense(a.act, spec.intermediate),
          dense(dresid, d),
          dense(dact, spec.intermediate),
        );
        swigluBackward(list, { dout: dact, gate: a.fc1, up: a.fc2!, dgate: dfc1, dup: dfc2!, n: dfc1.size });
        this.linearBackward(list, m.gate_proj, dense(a.ln2, d), dense(dfc1, spec.intermediate), dense(dln, d));
        this.linearBackward(list, m.up_proj, dense(a.ln2, d), dense(dfc2!, spec.intermediate), dense(dln, d), 1);
      }
      // d(mid) = d(next) + norm2 backward; accumulated in place.
      this.normBackward(list, l, 2, a.mid, dln, dresid, a.ln2Mean, a.ln2Rstd, true);
      // Attention: mid = resid + att·W_oᵀ.
      this.linearBackward(
        list,
        gpt2 ? m['attn.c_proj'] : m.o_proj,
        dense(a.att, spec.heads * hd),
        dense(dresid, d),
        dense(datt, spec.heads * hd),
      );
      const views = this.pass.qkvViews(a.qkv);
      const dviews = this.pass.qkvViews(dqkv);
      flashAttentionBackward(list, {
        ...views,
        dout: { t: datt, ld: spec.heads * hd },
        dq: dviews.q,
        dk: dviews.k,
        dv: dviews.v,
        ...this.attentionShape(),
        out: { t: a.att, ld: spec.heads * hd },
        lse: this.lse[l],
        positions: this.positions,
        delta,
      });
      if (gpt2) {
        this.linearBackward(list, m['attn.c_attn'], dense(a.ln1, d), dense(dqkv, this.qkvWidth), dense(dln, d));
      } else {
        this.pass.rope(list, dqkv, true);
        // Qwen3: back through the per-head norms into dqkvPre (v's gradient is read from dqkv directly).
        let dq = dqkv;
        if (dqkvPre) {
          this.qkNormBackward(list, l, a, dqkv, dqkvPre);
          dq = dqkvPre;
        }
        const ld = this.qkvWidth;
        this.linearBackward(list, m.q_proj, dense(a.ln1, d), { t: dq, ld, offset: 0 }, dense(dln, d));
        this.linearBackward(list, m.k_proj, dense(a.ln1, d), { t: dq, ld, offset: spec.heads * hd }, dense(dln, d), 1);
        this.linearBackward(
          list,
          m.v_proj,
          dense(a.ln1, d),
          { t: dqkv, ld, offset: (spec.heads + spec.kvHeads) * hd },
          dense(dln, d),
          1,
        );
      }
      this.normBackward(list, l, 1, a.resid, dln, dresid, a.ln1Mean, a.ln1Rstd, true);
    }

    if (full) {
      embedBackward(list, {
        tokens: this.tokens,
        dout: dresid,
        dtable: full.get(weights.embedName),
        rows: R,
        width: d,
        vocab: V,
        accumulate: spec.tieWordEmbeddings,
      });
      if (gpt2) {
        positionEmbedBackward(list, {
          positions: this.positions,
          dout: dresid,
          dtable: full.get('wpe.weight'),
          rows: R,
          width: d,
          maxPos: spec.maxPositions,
          accumulate: false,
        });
      }
    }
  }

  /**
   * Given dy of y = x·Wᵀ + b (+ adapter): dx (+)= dy·W (beta), and the parameter gradients of whatever trains
   * (the full weight and bias, or the adapter's tensors).
   */
  private linearBackward(
    list: CommandList,
    info: LinearInfo,
    x: MatView,
    dy: MatView,
    dx: MatView,
    beta: 0 | 1 = 0,
  ): void {
    const W = this.weights.get(info.weight);
    const R = this.rows;
    const adapter = this.pass.adapter(info.path);
    // An adapter that rescales the base output (DoRA) passes g ⊙ dy on to the base product and to itself.
    const dyEff = adapter?.rescalesBase ? adapter.rescalesBase.scaleGrad(list, dy) : dy;
    // Linear W [out, in]: dx = dy·W ; Conv1D W_c [in, out]: dx = dy·W_cᵀ.
    matmul(list, {
      a: dyEff,
      b: { t: W, ld: info.conv1d ? info.out : info.in },
      c: dx,
      M: R,
      N: info.in,
      K: info.out,
      transB: info.conv1d,
      beta,
    });
    if (this.full) {
      const dW = this.full.get(info.weight);
      if (info.conv1d) {
        matmul(list, { a: x, b: dy, c: { t: dW, ld: info.out }, M: info.in, N: info.out, K: R, transA: true });
      } else {
        matmul(list, { a: dy, b: x, c: { t: dW, ld: info.in }, M: info.out, N: info.in, K: R, transA: true });
      }
      if (info.bias)
        biasGrad(list, { dy, dbias: this.full.get(info.bias), rows: R, cols: info.out, accumulate: false });
    }
    adapter?.backward(list, x, dyEff, dx);
  }

  private normBackward(
    list: CommandList,
    layer: number,
    which: 0 | 1 | 2,
    x: Tensor,
    dout: Tensor,
    dx: Tensor,
    mean: Tensor | null,
    rstd: Tensor,
    accumulate: boolean,
  ): void {
    const { spec, rows: R } = this;
    const name = this.pass.normName(layer, which);
    const weight = this.weights.get(`${name}.weight`);
    const w = spec.hidden;
    if (spec.family === 'gpt2') {
      layernormBackward(list, {
        dout: { t: dout },
        x: { t: x },
        weight,
        mean: mean!,
        rstd,
        dx: { t: dx },
        rows: R,
        width: w,
        accumulate,
      });
      if (this.full) {
        layernormParamGrad(list, {
          dout: { t: dout },
          x: { t: x },
          mean: mean!,
          rstd,
          dweight: this.full.get(`${name}.weight`),
          dbias: this.full.get(`${name}.bias`),
          rows: R,
          width: w,
          accumulate: false,
        });
      }
    } else {
      rmsnormBackward(list, {
        dout: { t: dout },
        x: { t: x },
        weight,
        rstd,
        dx: { t: dx },
        rows: R,
        width: w,
        accumulate,
      });
      if (this.full) {
        rmsnormWeightGrad(list, {
          dout: { t: dout },
          x: { t: x },
          rstd,
          dweight: this.full.get(`${name}.weight`),
          rows: R,
          width: w,
          accumulate: false,
        });
      }
    }
  }

  private qkNormBackward(list: CommandList, l: number, a: LayerBuffers, dqkv: Tensor, dqkvPre: Tensor): void {
    const { spec, rows: R } = this;
    const hd = spec.headDim;
    const ld = this.qkvWidth;
    for (const [which, heads, offset, rstd] of this.pass.qkNormParts(a)) {
      const name = `model.layers.${l}.self_attn.${which}.weight`;
      const view = (t: Tensor) => ({ t, offset, ld, groups: heads });
      rmsnormBackward(list, {
        dout: view(dqkv),
        x: view(a.qkvPre!),
        weight: this.weights.get(name),
        rstd,
        dx: view(dqkvPre),
        rows: R * heads,
        width: hd,
        accumulate: false,
      });
      if (this.full) {
        rmsnormWeightGrad(list, {
          dout: view(dqkv),
          x: view(a.qkvPre!),
          rstd,
          dweight: this.full.get(name),
          rows: R * heads,
          width: hd,
          accumulate: false,
        });
      }
    }
  }

  // ------------------------------------------------------------------- batches

  /** Writes a batch's tokens, targets and positions (and the loss scale) into the graph's input buffers. */
  setBatch(batch: { tokens: Uint32Array; targets: Int32Array; positions: Uint32Array; supervised: number }): void {
    this.checkBatch(batch);
    const q = this.gpu.device.queue;
    q.writeBuffer(this.tokens.buffer, 0, batch.tokens.buffer, batch.tokens.byteOffset, batch.tokens.byteLength);
    q.writeBuffer(this.targets.buffer, 0, batch.targets.buffer, batch.targets.byteOffset, batch.targets.byteLength);
    q.writeBuffer(
      this.positions.buffer,
      0,
      batch.positions.buffer,
      batch.positions.byteOffset,
      batch.positions.byteLength,
    );
    q.writeBuffer(this.gradScale.buffer, 0, new Float32Array([batch.supervised > 0 ? 1 / batch.supervised : 0]));
  }

  /** Throws unless the batch has this graph's shape and every token and target id is in the vocabulary. */
  checkBatch(batch: { tokens: Uint32Array; targets: Int32Array; positions: Uint32Array }): void {
    const R = this.rows;
    if (batch.tokens.length !== R || batch.targets.length !== R || batch.positions.length !== R) {
      throw new Error(
        `batch has ${batch.tokens.length} tokens; this graph was built for ${this.opts.batch} x ${this.opts.seq} = ${R}`,
      );
    }
    const V = this.spec.vocabSize;
    for (let i = 0; i < R; i++) {
      if (batch.tokens[i] >= V)
        throw new Error(`token id ${batch.tokens[i]} at position ${i} is outside the model's vocabulary (${V})`);
      if (batch.targets[i] >= V)
        throw new Error(`target id ${batch.targets[i]} at position ${i} is outside the model's vocabulary (${V})`);
    }
  }
}

function dense(t: Tensor, cols: number): MatView {
  return { t, ld: cols };
}
