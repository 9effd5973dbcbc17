/**
 * PiSSA (docs/METHODS.md): its init is W's top-r SVD (vs float64), the adapted model equals the base at step 0,
 * the layer's forward/backward pass a whole-model finite-difference check with A and B moved off (A₀, B₀), its
 * export (PEFT's conversion to a rank-2r LoRA, and the raw default save) reloads to the same loss, and PEFT's own
 * default-saved PiSSA folders (hf-golden) load to PEFT's losses.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readLinearWeight } from '../../src/adapters/pissa/init';
import type { ResidualLoraLayer } from '../../src/adapters/pissa/layer';
import { type Example, padBatches } from '../../src/data/index';
import { loadPeftFolder } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import { buildMethod, type MethodOptions } from '../../src/engine/methods';
import { nodeDir } from '../../src/model/formats/node-source';
import { TransformerGraph } from '../../src/model/transformer';
import { adapterAllocations, adapterShapeOf, planBytes } from '../../src/model/allocation-plan';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { svdExact } from '../../src/util/svd';
import { checkModelGradients } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { context, lossOf, perturb, roundTrip } from '../helpers/residual-lora';
import { randomSource, tinySpec } from '../helpers/tiny-models';

type Family = 'llama' | 'gpt2';

async function setup(family: Family, options: Partial<MethodOptions> = {}) {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  const o: MethodOptions = { method: 'pissa', rank: 3, alpha: 6, targets: ['all-linear'], seed: 7, ...options };
  const live = gpu.liveBytes;
  const state = await buildMethod(gpu, weights, o, context(spec));
  // What the build leaves allocated is what the allocation plan lists for these adapters (temporaries freed).
  const planned = planBytes(adapterAllocations([...state.adapters.values()].map(adapterShapeOf)));
  expect(gpu.liveBytes - live).toBe(planned);
  return { gpu, spec, weights, state, o };
}

describe('PiSSA init and layer (tiny llama and gpt2)', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`${family}: s·B·A is W's top-r SVD part (float64), A₀ = A, B₀ = B, and the model equals the base at step 0`, async () => {
      const { gpu, weights, state, o } = await setup(family);
      const s = o.alpha / o.rank;
      let worst = 0;
      for (const a of state.adapters.values()) {
        const layer = a as ResidualLoraLayer;
        const { info } = layer;
        const [A, B, A0, B0] = await gpu.readMany([layer.A, layer.B, layer.initialPair.A, layer.initialPair.B]);
        expect(Array.from(A0)).toEqual(Array.from(A));
        expect(Array.from(B0)).toEqual(Array.from(B));
        expect(layer.initialPair.scale).toBe(s);
        const w = await readLinearWeight(gpu, weights, info);
        const ref = svdExact(w, info.out, info.in);
        const r = o.rank;
        // (W − s·B₀·A₀) + s·B·A = W, and s·B·A = U_r·S_r·V_rᵀ.
        for (let i = 0; i < info.out; i++)
          for (let j = 0; j < info.in; j++) {
            let got = 0;
            let want = 0;
            for (let p = 0; p < r; p++) {
              got += s * B[i * r + p] * A[p * info.in + j];
              want += ref.U[i * ref.k + p] * ref.S[p] * ref.V[j * ref.k + p];
            }
            worst = Math.max(worst, Math.abs(got - want) / ref.S[0]);
          }
        const analysis = state.analysis.modules.find((m) => m.path === info.path)!;
        expect(analysis.singularValues!.map((x) => x / ref.S[0])).toEqual(
          Array.from(ref.S.slice(0, r), (x) => expect.closeTo(x / ref.S[0], 12)),
        );
      }
      expect(worst).toBeLessThan(2e-6);
      expect(state.analysis.svd).toBe('exact');
      const base = await lossOf(gpu, weights);
      const adapted = await lossOf(gpu, weights, state.adapters);
      expect(Math.abs(adapted - base) / base).toBeLessThan(2e-6);
      gpu.checkErrors(family);
    });

    it(`${family}: whole-model gradient check with A and B moved off their init`, async () => {
      const { gpu, weights, state } = await setup(family);
      await perturb(gpu, state, 3);
      const results = await checkModelGradients(gpu, weights, { mode: 'adapters', adapters: state.adapters });
      expect(results.length).toBe(2 * state.adapters.size);
    });

    it(`${family}: the converted export (rank 2r LoRA on W) and the raw default save reload to the trained model's loss`, async () => {
      const { gpu, weights, state, o } = await setup(family);
      await perturb(gpu, state, 5);
      const inMemory = await lossOf(gpu, weights, state.adapters);
      const base = await lossOf(gpu, weights);
      expect(Math.abs(inMemory - base) / base).toBeGreaterThan(1e-3);

      const converted = await roundTrip(gpu, weights, state);
      expect(converted.config.r).toBe(2 * o.rank);
      expect(converted.config.lora_alpha).toBe(2 * o.alpha);
      expect(converted.config.init_lora_weights).toBe(true);
      expect(converted.config.rank_pattern).toEqual({});
      expect(converted.exported.note).toBeNull();
      const convertedLoss = await lossOf(gpu, weights, converted.imported.adapters);
      expect(Math.abs(convertedLoss - inMemory) / inMemory).toBeLessThan(2e-6);

      const raw = await roundTrip(gpu, weights, state, true);
      expect(raw.config.r).toBe(o.rank);
      expect(raw.config.lora_alpha).toBe(o.alpha);
      expect(raw.config.init_lora_weights).toBe('pissa');
      expect(raw.imported.summary).toMatch(/PiSSA modules/);
      const rawLoss = await lossOf(gpu, weights, raw.imported.adapters);
      expect(Math.abs(rawLoss - inMemory) / inMemory).toBeLessThan(2e-6);
      gpu.checkErrors(family);
    });
  }

  it('pissa_niter_N: seeded (a rebuild gives the same factors), close to the exact SVD, named in the analysis and the raw export', async () => {
    const a = await setup('llama', { pissaNiter: 4 });
    const b = await setup('llama', { pissaNiter: 4 });
    const exact = await setup('llama');
    expect(a.state.analysis.svd).toBe('niter_4');
    for (const [path, layer] of a.state.adapters) {
      const [A1] = await a.gpu.readMany([(layer as ResidualLoraLayer).A]);
      const [A2] = await b.gpu.readMany([(b.state.adapters.get(path) as ResidualLoraLayer).A]);
      expect(Array.from(A1)).toEqual(Array.from(A2));
      const sa = a.state.analysis.modules.find((m) => m.path === path)!.singularValues!;
      const se = exact.state.analysis.modules.find((m) => m.path === path)!.singularValues!;
      // σ_i(QᵀW) ≤ σ_i(W) for any orthonormal Q; random tiny weights have a flat spectrum, so only roughly close.
      for (let i = 0; i < sa.length; i++) expect(sa[i]).toBeLessThanOrEqual(se[i] * (1 + 1e-9));
      expect(sa[0]).toBeGreaterThan(0.8 * se[0]);
    }
    const raw = await roundTrip(a.gpu, a.weights, a.state, true);
    expect(raw.config.init_lora_weights).toBe('pissa_niter_4');
    expect(raw.imported.summary).toMatch(/pissa_niter_4.*randomized SVD/);
  });
});

describe("PEFT's default-saved PiSSA folders (hf-golden) load to PEFT's losses", () => {
  const ROOT = 'test/fixtures/hf-golden';
  const golden = JSON.parse(readFileSync(`${ROOT}/golden-pissa.json`, 'utf8'));
  const examples = (file: string): Example[] =>
    readFileSync(`${ROOT}/${file}`, 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const ids: number[] = JSON.parse(line).input_ids;
        return { inputIds: ids, labels: ids };
      });
  for (const m of Object.keys(golden.adapters)) {
    it(`${m}: within 1e-5 of unmerged_f64 (and far from the plain-LoRA negative control)`, async () => {
      const gpu = await testGpu();
      const model = await loadModelDir(await nodeDir(`${ROOT}/models/${m}`));
      const base = await ModelWeights.upload(gpu, model.spec, model.source);
      const g = golden.adapters[m].pissa;
      const loaded = await loadPeftFolder(gpu, base, await nodeDir(`${ROOT}/${g.dir}`));
      expect(loaded.summary).toMatch(/PiSSA modules/);
      for (const f of ['data/random.jsonl', `data/${m}.jsonl`]) {
        const ex = examples(f);
        const seq = Math.max(...ex.map((e) => e.inputIds.length));
        const batches = padBatches(ex, { batch: ex.length, seq, padId: 0 });
        const graph = new TransformerGraph(gpu, loaded.weights, {
          batch: batches[0].batch,
          seq,
          train: 'none',
          adapters: loaded.adapters,
        });
        const r = await evaluate(gpu, graph, batches);
        const want = g.losses[f];
        expect(r.tokens).toBe(want.tokens);
        const rel = Math.abs(r.loss - want.unmerged_f64) / want.unmerged_f64;
        if (process.env.PEFT_IMPORT_REPORT) console.log(`${m} ${f}: ${rel.toExponential(2)}`);
        expect(rel, `${m} ${f}: loss ${r.loss}, PEFT ${want.unmerged_f64}`).toBeLessThan(1e-5);
        const control = g.negative_control_plain_lora_on_original_weights[f].unmerged_f64;
        expect(Math.abs(r.loss - control) / control).toBeGreaterThan(1e-3);
      }
      gpu.checkErrors(m);
    });
  }
});
