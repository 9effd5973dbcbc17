import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul';
import { nearestTwo } from '../../src/kernels/twonn';
import { nearestTwoRef } from '../../src/kernels/twonn.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

/** float64 Gram matrix X·Xᵀ of points [n, dim]. */
function gramOf(points: ArrayLike<number>, n: number, dim: number): Float32Array {
  const g = new Float32Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += points[i * dim + c] * points[j * dim + c];
      g[i * n + j] = s;
    }
  }
  return g;
}

/** Interleaves the reference's r1 and r2 like the kernel's output. */
function interleave(r1: Float64Array, r2: Float64Array): Float64Array {
  const out = new Float64Array(2 * r1.length);
  r1.forEach((v, i) => ((out[2 * i] = v), (out[2 * i + 1] = r2[i])));
  return out;
}

async function gpuNearestTwo(gram: Float32Array, n: number): Promise<Float32Array> {
  const gpu = await testGpu();
  const g = gpu.tensorFrom(gram, [n, n], 'gram');
  const r1r2 = gpu.tensor([n, 2], 'r1r2');
  await runOnce(gpu, (l) => nearestTwo(l, { gram: g, n, r1r2 }));
  return gpu.read(r1r2);
}

describe('twonn nearestTwo', () => {
  // Awkward sizes: the minimum 3, not a multiple of the 64-thread workgroup, several workgroups; 1-D to 17-D.
  const CASES: [number, number][] = [
    [3, 2],
    [37, 1],
    [37, 5],
    [300, 17],
    [130, 3],
  ];
  for (const [n, dim] of CASES) {
    it(`${n} points in ${dim}-D vs float64 brute force`, async () => {
      const rng = new Rng(n * 7 + dim);
      const points = rng.normals(n * dim);
      const ref = nearestTwoRef(points, n, dim);
      expectClose(await gpuNearestTwo(gramOf(points, n, dim), n), interleave(ref.r1, ref.r2), 'r1r2', {
        atol: 1e-4,
        rtol: 1e-3,
      });
    });
  }

  it('Gram from the GPU matmul (the path GeLoRA runs) gives the same distances', async () => {
    const gpu = await testGpu();
    const n = 201,
      dim = 12;
    const points = new Rng(5).normals(n * dim);
    const x = gpu.tensorFrom(points, [n, dim], 'x');
    const gram = gpu.tensor([n, n], 'gram');
    const r1r2 = gpu.tensor([n, 2], 'r1r2');
    await runOnce(gpu, (l) => {
      matmul(l, {
        a: { t: x, ld: dim },
        b: { t: x, ld: dim },
        c: { t: gram, ld: n },
        M: n,
        N: n,
        K: dim,
        transB: true,
      });
      nearestTwo(l, { gram, n, r1r2 });
    });
    const ref = nearestTwoRef(points, n, dim);
    expectClose(await gpu.read(r1r2), interleave(ref.r1, ref.r2), 'r1r2', { atol: 1e-4, rtol: 1e-3 });
  });

  it('ties and exact duplicates: integer points on a line, one repeated', async () => {
    // 0, 1, ..., 9 and a second 4: interior points have r1 = r2 = 1; the two 4s are at distance 0 (never NaN).
    const points = Float32Array.from([...Array(10).keys(), 4]);
    const n = points.length;
    const ref = nearestTwoRef(points, n, 1);
    const got = await gpuNearestTwo(gramOf(points, n, 1), n);
    expectClose(got, interleave(ref.r1, ref.r2), 'r1r2', { atol: 1e-6, rtol: 0 });
    expect([got[8], got[9], got[20], got[21]]).toEqual([0, 1, 0, 1]);
  });

  it('rejects fewer than 3 points, short buffers and an output bound twice', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const gram = gpu.tensor([4, 4], 'g');
    const out = gpu.tensor([8], 'out');
    for (const n of [1, 2]) expect(() => nearestTwo(list, { gram, n, r1r2: out })).toThrow(/at least 3 points/);
    expect(() => nearestTwo(list, { gram, n: 5, r1r2: gpu.tensor([10], 'o') })).toThrow(/gram \(g\): needs 25/);
    expect(() => nearestTwo(list, { gram, n: 4, r1r2: gpu.tensor([7], 'o') })).toThrow(/r1r2 \(o\): needs 8/);
    expect(() => nearestTwo(list, { gram, n: 3, r1r2: gram })).toThrow(/same tensor/);
  });
});
