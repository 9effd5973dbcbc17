/**
 * Singular value decompositions in float64 on the CPU, for PiSSA's and LoRA-GA's initializations (the top r
 * singular triplets of a weight or of an accumulated gradient).
 *
 *   svdExact     one-sided Jacobi (Hestenes): rotates column pairs until all are orthogonal; accurate to a few
 *                ulps in every singular value, deterministic, O(m·n·min(m,n)) per sweep (6–10 sweeps).
 *   svdLowRank   torch.svd_lowrank's randomized subspace iteration (Halko et al. 2009, algorithm 4.4): a Gaussian
 *                sketch Ω [n, q], Q = orth(A·Ω), `niter` times Q = orth(A·orth(Aᵀ·Q)), then the exact SVD of the
 *                small QᵀA. PEFT's `pissa_niter_N` and LoRA-GA's init use it; the sketch comes from the seeded Rng
 *                so a run rebuilt from its seed (resume) gets the same factors.
 *   svdTop       the top r triplets "exactly": Jacobi while a sweep costs at most EXACT_JACOBI_WORK products,
 *                above that subspace iteration with oversampling run until the top r triplets' residuals fall to
 *                1e-13·σ₁ (svdTopIterated), the float64 SVD to that tolerance when σ_r is separated from σ_{q+1}.
 *
 * Matrices are row-major Float64Arrays; U is [m, k], V is [n, k] (columns are the singular vectors), S descending.
 * The products of the randomized method are small (q ≤ 4r columns), so they run here too: reading W once
 * dominates, as it would for the GPU.
 */
import { Rng } from './random';

export interface Svd {
  /** [m, k] row-major: column j is the j-th left singular vector. */
  U: Float64Array;
  /** [k], descending. */
  S: Float64Array;
  /** [n, k] row-major: column j is the j-th right singular vector. */
  V: Float64Array;
  m: number;
  n: number;
  k: number;
}

/** Above this many multiply-adds per Jacobi sweep (m·n·min(m,n)), svdTop iterates a subspace instead. */
export const EXACT_JACOBI_WORK = 4e8;
const JACOBI_MAX_SWEEPS = 60;

/** The thin SVD of a row-major [m, n] matrix by one-sided Jacobi. */
export function svdExact(a: ArrayLike<number>, m: number, n: number): Svd {
  if (a.length !== m * n) throw new Error(`svdExact: expected ${m}x${n} values, got ${a.length}`);
  // Work on the orientation with more rows than columns; columns are stored contiguously.
  const wide = m < n;
  const rows = wide ? n : m;
  const cols = wide ? m : n;
  const c: Float64Array[] = [];
  for (let j = 0; j < cols; j++) {
    const col = new Float64Array(rows);
    for (let i = 0; i < rows; i++) col[i] = wide ? a[j * n + i] : a[i * n + j];
    c.push(col);
  }
  const v: Float64Array[] = [];
  for (let j = 0; j < cols; j++) {
    const e = new Float64Array(cols);
    e[j] = 1;
    v.push(e);
  }
  const eps = 1e-15;
  for (let sweep = 0; sweep < JACOBI_MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < cols - 1; p++) {
      for (let q = p + 1; q < cols; q++) {
        const cp = c[p];
        const cq = c[q];
        let alpha = 0;
        let beta = 0;
        let gamma = 0;
        for (let i = 0; i < rows; i++) {
          alpha += cp[i] * cp[i];
          beta += cq[i] * cq[i];
          gamma += cp[i] * cq[i];
        }
        if (gamma === 0 || Math.abs(gamma) <= eps * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const cs = 1 / Math.sqrt(1 + t * t);
        const sn = cs * t;
        for (let i = 0; i < rows; i++) {
          const x = cp[i];
          const y = cq[i];
          cp[i] = cs * x - sn * y;
          cq[i] = sn * x + cs * y;
        }
        const vp = v[p];
        const vq = v[q];
        for (let i = 0; i < cols; i++) {
          const x = vp[i];
          const y = vq[i];
          vp[i] = cs * x - sn * y;
          vq[i] = sn * x + cs * y;
        }
      }
    }
    if (!rotated) break;
  }
  const norms = c.map((col) => Math.sqrt(col.reduce((s, x) => s + x * x, 0)));
  const order = norms.map((_, j) => j).sort((x, y) => norms[y] - norms[x]);
  const k = cols;
  const left = new Float64Array(rows * k);
  const right = new Float64Array(cols * k);
  const S = new Float64Array(k);
  order.forEach((j, jj) => {
    S[jj] = norms[j];
    const inv = norms[j] > 0 ? 1 / norms[j] : 0;
    for (let i = 0; i < rows; i++) left[i * k + jj] = c[j][i] * inv;
    for (let i = 0; i < cols; i++) right[i * k + jj] = v[j][i];
  });
  // A = left·S·rightᵀ for the worked orientation; for a wide A that was Aᵀ, so the roles swap.
  return wide ? { U: right, S, V: left, m, n, k } : { U: left, S, V: right, m, n, k };
}

/**
 * A matrix seen through its products: A·X for X [n, q] and Aᵀ·Y for Y [m, q] (row-major), computed here
 * (denseOperator) or on the GPU (adapters/pissa/weight-operator.ts).
 */
export interface LinearOperator {
  m: number;
  n: number;
  mul(x: Float64Array, q: number): Float64Array | Promise<Float64Array>;
  mulT(y: Float64Array, q: number): Float64Array | Promise<Float64Array>;
}

export function denseOperator(a: ArrayLike<number>, m: number, n: number): LinearOperator {
  return {
    m,
    n,
    mul(x, q) {
      const out = new Float64Array(m * q);
      for (let i = 0; i < m; i++) {
        for (let k = 0; k < n; k++) {
          const aik = a[i * n + k];
          if (aik === 0) continue;
          for (let j = 0; j < q; j++) out[i * q + j] += aik * x[k * q + j];
        }
      }
      return out;
    },
    mulT(y, q) {
      const out = new Float64Array(n * q);
      for (let i = 0; i < m; i++) {
        for (let k = 0; k < n; k++) {
          const aik = a[i * n + k];
          if (aik === 0) continue;
          for (let j = 0; j < q; j++) out[k * q + j] += aik * y[i * q + j];
        }
      }
      return out;
    },
  };
}

/** Orthonormalizes the columns of a row-major [rows, q] matrix in place (Gram-Schmidt, twice: "twice is enough"). */
export function orthonormalizeColumns(x: Float64Array, rows: number, q: number): void {
  for (let j = 0; j < q; j++) {
    for (let pass = 0; pass < 2; pass++) {
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < rows; i++) d += x[i * q + p] * x[i * q + j];
        for (let i = 0; i < rows; i++) x[i * q + j] -= d * x[i * q + p];
      }
    }
    let norm = 0;
    for (let i = 0; i < rows; i++) norm += x[i * q + j] * x[i * q + j];
    norm = Math.sqrt(norm);
    // A column in the span of the previous ones (rank-deficient A) stays zero: its singular value will be 0.
    const inv = norm > 1e-300 ? 1 / norm : 0;
    for (let i = 0; i < rows; i++) x[i * q + j] *= inv;
  }
}

/** The SVD of A restricted to an orthonormal basis Q [m, q] of (an estimate of) its range: Q·svd(QᵀA). */
async function projectedSvd(op: LinearOperator, qb: Float64Array, q: number): Promise<Svd> {
  // Bᵀ = AᵀQ [n, q]; svd(Bᵀ) = V_b S U_bᵀ, so B = U_b S V_bᵀ and A ≈ (Q U_b) S V_bᵀ.
  const bt = await op.mulT(qb, q);
  const small = svdExact(bt, op.n, q);
  const k = small.k;
  const U = new Float64Array(op.m * k);
  for (let i = 0; i < op.m; i++) {
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let p = 0; p < q; p++) s += qb[i * q + p] * small.V[p * k + j];
      U[i * k + j] = s;
    }
  }
  return { U, S: small.S, V: small.U, m: op.m, n: op.n, k };
}

/**
 * torch.svd_lowrank(A, q, niter): a rank-q approximate SVD from `niter` power iterations on a Gaussian sketch.
 * Deterministic given the Rng's state.
 */
export async function svdLowRank(op: LinearOperator, q: number, niter: number, rng: Rng): Promise<Svd> {
  const { m, n } = op;
  if (!(q >= 1 && q <= Math.min(m, n))) throw new Error(`svdLowRank: q must be in 1..${Math.min(m, n)} (got ${q})`);
  const omega = new Float64Array(n * q);
  for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
  let qb = await op.mul(omega, q);
  orthonormalizeColumns(qb, m, q);
  for (let it = 0; it < niter; it++) {
    const z = await op.mulT(qb, q);
    orthonormalizeColumns(z, n, q);
    qb = await op.mul(z, q);
    orthonormalizeColumns(qb, m, q);
  }
  return projectedSvd(op, qb, q);
}

/**
 * Subspace iteration with oversampling until the top r triplets are converged: ‖A·v_j − σ_j·u_j‖ ≤ 1e-13·σ_1 for
 * j < r (Aᵀ·u_j = σ_j·v_j holds by construction), which bounds the error of the vectors, not only of the values.
 */
export async function svdTopIterated(op: LinearOperator, r: number, rng: Rng, maxIter = 300): Promise<Svd> {
  const q = Math.min(Math.min(op.m, op.n), r + Math.max(8, r));
  const omega = new Float64Array(op.n * q);
  for (let i = 0; i < omega.length; i++) omega[i] = rng.normal();
  let qb = await op.mul(omega, q);
  orthonormalizeColumns(qb, op.m, q);
  let svd = await projectedSvd(op, qb, q);
  for (let it = 0; it < maxIter; it++) {
    const top = truncateSvd(svd, r);
    const av = await op.mul(top.V, r);
    let residual = 0;
    for (let i = 0; i < op.m; i++)
      for (let j = 0; j < r; j++) residual = Math.max(residual, Math.abs(av[i * r + j] - top.S[j] * top.U[i * r + j]));
    if (residual <= 1e-13 * Math.max(svd.S[0], 1e-300)) break;
    const z = await op.mulT(qb, q);
    orthonormalizeColumns(z, op.n, q);
    qb = await op.mul(z, q);
    orthonormalizeColumns(qb, op.m, q);
    svd = await projectedSvd(op, qb, q);
  }
  return svd;
}

/** The top r singular triplets of a row-major [m, n] matrix (see the file comment for the two regimes). */
export async function svdTop(a: ArrayLike<number>, m: number, n: number, r: number): Promise<Svd> {
  const k = Math.min(m, n);
  if (!(r >= 1 && r <= k)) throw new Error(`svdTop: r must be in 1..${k} (got ${r})`);
  const full =
    m * n * k <= EXACT_JACOBI_WORK ? svdExact(a, m, n) : await svdTopIterated(denseOperator(a, m, n), r, new Rng(0));
  return truncateSvd(full, r);
}

/** The first r triplets of an SVD. */
export function truncateSvd(s: Svd, r: number): Svd {
  if (r > s.k) throw new Error(`truncateSvd: r (${r}) is larger than the decomposition's rank ${s.k}`);
  const U = new Float64Array(s.m * r);
  const V = new Float64Array(s.n * r);
  for (let i = 0; i < s.m; i++) for (let j = 0; j < r; j++) U[i * r + j] = s.U[i * s.k + j];
  for (let i = 0; i < s.n; i++) for (let j = 0; j < r; j++) V[i * r + j] = s.V[i * s.k + j];
  return { U, S: s.S.slice(0, r), V, m: s.m, n: s.n, k: r };
}
