import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu';
import { graloraBackward, graloraForward, graloraShuffle } from '../../src/kernels/gralora';
import {
  graloraBackwardRef,
  graloraForwardRef,
  graloraShuffleRef,
  type GraloraRefParams,
} from '../../src/kernels/gralora.ref';
import { Rng } from '../../src/util/random';
import { dot, expectClose, numericGrad, runOnce, testGpu } from '../helpers/gpu';

function randomParams(
  rng: Rng,
  inDim: number,
  outDim: number,
  k: number,
  rank: number,
  hybridRank = 0,
  scale = 1.3,
): GraloraRefParams {
  return {
    inDim,
    outDim,
    k,
    rank,
    hybridRank,
    scale,
    GA: rng.normals(inDim * rank),
    GB: rng.normals(rank * outDim),
    Ag: rng.normals(hybridRank * inDim),
    Bg: rng.normals(outDim * hybridRank),
  };
}

describe('gralora reference', () => {
  it('backward matches finite differences of the dense forward (k = 2, hybrid)', () => {
    const rng = new Rng(11);
    const rows = 3;
    const p = randomParams(rng, 4, 6, 2, 4, 2);
    const x = rng.normals(rows * p.inDim);
    const gy = rng.normals(rows * p.outDim);
    const loss = (q: GraloraRefParams, xx: ArrayLike<number>) => dot(graloraForwardRef(xx, rows, q), gy);
    const g = graloraBackwardRef(x, gy, rows, p);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(
      g.dx,
      numericGrad((v) => loss(p, v), x),
      'dx',
      tol,
    );
    expectClose(
      g.dGA,
      numericGrad((v) => loss({ ...p, GA: v }, x), p.GA),
      'dGA',
      tol,
    );
    expectClose(
      g.dGB,
      numericGrad((v) => loss({ ...p, GB: v }, x), p.GB),
      'dGB',
      tol,
    );
    expectClose(
      g.dAg,
      numericGrad((v) => loss({ ...p, Ag: v }, x), p.Ag!),
      'dAg',
      tol,
    );
    expectClose(
      g.dBg,
      numericGrad((v) => loss({ ...p, Bg: v }, x), p.Bg!),
      'dBg',
      tol,
    );
  });

  it("shuffle moves chunk m of H_n to chunk n of H'_m, and is an involution", () => {
    const rng = new Rng(3);
    const [rows, k, rank] = [4, 3, 6];
    const h = rng.normals(k * rows * rank);
    const s = graloraShuffleRef(h, rows, k, rank);
    // H'_2[t = 1, chunk 0] = H_0[t = 1, chunk 2] (sr = 2).
    expect(s[(2 * rows + 1) * rank + 1]).toBe(h[(0 * rows + 1) * rank + 2 * 2 + 1]);
    expectClose(graloraShuffleRef(s, rows, k, rank), h, 'shuffle twice', { atol: 0, rtol: 0 });
  });
});

describe('gralora shuffle on the GPU', () => {
  for (const [rows, k, rank] of [
    [7, 3, 6],
    [33, 4, 4],
    [5, 2, 6],
    [1, 1, 3],
  ]) {
    it(`rows ${rows}, k ${k}, rank ${rank}: matches the reference; twice is the identity`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(rows + k * 10 + rank);
      const data = rng.normals(k * rows * rank);
      const a = gpu.tensorFrom(data, [k, rows, rank], 'h');
      const b = gpu.tensor([k, rows, rank], 'h_shuffled');
      const c = gpu.tensor([k, rows, rank], 'h_back');
      await runOnce(gpu, (l) => {
        graloraShuffle(l, { src: a, dst: b, rows, k, rank });
        graloraShuffle(l, { src: b, dst: c, rows, k, rank });
      });
      expectClose(await gpu.read(b), graloraShuffleRef(data, rows, k, rank), 'shuffled', { atol: 0, rtol: 0 });
      expectClose(await gpu.read(c), data, 'shuffled twice', { atol: 0, rtol: 0 });
    });
  }
});

/** A [rows, width] block at column `offset` of rows `ld` apart, e.g. the k part of a fused q|k|v output. */
interface Slice {
  offset: number;
  ld: number;
}

interface Case {
  rows: number;
  inDim: number;
  outDim: number;
  k: number;
  sr: number;
  x: Slice;
  y: Slice;
}

const CASES: Case[] = [
  { rows: 7, inDim: 5, outDim: 7, k: 1, sr: 3, x: { offset: 0, ld: 5 }, y: { offset: 2, ld: 11 } },
  { rows: 33, inDim: 6, outDim: 10, k: 2, sr: 1, x: { offset: 3, ld: 9 }, y: { offset: 10, ld: 30 } },
  { rows: 7, inDim: 9, outDim: 12, k: 3, sr: 2, x: { offset: 1, ld: 10 }, y: { offset: 4, ld: 20 } },
  // 4-aligned views: the vec4 GEMM path.
  { rows: 33, inDim: 16, outDim: 8, k: 4, sr: 3, x: { offset: 0, ld: 16 }, y: { offset: 16, ld: 32 } },
  { rows: 7, inDim: 8, outDim: 12, k: 4, sr: 1, x: { offset: 8, ld: 24 }, y: { offset: 0, ld: 12 } },
];

/** A strided buffer of random values with `block` [rows, width] at the slice; returns both. */
function stridedBuffer(rng: Rng, s: Slice, rows: number, width: number): { buf: Float32Array; block: Float64Array } {
  const buf = rng.normals(s.offset + (rows - 1) * s.ld + width + 3);
  const block = new Float64Array(rows * width);
  for (let t = 0; t < rows; t++) for (let j = 0; j < width; j++) block[t * width + j] = buf[s.offset + t * s.ld + j];
  return { buf, block };
}

/** buf with `add` [rows, width] added inside the slice. */
function addInSlice(buf: Float32Array, s: Slice, add: ArrayLike<number>, rows: number, width: number): Float64Array {
  const out = Float64Array.from(buf);
  for (let t = 0; t < rows; t++) for (let j = 0; j < width; j++) out[s.offset + t * s.ld + j] += add[t * width + j];
  return out;
}

async function runGralora(
  gpu: Gpu,
  c: Case,
  p: GraloraRefParams,
  xData: Float32Array,
  dyData: Float32Array,
  yData: Float32Array,
  dxData: Float32Array,
) {
  const { rows, inDim, outDim, k, rank } = { ...c, rank: p.rank };
  const t = (data: ArrayLike<number>, shape: number[], label: string) =>
    gpu.tensorFrom(Float32Array.from(data), shape, label);
  const x = t(xData, [xData.length], 'x');
  const y = t(yData, [yData.length], 'qkv');
  const dy = t(dyData, [dyData.length], 'dqkv');
  const dx = t(dxData, [dxData.length], 'dx');
  const GA = t(p.GA, [k, inDim / k, rank], 'GA');
  const GB = t(p.GB, [k, rank, outDim / k], 'GB');
  // Garbage in the gradients: the backward pass must overwrite them.
  const dGA = t(new Float32Array(GA.size).fill(7), GA.shape as number[], 'dGA');
  const dGB = t(new Float32Array(GB.size).fill(7), GB.shape as number[], 'dGB');
  const plane = [k, rows, rank];
  const [h, hShuffled, dh, dhShuffled] = ['h', 'hs', 'dh', 'dhs'].map((n) => gpu.tensor(plane, n));
  const blocks = { rows, inDim, outDim, k, rank, scale: p.scale, GA, GB };
  await runOnce(gpu, (l) => {
    graloraForward(l, { ...blocks, x: { t: x, ...c.x }, y: { t: y, ...c.y }, h, hShuffled });
    graloraBackward(l, {
      ...blocks,
      x: { t: x, ...c.x },
      dy: { t: dy, ...c.y },
      dx: { t: dx, ...c.x },
      hShuffled,
      dhShuffled,
      dh,
      dGA,
      dGB,
    });
  });
  return { y: await gpu.read(y), dx: await gpu.read(dx), dGA: await gpu.read(dGA), dGB: await gpu.read(dGB) };
}

describe('gralora forward/backward on the GPU vs the float64 reference', () => {
  for (const c of CASES) {
    const rank = c.k * c.sr;
    it(`T ${c.rows}, ${c.inDim} -> ${c.outDim}, k ${c.k}, r ${rank} (sr ${c.sr}), x at ${c.x.offset}/${c.x.ld}, y at ${c.y.offset}/${c.y.ld}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(c.rows * 7 + c.inDim + c.k);
      const p = randomParams(rng, c.inDim, c.outDim, c.k, rank, 0, 0.7);
      const x = stridedBuffer(rng, c.x, c.rows, c.inDim);
      const y = stridedBuffer(rng, c.y, c.rows, c.outDim);
      const dy = stridedBuffer(rng, c.y, c.rows, c.outDim);
      const dx = stridedBuffer(rng, c.x, c.rows, c.inDim);
      const got = await runGralora(gpu, c, p, x.buf, dy.buf, y.buf, dx.buf);
      const tol = { atol: 1e-4, rtol: 1e-4 };
      expectClose(got.y, addInSlice(y.buf, c.y, graloraForwardRef(x.block, c.rows, p), c.rows, c.outDim), 'y', tol);
      const g = graloraBackwardRef(x.block, dy.block, c.rows, p);
      expectClose(got.dx, addInSlice(dx.buf, c.x, g.dx, c.rows, c.inDim), 'dx', tol);
      expectClose(got.dGA, g.dGA, 'dGA', tol);
      expectClose(got.dGB, g.dGB, 'dGB', tol);
    });
  }

  it('locality: zeroing input block n zeroes dGA[n] and the n-chunk of every dGB[m]', async () => {
    const gpu = await testGpu();
    const c = CASES[2]; // k 3, sr 2
    const rank = c.k * c.sr;
    const bi = c.inDim / c.k;
    const bo = c.outDim / c.k;
    const rng = new Rng(5);
    const p = randomParams(rng, c.inDim, c.outDim, c.k, rank);
    const x = stridedBuffer(rng, c.x, c.rows, c.inDim);
    const n = 1;
    for (let t = 0; t < c.rows; t++) for (let i = 0; i < bi; i++) x.buf[c.x.offset + t * c.x.ld + n * bi + i] = 0;
    const yLike = () => stridedBuffer(rng, c.y, c.rows, c.outDim).buf;
    const got = await runGralora(gpu, c, p, x.buf, yLike(), yLike(), stridedBuffer(rng, c.x, c.rows, c.inDim).buf);
    for (let j = 0; j < bi * rank; j++) expect(got.dGA[n * bi * rank + j], `dGA[${n}]`).toBe(0);
    for (let m = 0; m < c.k; m++) {
      for (let cc = 0; cc < c.sr; cc++)
        for (let o = 0; o < bo; o++) {
          expect(got.dGB[(m * rank + n * c.sr + cc) * bo + o], `dGB[${m}] chunk ${n}`).toBe(0);
        }
    }
    // The other blocks still learn.
    expect(got.dGA.subarray(0, bi * rank).some((v) => v !== 0)).toBe(true);
    expect(got.dGB.subarray(0, c.sr * bo).some((v) => v !== 0)).toBe(true);
  });

  it('rejects shapes and scratch that do not fit', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const h = gpu.tensor([2, 3, 4], 'h');
    expect(() => graloraShuffle(list, { src: h, dst: h, rows: 3, k: 2, rank: 4 })).toThrow(/same tensor/);
    expect(() => graloraShuffle(list, { src: h, dst: gpu.tensor([24], 'd'), rows: 3, k: 3, rank: 4 })).toThrow(
      /rank 4 is not divisible by k = 3/,
    );
    expect(() => graloraShuffle(list, { src: h, dst: gpu.tensor([20], 'small'), rows: 3, k: 2, rank: 4 })).toThrow(
      /dst \(small\): needs 24/,
    );
    const x = gpu.tensor([3 * 6], 'x');
    const y = gpu.tensor([3 * 6], 'y');
    const blocks = {
      rows: 3,
      inDim: 6,
      outDim: 6,
      rank: 4,
      scale: 1,
      GA: gpu.tensor([24], 'GA'),
      GB: gpu.tensor([24], 'GB'),
    };
    expect(() =>
      graloraForward(list, { ...blocks, k: 4, x: { t: x, ld: 6 }, y: { t: y, ld: 6 }, h, hShuffled: h }),
    ).toThrow(/inDim 6 is not divisible by k = 4/);
    expect(() =>
      graloraForward(list, { ...blocks, k: 2, x: { t: x, ld: 6 }, y: { t: y, ld: 6 }, hShuffled: h }),
    ).toThrow(/h scratch is required/);
    expect(() =>
      graloraForward(list, {
        ...blocks,
        k: 2,
        x: { t: x, offset: 1, ld: 6 },
        y: { t: y, ld: 6 },
        h,
        hShuffled: gpu.tensor([24], 'hs'),
      }),
    ).toThrow(/x \(x\)/);
  });
});
