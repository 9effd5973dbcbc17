import { describe, expect, it } from 'vitest';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from '../../src/kernels/attention.ref';
import {
  flashAttentionBackward,
  flashAttentionForward,
  workgroupTile,
  type FlashAttentionVariant,
} from '../../src/kernels/flash-attention';
import { flashBackwardRef, flashForwardRef } from '../../src/kernels/flash-attention.ref';
import { Rng } from '../../src/util/random';
import type { Gpu } from '../../src/gpu/gpu';
import type { Tensor } from '../../src/gpu/tensor';
import { expectClose, numericGrad, runOnce, testGpu, validated } from '../helpers/gpu';

/** Copies columns [col, col + width) of a strided matrix into a dense one. */
function slice(
  src: ArrayLike<number>,
  rows: number,
  offset: number,
  ld: number,
  col: number,
  width: number,
): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = src[offset + r * ld + col + c];
  return out;
}

/** Writes a dense rows x width matrix into columns [col, col + width) of a strided one. */
function place(
  dst: Float64Array,
  src: ArrayLike<number>,
  rows: number,
  offset: number,
  ld: number,
  col: number,
  width: number,
): void {
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) dst[offset + r * ld + col + c] = src[r * width + c];
}

/**
 * Packed rows: row 0 restarts its positions at every start (a start right after another makes a one-token
 * document whose query sees only itself); row 1 (if any) continues a document from before the row (positions
 * above t) and restarts at `restart`.
 */
function packedPositions(batch: number, seq: number, starts: number[], restart: number): number[] {
  return Array.from({ length: batch * seq }, (_, r) => {
    const t = r % seq;
    if (r < seq) return t - Math.max(...starts.filter((s) => s <= t));
    return t < restart ? t + 9 : t - restart;
  });
}

function uploadPositions(gpu: Gpu, p: ArrayLike<number>): Tensor {
  const t = gpu.tensor([p.length], 'positions', 'u32');
  gpu.upload(t, Uint32Array.from(p));
  return t;
}

const label = (d: AttentionDims, variant: string) =>
  `${variant} B${d.batch} T${d.seq} H${d.heads}/${d.kvHeads} hd${d.headDim}${d.positions ? ' packed' : ''}`;

describe('flash attention reference', () => {
  it('forward: out equals the probabilities reference; exp(s - lse) are its probabilities', () => {
    const rng = new Rng(21);
    const positions = packedPositions(2, 9, [0, 3, 4, 7], 5);
    for (const pos of [undefined, positions]) {
      const d: AttentionDims = { batch: 2, seq: 9, heads: 4, kvHeads: 2, headDim: 3, scale: 0.6, positions: pos };
      const q = rng.normals(18 * 4 * 3),
        k = rng.normals(18 * 2 * 3),
        v = rng.normals(18 * 2 * 3);
      const ref = attentionForwardRef(q, k, v, d);
      const { out, lse } = flashForwardRef(q, k, v, d);
      expectClose(out, ref.out, 'out', { atol: 1e-12, rtol: 1e-12 });
      // probs_ij = exp(s_ij - lse_i): check on the diagonal (always allowed), where s_ii is easy to form.
      for (let b = 0; b < 2; b++) {
        for (let h = 0; h < 4; h++) {
          for (let i = 0; i < 9; i++) {
            let s = 0;
            for (let c = 0; c < 3; c++) s += q[(b * 9 + i) * 12 + h * 3 + c] * k[(b * 9 + i) * 6 + (h >> 1) * 3 + c];
            expect(Math.exp(s * d.scale - lse[(b * 4 + h) * 9 + i])).toBeCloseTo(
              ref.probs[((b * 4 + h) * 9 + i) * 9 + i],
              12,
            );
          }
        }
      }
    }
  });

  it('backward from lse equals the probabilities reference and finite differences (packed rows)', () => {
    const rng = new Rng(22);
    const positions = packedPositions(1, 8, [0, 2, 3], 0);
    const d: AttentionDims = { batch: 1, seq: 8, heads: 2, kvHeads: 1, headDim: 3, scale: 0.8, positions };
    const q = Float64Array.from(rng.normals(8 * 6)),
      k = Float64Array.from(rng.normals(8 * 3)),
      v = Float64Array.from(rng.normals(8 * 3));
    const w = Float64Array.from(rng.normals(8 * 6));
    const { lse } = flashForwardRef(q, k, v, d);
    const g = flashBackwardRef(q, k, v, w, lse, d);
    const want = attentionBackwardRef(q, k, v, w, d);
    expectClose(g.dq, want.dq, 'dq', { atol: 1e-12, rtol: 1e-10 });
    expectClose(g.dk, want.dk, 'dk', { atol: 1e-12, rtol: 1e-10 });
    expectClose(g.dv, want.dv, 'dv', { atol: 1e-12, rtol: 1e-10 });
    const loss = (qq: ArrayLike<number>, kk: ArrayLike<number>, vv: ArrayLike<number>) =>
      flashForwardRef(qq, kk, vv, d).out.reduce((s, o, i) => s + o * w[i], 0);
    expectClose(
      g.dq,
      numericGrad((x) => loss(x, k, v), q),
      'dq vs finite differences',
      { atol: 1e-7, rtol: 1e-6 },
    );
    expectClose(
      g.dk,
      numericGrad((x) => loss(q, x, v), k),
      'dk vs finite differences',
      { atol: 1e-7, rtol: 1e-6 },
    );
    expectClose(
      g.dv,
      numericGrad((x) => loss(q, k, x), v),
      'dv vs finite differences',
      { atol: 1e-7, rtol: 1e-6 },
    );
  });
});

interface CaseOptions {
  /** q multiplied by this: scores in the hundreds overflow exp() unless the max is subtracted. */
  qGain?: number;
  /** dk and dv as two tensors (the dk|dv kernel runs once per output) instead of slices of one. */
  separateDkDv?: boolean;
  tol?: { atol?: number; rtol?: number };
  /** Records the kernels through this Gpu (a view of the test one with other limits). */
  runner?: Gpu;
}

/** One case on the GPU, forward and backward, against the float64 reference (positions: packed rows). */
async function checkCase(
  gpu: Gpu,
  rng: Rng,
  d: AttentionDims,
  variant: FlashAttentionVariant,
  o: CaseOptions = {},
): Promise<void> {
  const name = label(d, variant);
  const positions = d.positions ? uploadPositions(gpu, d.positions) : undefined;
  const { batch, seq, heads, kvHeads, headDim } = d;
  const rows = batch * seq;
  const qW = heads * headDim;
  const kvW = kvHeads * headDim;
  // Fused q|k|v with a leading offset and padding columns, so every view is genuinely strided.
  const off = 3;
  const ld = qW + 2 * kvW + 2;
  const cols = { q: 0, k: qW, v: qW + kvW };
  const fused = rng.normals(off + rows * ld);
  if (o.qGain) for (let r = 0; r < rows; r++) for (let c = 0; c < qW; c++) fused[off + r * ld + c] *= o.qGain;
  const qkv = gpu.tensorFrom(fused, [fused.length], 'qkv');
  const q = slice(fused, rows, off, ld, cols.q, qW);
  const k = slice(fused, rows, off, ld, cols.k, kvW);
  const v = slice(fused, rows, off, ld, cols.v, kvW);
  const views = {
    q: { t: qkv, offset: off + cols.q, ld },
    k: { t: qkv, offset: off + cols.k, ld },
    v: { t: qkv, offset: off + cols.v, ld },
  };

  // out is a strided view too (offset 1, two padding columns) over sentinels; lse starts as sentinels.
  const outLd = qW + 2;
  const outInit = new Float32Array(1 + rows * outLd).fill(9);
  const out = gpu.tensorFrom(outInit, [outInit.length], 'out');
  const lse = gpu.tensorFrom(new Float32Array(batch * heads * seq).fill(5), [batch, heads, seq], 'lse');
  const outView = { t: out, offset: 1, ld: outLd };
  await runOnce(o.runner ?? gpu, (l) =>
    flashAttentionForward(l, { ...views, out: outView, lse, ...d, variant, positions }),
  );
  const ref = flashForwardRef(q, k, v, d);
  const wantOut = Float64Array.from(outInit);
  place(wantOut, ref.out, rows, 1, outLd, 0, qW);
  const gotOut = await gpu.read(out);
  expectClose(gotOut, wantOut, `${name} out`, o.tol);
  expectClose(await gpu.read(lse), ref.lse, `${name} lse`, o.tol);

  // Backward: dout as a strided view; dq|dk|dv as slices of one fused gradient buffer with sentinels
  // (or dq|dk there and dv in its own strided tensor).
  const doutData = rng.normals(2 + rows * (qW + 1));
  const dout = gpu.tensorFrom(doutData, [doutData.length], 'dout');
  const doutView = { t: dout, offset: 2, ld: qW + 1 };
  const doutDense = slice(doutData, rows, 2, qW + 1, 0, qW);
  const gradInit = new Float32Array(off + rows * ld).fill(7);
  const dqkv = gpu.tensorFrom(gradInit, [gradInit.length], 'dqkv');
  const dvInit = new Float32Array(4 + rows * (kvW + 3)).fill(6);
  const dvOwn = gpu.tensorFrom(dvInit, [dvInit.length], 'dv');
  const dviews = {
    dq: { t: dqkv, offset: off + cols.q, ld },
    dk: { t: dqkv, offset: off + cols.k, ld },
    dv: o.separateDkDv ? { t: dvOwn, offset: 4, ld: kvW + 3 } : { t: dqkv, offset: off + cols.v, ld },
  };
  const delta = gpu.tensor([batch, heads, seq], 'delta');
  await runOnce(o.runner ?? gpu, (l) =>
    flashAttentionBackward(l, {
      ...views,
      out: outView,
      lse,
      dout: doutView,
      ...dviews,
      delta,
      ...d,
      variant,
      positions,
    }),
  );
  const g = flashBackwardRef(q, k, v, doutDense, ref.lse, d);
  expectClose(await gpu.read(delta), g.delta, `${name} delta`, o.tol);
  const wantGrad = Float64Array.from(gradInit);
  place(wantGrad, g.dq, rows, off, ld, cols.q, qW);
  place(wantGrad, g.dk, rows, off, ld, cols.k, kvW);
  if (o.separateDkDv) {
    const wantDv = Float64Array.from(dvInit);
    place(wantDv, g.dv, rows, 4, kvW + 3, 0, kvW);
    expectClose(await gpu.read(dvOwn), wantDv, `${name} dv (own tensor)`, o.tol);
  } else {
    place(wantGrad, g.dv, rows, off, ld, cols.v, kvW);
  }
  const gotGrad = await gpu.read(dqkv);
  expectClose(gotGrad, wantGrad, `${name} dq|dk|dv`, o.tol);
}

// Both kernel sets run on SwiftShader, whichever one the adapter would pick by default.
const VARIANTS: FlashAttentionVariant[] = ['thread', 'workgroup'];

describe.each(VARIANTS)('flash attention (%s kernels)', (variant) => {
  // [batch, seq, heads, kvHeads, headDim]: 1-token rows, lengths that are multiples of neither the thread
  // kernels' 4 nor the workgroup kernels' 16 rows (70 spans several key tiles), GQA (3 query heads per kv
  // head) and MHA, head sizes that are not powers of two.
  const cases: [number, number, number, number, number][] = [];
  for (const seq of [1, 7, 33, 70]) {
    for (const [heads, kvHeads] of [
      [6, 2],
      [4, 4],
    ]) {
      for (const headDim of [8, 12, 20]) cases.push([2, seq, heads, kvHeads, headDim]);
    }
  }

  it('forward and backward on column slices of fused q|k|v buffers match the float64 reference', async () => {
    const gpu = await testGpu();
    const rng = new Rng(31);
    await validated(gpu, async () => {
      for (const [batch, seq, heads, kvHeads, headDim] of cases) {
        await checkCase(gpu, rng, { batch, seq, heads, kvHeads, headDim, scale: 1 / Math.sqrt(headDim) }, variant);
      }
    });
  });

  it('packed rows: documents restart mid-row (one-token documents included) and attend only to themselves', async () => {
    const gpu = await testGpu();
    const rng = new Rng(32);
    await validated(gpu, async () => {
      // The last shape makes every token of row 0 its own document: each query's only key is itself.
      const everyToken = Array.from({ length: 9 }, (_, t) => t);
      const shapes = [
        [70, 6, 2, 12, [0, 3, 4, 5, 20, 41, 69], 30],
        [33, 4, 4, 20, [0, 1, 17, 18], 16],
        [7, 6, 2, 8, [0, 2, 3], 4],
        [9, 4, 2, 8, everyToken, 3],
      ] as const;
      for (const [seq, heads, kvHeads, headDim, starts, restart] of shapes) {
        const positions = packedPositions(2, seq, [...starts], restart);
        await checkCase(gpu, rng, { batch: 2, seq, heads, kvHeads, headDim, scale: 0.4, positions }, variant);
      }
    });
  });

  it('more shapes (packed GQA, plain MHA), and dk/dv may be separate tensors', async () => {
    const gpu = await testGpu();
    const rng = new Rng(33);
    await validated(gpu, async () => {
      const packed = packedPositions(2, 40, [0, 9, 10, 25], 12);
      await checkCase(
        gpu,
        rng,
        { batch: 2, seq: 40, heads: 6, kvHeads: 2, headDim: 12, scale: 0.3, positions: packed },
        variant,
      );
      await checkCase(gpu, rng, { batch: 2, seq: 21, heads: 4, kvHeads: 4, headDim: 8, scale: 0.5 }, variant);
      await checkCase(
        gpu,
        rng,
        {
          batch: 2,
          seq: 19,
          heads: 6,
          kvHeads: 2,
          headDim: 20,
          scale: 0.3,
          positions: packedPositions(2, 19, [0, 6], 7),
        },
        variant,
        { separateDkDv: true },
      );
    });
  });

  it('large scores stay finite and accurate (the running max is subtracted before exp)', async () => {
    const gpu = await testGpu();
    const rng = new Rng(34);
    await validated(gpu, async () => {
      // q x 40: scores around ±100 (exp overflows f32 past 88); relative error of f32 scores grows with them.
      await checkCase(
        gpu,
        rng,
        { batch: 2, seq: 33, heads: 4, kvHeads: 2, headDim: 8, scale: 1 / Math.sqrt(8) },
        variant,
        { qGain: 40, tol: { atol: 1e-4, rtol: 1e-3 } },
      );
    });
  });

  it('dq, dk, dv and out are overwritten, not accumulated, on a second run', async () => {
    const gpu = await testGpu();
    const rng = new Rng(35);
    const d = { batch: 1, seq: 6, heads: 2, kvHeads: 1, headDim: 3, scale: 0.5 };
    const rows = 6;
    const qd = rng.normals(rows * 6),
      kd = rng.normals(rows * 3),
      vd = rng.normals(rows * 3),
      dod = rng.normals(rows * 6);
    const [q, k, v, dout] = [qd, kd, vd, dod].map((x, i) => gpu.tensorFrom(x, [x.length], `in${i}`));
    const [out, dq, dk, dv] = [6, 6, 3, 3].map((w, i) => gpu.tensor([rows, w], `grad${i}`));
    const lse = gpu.tensor([1, 2, 6], 'lse');
    const delta = gpu.tensor([1, 2, 6], 'delta');
    await validated(gpu, async () => {
      const list = gpu.list('twice');
      const views = { q: { t: q, ld: 6 }, k: { t: k, ld: 3 }, v: { t: v, ld: 3 }, out: { t: out, ld: 6 } };
      flashAttentionForward(list, { ...views, lse, ...d, variant });
      flashAttentionBackward(list, {
        ...views,
        lse,
        dout: { t: dout, ld: 6 },
        dq: { t: dq, ld: 6 },
        dk: { t: dk, ld: 3 },
        dv: { t: dv, ld: 3 },
        delta,
        ...d,
        variant,
      });
      list.run();
      list.run();
      const ref = flashForwardRef(qd, kd, vd, d);
      const g = flashBackwardRef(qd, kd, vd, dod, ref.lse, d);
      expectClose(await gpu.read(out), ref.out, 'out');
      expectClose(await gpu.read(dq), g.dq, 'dq');
      expectClose(await gpu.read(dk), g.dk, 'dk');
      expectClose(await gpu.read(dv), g.dv, 'dv');
    });
  });

  it('mutations are caught: ignoring positions, or a wrong lse, fails the comparison', async () => {
    const gpu = await testGpu();
    const rng = new Rng(36);
    const positions = packedPositions(1, 12, [0, 5, 6], 0);
    const shape = { batch: 1, seq: 12, heads: 2, kvHeads: 1, headDim: 4, scale: 0.5, variant };
    const d: AttentionDims = { ...shape, positions };
    const rows = 12;
    const qd = rng.normals(rows * 8),
      kd = rng.normals(rows * 4),
      vd = rng.normals(rows * 4),
      dod = rng.normals(rows * 8);
    const [q, k, v, dout] = [qd, kd, vd, dod].map((x, i) => gpu.tensorFrom(x, [x.length], `in${i}`));
    const [out, dq, dk, dv] = [8, 8, 4, 4].map((w, i) => gpu.tensor([rows, w], `t${i}`));
    const lse = gpu.tensor([1, 2, 12], 'lse');
    const delta = gpu.tensor([1, 2, 12], 'delta');
    const pos = uploadPositions(gpu, positions);
    const views = { q: { t: q, ld: 8 }, k: { t: k, ld: 4 }, v: { t: v, ld: 4 }, out: { t: out, ld: 8 } };
    const grads = { dout: { t: dout, ld: 8 }, dq: { t: dq, ld: 8 }, dk: { t: dk, ld: 4 }, dv: { t: dv, ld: 4 }, delta };
    const ref = flashForwardRef(qd, kd, vd, d);
    const g = flashBackwardRef(qd, kd, vd, dod, ref.lse, d);
    await validated(gpu, async () => {
      // The real thing passes...
      await runOnce(gpu, (l) => flashAttentionForward(l, { ...views, lse, positions: pos, ...shape }));
      expectClose(await gpu.read(out), ref.out, 'out');
      await runOnce(gpu, (l) => flashAttentionBackward(l, { ...views, lse, positions: pos, ...grads, ...shape }));
      expectClose(await gpu.read(dk), g.dk, 'dk');
      // ...the backward without positions (a mask not recomputed) does not...
      await runOnce(gpu, (l) => flashAttentionBackward(l, { ...views, lse, ...grads, ...shape }));
      const dkNoMask = await gpu.read(dk);
      expect(() => expectClose(dkNoMask, g.dk, 'dk without positions')).toThrow(/dk without positions/);
      // ...nor a wrong lse (P no longer sums to 1)...
      const lseData = await gpu.read(lse);
      gpu.upload(
        lse,
        lseData.map((x) => x + 0.25),
      );
      await runOnce(gpu, (l) => flashAttentionBackward(l, { ...views, lse, positions: pos, ...grads, ...shape }));
      const dqBadLse = await gpu.read(dq);
      expect(() => expectClose(dqBadLse, g.dq, 'dq from a wrong lse')).toThrow(/dq from a wrong lse/);
      // ...nor the forward without positions.
      await runOnce(gpu, (l) => flashAttentionForward(l, { ...views, lse, ...shape }));
      const outNoMask = await gpu.read(out);
      expect(() => expectClose(outNoMask, ref.out, 'out without positions')).toThrow(/out without positions/);
    });
  });

  it('rejects mismatched shapes and aliased outputs with clear errors', async () => {
    const gpu = await testGpu();
    const qkv = gpu.tensor([4, 16], 'qkv');
    const lse = gpu.tensor([1, 2, 4], 'lse');
    const base = { batch: 1, seq: 4, heads: 2, kvHeads: 1, headDim: 4, scale: 0.5, variant };
    const views = { q: { t: qkv, ld: 16 }, k: { t: qkv, offset: 8, ld: 16 }, v: { t: qkv, offset: 12, ld: 16 } };
    const out = { t: gpu.tensor([4, 8], 'out'), ld: 8 };
    const list = gpu.list('errors');
    expect(() => flashAttentionForward(list, { ...views, out, lse, ...base, kvHeads: 3 })).toThrow(
      /multiple of kvHeads/,
    );
    expect(() =>
      flashAttentionForward(list, { ...views, out: { t: gpu.tensor([3, 8], 'small'), ld: 8 }, lse, ...base }),
    ).toThrow(/out \(small\)/);
    expect(() => flashAttentionForward(list, { ...views, out, lse: gpu.tensor([7], 'l'), ...base })).toThrow(
      /lse \(l\)/,
    );
    expect(() => flashAttentionForward(list, { ...views, out: { t: qkv, ld: 16 }, lse, ...base })).toThrow(
      /out and q are the same tensor/,
    );
    expect(() =>
      flashAttentionForward(list, { ...views, out, lse, positions: gpu.tensor([4], 'fpos'), ...base }),
    ).toThrow(/positions \(fpos\) must be u32/);
    const grads = {
      dout: out,
      dq: { t: gpu.tensor([4, 8], 'dq'), ld: 8 },
      dk: { t: gpu.tensor([4, 4], 'dk'), ld: 4 },
      dv: { t: gpu.tensor([4, 4], 'dv'), ld: 4 },
    };
    expect(() =>
      flashAttentionBackward(list, { ...views, out, lse, ...grads, delta: gpu.tensor([5], 'd'), ...base }),
    ).toThrow(/delta \(d\)/);
    const scratch = gpu.tensor([4, 8], 'scratch');
    expect(() =>
      flashAttentionBackward(list, {
        ...views,
        out,
        lse,
        ...grads,
        dq: { t: scratch, ld: 8 },
        delta: scratch,
        ...base,
      }),
    ).toThrow(/dq and delta are the same tensor/);
    expect(list.dispatchCount).toBe(0);
  });
});

/** The test Gpu with a smaller maxComputeWorkgroupStorageSize, as a GPU with less shared memory reports. */
function withSharedMemory(gpu: Gpu, bytes: number): Gpu {
  const limits = {
    maxComputeWorkgroupStorageSize: bytes,
    maxComputeWorkgroupsPerDimension: gpu.limits.maxComputeWorkgroupsPerDimension,
  };
  return Object.create(gpu, { limits: { get: () => limits } }) as Gpu;
}

describe('flash attention workgroup tiles', () => {
  it('tiles of 4, 8 and 16 keys (GPUs with less shared memory) give the same results', async () => {
    const gpu = await testGpu();
    const rng = new Rng(37);
    await validated(gpu, async () => {
      // headDim 12 needs 449 + 61 * BK floats.
      for (const [bytes, keys] of [
        [3000, 4],
        [4000, 8],
        [6000, 16],
      ]) {
        expect(workgroupTile(12, bytes)?.keys).toBe(keys);
        const positions = packedPositions(2, 45, [0, 7, 8, 30], 21);
        await checkCase(
          gpu,
          rng,
          { batch: 2, seq: 45, heads: 6, kvHeads: 2, headDim: 12, scale: 0.4, positions },
          'workgroup',
          { runner: withSharedMemory(gpu, bytes) },
        );
      }
    });
  });

  it('fit the shared memory they are given, and the wrapper falls back or refuses where none does', async () => {
    expect(workgroupTile(64, 16384)).toEqual({ headDim: 64, keys: 8 });
    expect(workgroupTile(64, 32768)).toEqual({ headDim: 64, keys: 32 });
    expect(workgroupTile(128, 32768)).toEqual({ headDim: 128, keys: 8 });
    expect(workgroupTile(128, 16384)).toBeNull();
    expect(workgroupTile(257, 1 << 20)).toBeNull();
    const gpu = await testGpu();
    const t = gpu.tensor([2, 600], 'x');
    const list = gpu.list('big');
    const args = {
      q: { t, ld: 600 },
      k: { t, ld: 600 },
      v: { t, ld: 600 },
      out: { t: gpu.tensor([2, 300], 'o'), ld: 300 },
      lse: gpu.tensor([2], 'l'),
    };
    const shape = { batch: 1, seq: 2, heads: 1, kvHeads: 1, headDim: 300, scale: 1 };
    expect(() => flashAttentionForward(list, { ...args, ...shape, variant: 'workgroup' })).toThrow(
      /cannot tile headDim 300/,
    );
  });
});
