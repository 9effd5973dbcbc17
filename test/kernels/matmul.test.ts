import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul';
import { MATMUL_VARIANTS, needsAlignment } from '../../src/kernels/matmul-plan';
import { matmulRef } from '../../src/kernels/matmul.ref';
import { Rng } from '../../src/util/random';
import { roundToHalf } from '../../src/gpu/half';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

// Every kernel is checked on SwiftShader, whichever one the adapter would pick by default.
const VARIANTS = MATMUL_VARIANTS;

describe('matmul', () => {
  // Awkward shapes: not multiples of the 64x64, 128x128 or 128x64 tiles, the 16x16 register block, BK = 16,
  // 8 or 4; degenerate 1-wide; K > one tile. The vec4-load kernels (register-vec4, tiled-*-g4) need K and the
  // leading dimensions to be multiples of 4, so they get shapes with K % 4 == 0 and awkward M and N, read through padded leading dimensions.
  const awkward: [number, number, number][] = [
    [1, 1, 1],
    [7, 5, 3],
    [65, 17, 33],
    [130, 70, 19],
    [3, 129, 200],
  ];
  const aligned: [number, number, number][] = [
    [1, 1, 4],
    [7, 5, 12],
    [65, 17, 36],
    [130, 70, 20],
    [3, 129, 200],
  ];
  for (const variant of VARIANTS) {
    const shapes = needsAlignment(variant) ? aligned : awkward;
    // Leading dimensions with unused columns at the end of every stored row (4-aligned for the vec4 loads).
    const ld = (cols: number) => (needsAlignment(variant) ? Math.ceil(cols / 4) * 4 + 4 : cols + 3);
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`${variant}: transA=${transA} transB=${transB}, awkward shapes, padded rows, alpha/beta`, async () => {
          const gpu = await testGpu();
          const rng = new Rng(1 + Number(transA) * 2 + Number(transB));
          for (const [M, N, K] of shapes) {
            // Stored shapes of A and B; their rows are padded.
            const [aRows, aCols] = transA ? [K, M] : [M, K];
            const [bRows, bCols] = transB ? [N, K] : [K, N];
            const lda = ld(aCols);
            const ldb = ld(bCols);
            const a = rng.normals(aRows * lda);
            const b = rng.normals(bRows * ldb);
            const c0 = rng.normals(M * N);
            const ta = gpu.tensorFrom(a, [a.length], 'a');
            const tb = gpu.tensorFrom(b, [b.length], 'b');
            const tc = gpu.tensorFrom(c0, [M * N], 'c');
            await runOnce(gpu, (l) =>
              matmul(l, {
                a: { t: ta, ld: lda },
                b: { t: tb, ld: ldb },
                c: { t: tc, ld: N },
                M,
                N,
                K,
                transA,
                transB,
                alpha: 0.5,
                beta: 1,
                variant,
              }),
            );
            const want = matmulRef(dense(a, aRows, aCols, lda), dense(b, bRows, bCols, ldb), c0, M, N, K, {
              transA,
              transB,
              alpha: 0.5,
              beta: 1,
            });
            expectClose(await gpu.read(tc), want, `${variant} C ${M}x${N}x${K}`);
          }
        });
      }
    }

    it(`${variant}: batched strided views with offsets write only their slice`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(7);
      // Offsets and strides are multiples of 4 so that every variant can run this case.
      const batch = 3,
        M = 9,
        N = 6,
        K = 8,
        ldc = 10,
        offC = 2,
        offA = 4;
      const a = rng.normals(offA + batch * M * K);
      const b = rng.normals(batch * N * K);
      const ta = gpu.tensorFrom(a, [a.length], 'a');
      const tb = gpu.tensorFrom(b, [b.length], 'b');
      const sentinel = new Float32Array(batch * M * ldc + offC).fill(7);
      const tc = gpu.tensorFrom(sentinel, [sentinel.length], 'c');
      await runOnce(gpu, (l) =>
        matmul(l, {
          a: { t: ta, ld: K, offset: offA, batchStride: M * K },
          b: { t: tb, ld: K, batchStride: N * K },
          c: { t: tc, ld: ldc, offset: offC, batchStride: M * ldc },
          M,
          N,
          K,
          transB: true,
          batch,
          variant,
        }),
      );
      const got = await gpu.read(tc);
      const want = Float64Array.from(sentinel);
      for (let z = 0; z < batch; z++) {
        const ref = matmulRef(a.subarray(offA + z * M * K), b.subarray(z * N * K), null, M, N, K, { transB: true });
        for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) want[offC + z * M * ldc + m * ldc + n] = ref[m * N + n];
      }
      expectClose(got, want, `${variant} batched C`);
    });
  }

  // Split-K: partial products over K slices into list scratch, then one sum into C. Uneven last slices
  // (K not a multiple of the slice), batched strided views with offsets, alpha and beta, both transposes.
  // The vec4-load kernels need 4-aligned leading dimensions: where a case's dense rows are not (9 or 6 columns),
  // they read the same matrices through rows padded to a multiple of 4, and the dense layout is checked to be refused.
  for (const variant of VARIANTS) {
    it(`${variant}: split along K, batched, strided, alpha/beta`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(21);
      const batch = 2,
        offA = 4,
        offC = 3;
      const cases: [number, number, number, number | 'auto', boolean, boolean][] = [
        [9, 6, 200, 3, true, false], // slices of 80, 80, 40; A and B rows of 9 and 6 columns
        [17, 5, 36, 3, false, true], // 16, 16, 4
        [8, 70, 600, 'auto', true, true], // one tile of output: auto splits in two
      ];
      let padded = 0;
      for (const [M, N, K, splitK, transA, transB] of cases) {
        // Stored A is [aRows, aCols] (transposed: [K, M]), B is [bRows, bCols]; ld >= cols.
        const [aRows, aCols] = transA ? [K, M] : [M, K];
        const [bRows, bCols] = transB ? [N, K] : [K, N];
        const pad = (cols: number) => (needsAlignment(variant) ? Math.ceil(cols / 4) * 4 : cols);
        const lda = pad(aCols),
          ldb = pad(bCols),
          ldc = N + 2;
        if (lda !== aCols || ldb !== bCols) {
          padded++;
          // The dense layout is refused by name, not run with misaligned vec4 loads.
          const t = (n: number) => gpu.tensor([n], 'dense');
          expect(() =>
            matmul(gpu.list('refused'), {
              a: { t: t(offA + batch * M * K), ld: aCols, offset: offA, batchStride: M * K },
              b: { t: t(batch * K * N), ld: bCols, batchStride: K * N },
              c: { t: t(offC + batch * M * ldc), ld: ldc, offset: offC, batchStride: M * ldc },
              M,
              N,
              K,
              transA,
              transB,
              batch,
              variant,
              splitK,
            }),
          ).toThrow(
            new RegExp(
              `the ${variant} kernel needs K, every leading dimension, offset and batch stride of A and B to be multiples of 4`,
            ),
          );
        }
        const strideA = aRows * lda,
          strideB = bRows * ldb;
        // Padding columns hold random values too: a kernel that reads them shows up in C.
        const a = rng.normals(offA + batch * strideA);
        const b = rng.normals(batch * strideB);
        const c0 = rng.normals(offC + batch * M * ldc);
        const ta = gpu.tensorFrom(a, [a.length], 'a');
        const tb = gpu.tensorFrom(b, [b.length], 'b');
        const tc = gpu.tensorFrom(c0, [c0.length], 'c');
        let dispatches = 0;
        await runOnce(gpu, (l) => {
          matmul(l, {
            a: { t: ta, ld: lda, offset: offA, batchStride: strideA },
            b: { t: tb, ld: ldb, batchStride: strideB },
            c: { t: tc, ld: ldc, offset: offC, batchStride: M * ldc },
            M,
            N,
            K,
            transA,
            transB,
            batch,
            alpha: 0.5,
            beta: 1,
            variant,
            splitK,
          });
          dispatches = l.dispatchCount;
        });
        expect(dispatches, 'partial products, then their sum').toBe(2);
        /** The dense [rows, cols] matrix stored from `offset` with leading dimension ld. */
        const dense = (x: Float32Array, offset: number, rows: number, cols: number, ld: number) =>
          Float64Array.from({ length: rows * cols }, (_, i) => x[offset + Math.floor(i / cols) * ld + (i % cols)]);
        const want = Float64Array.from(c0);
        for (let z = 0; z < batch; z++) {
          const cz = dense(c0, offC + z * M * ldc, M, N, ldc);
          const az = dense(a, offA + z * strideA, aRows, aCols, lda);
          const bz = dense(b, z * strideB, bRows, bCols, ldb);
          const ref = matmulRef(az, bz, cz, M, N, K, { transA, transB, alpha: 0.5, beta: 1 });
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) want[offC + z * M * ldc + m * ldc + n] = ref[m * N + n];
        }
        expectClose(await gpu.read(tc), want, `${variant} split ${splitK} ${M}x${N}x${K} (lda ${lda}, ldb ${ldb})`, {
          atol: 1e-4,
        });
      }
      // Only the first case has rows that are not 4-aligned, and only the vec4 kernels need them padded.
      expect(padded).toBe(needsAlignment(variant) ? 1 : 0);
    });
  }

  it('register kernels: a C taller and wider than one workgroup, batched, with beta = 1', async () => {
    const gpu = await testGpu();
    const rng = new Rng(9);
    const batch = 2,
      M = 520,
      N = 72,
      K = 16;
    const a = rng.normals(batch * M * K);
    const b = rng.normals(batch * K * N);
    const c0 = rng.normals(batch * M * N);
    const ta = gpu.tensorFrom(a, [a.length], 'a');
    const tb = gpu.tensorFrom(b, [b.length], 'b');
    for (const variant of ['register', 'register-vec4'] as const) {
      const tc = gpu.tensorFrom(c0, [c0.length], 'c');
      await runOnce(gpu, (l) =>
        matmul(l, {
          a: { t: ta, ld: K, batchStride: M * K },
          b: { t: tb, ld: N, batchStride: K * N },
          c: { t: tc, ld: N, batchStride: M * N },
          M,
          N,
          K,
          batch,
          beta: 1,
          variant,
        }),
      );
      const want = new Float64Array(batch * M * N);
      for (let z = 0; z < batch; z++) {
        want.set(
          matmulRef(a.subarray(z * M * K), b.subarray(z * K * N), c0.subarray(z * M * N), M, N, K, { beta: 1 }),
          z * M * N,
        );
      }
      expectClose(await gpu.read(tc), want, `${variant} C`);
    }
  });

  // Frozen weights stored as packed 16-bit floats: B only, every kernel, both layouts a weight is read in
  // (x·Wᵀ forward, dY·W backward), odd element offsets where the kernel allows them (a view can start in
  // the high half of a word). The reference multiplies by the rounded weights.
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const variant of VARIANTS) {
      it(`${variant}: B stored as ${dtype}`, async () => {
        const gpu = await testGpu();
        const rng = new Rng(dtype === 'f16' ? 11 : 12);
        const vec4 = needsAlignment(variant);
        for (const transB of [false, true]) {
          for (const [M, N, K] of vec4
            ? [
                [7, 5, 12],
                [65, 17, 36],
                [3, 129, 200],
              ]
            : [
                [7, 5, 3],
                [65, 17, 33],
                [3, 129, 200],
              ]) {
            const [bRows, bCols] = transB ? [N, K] : [K, N];
            const ldb = vec4 ? Math.ceil(bCols / 4) * 4 + 4 : bCols + 1;
            const offB = vec4 ? 4 : 1;
            const a = rng.normals(M * K);
            const b = rng.normals(offB + bRows * ldb);
            const ta = gpu.tensorFrom(a, [a.length], 'a');
            const tb = gpu.tensorFrom(b, [b.length], 'w', dtype);
            const tc = gpu.tensor([M * N], 'c');
            await runOnce(gpu, (l) =>
              matmul(l, {
                a: { t: ta, ld: K },
                b: { t: tb, ld: ldb, offset: offB },
                c: { t: tc, ld: N },
                M,
                N,
                K,
                transB,
                variant,
              }),
            );
            const stored = roundToHalf(b, dtype).subarray(offB);
            const want = matmulRef(a, dense(stored, bRows, bCols, ldb), null, M, N, K, { transB });
            expectClose(await gpu.read(tc), want, `${variant} ${dtype} transB=${transB} ${M}x${N}x${K}`);
          }
        }
      });
    }
  }

  it('16-bit tensors are accepted as B only', async () => {
    const gpu = await testGpu();
    const w = gpu.tensorFrom(new Float32Array(16), [16], 'w16', 'bf16');
    const x = gpu.tensor([16], 'x');
    expect(() =>
      matmul(gpu.list('bad'), { a: { t: w, ld: 4 }, b: { t: x, ld: 4 }, c: { t: x, ld: 4 }, M: 4, N: 4, K: 4 }),
    ).toThrow(/matmul A \(w16\).*bf16/);
    const ids = gpu.tensor([16], 'ids', 'u32');
    expect(() =>
      matmul(gpu.list('bad'), {
        a: { t: x, ld: 4 },
        b: { t: ids, ld: 4 },
        c: { t: gpu.tensor([16], 'c'), ld: 4 },
        M: 4,
        N: 4,
        K: 4,
      }),
    ).toThrow(/f32, f16, bf16, nf4, fp4 or int8.*u32/);
  });

  it('the vec4-load kernels reject views that are not 4-aligned; the default picks a kernel that runs them', async () => {
    const gpu = await testGpu();
    const rng = new Rng(3);
    const M = 5,
      N = 6,
      K = 7;
    const a = rng.normals(M * K),
      b = rng.normals(K * N);
    const ta = gpu.tensorFrom(a, [a.length], 'act');
    const tb = gpu.tensorFrom(b, [b.length], 'w');
    const tc = gpu.tensor([M * N], 'c');
    const args = { a: { t: ta, ld: K }, b: { t: tb, ld: N }, c: { t: tc, ld: N }, M, N, K };
    const vec4Kernels = MATMUL_VARIANTS.filter(needsAlignment);
    expect(vec4Kernels).toEqual(['tiled-g4', 'tiled-128-g4', 'tiled-128x64-g4', 'register-vec4']);
    for (const variant of vec4Kernels) {
      expect(() => matmul(gpu.list('bad'), { ...args, variant })).toThrow(
        new RegExp(`act x w.*${variant} kernel.*multiples of 4`),
      );
    }
    await runOnce(gpu, (l) => matmul(l, args));
    expectClose(await gpu.read(tc), matmulRef(a, b, null, M, N, K), 'default variant');
  });
});

/** The rows x cols matrix stored with leading dimension ld, as a dense array. */
function dense(x: Float32Array, rows: number, cols: number, ld: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = x[r * ld + c];
  return out;
}
