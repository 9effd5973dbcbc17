import { describe, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul';
import { matmulRef } from '../../src/kernels/matmul.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

describe('matmul', () => {
  // Awkward shapes: not multiples of the 64x64 tile or BK = 16, degenerate 1-wide, and K > one tile.
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [7, 5, 3],
    [65, 17, 33],
    [130, 70, 19],
    [3, 129, 200],
  ];
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      it(`transA=${transA} transB=${transB}, awkward shapes, alpha/beta`, async () => {
        const gpu = await testGpu();
        const rng = new Rng(1 + Number(transA) * 2 + Number(transB));
        for (const [M, N, K] of shapes) {
          const a = rng.normals(M * K);
          const b = rng.normals(K * N);
          const c0 = rng.normals(M * N);
          const ta = gpu.tensorFrom(a, [M * K], 'a');
          const tb = gpu.tensorFrom(b, [K * N], 'b');
          const tc = gpu.tensorFrom(c0, [M * N], 'c');
          await runOnce(gpu, (l) =>
            matmul(l, {
              a: { t: ta, ld: transA ? M : K }, b: { t: tb, ld: transB ? K : N }, c: { t: tc, ld: N },
              M, N, K, transA, transB, alpha: 0.5, beta: 1,
            }),
          );
          const want = matmulRef(a, b, c0, M, N, K, { transA, transB, alpha: 0.5, beta: 1 });
          expectClose(await gpu.read(tc), want, `C ${M}x${N}x${K}`);
        }
      });
    }
  }

  it('batched strided views with offsets write only their slice', async () => {
    const gpu = await testGpu();
    const rng = new Rng(7);
    const batch = 3, M = 9, N = 6, K = 5, ldc = 10, offC = 2;
    const a = rng.normals(batch * M * K);
    const b = rng.normals(batch * N * K);
    const ta = gpu.tensorFrom(a, [a.length], 'a');
    const tb = gpu.tensorFrom(b, [b.length], 'b');
    const sentinel = new Float32Array(batch * M * ldc + offC).fill(7);
    const tc = gpu.tensorFrom(sentinel, [sentinel.length], 'c');
    await runOnce(gpu, (l) =>
      matmul(l, {
        a: { t: ta, ld: K, batchStride: M * K },
        b: { t: tb, ld: K, batchStride: N * K },
        c: { t: tc, ld: ldc, offset: offC, batchStride: M * ldc },
        M, N, K, transB: true, batch,
      }),
    );
    const got = await gpu.read(tc);
    const want = Float64Array.from(sentinel);
    for (let z = 0; z < batch; z++) {
      const ref = matmulRef(a.subarray(z * M * K), b.subarray(z * N * K), null, M, N, K, { transB: true });
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) want[offC + z * M * ldc + m * ldc + n] = ref[m * N + n];
    }
    expectClose(got, want, 'batched C');
  });
});
