/**
 * The randomized SVD's products on the GPU (adapters/pissa/weight-operator.ts): M·X and Mᵀ·Y for a matrix stored
 * [m, n] or transposed (GPT-2's Conv1D), f32 or bf16, equal the float64 products of the matrix as stored (float32
 * accuracy), and svd_lowrank through it finds the same singular values as through the float64 operator.
 */
import { describe, expect, it } from 'vitest';
import { gpuOperator } from '../../src/adapters/pissa/weight-operator';
import { Rng } from '../../src/util/random';
import { denseOperator, svdLowRank } from '../../src/util/svd';
import { testGpu } from '../helpers/gpu';

const M = 37;
const N = 29;
const Q = 5;

function transpose(a: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j];
  return out;
}

function maxRelative(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]));
  let err = 0;
  for (let i = 0; i < want.length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
  return err / scale;
}

describe('the GPU operator of a stored matrix', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    for (const transposed of [false, true]) {
      it(`M·X and Mᵀ·Y (${dtype}${transposed ? ', stored transposed' : ''}, ${M}x${N}, q ${Q})`, async () => {
        const gpu = await testGpu();
        const rng = new Rng(transposed ? 3 : 4);
        const a = rng.normals(M * N);
        const tensor = gpu.tensorFrom(transposed ? transpose(a, M, N) : a, transposed ? [N, M] : [M, N], 'M', dtype);
        // The reference reads the matrix as stored (bf16-rounded).
        const back = await gpu.read(tensor);
        const dense = denseOperator(transposed ? transpose(back, N, M) : back, M, N);
        const mark = gpu.mark();
        try {
          const op = gpuOperator(gpu, { tensor, m: M, n: N, transposed }, Q, 'M');
          const x = Float64Array.from(rng.normals(N * Q));
          const y = Float64Array.from(rng.normals(M * Q));
          expect(maxRelative(await op.mul(x, Q), dense.mul(x, Q) as Float64Array)).toBeLessThan(1e-5);
          expect(maxRelative(await op.mulT(y, Q), dense.mulT(y, Q) as Float64Array)).toBeLessThan(1e-5);
          await expect(op.mul(x.subarray(0, N * 2), 2)).rejects.toThrow('built for 5 columns, not 2');
        } finally {
          await gpu.freeSince(mark);
        }
      });
    }
  }

  it('svd_lowrank through the GPU equals it through the float64 operator (same sketch), to float32 accuracy', async () => {
    const gpu = await testGpu();
    const a = new Rng(9).normals(M * N);
    const tensor = gpu.tensorFrom(a, [M, N], 'M');
    const mark = gpu.mark();
    try {
      const onGpu = await svdLowRank(
        gpuOperator(gpu, { tensor, m: M, n: N, transposed: false }, Q, 'M'),
        Q,
        4,
        new Rng(1),
      );
      const onHost = await svdLowRank(denseOperator(a, M, N), Q, 4, new Rng(1));
      expect(maxRelative(onGpu.S, onHost.S)).toBeLessThan(1e-5);
    } finally {
      await gpu.freeSince(mark);
    }
  });
});
