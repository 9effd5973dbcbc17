import { describe, expect, it } from 'vitest';
import { biasAdd, biasGrad } from '../../src/kernels/bias';
import { biasAddRef, biasGradRef } from '../../src/kernels/bias.ref';
import { Rng } from '../../src/util/random';
import { expectClose, numericGrad, runOnce, testGpu } from '../helpers/gpu';

interface Case {
  rows: number;
  cols: number;
  /** The slice: offset and leading dimension of the matrix, and where its bias sits in the bias vector. */
  offset: number;
  ld: number;
  biasOffset: number;
}

const CASES: Case[] = [
  { rows: 1, cols: 1, offset: 0, ld: 1, biasOffset: 0 },
  { rows: 7, cols: 5, offset: 0, ld: 5, biasOffset: 0 },
  // The k slice of a fused q|k|v row: q is 16 wide, k and v 67.
  { rows: 33, cols: 67, offset: 16, ld: 150, biasOffset: 16 },
  { rows: 300, cols: 130, offset: 3, ld: 131, biasOffset: 2 },
];

describe('bias', () => {
  it('reference gradient matches finite differences', () => {
    const rng = new Rng(4);
    const rows = 4,
      cols = 3;
    const y = rng.normals(rows * cols);
    const g = rng.normals(rows * cols);
    const loss = (b: Float64Array) => biasAddRef(y, b, rows, cols).reduce((s, v, i) => s + v * g[i], 0);
    expectClose(biasGradRef(g, rows, cols), numericGrad(loss, rng.normals(cols)), 'dbias', { atol: 1e-8, rtol: 1e-7 });
  });

  for (const c of CASES) {
    it(`${c.rows}x${c.cols} at offset ${c.offset}, ld ${c.ld}, bias offset ${c.biasOffset}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(c.rows * 3 + c.cols);
      const { rows, cols, offset, ld, biasOffset } = c;
      const size = offset + (rows - 1) * ld + cols + 2;
      const yData = rng.normals(size);
      const biasData = rng.normals(biasOffset + cols + 3);
      const y = gpu.tensorFrom(yData, [size], 'y');
      const bias = gpu.tensorFrom(biasData, [biasData.length], 'bias');
      const dense = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) dense[r * cols + j] = yData[offset + r * ld + j];

      await runOnce(gpu, (l) => biasAdd(l, { y: { t: y, offset, ld }, bias, biasOffset, rows, cols }));
      const added = biasAddRef(dense, biasData.subarray(biasOffset), rows, cols);
      const want = Float64Array.from(yData);
      for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) want[offset + r * ld + j] = added[r * cols + j];
      expectClose(await gpu.read(y), want, 'y');

      // The gradient reads the same slice layout (dy = the original y values).
      const dy = gpu.tensorFrom(yData, [size], 'dy');
      const sums = biasGradRef(dense, rows, cols);
      for (const accumulate of [false, true]) {
        const d0 = rng.normals(biasData.length);
        const dbias = gpu.tensorFrom(d0, [d0.length], 'dbias');
        await runOnce(gpu, (l) =>
          biasGrad(l, { dy: { t: dy, offset, ld }, dbias, dbiasOffset: biasOffset, rows, cols, accumulate }),
        );
        const wantBias = Float64Array.from(d0);
        for (let j = 0; j < cols; j++) wantBias[biasOffset + j] = (accumulate ? d0[biasOffset + j] : 0) + sums[j];
        expectClose(await gpu.read(dbias), wantBias, `dbias accumulate=${accumulate}`, { atol: 1e-4, rtol: 1e-4 });
      }
    });
  }

  it('rejects views and biases that do not fit', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const y = gpu.tensor([4 * 10], 'qkv');
    const bias = gpu.tensor([10], 'qkv.bias');
    expect(() => biasAdd(list, { y: { t: y, offset: 5, ld: 10 }, bias, rows: 4, cols: 6 })).toThrow(/y \(qkv\)/);
    expect(() => biasAdd(list, { y: { t: y, ld: 10 }, bias, biasOffset: 6, rows: 4, cols: 5 })).toThrow(
      /bias \(qkv\.bias\)/,
    );
    expect(() => biasGrad(list, { dy: { t: y, ld: 4 }, dbias: bias, rows: 4, cols: 5, accumulate: false })).toThrow(
      /overlap/,
    );
  });
});
