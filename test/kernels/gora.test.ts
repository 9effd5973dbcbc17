import { describe, it } from 'vitest';
import { importanceColumns, IMPORTANCE_SUMS } from '../../src/kernels/gora';
import { importanceColumnsRef } from '../../src/kernels/gora.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

describe('gora importance sums', () => {
  for (const [out, inDim, conv1d, offset] of [[1, 1, false, 0], [7, 5, false, 3], [13, 70, true, 0], [130, 33, false, 8], [48, 16, true, 5]] as const) {
    it(`${out}x${inDim}${conv1d ? ' (Conv1D layout)' : ''} at offset ${offset}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(out * 31 + inDim);
      const w = rng.normals(out * inDim);
      const g = rng.normals(out * inDim, 0.01);
      const sumsInit = rng.normals(offset + inDim * IMPORTANCE_SUMS + 2);
      const sums = gpu.tensorFrom(sumsInit, [sumsInit.length], 'sums');
      await runOnce(gpu, (l) => importanceColumns(l, {
        weight: gpu.tensorFrom(w, [w.length], 'w'), grad: gpu.tensorFrom(g, [g.length], 'g'), sums, sumsOffset: offset, out, in: inDim, conv1d,
      }));
      const want = Float64Array.from(sumsInit);
      want.set(importanceColumnsRef(w, g, out, inDim, conv1d), offset);
      expectClose(await gpu.read(sums), want, 'sums', { atol: 1e-7, rtol: 1e-5 });
    });
  }
});
