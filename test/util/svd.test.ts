/** The float64 SVDs behind PiSSA and LoRA-GA against matrices with a known spectrum (U·diag(σ)·Vᵀ built here). */
import { describe, expect, it } from 'vitest';
import { denseOperator, svdExact, svdLowRank, svdTop, svdTopIterated, type Svd } from '../../src/util/svd';
import { Rng } from '../../src/util/random';

/** Orthonormal columns [rows, k] from Gram-Schmidt on Gaussian columns. */
function orthonormal(rows: number, k: number, rng: Rng): Float64Array {
  const q = new Float64Array(rows * k);
  for (let j = 0; j < k; j++) {
    for (let i = 0; i < rows; i++) q[i * k + j] = rng.normal();
    for (let pass = 0; pass < 2; pass++)
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += q[i * k + p] * q[i * k + j];
        for (let i = 0; i < rows; i++) q[i * k + j] -= d * q[i * k + p];
      }
    let n = 0;
    for (let i = 0; i < rows; i++) n += q[i * k + j] ** 2;
    for (let i = 0; i < rows; i++) q[i * k + j] /= Math.sqrt(n);
  }
  return q;
}

/** A = U·diag(σ)·Vᵀ with random orthonormal U, V and the given σ. */
function withSpectrum(m: number, n: number, sigma: number[], seed: number): Float64Array {
  const rng = new Rng(seed);
  const k = sigma.length;
  const U = orthonormal(m, k, rng);
  const V = orthonormal(n, k, rng);
  const a = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += U[i * k + p] * sigma[p] * V[j * k + p];
      a[i * n + j] = s;
    }
  return a;
}

/** U_r·diag(S_r)·V_rᵀ of the first r triplets. */
function reconstruct(s: Svd, r: number): Float64Array {
  const a = new Float64Array(s.m * s.n);
  for (let i = 0; i < s.m; i++)
    for (let j = 0; j < s.n; j++) {
      let v = 0;
      for (let p = 0; p < r; p++) v += s.U[i * s.k + p] * s.S[p] * s.V[j * s.k + p];
      a[i * s.n + j] = v;
    }
  return a;
}

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
const diff = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a, (x, i) => x - b[i]);

describe('svd', () => {
  for (const [m, n] of [
    [37, 23],
    [23, 37],
    [64, 160],
    [5, 5],
  ] as const) {
    it(`exact (Jacobi) on ${m}x${n}: σ to 1e-13 relative, U·S·Vᵀ = A, orthonormal factors, top-r part`, async () => {
      const k = Math.min(m, n);
      const sigma = Array.from({ length: k }, (_, i) => 10 * 0.8 ** i + (i === 3 ? 0 : 1e-3 * i));
      sigma.sort((x, y) => y - x);
      const a = withSpectrum(m, n, sigma, m * n);
      const s = svdExact(a, m, n);
      expect(s.k).toBe(k);
      for (let i = 0; i < k; i++) expect(Math.abs(s.S[i] - sigma[i]) / sigma[0]).toBeLessThan(1e-13);
      expect(maxAbs(diff(reconstruct(s, k), a)) / sigma[0]).toBeLessThan(1e-13);
      // UᵀU = I, VᵀV = I.
      for (const [f, rows] of [
        [s.U, m],
        [s.V, n],
      ] as const)
        for (let p = 0; p < k; p++)
          for (let q = 0; q < k; q++) {
            let d = 0;
            for (let i = 0; i < rows; i++) d += f[i * k + p] * f[i * k + q];
            expect(Math.abs(d - (p === q ? 1 : 0))).toBeLessThan(1e-12);
          }
      // The rank-r truncation is the best rank-r approximation: its error is σ_{r+1} in the spectral sense and
      // exactly the tail's part in Frobenius norm.
      const r = Math.min(4, k - 1);
      const top = await svdTop(a, m, n, r);
      const tail = Math.sqrt(sigma.slice(r).reduce((t, x) => t + x * x, 0));
      const err = Math.sqrt(diff(reconstruct(top, r), a).reduce((t, x) => t + x * x, 0));
      expect(Math.abs(err - tail) / sigma[0]).toBeLessThan(1e-12);
    });
  }

  it('rank-deficient input: zero singular values, still A = U·S·Vᵀ', () => {
    const a = withSpectrum(30, 12, [3, 2, 1], 9);
    const s = svdExact(a, 30, 12);
    expect(Array.from(s.S.slice(0, 3), (x) => +x.toFixed(12))).toEqual([3, 2, 1]);
    expect(maxAbs(s.S.slice(3))).toBeLessThan(1e-13);
    expect(maxAbs(diff(reconstruct(s, 12), a))).toBeLessThan(1e-13);
  });

  it('randomized (svd_lowrank): exact when q covers the rank; niter iterations converge on a decaying spectrum; deterministic by seed', async () => {
    const m = 64;
    const n = 160;
    const lowRank = withSpectrum(m, n, [5, 4, 3, 2, 1, 0.5], 3);
    const s = await svdLowRank(denseOperator(lowRank, m, n), 8, 0, new Rng(1));
    expect(maxAbs(diff(s.S.slice(0, 6), [5, 4, 3, 2, 1, 0.5]))).toBeLessThan(1e-12);
    expect(maxAbs(diff(reconstruct(s, 6), lowRank))).toBeLessThan(1e-12);

    const sigma = Array.from({ length: 64 }, (_, i) => 0.85 ** i);
    const a = withSpectrum(m, n, sigma, 4);
    const errors: number[] = [];
    for (const niter of [0, 2, 8]) {
      const t = await svdLowRank(denseOperator(a, m, n), 4, niter, new Rng(5));
      errors.push(maxAbs(diff(t.S, sigma.slice(0, 4))));
    }
    expect(errors[2]).toBeLessThan(errors[0]);
    expect(errors[2]).toBeLessThan(1e-3);
    const again = await svdLowRank(denseOperator(a, m, n), 4, 2, new Rng(5));
    expect(Array.from(again.S)).toEqual(Array.from((await svdLowRank(denseOperator(a, m, n), 4, 2, new Rng(5))).S));
  });

  it("large matrices' exact path (subspace iteration to convergence) matches Jacobi's top r", async () => {
    const sigma = Array.from({ length: 64 }, (_, i) => 0.9 ** i);
    const a = withSpectrum(64, 160, sigma, 6);
    const it = await svdTopIterated(denseOperator(a, 64, 160), 4, new Rng(0));
    const ex = svdExact(a, 64, 160);
    expect(maxAbs(diff(it.S.slice(0, 4), ex.S.slice(0, 4)))).toBeLessThan(1e-11);
    expect(maxAbs(diff(reconstruct(it, 4), reconstruct(ex, 4)))).toBeLessThan(1e-9);
  });
});
