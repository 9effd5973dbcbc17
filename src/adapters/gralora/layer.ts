/**
 * GraLoRA on one linear layer (docs/METHODS.md, GraLoRA): y += s·GraLoRA_k(x) + s·(x A_gᵀ) B_gᵀ, with PEFT's tensors
 * GA [k, in/k, r], GB [k, r, out/k] and the optional hybrid LoRA A_g [h, in], B_g [out, h].
 * The block part runs as batched GEMM + shuffle + batched GEMM (src/kernels/gralora.ts).
 */
import type { Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import { graloraBackward, graloraForward } from '../../kernels/gralora';
import { bindLowRank, type LowRankTensors } from '../lora/low-rank';
import type { LinearInfo } from '../../model/layout';
import type { BoundAdapter, LinearAdapter, Trainable } from '../../model/adapter';

export interface GraloraWeights {
  /** [k, in/k, r] */
  GA: Float32Array;
  /** [k, r, out/k] */
  GB: Float32Array;
  /** [h, in], when h > 0 */
  Ag?: Float32Array;
  /** [out, h], when h > 0 */
  Bg?: Float32Array;
}

export interface GraloraLayerOptions {
  rank: number;
  k: number;
  hybridRank: number;
  /** The effective scale s (PEFT: alpha / (r + h)); shared by the block and hybrid parts. */
  scale: number;
  /** The initial (gralora/init.ts) or imported weights. */
  weights: GraloraWeights;
  /** Learning-rate multiplier of gralora_B and the hybrid B (LoRA+). */
  lrScaleB?: number;
}

/** The hybrid LoRA tensors (absent when h = 0). */
type HybridTensors = LowRankTensors;

export class GraloraLayer implements LinearAdapter {
  readonly rank: number;
  readonly k: number;
  readonly hybridRank: number;
  readonly scale: number;
  readonly GA: Tensor;
  readonly GB: Tensor;
  readonly dGA: Tensor;
  readonly dGB: Tensor;
  readonly hybrid: HybridTensors | null;
  readonly trainables: Trainable[];

  constructor(
    gpu: Gpu,
    readonly info: LinearInfo,
    opts: GraloraLayerOptions,
  ) {
    const { rank: r, k, hybridRank: h } = opts;
    const { in: inDim, out: outDim, path } = info;
    checkStructure(info, r, k, h);
    this.rank = r;
    this.k = k;
    this.hybridRank = h;
    this.scale = opts.scale;
    const w = opts.weights;
    checkWeights(info, r, k, h, w);
    const lrScaleB = opts.lrScaleB ?? 1;
    this.GA = gpu.tensorFrom(w.GA, [k, inDim / k, r], `${path}.gralora_A`);
    this.GB = gpu.tensorFrom(w.GB, [k, r, outDim / k], `${path}.gralora_B`);
    this.dGA = gpu.tensor([k, inDim / k, r], `${path}.gralora_A.grad`);
    this.dGB = gpu.tensor([k, r, outDim / k], `${path}.gralora_B.grad`);
    this.trainables = [
      { name: `${path}.gralora_A`, param: this.GA, grad: this.dGA, decay: true, lrScale: 1 },
      { name: `${path}.gralora_B`, param: this.GB, grad: this.dGB, decay: true, lrScale: lrScaleB },
    ];
    this.hybrid = null;
    if (h > 0) {
      this.hybrid = {
        A: gpu.tensorFrom(w.Ag!, [h, inDim], `${path}.gralora_A_general`),
        B: gpu.tensorFrom(w.Bg!, [outDim, h], `${path}.gralora_B_general`),
        dA: gpu.tensor([h, inDim], `${path}.gralora_A_general.grad`),
        dB: gpu.tensor([outDim, h], `${path}.gralora_B_general.grad`),
      };
      this.trainables.push(
        {
          name: `${path}.gralora_A_general.weight`,
          param: this.hybrid.A,
          grad: this.hybrid.dA,
          decay: true,
          lrScale: 1,
        },
        {
          name: `${path}.gralora_B_general.weight`,
          param: this.hybrid.B,
          grad: this.hybrid.dB,
          decay: true,
          lrScale: lrScaleB,
        },
      );
    }
  }

  /** (r + h)(in + out), whatever k. */
  get parameterCount(): number {
    return (this.rank + this.hybridRank) * (this.info.in + this.info.out);
  }

  bind(gpu: Gpu, rows: number): BoundAdapter {
    const { rank: r, k, scale: s } = this;
    const { in: inDim, out: outDim, path } = this.info;
    // k = 1 has nothing to shuffle: H and H' (and dH, dH') are then the same tensor.
    const plane = [k, rows, r];
    const hShuffled = gpu.tensor(plane, `${path}.gralora_h_shuffled`);
    const dhShuffled = gpu.tensor(plane, `${path}.gralora_dh_shuffled`);
    const h = k > 1 ? gpu.tensor(plane, `${path}.gralora_h`) : undefined;
    const dh = k > 1 ? gpu.tensor(plane, `${path}.gralora_dh`) : undefined;
    const blocks = { rows, inDim, outDim, k, rank: r, scale: s, GA: this.GA, GB: this.GB };
    // The hybrid part is a plain LoRA of rank h with the shared scale s.
    const hybrid =
      this.hybrid &&
      bindLowRank(
        gpu,
        this.hybrid,
        { in: inDim, out: outDim, rank: this.hybridRank, scale: s, label: `${path}.gralora_general` },
        rows,
      );
    return {
      forward: (list, x, y) => {
        graloraForward(list, { ...blocks, x, y, h, hShuffled });
        hybrid?.forward(list, x, y);
      },
      backward: (list, x, dy, dx) => {
        graloraBackward(list, { ...blocks, x, dy, dx, hShuffled, dhShuffled, dh, dGA: this.dGA, dGB: this.dGB });
        hybrid?.backward(list, x, dy, dx);
      },
    };
  }
}

function checkStructure(info: LinearInfo, r: number, k: number, h: number): void {
  const p = info.path;
  if (!Number.isInteger(r) || r < 1) throw new Error(`${p}: GraLoRA rank must be an integer >= 1 (got ${r})`);
  if (!Number.isInteger(k) || k < 1) throw new Error(`${p}: gralora_k must be an integer >= 1 (got ${k})`);
  if (!Number.isInteger(h) || h < 0) throw new Error(`${p}: hybrid_r must be an integer >= 0 (got ${h})`);
  for (const [what, n] of [
    ['in', info.in],
    ['out', info.out],
    ['rank', r],
  ] as const) {
    if (n % k !== 0)
      throw new Error(`${p}: gralora_k ${k} does not divide ${what} ${n} (in ${info.in}, out ${info.out}, rank ${r})`);
  }
}

function checkWeights(info: LinearInfo, r: number, k: number, h: number, w: GraloraWeights): void {
  const { in: inDim, out: outDim, path } = info;
  const expect = (name: string, got: number | undefined, shape: number[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    if (got !== n)
      throw new Error(`${path}: ${name} must have shape [${shape.join(', ')}] (${n} values), got ${got ?? 'none'}`);
  };
  expect('gralora_A', w.GA.length, [k, inDim / k, r]);
  expect('gralora_B', w.GB.length, [k, r, outDim / k]);
  if (h > 0) {
    expect('gralora_A_general', w.Ag?.length, [h, inDim]);
    expect('gralora_B_general', w.Bg?.length, [outDim, h]);
  }
}
