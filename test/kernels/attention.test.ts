import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward, type AttentionVariant } from '../../src/kernels/attention';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from '../../src/kernels/attention.ref';
import { Rng } from '../../src/util/random';
import type { Gpu } from '../../src/gpu/gpu';
import { expectClose, numericGrad, runOnce, testGpu, validated } from '../helpers/gpu';


/** Copies columns [col, col + width) of a strided matrix into a dense one. */
function slice(src: ArrayLike<number>, rows: number, offset: number, ld: number, col: number, width: number): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = src[offset + r * ld + col + c];
  return out;
}

/** Writes a dense rows x width matrix into columns [col, col + width) of a strided one. */
function place(dst: Float64Array, src: ArrayLike<number>, rows: number, offset: number, ld: number, col: number, width: number): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) dst[offset + r * ld + col + c] = src[r * width + c];
}

describe('attention reference', () => {
  it('backward matches finite differences of the forward (float64)', () => {
    const rng = new Rng(11);
    const d: AttentionDims = { batch: 2, seq: 4, heads: 4, kvHeads: 2, headDim: 3, scale: 0.7 };
    const rows = d.batch * d.seq;
    const q = Float64Array.from(rng.normals(rows * d.heads * d.headDim));
    const k = Float64Array.from(rng.normals(rows * d.kvHeads * d.headDim));
    const v = Float64Array.from(rng.normals(rows * d.kvHeads * d.headDim));
    const w = Float64Array.from(rng.normals(rows * d.heads * d.headDim));
    // loss = sum(out * w), so dout = w.
    const loss = () => attentionForwardRef(q, k, v, d).out.reduce((s, o, i) => s + o * w[i], 0);
    const grads = attentionBackwardRef(q, k, v, w, d);
    const eps = 1e-6;
    for (const [name, x, g] of [['q', q, grads.dq], ['k', k, grads.dk], ['v', v, grads.dv]] as const) {
      const fd = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i];
        x[i] = x0 + eps;
        const up = loss();
        x[i] = x0 - eps;
        const down = loss();
        x[i] = x0;
        fd[i] = (up - down) / (2 * eps);
      }
      expectClose(g, fd, `d${name} vs finite differences`, { atol: 1e-7, rtol: 1e-6 });
    }
  });

  it('packed rows: probabilities before a document\'s start are zero, the backward still matches finite differences', () => {
    const rng = new Rng(13);
    const positions = [0, 1, 2, 0, 1, 0, 1, 2];
    const d: AttentionDims = { batch: 1, seq: 8, heads: 2, kvHeads: 1, headDim: 3, scale: 0.8, positions };
    const q = Float64Array.from(rng.normals(8 * 6)), k = Float64Array.from(rng.normals(8 * 3)), v = Float64Array.from(rng.normals(8 * 3));
    const { probs } = attentionForwardRef(q, k, v, d);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 8; i++) {
        const row = (h * 8 + i) * 8;
        let sum = 0;
        for (let j = 0; j < 8; j++) {
          if (j < i - positions[i] || j > i) expect(probs[row + j]).toBe(0);
          else expect(probs[row + j]).toBeGreaterThan(0);
          sum += probs[row + j];
        }
        expect(sum).toBeCloseTo(1, 12);
      }
    }
    const w = Float64Array.from(rng.normals(8 * 6));
    const loss = (qq: ArrayLike<number>, kk: ArrayLike<number>, vv: ArrayLike<number>) =>
      attentionForwardRef(qq, kk, vv, d).out.reduce((s, o, i) => s + o * w[i], 0);
    const grads = attentionBackwardRef(q, k, v, w, d);
    expectClose(grads.dq, numericGrad((x) => loss(x, k, v), q), 'dq (packed)', { atol: 1e-7, rtol: 1e-6 });
    expectClose(grads.dk, numericGrad((x) => loss(q, x, v), k), 'dk (packed)', { atol: 1e-7, rtol: 1e-6 });
    expectClose(grads.dv, numericGrad((x) => loss(q, k, x), v), 'dv (packed)', { atol: 1e-7, rtol: 1e-6 });
  });

  it('probs are a causal softmax: rows sum to 1, zeros above the diagonal', () => {
    const rng = new Rng(12);
    const d: AttentionDims = { batch: 1, seq: 5, heads: 2, kvHeads: 1, headDim: 2, scale: 1 };
    const { probs } = attentionForwardRef(rng.normals(20), rng.normals(10), rng.normals(10), d);
    for (let r = 0; r < d.heads * d.seq; r++) {
      const i = r % d.seq;
      let sum = 0;
      for (let j = 0; j < d.seq; j++) {
        if (j > i) expect(probs[r * d.seq + j]).toBe(0);
        sum += probs[r * d.seq + j];
      }
      expect(sum).toBeCloseTo(1, 12);
    }
  });
});

/** One case on the GPU, forward and backward, against the float64 reference (positions: packed rows). */
async function checkCase(gpu: Gpu, rng: Rng, d: AttentionDims, variant: AttentionVariant): Promise<void> {
  const positions = d.positions ? uploadPositions(gpu, d.positions) : undefined;
  const { batch, seq, heads, kvHeads, headDim } = d;
  const label = `${variant} B${batch} T${seq} H${heads}/${kvHeads} hd${headDim}${d.positions ? ' packed' : ''}`;
  const rows = batch * seq;
  const qW = heads * headDim;
  const kvW = kvHeads * headDim;
  // Fused q|k|v with a leading offset and padding columns, so every view is genuinely strided.
  const off = 3;
  const ld = qW + 2 * kvW + 2;
  const cols = { q: 0, k: qW, v: qW + kvW };
  const fused = rng.normals(off + rows * ld);
  const qkv = gpu.tensorFrom(fused, [fused.length], 'qkv');
  const q = slice(fused, rows, off, ld, cols.q, qW);
  const k = slice(fused, rows, off, ld, cols.k, kvW);
  const v = slice(fused, rows, off, ld, cols.v, kvW);

  // out is a strided view too (offset 1, two padding columns) over sentinel values.
  const outLd = qW + 2;
  const outInit = new Float32Array(1 + rows * outLd).fill(9);
  const out = gpu.tensorFrom(outInit, [outInit.length], 'out');
  const probs = gpu.tensor([batch, heads, seq, seq], 'probs');
  // Sentinels in probs check that the zeros above the diagonal are written, not assumed.
  gpu.upload(probs, new Float32Array(probs.size).fill(5));
  await runOnce(gpu, (l) =>
    attentionForward(l, {
      q: { t: qkv, offset: off + cols.q, ld }, k: { t: qkv, offset: off + cols.k, ld }, v: { t: qkv, offset: off + cols.v, ld },
      out: { t: out, offset: 1, ld: outLd }, probs, ...d, variant, positions,
    }),
  );
  const ref = attentionForwardRef(q, k, v, d);
  expectClose(await gpu.read(probs), ref.probs, `${label} probs`);
  const wantOut = Float64Array.from(outInit);
  place(wantOut, ref.out, rows, 1, outLd, 0, qW);
  expectClose(await gpu.read(out), wantOut, `${label} out`);

  // Backward: dout as a strided view; dq|dk|dv as slices of one fused gradient buffer with sentinels.
  const doutData = rng.normals(2 + rows * (qW + 1));
  const dout = gpu.tensorFrom(doutData, [doutData.length], 'dout');
  const doutDense = slice(doutData, rows, 2, qW + 1, 0, qW);
  const gradInit = new Float32Array(off + rows * ld).fill(7);
  const dqkv = gpu.tensorFrom(gradInit, [gradInit.length], 'dqkv');
  const dscores = gpu.tensor([batch, heads, seq, seq], 'dscores');
  await runOnce(gpu, (l) =>
    attentionBackward(l, {
      q: { t: qkv, offset: off + cols.q, ld }, k: { t: qkv, offset: off + cols.k, ld }, v: { t: qkv, offset: off + cols.v, ld },
      probs, dout: { t: dout, offset: 2, ld: qW + 1 },
      dq: { t: dqkv, offset: off + cols.q, ld }, dk: { t: dqkv, offset: off + cols.k, ld }, dv: { t: dqkv, offset: off + cols.v, ld },
      dscores, ...d, variant,
    }),
  );
  const g = attentionBackwardRef(q, k, v, doutDense, d);
  expectClose(await gpu.read(dscores), g.dscores, `${label} dscores`);
  const wantGrad = Float64Array.from(gradInit);
  place(wantGrad, g.dq, rows, off, ld, cols.q, qW);
  place(wantGrad, g.dk, rows, off, ld, cols.k, kvW);
  place(wantGrad, g.dv, rows, off, ld, cols.v, kvW);
  expectClose(await gpu.read(dqkv), wantGrad, `${label} dq|dk|dv`);
}

function uploadPositions(gpu: Gpu, p: ArrayLike<number>) {
  const t = gpu.tensor([p.length], 'positions', 'u32');
  gpu.upload(t, Uint32Array.from(p));
  return t;
}

// Both kernel sets run on SwiftShader, whichever one the adapter would pick by default.
const VARIANTS: AttentionVariant[] = ['workgroup', 'thread'];

describe.each(VARIANTS)('attention (%s kernels)', (variant) => {
  // [batch, seq, heads, kvHeads, headDim]: 1-token sequences, lengths that are not multiples of anything
  // (nor of the thread kernels' 4x4 blocks), GQA (2 query heads per kv head) and plain MHA, head sizes
  // below and above one block, and one sequence longer than a 128-thread row workgroup.
  const cases: [number, number, number, number, number][] = [];
  for (const seq of [1, 5, 13]) {
    for (const [heads, kvHeads] of [[4, 2], [3, 3]]) {
      for (const headDim of [4, 6, 8]) cases.push([2, seq, heads, kvHeads, headDim]);
    }
  }
  cases.push([1, 133, 4, 1, 3]);

  it('forward and backward on column slices of fused q|k|v buffers match the float64 reference', async () => {
    const gpu = await testGpu();
    const rng = new Rng(5);
    await validated(gpu, async () => {
      for (const [batch, seq, heads, kvHeads, headDim] of cases) {
        await checkCase(gpu, rng, { batch, seq, heads, kvHeads, headDim, scale: 1 / Math.sqrt(headDim) }, variant);
      }
    });
  });

  it('packed rows: every document attends only to itself', async () => {
    const gpu = await testGpu();
    const rng = new Rng(8);
    await validated(gpu, async () => {
      for (const [batch, seq, starts] of [[2, 13, [0, 5, 9]], [1, 133, [0, 1, 64, 130]], [2, 6, [0, 3]]] as const) {
        // Row 0 restarts positions at every start; row 1 (if any) is one document.
        const positions = Array.from({ length: batch * seq }, (_, r) => {
          const t = r % seq;
          if (r >= seq) return t;
          return t - Math.max(...starts.filter((s) => s <= t));
        });
        await checkCase(gpu, rng, { batch, seq, heads: 4, kvHeads: 2, headDim: 5, scale: 0.4, positions }, variant);
      }
    });
  });

  it('dq, dk and dv are overwritten, not accumulated, on a second run', async () => {
    const gpu = await testGpu();
    const rng = new Rng(6);
    const d = { batch: 1, seq: 3, heads: 2, kvHeads: 1, headDim: 2, scale: 0.5 };
    const rows = 3;
    const qd = rng.normals(rows * 2 * 2), kd = rng.normals(rows * 2), vd = rng.normals(rows * 2), dod = rng.normals(rows * 4);
    const [q, k, v, dout] = [qd, kd, vd, dod].map((x, i) => gpu.tensorFrom(x, [x.length], `in${i}`));
    const [dq, dk, dv] = [4, 2, 2].map((w, i) => gpu.tensor([rows, w], `grad${i}`));
    const probs = gpu.tensor([1, 2, 3, 3], 'probs');
    const dscores = gpu.tensor([1, 2, 3, 3], 'dscores');
    await validated(gpu, async () => {
      const list = gpu.list('twice');
      attentionForward(list, { q: { t: q, ld: 4 }, k: { t: k, ld: 2 }, v: { t: v, ld: 2 }, out: { t: gpu.tensor([rows, 4], 'out'), ld: 4 }, probs, ...d, variant });
      attentionBackward(list, {
        q: { t: q, ld: 4 }, k: { t: k, ld: 2 }, v: { t: v, ld: 2 }, probs, dout: { t: dout, ld: 4 },
        dq: { t: dq, ld: 4 }, dk: { t: dk, ld: 2 }, dv: { t: dv, ld: 2 }, dscores, ...d, variant,
      });
      list.run();
      list.run();
      const g = attentionBackwardRef(qd, kd, vd, dod, d);
      expectClose(await gpu.read(dq), g.dq, 'dq');
      expectClose(await gpu.read(dk), g.dk, 'dk');
      expectClose(await gpu.read(dv), g.dv, 'dv');
    });
  });

  it('rejects mismatched shapes and aliased outputs with clear errors', async () => {
    const gpu = await testGpu();
    const qkv = gpu.tensor([4, 16], 'qkv');
    const probs = gpu.tensor([1, 2, 4, 4], 'probs');
    const base = { batch: 1, seq: 4, heads: 2, kvHeads: 1, headDim: 4, scale: 0.5 };
    const views = { q: { t: qkv, ld: 16 }, k: { t: qkv, offset: 8, ld: 16 }, v: { t: qkv, offset: 12, ld: 16 } };
    const list = gpu.list('errors');
    expect(() => attentionForward(list, { ...views, out: { t: gpu.tensor([4, 8], 'out'), ld: 8 }, probs, ...base, kvHeads: 3 })).toThrow(/multiple of kvHeads/);
    expect(() => attentionForward(list, { ...views, out: { t: gpu.tensor([3, 8], 'small'), ld: 8 }, probs, ...base })).toThrow(/out \(small\)/);
    expect(() => attentionForward(list, { ...views, out: { t: gpu.tensor([4, 8], 'out'), ld: 8 }, probs: gpu.tensor([10], 'p'), ...base })).toThrow(/probs \(p\)/);
    expect(() => attentionForward(list, { ...views, out: { t: qkv, ld: 16, offset: 0 }, probs, ...base })).toThrow(/out and v are the same tensor/);
  });
});
