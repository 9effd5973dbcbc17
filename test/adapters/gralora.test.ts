/** GraLoRA's invariants (docs/METHODS.md, Tests that pin the math, GraLoRA row), config rules, and the PEFT GraLoRA format. */
import { describe, expect, it } from 'vitest';
import {
  defaultGraloraK,
  graloraFromOriginal,
  graloraScale,
  moduleK,
  validateGraloraConfig,
  type GraloraConfig,
} from '../../src/adapters/gralora/config';
import { graloraInit } from '../../src/adapters/gralora/init';
import { GraloraLayer } from '../../src/adapters/gralora/layer';
import { createGraloraLayers, graloraParameterCount, readGraloraModules } from '../../src/adapters/gralora/model';
import {
  exportGraloraAsLora,
  exportPeftGralora,
  graloraToLora,
  importPeftGralora,
  type GraloraModuleWeights,
} from '../../src/adapters/gralora/peft';
import { LoraLayer } from '../../src/adapters/lora/layer';
import { importPeftLora, peftConfigJson } from '../../src/adapters/lora/peft';
import type { Gpu } from '../../src/gpu/gpu';
import {
  graloraBackwardRef,
  graloraDeltaEinsumRef,
  graloraDeltaRef,
  graloraToLoraRef,
  type GraloraRefParams,
} from '../../src/kernels/gralora.ref';
import type { LinearInfo } from '../../src/model/layout';
import { memoryStore, type NamedTensor } from '../../src/model/formats/safetensors';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';
import { tinySpec } from '../helpers/tiny-models';

function linear(inDim: number, outDim: number, path = 'model.layers.0.self_attn.q_proj'): LinearInfo {
  return {
    path,
    layer: 0,
    kind: 'q_proj',
    in: inDim,
    out: outDim,
    weight: `${path}.weight`,
    bias: null,
    conv1d: false,
  };
}

interface Shape {
  inDim: number;
  outDim: number;
  k: number;
  rank: number;
  h: number;
}

/** Random non-zero parameters (B included, unlike the init). */
function randomParams(
  rng: Rng,
  s: Shape,
  scale = 1.5,
): GraloraRefParams & { GA: Float32Array; GB: Float32Array; Ag: Float32Array; Bg: Float32Array } {
  return {
    inDim: s.inDim,
    outDim: s.outDim,
    k: s.k,
    rank: s.rank,
    hybridRank: s.h,
    scale,
    GA: rng.normals(s.inDim * s.rank),
    GB: rng.normals(s.rank * s.outDim),
    Ag: rng.normals(s.h * s.inDim),
    Bg: rng.normals(s.outDim * s.h),
  };
}

const refOf = (m: GraloraModuleWeights): GraloraRefParams => ({
  inDim: m.in,
  outDim: m.out,
  k: m.k,
  rank: m.rank,
  hybridRank: m.hybridRank,
  GA: m.GA,
  GB: m.GB,
  Ag: m.Ag,
  Bg: m.Bg,
  scale: m.scale,
});

/** Numerical rank by Gaussian elimination with full pivoting (float64). */
function numericRank(a: ArrayLike<number>, rows: number, cols: number): number {
  const m = Float64Array.from(a);
  const tol = Math.max(...Array.from(m, Math.abs)) * Math.max(rows, cols) * 1e-10;
  let rank = 0;
  const rowsLeft = Array.from({ length: rows }, (_, i) => i);
  const colsLeft = new Set(Array.from({ length: cols }, (_, j) => j));
  while (rowsLeft.length && colsLeft.size) {
    let best = 0,
      bi = -1,
      bj = -1;
    for (const i of rowsLeft)
      for (const j of colsLeft)
        if (Math.abs(m[i * cols + j]) > best) [best, bi, bj] = [Math.abs(m[i * cols + j]), i, j];
    if (best <= tol) break;
    rank++;
    rowsLeft.splice(rowsLeft.indexOf(bi), 1);
    colsLeft.delete(bj);
    for (const i of rowsLeft) {
      const f = m[i * cols + bj] / m[bi * cols + bj];
      for (let j = 0; j < cols; j++) m[i * cols + j] -= f * m[bi * cols + j];
    }
  }
  return rank;
}

/** float64 products of row-major matrices: a [M, K] · b [N, K]ᵀ and a [M, K] · b [K, N]. */
function matmulNT(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  return product(
    M,
    N,
    K,
    (i, q) => a[i * K + q],
    (q, j) => b[j * K + q],
  );
}

function matmulNN(a: ArrayLike<number>, b: ArrayLike<number>, M: number, N: number, K: number): Float64Array {
  return product(
    M,
    N,
    K,
    (i, q) => a[i * K + q],
    (q, j) => b[q * N + j],
  );
}

function product(
  M: number,
  N: number,
  K: number,
  a: (i: number, q: number) => number,
  b: (q: number, j: number) => number,
): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let q = 0; q < K; q++) s += a(i, q) * b(q, j);
      c[i * N + j] = s;
    }
  return c;
}

function transpose(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const t = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = a[i * cols + j];
  return t;
}

/** ΔW of a LoRA module: s·B·A [out, in]. */
function loraDelta(m: {
  rank: number;
  scale: number;
  A: ArrayLike<number>;
  B: ArrayLike<number>;
  in: number;
  out: number;
}): Float64Array {
  return matmulNN(m.B, m.A, m.out, m.in, m.rank).map((v) => v * m.scale);
}

/** Runs a layer's forward then backward once; returns y (y0 + adapter), dx (dx0 + adapter) and the grads. */
async function runLayer(
  gpu: Gpu,
  layer: GraloraLayer | LoraLayer,
  rows: number,
  x: Float32Array,
  y0: Float32Array,
  dy: Float32Array,
  dx0: Float32Array,
) {
  const { in: inDim, out: outDim } = layer.info;
  const X = gpu.tensorFrom(x, [rows, inDim], 'x');
  const Y = gpu.tensorFrom(y0, [rows, outDim], 'y');
  const dY = gpu.tensorFrom(dy, [rows, outDim], 'dy');
  const dX = gpu.tensorFrom(dx0, [rows, inDim], 'dx');
  const bound = layer.bind(gpu, rows);
  await runOnce(gpu, (l) => {
    bound.forward(l, { t: X, ld: inDim }, { t: Y, ld: outDim });
    bound.backward(l, { t: X, ld: inDim }, { t: dY, ld: outDim }, { t: dX, ld: inDim });
  });
  const grads: Float32Array[] = [];
  for (const t of layer.trainables) grads.push(await gpu.read(t.grad));
  return { y: await gpu.read(Y), dx: await gpu.read(dX), grads };
}

const TOL = { atol: 1e-4, rtol: 1e-4 };

describe('GraLoRA layer on the GPU vs the dense ΔW', () => {
  const shapes: Shape[] = [
    { inDim: 16, outDim: 24, k: 2, rank: 4, h: 0 },
    { inDim: 16, outDim: 24, k: 4, rank: 8, h: 3 },
    { inDim: 12, outDim: 9, k: 3, rank: 3, h: 2 },
  ];
  for (const s of shapes) {
    it(`${s.inDim} -> ${s.outDim}, k ${s.k}, r ${s.rank}, h ${s.h}: Y = X·ΔWᵀ, dX = G_Y·ΔW, grads = reference`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(s.inDim + s.k * 3 + s.h);
      const p = randomParams(rng, s);
      const layer = new GraloraLayer(gpu, linear(s.inDim, s.outDim), {
        rank: s.rank,
        k: s.k,
        hybridRank: s.h,
        scale: p.scale,
        weights: { GA: p.GA, GB: p.GB, Ag: p.Ag, Bg: p.Bg },
      });
      const rows = 7;
      const x = rng.normals(rows * s.inDim);
      const y0 = rng.normals(rows * s.outDim);
      const dy = rng.normals(rows * s.outDim);
      const dx0 = rng.normals(rows * s.inDim);
      const got = await runLayer(gpu, layer, rows, x, y0, dy, dx0);
      const dW = graloraDeltaRef(p);
      expectClose(
        got.y,
        matmulNT(x, dW, rows, s.outDim, s.inDim).map((v, i) => v + y0[i]),
        'Y = y0 + X ΔWᵀ',
        TOL,
      );
      expectClose(
        got.dx,
        matmulNN(dy, dW, rows, s.inDim, s.outDim).map((v, i) => v + dx0[i]),
        'dX = dx0 + G_Y ΔW',
        TOL,
      );
      const ref = graloraBackwardRef(x, dy, rows, p);
      const want = s.h > 0 ? [ref.dGA, ref.dGB, ref.dAg, ref.dBg] : [ref.dGA, ref.dGB];
      expect(got.grads.length).toBe(want.length);
      want.forEach((w, i) => expectClose(got.grads[i], w, layer.trainables[i].name, TOL));
    });
  }

  it('k = 1 is LoRA with A = GA[0]ᵀ and B = GB[0]ᵀ (same outputs and gradients)', async () => {
    const gpu = await testGpu();
    const rng = new Rng(21);
    const s = { inDim: 10, outDim: 6, k: 1, rank: 3, h: 0 };
    const p = randomParams(rng, s, 0.8);
    const info = linear(s.inDim, s.outDim);
    const gra = new GraloraLayer(gpu, info, {
      rank: 3,
      k: 1,
      hybridRank: 0,
      scale: 0.8,
      weights: { GA: p.GA, GB: p.GB },
    });
    const lora = new LoraLayer(gpu, info, 3, 0.8, { A: transpose(p.GA, s.inDim, 3), B: transpose(p.GB, 3, s.outDim) });
    const rows = 9;
    const args = [
      rng.normals(rows * s.inDim),
      rng.normals(rows * s.outDim),
      rng.normals(rows * s.outDim),
      rng.normals(rows * s.inDim),
    ] as const;
    const a = await runLayer(gpu, gra, rows, ...args);
    const b = await runLayer(gpu, lora, rows, ...args);
    expectClose(a.y, b.y, 'y', { atol: 1e-5, rtol: 1e-5 });
    expectClose(a.dx, b.dx, 'dx', { atol: 1e-5, rtol: 1e-5 });
    expectClose(a.grads[0], transpose(b.grads[0], 3, s.inDim), 'dGA[0] = dAᵀ', { atol: 1e-5, rtol: 1e-5 });
    expectClose(a.grads[1], transpose(b.grads[1], s.outDim, 3), 'dGB[0] = dBᵀ', { atol: 1e-5, rtol: 1e-5 });
  });

  it('at init ΔW = 0: the layer adds nothing to y', async () => {
    const gpu = await testGpu();
    const rng = new Rng(8);
    const layer = new GraloraLayer(gpu, linear(16, 8), {
      rank: 4,
      k: 2,
      hybridRank: 2,
      scale: 2,
      weights: graloraInit(linear(16, 8), { rank: 4, k: 2, hybridRank: 2 }, new Rng(1)),
    });
    const y0 = rng.normals(5 * 8);
    const got = await runLayer(gpu, layer, 5, rng.normals(5 * 16), y0, rng.normals(5 * 8), new Float32Array(5 * 16));
    expectClose(got.y, y0, 'y', { atol: 0, rtol: 0 });
  });
});

describe('GraLoRA structure (float64)', () => {
  it('the PEFT scatter/einsum path builds the same ΔW as the block-by-block one', () => {
    const rng = new Rng(2);
    for (const s of [
      { inDim: 8, outDim: 12, k: 2, rank: 4, h: 0 },
      { inDim: 12, outDim: 6, k: 3, rank: 6, h: 2 },
      { inDim: 16, outDim: 8, k: 4, rank: 4, h: 1 },
      { inDim: 5, outDim: 7, k: 1, rank: 2, h: 0 },
    ]) {
      const p = randomParams(rng, s);
      expectClose(graloraDeltaEinsumRef(p), graloraDeltaRef(p), `k ${s.k}`, { atol: 1e-12, rtol: 1e-12 });
    }
  });

  it('rank(ΔW) = min(k·r + h, in, out) for random parameters', () => {
    const rng = new Rng(4);
    const cases: [Shape, number][] = [
      [{ inDim: 16, outDim: 24, k: 1, rank: 4, h: 0 }, 4],
      [{ inDim: 16, outDim: 24, k: 2, rank: 4, h: 0 }, 8],
      [{ inDim: 16, outDim: 24, k: 4, rank: 4, h: 0 }, 16],
      [{ inDim: 16, outDim: 24, k: 2, rank: 4, h: 2 }, 10],
      [{ inDim: 8, outDim: 12, k: 4, rank: 8, h: 0 }, 8], // capped by in
      [{ inDim: 12, outDim: 6, k: 3, rank: 6, h: 1 }, 6], // capped by out
    ];
    for (const [s, want] of cases) {
      expect(want).toBe(Math.min(s.k * s.rank + s.h, s.inDim, s.outDim));
      expect(numericRank(graloraDeltaRef(randomParams(rng, s)), s.outDim, s.inDim), JSON.stringify(s)).toBe(want);
    }
  });

  it('parameters = (r + h)(in + out) for every k, as many as a LoRA of rank r + h', async () => {
    const gpu = await testGpu();
    for (const k of [1, 2, 4]) {
      for (const h of [0, 2]) {
        const layer = new GraloraLayer(gpu, linear(16, 24), {
          rank: 8,
          k,
          hybridRank: h,
          scale: 1,
          weights: graloraInit(linear(16, 24), { rank: 8, k, hybridRank: h }, new Rng(k)),
        });
        const stored = layer.trainables.reduce((n, t) => n + t.param.size, 0);
        expect(layer.parameterCount).toBe((8 + h) * (16 + 24));
        expect(stored).toBe(layer.parameterCount);
        expect(layer.trainables.every((t) => t.grad.size === t.param.size)).toBe(true);
      }
    }
  });

  it('init: GA ~ U(±1/√(in/k)) so |GA| <= √k/√in; GB = 0; hybrid A ~ U(±1/√in), B = 0', () => {
    const [inDim, outDim] = [64, 32];
    for (const k of [1, 2, 4]) {
      const w = graloraInit({ in: inDim, out: outDim }, { rank: 8, k, hybridRank: 4 }, new Rng(k));
      const bound = Math.sqrt(k) / Math.sqrt(inDim);
      const maxA = Math.max(...Array.from(w.GA, Math.abs));
      expect(maxA).toBeLessThanOrEqual(bound);
      expect(maxA).toBeGreaterThan(0.95 * bound); // √k wider than LoRA, not just bounded
      const variance = w.GA.reduce((s, v) => s + v * v, 0) / w.GA.length;
      expect(variance).toBeCloseTo((bound * bound) / 3, 3);
      expect(w.GB.every((v) => v === 0)).toBe(true);
      expect(Math.max(...Array.from(w.Ag!, Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(inDim));
      expect(w.Bg!.every((v) => v === 0)).toBe(true);
      const p = { inDim, outDim, k, rank: 8, hybridRank: 4, scale: 2, GA: w.GA, GB: w.GB, Ag: w.Ag, Bg: w.Bg };
      expect(graloraDeltaRef(p).every((v) => v === 0)).toBe(true);
    }
  });

  it('§3.6: the rank k·r + h LoRA reproduces ΔW with scale 1', () => {
    const rng = new Rng(6);
    for (const s of [
      { inDim: 12, outDim: 8, k: 2, rank: 4, h: 0 },
      { inDim: 12, outDim: 9, k: 3, rank: 6, h: 2 },
    ]) {
      const p = randomParams(rng, s, 0.75);
      const m: GraloraModuleWeights = {
        path: 'm',
        in: s.inDim,
        out: s.outDim,
        rank: s.rank,
        k: s.k,
        hybridRank: s.h,
        scale: 0.75,
        GA: p.GA,
        GB: p.GB,
        Ag: p.Ag,
        Bg: p.Bg,
      };
      const lora = graloraToLora(m);
      expect(lora.rank).toBe(s.k * s.rank + s.h);
      expect(lora.scale).toBe(1);
      expectClose(loraDelta(lora), graloraDeltaRef(p), `ΔW k ${s.k}`, { atol: 1e-6, rtol: 1e-5 });
      const ref = graloraToLoraRef(p);
      expectClose(lora.A, ref.A, 'A_L', { atol: 0, rtol: 0 });
      expectClose(lora.B, ref.B, 'B_L', { atol: 1e-7, rtol: 1e-7 });
    }
  });
});

describe('GraLoRA configuration', () => {
  const base: GraloraConfig = { rank: 8, k: 2, hybridRank: 0, alpha: 16, targets: ['q_proj'], lrRatioB: 1 };

  it("its invariants name what is wrong, in no surface's words (the registry words options for the CLI and the form)", () => {
    const bad: [Partial<GraloraConfig>, RegExp][] = [
      [{ rank: 0 }, /^GraLoRA rank must be an integer >= 1/],
      [{ k: 0 }, /^GraLoRA k must be an integer >= 1/],
      [{ rank: 6, k: 4 }, /^GraLoRA rank 6 is not divisible by k 4/],
      [{ hybridRank: -1 }, /^GraLoRA hybrid rank must be an integer >= 0/],
      [{ alpha: 0 }, /^GraLoRA alpha must be a positive number/],
      [{ targets: [] }, /at least one target module/],
    ];
    for (const [change, msg] of bad) expect(() => validateGraloraConfig({ ...base, ...change })).toThrow(msg);
    expect(() => validateGraloraConfig(base)).not.toThrow();
  });

  it('scale = alpha / (r + h), shared by both parts', () => {
    expect(graloraScale(64, 32, 0)).toBe(2);
    expect(graloraScale(32, 8, 8)).toBe(2);
  });

  it('default k: 2 below rank 64, 4 from 64, halved until it divides the GraLoRA rank', () => {
    expect([8, 16, 32, 48, 64, 128].map((r) => defaultGraloraK(r))).toEqual([2, 2, 2, 2, 4, 4]);
    expect([1, 3, 66].map((r) => defaultGraloraK(r))).toEqual([1, 1, 2]);
    expect(defaultGraloraK(16, 8)).toBe(2); // the paper's hybrid rank 16: r 8 + h 8
    expect(defaultGraloraK(64, 62)).toBe(2);
  });

  it('original (r_total, h, alpha) is PEFT (r_total - h, h, alpha) with the same scale', () => {
    const peft = graloraFromOriginal({ r: 16, hybridR: 8, alpha: 32 });
    expect(peft).toEqual({ rank: 8, hybridRank: 8, alpha: 32 });
    expect(graloraScale(peft.alpha, peft.rank, peft.hybridRank)).toBe(32 / 16);
    expect(() => graloraFromOriginal({ r: 8, hybridR: 8, alpha: 16 })).toThrow(/must exceed hybrid_r/);
  });

  it("moduleK: the largest k' <= k dividing in, out and r, with a warning; never padding", () => {
    expect(moduleK(linear(16, 8), 4, 4)).toEqual({ k: 4 });
    const lowered = moduleK(linear(12, 20, 'a.gate_proj'), 6, 3);
    expect(lowered.k).toBe(2);
    expect(lowered.warning).toMatch(
      /a\.gate_proj \(12 -> 20, rank 6\): gralora_k 3 does not divide out 20; using k = 2/,
    );
    expect(moduleK(linear(12, 20), 3, 3)).toMatchObject({ k: 1, warning: expect.stringMatching(/plain LoRA/) });
    expect(moduleK(linear(16, 16), 6, 4)).toMatchObject({
      k: 2,
      warning: expect.stringMatching(/does not divide rank 6/),
    });
  });

  it('a layer rejects a k that does not divide its shapes', async () => {
    const gpu = await testGpu();
    expect(
      () =>
        new GraloraLayer(gpu, linear(12, 20), {
          rank: 6,
          k: 3,
          hybridRank: 0,
          scale: 1,
          weights: graloraInit(linear(12, 20), { rank: 6, k: 3, hybridRank: 0 }, new Rng(1)),
        }),
    ).toThrow(/gralora_k 3 does not divide out 20/);
    expect(
      () =>
        new GraloraLayer(gpu, linear(12, 12), {
          rank: 4,
          k: 3,
          hybridRank: 0,
          scale: 1,
          weights: { GA: new Float32Array(48), GB: new Float32Array(48) },
        }),
    ).toThrow(/does not divide rank 4/);
  });

  it('createGraloraLayers lowers k per module (qwen2: hidden 12, kv 4, d_ff 20) and per planned rank', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('qwen2');
    const cfg = { ...base, rank: 6, k: 3, targets: ['q_proj', 'k_proj', 'gate_proj'] };
    const { layers, warnings } = createGraloraLayers(gpu, spec, cfg, 1, {
      ranks: new Map([['model.layers.0.self_attn.q_proj', 3]]),
    });
    const ks = Object.fromEntries([...layers].map(([p, l]) => [p.split('.').pop(), [l.k, l.rank]]));
    expect(ks).toEqual({ q_proj: [3, 3], k_proj: [2, 6], gate_proj: [2, 6] });
    expect(warnings).toHaveLength(2);
    expect(warnings.join('\n')).toMatch(/k_proj \(12 -> 4, rank 6\): gralora_k 3 does not divide out 4; using k = 2/);
    expect(graloraParameterCount(layers)).toBe(3 * 24 + 6 * 16 + 6 * 32);
    // With a planned rank the k fallback also follows the rank: rank 3 under k 2 -> k 1.
    const planned = createGraloraLayers(gpu, spec, { ...cfg, k: 2, rank: 4 }, 1, {
      ranks: new Map([['model.layers.0.mlp.gate_proj', 3]]),
    });
    expect(planned.layers.get('model.layers.0.mlp.gate_proj')!.k).toBe(1);
    expect(planned.warnings).toEqual([
      expect.stringMatching(/gate_proj.*does not divide rank 3; using k = 1 \(plain LoRA\)/),
    ]);
  });
});

// ------------------------------------------------------------------------------------------ PEFT

const open = (tensors: NamedTensor[]) => memoryStore('adapter_model.safetensors', tensors);

/** Trained-looking modules of a tiny model: random GB and hybrid B. */
async function trainedModules(family: 'llama' | 'gpt2', cfg: GraloraConfig): Promise<GraloraModuleWeights[]> {
  const gpu = await testGpu();
  const { layers } = createGraloraLayers(gpu, tinySpec(family), cfg, 3);
  const rng = new Rng(9);
  for (const l of layers.values()) {
    gpu.upload(l.GB, rng.normals(l.GB.size));
    if (l.hybrid) gpu.upload(l.hybrid.B, rng.normals(l.hybrid.B.size));
  }
  return readGraloraModules(gpu, layers);
}

const GRALORA_CONFIG_KEYS = [
  'alpha',
  'base_model_name_or_path',
  'bias',
  'fan_in_fan_out',
  'gralora_dropout',
  'gralora_k',
  'hybrid_r',
  'inference_mode',
  'init_weights',
  'layers_pattern',
  'layers_to_transform',
  'modules_to_save',
  'peft_type',
  'r',
  'target_modules',
  'task_type',
];

describe('PEFT GraLoRA export and import', () => {
  for (const [family, h] of [
    ['llama', 2],
    ['gpt2', 0],
  ] as const) {
    it(`${family}${h ? ' (hybrid)' : ''}: export -> import gives identical tensors and fields`, async () => {
      const spec = tinySpec(family);
      const cfg: GraloraConfig = {
        rank: 4,
        k: 2,
        hybridRank: h,
        alpha: 12,
        targets: family === 'gpt2' ? ['c_attn', 'mlp.c_proj'] : ['q_proj', 'down_proj'],
        lrRatioB: 1,
      };
      const modules = await trainedModules(family, cfg);
      const { config, tensors } = exportPeftGralora(spec, modules, { alpha: 12, baseModel: `tiny-${family}` });
      const text = peftConfigJson(config);
      const written = JSON.parse(text);
      expect(Object.keys(written)).toEqual(GRALORA_CONFIG_KEYS);
      expect(written).toMatchObject({
        peft_type: 'GRALORA',
        task_type: 'CAUSAL_LM',
        r: 4,
        hybrid_r: h,
        alpha: 12,
        gralora_k: 2,
        gralora_dropout: 0,
        fan_in_fan_out: family === 'gpt2',
        bias: 'none',
        init_weights: true,
        inference_mode: true,
        modules_to_save: null,
        layers_to_transform: null,
        layers_pattern: null,
        base_model_name_or_path: `tiny-${family}`,
      });
      expect(written.target_modules).toEqual(modules.map((m) => m.path).sort());
      // Key names and shapes as PEFT's ParameterDict / nn.Linear save them.
      const shapes = Object.fromEntries(tensors.map((t) => [t.name, t.shape]));
      if (family === 'gpt2') {
        expect(shapes['base_model.model.transformer.h.0.attn.c_attn.gralora_A']).toEqual([2, 8, 4]);
        expect(shapes['base_model.model.transformer.h.0.attn.c_attn.gralora_B']).toEqual([2, 4, 24]);
        expect(shapes['base_model.model.transformer.h.1.mlp.c_proj.gralora_A']).toEqual([2, 32, 4]);
        expect(tensors).toHaveLength(4 * 2);
      } else {
        expect(shapes['base_model.model.model.layers.0.mlp.down_proj.gralora_A']).toEqual([2, 12, 4]);
        expect(shapes['base_model.model.model.layers.0.mlp.down_proj.gralora_B']).toEqual([2, 4, 8]);
        expect(shapes['base_model.model.model.layers.1.self_attn.q_proj.gralora_A_general.weight']).toEqual([2, 16]);
        expect(shapes['base_model.model.model.layers.1.self_attn.q_proj.gralora_B_general.weight']).toEqual([16, 2]);
        expect(tensors).toHaveLength(4 * 4);
      }
      const back = await importPeftGralora(spec, written, await open(tensors), 'out');
      expect(back.map((m) => m.path)).toEqual(modules.map((m) => m.path).sort());
      for (const m of modules) {
        const b = back.find((x) => x.path === m.path)!;
        expect({ ...b, GA: 0, GB: 0, Ag: 0, Bg: 0 }).toEqual({ ...m, GA: 0, GB: 0, Ag: 0, Bg: 0 });
        for (const key of ['GA', 'GB', 'Ag', 'Bg'] as const)
          expect(Array.from(b[key]), `${m.path} ${key}`).toEqual(Array.from(m[key]));
      }
    });
  }

  it('the PEFT scale from the written config equals the training scale', async () => {
    const modules = await trainedModules('llama', {
      rank: 4,
      k: 2,
      hybridRank: 2,
      alpha: 9,
      targets: ['v_proj'],
      lrRatioB: 1,
    });
    const { config } = exportPeftGralora(tinySpec('llama'), modules, { alpha: 9, baseModel: 'x' });
    for (const m of modules)
      expect(Number(config.alpha) / (Number(config.r) + Number(config.hybrid_r))).toBeCloseTo(m.scale, 12);
  });

  it('refuses what one global r/k/h/scale cannot express; the LoRA conversion exports it exactly', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('qwen2');
    const cfg: GraloraConfig = { rank: 6, k: 3, hybridRank: 1, alpha: 14, targets: ['q_proj', 'k_proj'], lrRatioB: 1 };
    const { layers } = createGraloraLayers(gpu, spec, cfg, 2); // q_proj k 3, k_proj k 2
    for (const l of layers.values()) gpu.upload(l.GB, new Rng(1).normals(l.GB.size));
    const mixed = await readGraloraModules(gpu, layers);
    expect(() => exportPeftGralora(spec, mixed, { alpha: 14, baseModel: 'x' })).toThrow(
      /differ in r, gralora_k or hybrid_r.*no rank_pattern.*as a LoRA/,
    );
    const uniform = mixed.filter((m) => m.k === 3);
    expect(() => exportPeftGralora(spec, uniform, { alpha: 15, baseModel: 'x' })).toThrow(
      /scale 2, but PEFT computes alpha\/\(r \+ hybrid_r\) = 15\/7/,
    );
    expect(() => exportPeftGralora(spec, [], { alpha: 14, baseModel: 'x' })).toThrow(/no GraLoRA modules/);

    const { config, tensors } = exportGraloraAsLora(spec, mixed, { baseModel: 'x' });
    expect(config.peft_type).toBe('LORA');
    const lora = await importPeftLora(spec, JSON.parse(peftConfigJson(config)), await open(tensors), 'as-lora');
    for (const m of mixed) {
      const l = lora.find((x) => x.path === m.path)!;
      expect(l.rank).toBe(m.k * m.rank + m.hybridRank);
      expect(l.scale).toBeCloseTo(1, 12);
      expectClose(loraDelta(l), graloraDeltaRef(refOf(m)), `${m.path} ΔW`, { atol: 1e-6, rtol: 1e-5 });
    }
  });

  it("reads the original repo's convention (r total, gralora_alpha, A last dim r - h) as PEFT (r - h, h, alpha)", async () => {
    const spec = tinySpec('llama');
    const modules = await trainedModules('llama', {
      rank: 4,
      k: 2,
      hybridRank: 2,
      alpha: 12,
      targets: ['q_proj'],
      lrRatioB: 1,
    });
    const { config, tensors } = exportPeftGralora(spec, modules, { alpha: 12, baseModel: 'x' });
    const { alpha: _, ...rest } = config;
    const original = { ...rest, r: 6, gralora_alpha: 12 };
    const back = await importPeftGralora(spec, original, await open(tensors), 'orig');
    for (const [i, m] of back.entries()) {
      expect([m.rank, m.hybridRank, m.k]).toEqual([4, 2, 2]);
      expect(m.scale).toBeCloseTo(12 / 6, 12); // gralora_alpha / r_total
      expect(Array.from(m.GA)).toEqual(Array.from(modules[i].GA));
    }
  });

  it('accepts keys without base_model.model., and GPT-2 paths without transformer.', async () => {
    const spec = tinySpec('gpt2');
    const modules = await trainedModules('gpt2', {
      rank: 2,
      k: 2,
      hybridRank: 0,
      alpha: 4,
      targets: ['c_fc'],
      lrRatioB: 1,
    });
    const { config, tensors } = exportPeftGralora(spec, modules, { alpha: 4, baseModel: 'x' });
    const bare = tensors.map((t) => ({ ...t, name: t.name.replace('base_model.model.transformer.', '') }));
    const back = await importPeftGralora(spec, config, await open(bare), 'bare');
    expect(back.map((m) => m.path)).toEqual(['transformer.h.0.mlp.c_fc', 'transformer.h.1.mlp.c_fc']);
  });

  it('import errors name the file, the tensor and what was expected', async () => {
    const spec = tinySpec('llama');
    const modules = await trainedModules('llama', {
      rank: 4,
      k: 2,
      hybridRank: 2,
      alpha: 12,
      targets: ['o_proj'],
      lrRatioB: 1,
    });
    const { config, tensors } = exportPeftGralora(spec, modules, { alpha: 12, baseModel: 'x' });
    const without = (pattern: RegExp) => tensors.filter((t) => !pattern.test(t.name));
    const A0 = 'base_model.model.model.layers.0.self_attn.o_proj.gralora_A';
    const reshaped = tensors.map((t) => (t.name === A0 ? { ...t, shape: [4, 4, 4] } : t));
    const renamed = tensors.map((t) => ({ ...t, name: t.name.replace('model.layers.0.', 'model.decoder.0.') }));
    const cases: [Record<string, unknown>, NamedTensor[], RegExp][] = [
      [
        { ...config, peft_type: 'LORA' },
        tensors,
        /bad\/adapter_config\.json: peft_type is "LORA"; this reader handles GRALORA/,
      ],
      [config, without(/gralora_A$/), /no gralora_A tensors/],
      [
        config,
        without(/layers\.1\.self_attn\.o_proj\.gralora_B$/),
        /gralora_A has no matching base_model\.model\.model\.layers\.1\.self_attn\.o_proj\.gralora_B\./,
      ],
      [
        config,
        without(/layers\.0.*gralora_B_general/),
        /no matching .*layers\.0\.self_attn\.o_proj\.gralora_B_general\.weight/,
      ],
      [
        config,
        reshaped,
        /o_proj\.gralora_A has shape \[4,4,4\], expected \[2,8,4\] for model\.layers\.0\.self_attn\.o_proj/,
      ],
      [{ ...config, r: 8 }, tensors, /gralora_A has shape \[2,8,4\], expected \[2,8,8\]/],
      [{ ...config, gralora_k: 3 }, tensors, /r 4 is not divisible by gralora_k 3/],
      [config, renamed, /targets module "model\.decoder\.0\.self_attn\.o_proj".*is the adapter for another model\?/],
      [{ ...config, hybrid_r: 0 }, tensors, /gralora_A_general\.weight is a hybrid tensor, but hybrid_r is 0/],
    ];
    for (const [cfg, ts, msg] of cases)
      await expect(importPeftGralora(spec, cfg, await open(ts), 'bad')).rejects.toThrow(msg);
    // The same module path in a model of another width: llama tensors read against qwen2.
    await expect(importPeftGralora(tinySpec('qwen2'), config, await open(tensors), 'bad')).rejects.toThrow(
      /is the adapter for another model\?/,
    );
  });
});
