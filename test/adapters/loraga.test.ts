/**
 * LoRA-GA (docs/METHODS.md): its init against a float64 reference (gradient → SVD → A, B by each direction and scale
 * rule), the builder (mean gradient over N batches, step 0 equals the base, seeded), the whole-model gradient check
 * with A and B moved off their init, and the export PEFT's conversion writes, reloaded to the same loss.
 */
import { describe, expect, it } from 'vitest';
import { GradientAccumulator } from '../../src/adapters/gora/gradients';
import { loragaFactors, loragaIndices } from '../../src/adapters/loraga/init';
import { LORAGA_DIRECTIONS, LORAGA_SCALES } from '../../src/adapters/loraga/method';
import type { ResidualLoraLayer } from '../../src/adapters/pissa/layer';
import { buildMethod, type MethodOptions } from '../../src/engine/methods';
import { adapterAllocations, adapterShapeOf, planBytes } from '../../src/model/allocation-plan';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { denseOperator, svdExact } from '../../src/util/svd';
import { checkModelGradients } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec } from '../helpers/tiny-models';
import { context, lossOf, perturb, roundTrip } from '../helpers/residual-lora';

describe('LoRA-GA init vs a float64 reference', () => {
  // q = min(4r, min(out, in)) = 10 covers the whole rank here, so the randomized SVD is exact.
  const out = 10;
  const inDim = 23;
  const r = 3;
  const rng = new Rng(11);
  const grad = Float64Array.from({ length: out * inDim }, () => rng.normal());
  const ref = svdExact(grad, out, inDim);
  // W = 5·u vᵀ (rank 1, σ₁ = 5): weight_svd's svd_lowrank(W, q = r) is exact on it.
  const u = Array.from({ length: out }, () => rng.normal());
  const v = Array.from({ length: inDim }, () => rng.normal());
  const nu = Math.hypot(...u);
  const nv = Math.hypot(...v);
  const weight = Float64Array.from(
    { length: out * inDim },
    (_, i) => (5 * u[Math.floor(i / inDim)] * v[i % inDim]) / nu / nv,
  );
  const s = 2.5;
  for (const direction of LORAGA_DIRECTIONS) {
    for (const scale of LORAGA_SCALES) {
      it(`${direction} x ${scale}`, async () => {
        const f = await loragaFactors(
          denseOperator(grad, out, inDim),
          r,
          { direction, scale, stableGamma: 16 },
          s,
          new Rng(3),
          () => denseOperator(weight, out, inDim),
        );
        // The reference draws the same indices (random: the Rng state after the sketch of q x in normals).
        const refRng = new Rng(3);
        for (let i = 0; i < inDim * 10; i++) refRng.normal();
        const [ia, ib] = loragaIndices(direction, r, refRng);
        const sB = ib.map((j) => ref.S[j]);
        expect(f.capturedSingularValues.map((x) => x / ref.S[0])).toEqual(
          sB.map((x) => expect.closeTo(x / ref.S[0], 10)),
        );
        const factorB =
          scale === 'stable' ? out ** 0.25 / 4 : scale === 'weight_svd' ? 5 / sB[0] : scale === 'gd_scale' ? 1 / s : 1;
        const factorA = scale === 'gd_scale' ? 1 / s : 1;
        for (let j = 0; j < r; j++) {
          // Singular vectors are defined up to sign: align each row of A and column of B with the reference's.
          const rowA = Array.from({ length: inDim }, (_, i) => f.A[j * inDim + i]);
          const wantA = Array.from({ length: inDim }, (_, i) => factorA * ref.V[i * ref.k + ia[j]]);
          const signA = Math.sign(rowA.reduce((t, x, i) => t + x * wantA[i], 0));
          for (let i = 0; i < inDim; i++) expect(Math.abs(signA * rowA[i] - wantA[i])).toBeLessThan(1e-6);
          const colB = Array.from({ length: out }, (_, o) => f.B[o * r + j]);
          const wantB = Array.from({ length: out }, (_, o) => factorB * sB[j] * ref.U[o * ref.k + ib[j]]);
          const signB = Math.sign(colB.reduce((t, x, o) => t + x * wantB[o], 0));
          for (let o = 0; o < out; o++)
            expect(Math.abs(signB * colB[o] - wantB[o])).toBeLessThan(1e-5 * Math.max(1, Math.abs(wantB[o])));
        }
      });
    }
  }

  it('2r larger than the weight allows is an error', async () => {
    await expect(
      loragaFactors(
        denseOperator(grad, out, inDim),
        6,
        { direction: 'ArB2r', scale: 'unit', stableGamma: 16 },
        s,
        new Rng(1),
      ),
    ).rejects.toThrow(/LoRA-GA needs 2r \(12\) <= min\(in, out\) \(10\)/);
  });
});

describe('LoRA-GA as a method (tiny llama and gpt2)', () => {
  const setup = async (family: 'llama' | 'gpt2', options: Partial<MethodOptions> = {}) => {
    const gpu = await testGpu();
    const spec = tinySpec(family);
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const o: MethodOptions = {
      method: 'loraga',
      rank: 2,
      alpha: 4,
      targets: ['all-linear'],
      seed: 7,
      loragaBatches: 2,
      ...options,
    };
    const live = gpu.liveBytes;
    const state = await buildMethod(gpu, weights, o, context(spec));
    // What the build leaves allocated is what the allocation plan lists for these adapters (temporaries freed).
    const planned = planBytes(adapterAllocations([...state.adapters.values()].map(adapterShapeOf)));
    expect(gpu.liveBytes - live).toBe(planned);
    return { gpu, spec, weights, state, o };
  };

  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: B holds σ_{r+1..2r} of the mean gradient over N batches, and the model equals the base at step 0`, async () => {
      const { gpu, spec, weights, state, o } = await setup(family);
      const acc = new GradientAccumulator(
        gpu,
        weights,
        [...state.adapters.values()].map((a) => a.info),
        {
          batch: 2,
          seq: 5,
        },
      );
      for (const seed of [100, 101]) acc.add({ ...randomBatch(spec, 2, 5, seed), batch: 2, seq: 5 });
      await acc.finish();
      for (const [path, a] of state.adapters) {
        const { info } = a as ResidualLoraLayer;
        const ref = svdExact(await gpu.read(acc.probes.get(path)!.grad), info.out, info.in);
        const got = state.analysis.modules.find((m) => m.path === path)!.singularValues!;
        expect(got.length).toBe(o.rank);
        const exact = 4 * o.rank >= Math.min(info.in, info.out);
        for (let i = 0; i < o.rank; i++) {
          const want = ref.S[o.rank + i];
          if (exact) expect(Math.abs(got[i] - want) / ref.S[0]).toBeLessThan(1e-5);
          else expect(got[i]).toBeLessThanOrEqual(ref.S[0] * (1 + 1e-5));
        }
      }
      expect(state.analysis.svd).toBe('niter_4');
      expect(state.analysis.init).toBe('loraga');
      const base = await lossOf(gpu, weights);
      expect(Math.abs((await lossOf(gpu, weights, state.adapters)) - base) / base).toBeLessThan(2e-6);
      gpu.checkErrors(family);
    });

    it(`${family}: whole-model gradient check with A and B moved off their init`, async () => {
      const { gpu, weights, state } = await setup(family);
      await perturb(gpu, state, 3);
      const results = await checkModelGradients(gpu, weights, { mode: 'adapters', adapters: state.adapters });
      expect(results.length).toBe(2 * state.adapters.size);
    });

    it(`${family}: the export (PEFT's conversion, rank 2r on W) reloads to the trained model's loss; raw is not offered`, async () => {
      const { gpu, weights, state, o } = await setup(family);
      await perturb(gpu, state, 5);
      const inMemory = await lossOf(gpu, weights, state.adapters);
      const converted = await roundTrip(gpu, weights, state);
      expect([converted.config.r, converted.config.lora_alpha, converted.config.init_lora_weights]).toEqual([
        2 * o.rank,
        2 * o.alpha,
        true,
      ]);
      expect(Math.abs((await lossOf(gpu, weights, converted.imported.adapters)) - inMemory) / inMemory).toBeLessThan(
        2e-6,
      );
      const raw = await roundTrip(gpu, weights, state, true);
      expect(raw.exported.note).toMatch(/LoRA-GA has no raw save PEFT can reload/);
      expect(raw.config.r).toBe(2 * o.rank);
      gpu.checkErrors(family);
    });
  }

  it('a rebuild from the same seed and batches gives the same factors (resume), also with the random direction', async () => {
    const a = await setup('llama', { loragaDirection: 'random', loragaScale: 'weight_svd' });
    const b = await setup('llama', { loragaDirection: 'random', loragaScale: 'weight_svd' });
    for (const [path, layer] of a.state.adapters) {
      const l2 = b.state.adapters.get(path) as ResidualLoraLayer;
      const [A1, B1] = await a.gpu.readMany([(layer as ResidualLoraLayer).A, (layer as ResidualLoraLayer).B]);
      const [A2, B2] = await b.gpu.readMany([l2.A, l2.B]);
      expect(Array.from(A1)).toEqual(Array.from(A2));
      expect(Array.from(B1)).toEqual(Array.from(B2));
    }
  });
});
