/** AdaLoRA's kernels against their float64 references (src/kernels/adalora.ref.ts) on awkward shapes. */
import { describe, expect, it } from 'vitest';
import {
  adaloraApplyMask,
  adaloraIptUpdate,
  adaloraOrthGrad,
  adaloraRowScale,
  adaloraScaleGrad,
  adaloraSelectMask,
  adaloraTripletScores,
  orthScratchSize,
} from '../../src/kernels/adalora';
import { budgetMaskRef, iptUpdateRef, orthGradRef, orthNormRef, tripletScoresRef } from '../../src/kernels/adalora.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

const schedule = async (flags: { updateIpt?: boolean; computeMask?: boolean; applyMask?: boolean; k?: number }) => {
  const gpu = await testGpu();
  const t = gpu.tensor([4], 'schedule', 'u32');
  gpu.upload(
    t,
    Uint32Array.from([flags.updateIpt ? 1 : 0, flags.computeMask ? 1 : 0, flags.applyMask ? 1 : 0, flags.k ?? 0]),
  );
  return t;
};

describe('adalora reference', () => {
  it('the regularizer gradient is the finite-difference gradient of ‖A·Aᵀ − I‖_F and ‖Bᵀ·B − I‖_F', () => {
    const rng = new Rng(3);
    for (const [r, n, transposed] of [
      [3, 7, false],
      [4, 5, true],
    ] as const) {
      const M = Float64Array.from(rng.normals(r * n, 0.6));
      const w = 0.37;
      const g = orthGradRef(M, r, n, transposed, w);
      const h = 1e-6;
      let worst = 0;
      for (let i = 0; i < M.length; i++) {
        const up = M.slice();
        const down = M.slice();
        up[i] += h;
        down[i] -= h;
        const fd = (w * (orthNormRef(up, r, n, transposed) - orthNormRef(down, r, n, transposed))) / (2 * h);
        worst = Math.max(worst, Math.abs(fd - g[i]));
      }
      expect(worst).toBeLessThan(1e-7);
    }
  });

  it('the budget mask prunes every score <= the k-th smallest (ties included), as torch.kthvalue and <= do', () => {
    expect(Array.from(budgetMaskRef([0.5, 0.1, 0.3, 0.1, 0.9], 2))).toEqual([1, 0, 1, 0, 1]);
    expect(Array.from(budgetMaskRef([0.5, 0.1, 0.3, 0.1, 0.9], 1))).toEqual([1, 0, 1, 0, 1]);
    expect(Array.from(budgetMaskRef([0.5, 0.1, 0.3, 0.2, 0.9], 3))).toEqual([1, 0, 0, 0, 1]);
  });
});

describe('adalora kernels', () => {
  it('A ⊙ E and the in-place gradient split d(A ⊙ E) -> dA, dE', async () => {
    const gpu = await testGpu();
    const rng = new Rng(5);
    for (const [r, cols] of [
      [3, 37],
      [5, 130],
      [1, 1],
    ]) {
      const A = rng.normals(r * cols);
      const E = rng.normals(r);
      const dAE = rng.normals(r * cols);
      const tA = gpu.tensorFrom(A, [r, cols], 'A');
      const tE = gpu.tensorFrom(E, [r], 'E');
      const tAE = gpu.tensor([r, cols], 'AE');
      const tdA = gpu.tensorFrom(dAE, [r, cols], 'dA');
      const tdE = gpu.tensor([r], 'dE');
      await runOnce(gpu, (list) => {
        adaloraRowScale(list, { A: tA, E: tE, AE: tAE, rank: r, cols });
        adaloraScaleGrad(list, { dA: tdA, A: tA, E: tE, dE: tdE, rank: r, cols });
      });
      const wantAE = A.map((a, i) => a * E[Math.floor(i / cols)]);
      const wantdA = dAE.map((g, i) => g * E[Math.floor(i / cols)]);
      const wantdE = Array.from({ length: r }, (_, k) => {
        let s = 0;
        for (let c = 0; c < cols; c++) s += dAE[k * cols + c] * A[k * cols + c];
        return s;
      });
      expectClose(await gpu.read(tAE), wantAE, `AE r${r} c${cols}`, { atol: 1e-6, rtol: 1e-6 });
      expectClose(await gpu.read(tdA), wantdA, `dA r${r} c${cols}`, { atol: 1e-6, rtol: 1e-6 });
      expectClose(await gpu.read(tdE), wantdE, `dE r${r} c${cols}`, { atol: 1e-4, rtol: 1e-4 });
    }
  });

  it('the orthogonal regularizer adds w·2·D·M/‖D‖ to dA and dB', async () => {
    const gpu = await testGpu();
    const rng = new Rng(7);
    for (const [r, inDim, outDim] of [
      [3, 37, 11],
      [6, 70, 129],
      [1, 5, 3],
    ]) {
      const A = rng.normals(r * inDim, 0.3);
      const B = rng.normals(outDim * r, 0.3);
      const dA0 = rng.normals(r * inDim);
      const dB0 = rng.normals(outDim * r);
      const w = 0.5 / 14;
      const tdA = gpu.tensorFrom(dA0, [r, inDim], 'dA');
      const tdB = gpu.tensorFrom(dB0, [outDim, r], 'dB');
      await runOnce(gpu, (list) =>
        adaloraOrthGrad(list, {
          A: gpu.tensorFrom(A, [r, inDim], 'A'),
          B: gpu.tensorFrom(B, [outDim, r], 'B'),
          dA: tdA,
          dB: tdB,
          scratch: gpu.tensor([orthScratchSize(r)], 'orth'),
          rank: r,
          inDim,
          outDim,
          weight: w,
        }),
      );
      const gA = orthGradRef(A, r, inDim, false, w);
      const gB = orthGradRef(B, r, outDim, true, w);
      expectClose(
        await gpu.read(tdA),
        Array.from(dA0, (x, i) => x + gA[i]),
        `dA r${r}`,
        { atol: 1e-5, rtol: 1e-4 },
      );
      expectClose(
        await gpu.read(tdB),
        Array.from(dB0, (x, i) => x + gB[i]),
        `dB r${r}`,
        { atol: 1e-5, rtol: 1e-4 },
      );
    }
  });

  it('importance EMAs on the clipped gradient, only when the schedule updates them', async () => {
    const gpu = await testGpu();
    const rng = new Rng(9);
    const n = 300;
    const p = rng.normals(n);
    const g = rng.normals(n);
    const ema0 = Float32Array.from(rng.uniforms(2 * n, 0, 0.5));
    const clip = 0.63;
    const state = gpu.tensorFrom(Float32Array.from([2.5, clip, 0, 0]), [4], 'state');
    for (const update of [true, false]) {
      const ema = gpu.tensorFrom(ema0, [2 * n], 'ema');
      const sched = await schedule({ updateIpt: update });
      await runOnce(gpu, (list) =>
        adaloraIptUpdate(list, {
          param: gpu.tensorFrom(p, [n], 'p'),
          grad: gpu.tensorFrom(g, [n], 'g'),
          ema,
          state,
          clipIndex: 1,
          schedule: sched,
          beta1: 0.85,
          beta2: 0.7,
        }),
      );
      const want = Float64Array.from(ema0);
      if (update)
        iptUpdateRef(
          p,
          g.map((x) => x * clip),
          want,
          0.85,
          0.7,
        );
      expectClose(await gpu.read(ema), want, `ema (update ${update})`, { atol: 1e-6, rtol: 1e-5 });
    }
  });

  it('triplet scores, the budget mask over all modules (ties included) and masking Λ', async () => {
    const gpu = await testGpu();
    const rng = new Rng(13);
    const mods = [
      { rank: 3, inDim: 37, outDim: 70 },
      { rank: 5, inDim: 129, outDim: 6 },
    ];
    const total = mods.reduce((n, m) => n + m.rank, 0);
    const scores = gpu.tensor([total], 'scores');
    const mask = gpu.tensorFrom(new Float32Array(total).fill(1), [total], 'mask');
    const k = 3;
    const sched = await schedule({ computeMask: true, applyMask: true, k });
    const want: number[] = [];
    const Es = mods.map((m) => rng.normals(m.rank));
    const tEs = Es.map((E, i) => gpu.tensorFrom(E, [mods[i].rank], 'E'));
    await runOnce(gpu, (list) => {
      let offset = 0;
      mods.forEach((m) => {
        const emaA = rng.uniforms(2 * m.rank * m.inDim, 0, 1);
        const emaB = rng.uniforms(2 * m.outDim * m.rank, 0, 1);
        const emaE = rng.uniforms(2 * m.rank, 0, 1);
        want.push(...tripletScoresRef(emaA, emaB, emaE, m));
        adaloraTripletScores(list, {
          emaA: gpu.tensorFrom(emaA, [emaA.length], 'emaA'),
          emaB: gpu.tensorFrom(emaB, [emaB.length], 'emaB'),
          emaE: gpu.tensorFrom(emaE, [emaE.length], 'emaE'),
          scores,
          schedule: sched,
          ...m,
          offset,
        });
        offset += m.rank;
      });
    });
    const got = await gpu.read(scores);
    expectClose(got, want, 'scores', { atol: 1e-6, rtol: 1e-5 });

    // Masks from exact scores, with a tie at the threshold: both tied triplets are pruned.
    const tied = Float32Array.from(got);
    const order = Array.from(tied.keys()).sort((a, b) => tied[a] - tied[b]);
    tied[order[3]] = tied[order[2]];
    gpu.upload(scores, tied);
    await runOnce(gpu, (list) => {
      adaloraSelectMask(list, { scores, mask, schedule: sched, total });
      let offset = 0;
      mods.forEach((m, i) => {
        adaloraApplyMask(list, { E: tEs[i], mask, schedule: sched, rank: m.rank, offset });
        offset += m.rank;
      });
    });
    const wantMask = budgetMaskRef(tied, k);
    expect(Array.from(await gpu.read(mask))).toEqual(Array.from(wantMask));
    expect(Array.from(wantMask).filter((x) => x === 0).length).toBe(k + 1);
    let offset = 0;
    for (const [i, m] of mods.entries()) {
      const E = await gpu.read(tEs[i]);
      expect(Array.from(E)).toEqual(Array.from(Es[i], (e, j) => (wantMask[offset + j] ? e : 0)));
      offset += m.rank;
    }

    // A step that neither computes nor applies a mask leaves scores, mask and Λ alone.
    const idle = await schedule({ k });
    const before = await gpu.read(tEs[0]);
    gpu.upload(mask, new Float32Array(total));
    await runOnce(gpu, (list) => {
      adaloraSelectMask(list, { scores, mask, schedule: idle, total });
      adaloraApplyMask(list, { E: tEs[0], mask, schedule: idle, rank: mods[0].rank, offset: 0 });
    });
    expect(Array.from(await gpu.read(mask))).toEqual(new Array(total).fill(0));
    expect(Array.from(await gpu.read(tEs[0]))).toEqual(Array.from(before));
  });
});
