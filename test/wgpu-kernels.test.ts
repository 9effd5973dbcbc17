/**
 * A representative bundle of the kernel reference checks, small enough to run on another WebGPU implementation in CI:
 * test/deno.test.ts runs this file under Deno, whose WebGPU is wgpu (Firefox's), while test/kernels/ checks every
 * kernel on Dawn in depth. Every kernel family a training step records is here against its float64 reference: each
 * matmul code path (the 64x64 tile with scalar, vec4 and double-buffered vec4 loads; both register kernels; the tile
 * sizes only change constants), both attention and norm kernel sets, rope, cross-entropy, reductions, clipping,
 * AdamW, embeddings, activations, bias and argmax.
 */
import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu';
import { subgroupCompileError } from '../src/gpu/subgroup-probe';
import { geluBackward, geluForward, swigluBackward, swigluForward } from '../src/kernels/activation';
import { geluBackwardRef, geluForwardRef, swigluBackwardRef, swigluForwardRef } from '../src/kernels/activation.ref';
import { ADAMW_HP, ADAMW_HP_SIZE, adamw } from '../src/kernels/adamw';
import { adamwStepRef, type AdamwHyper } from '../src/kernels/adamw.ref';
import { argmax } from '../src/kernels/argmax';
import { argmaxRef } from '../src/kernels/argmax.ref';
import { biasAdd, biasGrad } from '../src/kernels/bias';
import { biasAddRef, biasGradRef } from '../src/kernels/bias.ref';
import { embedBackward, embedForward } from '../src/kernels/embed';
import { embedBackwardRef, embedForwardRef } from '../src/kernels/embed.ref';
import { flashAttentionBackward, flashAttentionForward } from '../src/kernels/flash-attention';
import { flashBackwardRef, flashForwardRef } from '../src/kernels/flash-attention.ref';
import { matmul } from '../src/kernels/matmul';
import { needsAlignment, type MatmulVariant } from '../src/kernels/matmul-plan';
import { matmulRef } from '../src/kernels/matmul.ref';
import {
  layernormBackward,
  layernormForward,
  layernormParamGrad,
  rmsnormBackward,
  rmsnormForward,
  rmsnormWeightGrad,
} from '../src/kernels/norm';
import {
  layernormBackwardRef,
  layernormForwardRef,
  layernormParamGradRef,
  rmsnormBackwardRef,
  rmsnormForwardRef,
  rmsnormWeightGradRef,
} from '../src/kernels/norm.ref';
import { clipFactor, sum, sumSquares } from '../src/kernels/reduce';
import { clipFactorRef, sumRef, sumSquaresRef } from '../src/kernels/reduce.ref';
import { ropeBackward, ropeForward, ropeInvFreq } from '../src/kernels/rope';
import { ropeRef } from '../src/kernels/rope.ref';
import { crossEntropyForwardBackward } from '../src/kernels/xent';
import { crossEntropyRef } from '../src/kernels/xent.ref';
import { Rng } from '../src/util/random';
import { expectClose, runOnce, testGpu, validated } from './helpers/gpu';

const u32Tensor = (gpu: Gpu, values: ArrayLike<number>, label: string) => {
  const t = gpu.tensor([values.length], label, 'u32');
  gpu.upload(t, Uint32Array.from(values));
  return t;
};

/** Columns [col, col + width) of a strided matrix, dense. */
function columns(src: ArrayLike<number>, rows: number, offset: number, ld: number, col: number, width: number) {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = src[offset + r * ld + col + c];
  return out;
}

const MATMUL_PATHS: MatmulVariant[] = ['tiled', 'tiled-v4', 'tiled-g4', 'register', 'register-vec4'];

// Under Node these would run on Dawn again, which test/kernels/ covers in depth: only Deno runs them.
const underDeno = 'Deno' in globalThis;

describe.runIf(underDeno)('kernels against their float64 references (under Deno: run by test/deno.test.ts)', () => {
  it('reports the WebGPU implementation and adapter it runs on', async () => {
    const { adapter, features, device } = (await testGpu()).handle;
    // test/deno.test.ts reads this line to know the checks ran on wgpu.
    console.log(`kernel checks on WebGPU: ${adapter.implementation}, adapter: ${adapter.description}`);
    expect(adapter.identity).toContain(adapter.implementation);
    // The subgroup kernels are chosen only where the compiler builds them (naga does not parse them yet).
    const probe = await subgroupCompileError(device);
    if (features.subgroups) expect(probe).toBeNull();
    console.log(`subgroups: ${features.subgroups}${probe ? `; the probe: ${probe.split('\n')[0]}` : ''}`);
  });

  // Every kernel, each transpose; 4-aligned K and leading dimensions for the vec4 kernels, awkward ones otherwise.
  for (const variant of MATMUL_PATHS) {
    it(`matmul ${variant}: every transpose, padded rows, alpha/beta`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(5);
      const [M, N, K] = needsAlignment(variant) ? [33, 18, 20] : [33, 17, 19];
      const ld = (cols: number) => (needsAlignment(variant) ? Math.ceil(cols / 4) * 4 + 4 : cols + 3);
      await validated(gpu, async () => {
        for (const [transA, transB] of [
          [false, false],
          [false, true],
          [true, false],
          [true, true],
        ]) {
          const [aRows, aCols] = transA ? [K, M] : [M, K];
          const [bRows, bCols] = transB ? [N, K] : [K, N];
          const [lda, ldb] = [ld(aCols), ld(bCols)];
          const a = rng.normals(aRows * lda);
          const b = rng.normals(bRows * ldb);
          const c0 = rng.normals(M * N);
          const ta = gpu.tensorFrom(a, [a.length], 'a');
          const tb = gpu.tensorFrom(b, [b.length], 'b');
          const tc = gpu.tensorFrom(c0, [M * N], 'c');
          const op = { M, N, K, transA, transB, alpha: 0.5, beta: 1 };
          await runOnce(gpu, (l) =>
            matmul(l, { a: { t: ta, ld: lda }, b: { t: tb, ld: ldb }, c: { t: tc, ld: N }, ...op, variant }),
          );
          const want = matmulRef(
            columns(a, aRows, 0, lda, 0, aCols),
            columns(b, bRows, 0, ldb, 0, bCols),
            c0,
            M,
            N,
            K,
            op,
          );
          expectClose(await gpu.read(tc), want, `C transA=${transA} transB=${transB}`);
        }
      });
    });
  }

  // GQA over column slices of a fused q|k|v buffer, packed rows (a document restarts mid-row).
  for (const variant of ['thread', 'workgroup'] as const) {
    it(`flash attention (${variant}): forward and backward, GQA, packed rows`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(31);
      const [batch, seq, heads, kvHeads, headDim] = [2, 19, 4, 2, 12];
      const positions = Array.from({ length: batch * seq }, (_, r) => (r < seq ? r % 11 : r - seq));
      const d = { batch, seq, heads, kvHeads, headDim, scale: 1 / Math.sqrt(headDim), positions };
      const rows = batch * seq;
      const [qW, kvW] = [heads * headDim, kvHeads * headDim];
      const ld = qW + 2 * kvW;
      const fused = rng.normals(rows * ld);
      const qkv = gpu.tensorFrom(fused, [fused.length], 'qkv');
      const [q, k, v] = [
        columns(fused, rows, 0, ld, 0, qW),
        columns(fused, rows, 0, ld, qW, kvW),
        columns(fused, rows, 0, ld, qW + kvW, kvW),
      ];
      const views = { q: { t: qkv, ld }, k: { t: qkv, offset: qW, ld }, v: { t: qkv, offset: qW + kvW, ld } };
      const out = gpu.tensor([rows, qW], 'out');
      const lse = gpu.tensor([batch, heads, seq], 'lse');
      const pos = u32Tensor(gpu, positions, 'positions');
      const doutData = rng.normals(rows * qW);
      const dout = gpu.tensorFrom(doutData, [rows, qW], 'dout');
      const dqkv = gpu.tensor([rows * ld], 'dqkv');
      const delta = gpu.tensor([batch, heads, seq], 'delta');
      await validated(gpu, async () => {
        await runOnce(gpu, (l) => {
          flashAttentionForward(l, { ...views, out: { t: out, ld: qW }, lse, ...d, positions: pos, variant });
          flashAttentionBackward(l, {
            ...views,
            out: { t: out, ld: qW },
            lse,
            dout: { t: dout, ld: qW },
            dq: { t: dqkv, ld },
            dk: { t: dqkv, offset: qW, ld },
            dv: { t: dqkv, offset: qW + kvW, ld },
            delta,
            ...d,
            positions: pos,
            variant,
          });
        });
      });
      const ref = flashForwardRef(q, k, v, d);
      expectClose(await gpu.read(out), ref.out, 'out');
      expectClose(await gpu.read(lse), ref.lse, 'lse');
      const g = flashBackwardRef(q, k, v, doutData, ref.lse, d);
      const grads = await gpu.read(dqkv);
      expectClose(columns(grads, rows, 0, ld, 0, qW), g.dq, 'dq');
      expectClose(columns(grads, rows, 0, ld, qW, kvW), g.dk, 'dk');
      expectClose(columns(grads, rows, 0, ld, qW + kvW, kvW), g.dv, 'dv');
    });
  }

  for (const variant of ['workgroup', 'thread'] as const) {
    it(`rmsnorm and layernorm (${variant}): forward, backward, parameter gradients`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(11);
      const [rows, width, eps] = [9, 300, 1e-5]; // wider than a workgroup
      const xData = rng.normals(rows * width);
      const doutData = rng.normals(rows * width);
      const w = rng.normals(width);
      const bData = rng.normals(width);
      const [x, dout] = [gpu.tensorFrom(xData, [rows, width], 'x'), gpu.tensorFrom(doutData, [rows, width], 'dout')];
      const [weight, bias] = [gpu.tensorFrom(w, [width], 'weight'), gpu.tensorFrom(bData, [width], 'bias')];
      const t = (label: string, n = rows * width) => gpu.tensor([n], label);
      const rms = { out: t('rms.out'), rstd: t('rms.rstd', rows), dx: t('rms.dx'), dweight: t('rms.dw', width) };
      const ln = {
        out: t('ln.out'),
        mean: t('ln.mean', rows),
        rstd: t('ln.rstd', rows),
        dx: t('ln.dx'),
        dweight: t('ln.dw', width),
        dbias: t('ln.db', width),
      };
      const shape = { rows, width, variant };
      const grads = { dout: { t: dout }, x: { t: x }, accumulate: false, ...shape };
      await validated(gpu, async () => {
        await runOnce(gpu, (l) => {
          rmsnormForward(l, { x: { t: x }, out: { t: rms.out }, weight, rstd: rms.rstd, eps, ...shape });
          rmsnormBackward(l, { ...grads, weight, rstd: rms.rstd, dx: { t: rms.dx } });
          rmsnormWeightGrad(l, { ...grads, rstd: rms.rstd, dweight: rms.dweight });
          const stats = { mean: ln.mean, rstd: ln.rstd };
          layernormForward(l, { x: { t: x }, out: { t: ln.out }, weight, bias, ...stats, eps, ...shape });
          layernormBackward(l, { ...grads, weight, ...stats, dx: { t: ln.dx } });
          layernormParamGrad(l, { ...grads, ...stats, dweight: ln.dweight, dbias: ln.dbias });
        });
      });
      const r = rmsnormForwardRef(xData, w, rows, width, eps);
      expectClose(await gpu.read(rms.out), r.out, 'rmsnorm out');
      expectClose(await gpu.read(rms.dx), rmsnormBackwardRef(doutData, xData, w, r.rstd, rows, width), 'rmsnorm dx');
      expectClose(await gpu.read(rms.dweight), rmsnormWeightGradRef(doutData, xData, r.rstd, rows, width), 'rms dw');
      const n = layernormForwardRef(xData, w, bData, rows, width, eps);
      expectClose(await gpu.read(ln.out), n.out, 'layernorm out');
      const lnDx = layernormBackwardRef(doutData, xData, w, n.mean, n.rstd, rows, width);
      expectClose(await gpu.read(ln.dx), lnDx, 'layernorm dx');
      const p = layernormParamGradRef(doutData, xData, n.mean, n.rstd, rows, width);
      expectClose(await gpu.read(ln.dweight), p.dweight, 'layernorm dweight');
      expectClose(await gpu.read(ln.dbias), p.dbias, 'layernorm dbias');
    });
  }

  it('rope forward and backward: packed positions, partial rotary, strided rows', async () => {
    const gpu = await testGpu();
    const rng = new Rng(3);
    const positions = [0, 1, 2, 0, 1, 4095, 100000];
    const [tokens, heads, headDim, rotaryDim, offset, ld] = [positions.length, 3, 8, 4, 5, 40];
    const width = heads * headDim;
    const size = offset + (tokens - 1) * ld + width + 2;
    const data = rng.normals(size);
    const inv = ropeInvFreq(10000, rotaryDim);
    const args = {
      positions: u32Tensor(gpu, positions, 'positions'),
      invFreq: gpu.tensorFrom(inv, [inv.length], 'invFreq'),
      tokens,
      heads,
      headDim,
      rotaryDim,
    };
    const [x, grad] = [gpu.tensorFrom(data, [size], 'x'), gpu.tensorFrom(data, [size], 'grad')];
    await runOnce(gpu, (l) => {
      ropeForward(l, { x: { t: x, offset, ld }, ...args });
      ropeBackward(l, { x: { t: grad, offset, ld }, ...args });
    });
    const dense = columns(data, tokens, offset, ld, 0, width);
    const expected = (sign: 1 | -1) => {
      const rotated = ropeRef(dense, positions, inv, tokens, heads, headDim, rotaryDim, sign);
      const want = Float64Array.from(data);
      for (let t = 0; t < tokens; t++)
        for (let j = 0; j < width; j++) want[offset + t * ld + j] = rotated[t * width + j];
      return want;
    };
    expectClose(await gpu.read(x), expected(1), 'forward');
    expectClose(await gpu.read(grad), expected(-1), 'backward');
  });

  for (const variant of ['wide', 'narrow'] as const) {
    it(`cross-entropy (${variant}): fused forward+backward with ignored rows and a logit of 80`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(7);
      const [rows, vocab, gradScale] = [9, 1037, 1 / 6];
      const logits = rng.normals(rows * vocab, 2);
      logits[3] = 80;
      const targets = Int32Array.from({ length: rows }, () => rng.int(vocab));
      targets[1] = -100;
      targets[4] = vocab;
      const tTargets = gpu.tensor([rows], 'targets', 'i32');
      gpu.upload(tTargets, targets);
      const tLogits = gpu.tensorFrom(logits, [rows, vocab], 'logits');
      const losses = gpu.tensor([rows], 'losses');
      const dlogits = gpu.tensor([rows, vocab], 'dlogits');
      const scale = gpu.tensorFrom(new Float32Array([gradScale]), [1], 'gradScale');
      await validated(gpu, () =>
        runOnce(gpu, (l) =>
          crossEntropyForwardBackward(l, {
            logits: tLogits,
            targets: tTargets,
            losses,
            dlogits,
            gradScale: scale,
            rows,
            vocab,
            variant,
          }),
        ),
      );
      const want = crossEntropyRef(logits, targets, rows, vocab, gradScale);
      expectClose(await gpu.read(losses), want.losses, 'losses');
      expectClose(await gpu.read(dlogits), want.dlogits, 'dlogits');
    });
  }

  it('sums (two-stage), gradient clipping and 3 AdamW steps', async () => {
    const gpu = await testGpu();
    const rng = new Rng(41);
    const big = rng.normals(70000);
    const x = gpu.tensorFrom(big, [big.length], 'x');
    const out = gpu.tensor([2], 'out');
    await runOnce(gpu, (l) => {
      sum(l, { x, n: big.length, out, outIndex: 0 });
      sumSquares(l, { x, n: big.length, out, outIndex: 1 });
    });
    expectClose(await gpu.read(out), [sumRef(big), sumSquaresRef(big)], 'sums', { atol: 3e-3, rtol: 1e-4 });

    const hyper: AdamwHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 };
    const [n, maxNorm] = [300, 0.5];
    const param = Float64Array.from(rng.normals(n));
    const [m, v] = [new Float64Array(n), new Float64Array(n)];
    const tParam = gpu.tensorFrom(Float32Array.from(param), [n], 'param');
    const [tGrad, tM, tV] = [gpu.tensor([n], 'grad'), gpu.tensor([n], 'm'), gpu.tensor([n], 'v')];
    const [hp, sq, state] = [gpu.tensor([ADAMW_HP_SIZE], 'hp'), gpu.tensor([1], 'sq'), gpu.tensor([2], 'state')];
    const list = gpu.list('step');
    sumSquares(list, { x: tGrad, n, out: sq, outIndex: 0 });
    clipFactor(list, { sq, count: 1, state, normIndex: 0, clipIndex: 1, maxNorm });
    adamw(list, { param: tParam, grad: tGrad, m: tM, v: tV, n, hp, state, clipIndex: 1, lrScale: 2, applyDecay: true });
    await validated(gpu, async () => {
      for (let step = 1; step <= 3; step++) {
        const g = rng.normals(n, 0.6);
        const hpValues = new Float32Array(ADAMW_HP_SIZE);
        hpValues[ADAMW_HP.lr] = hyper.lr;
        hpValues[ADAMW_HP.beta1] = hyper.beta1;
        hpValues[ADAMW_HP.beta2] = hyper.beta2;
        hpValues[ADAMW_HP.eps] = hyper.eps;
        hpValues[ADAMW_HP.weightDecay] = hyper.weightDecay;
        hpValues[ADAMW_HP.bias1] = 1 - hyper.beta1 ** step;
        hpValues[ADAMW_HP.bias2] = 1 - hyper.beta2 ** step;
        gpu.upload(tGrad, g);
        gpu.upload(hp, hpValues);
        list.run();
        const clip = clipFactorRef([sumSquaresRef(g)], 1, maxNorm).clip;
        adamwStepRef(param, g, m, v, hyper, step, { clip, lrScale: 2, applyDecay: true });
        expectClose(await gpu.read(state, 1, 1), [clip], `step ${step} clip`);
      }
    });
    expectClose(await gpu.read(tParam), param, 'param');
    expectClose(await gpu.read(tM), m, 'm');
    expectClose(await gpu.read(tV), v, 'v');
    await list.release();
  });

  it('embedding forward and scatter-add backward (repeated ids, one past the vocabulary)', async () => {
    const gpu = await testGpu();
    const rng = new Rng(13);
    const ids = [2, 2, 0, 4, 2, 1000000, 1, 2, 3];
    const [rows, width, vocab] = [ids.length, 67, 5];
    const tableData = rng.normals(vocab * width);
    const doutData = rng.normals(rows * width);
    const tokens = u32Tensor(gpu, ids, 'tokens');
    const table = gpu.tensorFrom(tableData, [vocab, width], 'table');
    const out = gpu.tensor([rows, width], 'out');
    const dout = gpu.tensorFrom(doutData, [rows, width], 'dout');
    const dtable = gpu.tensor([vocab, width], 'dtable');
    await runOnce(gpu, (l) => {
      embedForward(l, { tokens, table, out, rows, width, vocab });
      embedBackward(l, { tokens, dout, dtable, rows, width, vocab, accumulate: false });
    });
    expectClose(await gpu.read(out), embedForwardRef(ids, tableData, rows, width, vocab), 'out');
    expectClose(await gpu.read(dtable), embedBackwardRef(ids, doutData, rows, width, vocab), 'dtable');
  });

  it('swiglu and gelu forward and backward, bias add and gradient', async () => {
    const gpu = await testGpu();
    const rng = new Rng(17);
    const n = 1000;
    const [g, u, d] = [rng.normals(n, 3), rng.normals(n), rng.normals(n)];
    const [gate, up, dout] = [
      gpu.tensorFrom(g, [n], 'gate'),
      gpu.tensorFrom(u, [n], 'up'),
      gpu.tensorFrom(d, [n], 'd'),
    ];
    const t = (label: string) => gpu.tensor([n], label);
    const [swiOut, dgate, dup, geluOut, dx] = [t('swiglu'), t('dgate'), t('dup'), t('gelu'), t('dx')];
    const [rows, cols, ld] = [7, 130, 133];
    const yData = rng.normals(rows * ld);
    const biasData = rng.normals(cols);
    const y = gpu.tensorFrom(yData, [yData.length], 'y');
    const bias = gpu.tensorFrom(biasData, [cols], 'bias');
    const dbias = gpu.tensor([cols], 'dbias');
    await runOnce(gpu, (l) => {
      swigluForward(l, { gate, up, out: swiOut, n });
      swigluBackward(l, { dout, gate, up, dgate, dup, n });
      geluForward(l, { x: gate, out: geluOut, n });
      geluBackward(l, { dout, x: gate, dx, n });
      biasGrad(l, { dy: { t: y, ld }, dbias, dbiasOffset: 0, rows, cols, accumulate: false });
      biasAdd(l, { y: { t: y, ld }, bias, biasOffset: 0, rows, cols });
    });
    expectClose(await gpu.read(swiOut), swigluForwardRef(g, u, n), 'swiglu');
    const swi = swigluBackwardRef(d, g, u, n);
    expectClose(await gpu.read(dgate), swi.dgate, 'dgate');
    expectClose(await gpu.read(dup), swi.dup, 'dup');
    expectClose(await gpu.read(geluOut), geluForwardRef(g, n), 'gelu');
    expectClose(await gpu.read(dx), geluBackwardRef(d, g, n), 'gelu dx');
    const dense = columns(yData, rows, 0, ld, 0, cols);
    expectClose(await gpu.read(dbias), biasGradRef(dense, rows, cols), 'dbias', { atol: 1e-4, rtol: 1e-4 });
    expectClose(columns(await gpu.read(y), rows, 0, ld, 0, cols), biasAddRef(dense, biasData, rows, cols), 'y');
  });

  for (const variant of ['wide', 'narrow'] as const) {
    it(`argmax (${variant}): first index of each row maximum, ties included`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(19);
      const [rows, vocab, offset, ld] = [5, 1037, 1, 1040];
      const x = rng.normals(offset + rows * ld, 3);
      for (let i = 0; i < vocab; i++) x[offset + 2 * ld + i] = -1.5; // every thread ties
      const t = gpu.tensorFrom(x, [x.length], 'x');
      const out = gpu.tensor([rows], 'out', 'u32');
      await runOnce(gpu, (l) => argmax(l, { x: { t, offset, ld }, out, rows, vocab, variant }));
      expect([...(await gpu.readU32(out))]).toEqual([...argmaxRef(x, rows, vocab, offset, ld)]);
    });
  }
});
