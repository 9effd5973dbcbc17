import { describe, it } from 'vitest';
import { importanceColumns, IMPORTANCE_SUMS } from '../../src/kernels/gora';
import { importanceColumnsRef } from '../../src/kernels/gora.ref';
import { Rng } from '../../src/util/random';
import { roundToHalf } from '../../src/gpu/half';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

describe('gora importance sums', () => {
  const shapes = [
    [1, 1, false, 0],
    [7, 5, false, 3],
    [13, 70, true, 0],
    [130, 33, false, 8],
    [48, 16, true, 5],
  ] as const;
  const cases = [
    ...shapes.map((s) => [...s, 'f32'] as const),
    // Frozen weights stored as packed 16-bit floats (odd sizes: the last word is half used).
    ...shapes.slice(1, 3).flatMap((s) => [[...s, 'f16'] as const, [...s, 'bf16'] as const]),
  ];
  for (const [out, inDim, conv1d, offset, dtype] of cases) {
    it(`${out}x${inDim}${conv1d ? ' (Conv1D layout)' : ''} at offset ${offset}, W ${dtype}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(out * 31 + inDim);
      const w = rng.normals(out * inDim);
      const g = rng.normals(out * inDim, 0.01);
      const sumsInit = rng.normals(offset + inDim * IMPORTANCE_SUMS + 2);
      const sums = gpu.tensorFrom(sumsInit, [sumsInit.length], 'sums');
      await runOnce(gpu, (l) =>
        importanceColumns(l, {
          weight: gpu.tensorFrom(w, [w.length], 'w', dtype),
          grad: gpu.tensorFrom(g, [g.length], 'g'),
          sums,
          sumsOffset: offset,
          out,
          in: inDim,
          conv1d,
        }),
      );
      const want = Float64Array.from(sumsInit);
      want.set(importanceColumnsRef(dtype === 'f32' ? w : roundToHalf(w, dtype), g, out, inDim, conv1d), offset);
      expectClose(await gpu.read(sums), want, 'sums', { atol: 1e-7, rtol: 1e-5 });
    });
  }
});
