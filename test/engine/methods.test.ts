/**
 * Every method through the engine: build (with its preparation phase), export as PEFT, import again, and
 * evaluate: the imported adapter must give the in-memory adapted model's loss, on the tiny llama and the
 * tiny gpt2. Also the composition GoRA ranks x GraLoRA blocks, and option errors that name the option.
 */
import { describe, expect, it } from 'vitest';
import type { LinearAdapter } from '../../src/model/adapter';
import type { Batch } from '../../src/data/index';
import { exportAdapter, loadPeftAdapter, peftFiles } from '../../src/engine/export';
import { buildMethod, validateMethodOptions, type MethodOptions, type MethodState } from '../../src/engine/methods';
import type { Gpu } from '../../src/gpu/gpu';
import { openSafetensors } from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { Rng } from '../../src/util/random';
import { checkModelGradients } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec } from '../helpers/tiny-models';

const SHAPE = { batch: 2, seq: 5 };

function context(spec: ReturnType<typeof tinySpec>) {
  let seed = 100;
  return { nextBatch: (): Batch => ({ ...randomBatch(spec, SHAPE.batch, SHAPE.seq, seed++), ...SHAPE }), shape: SHAPE };
}

/** Trained adapters are never zero: give every B-type tensor random values (B = 0 would hide export bugs). */
async function perturb(gpu: Gpu, state: MethodState, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const t of [...state.adapters.values()].flatMap((a) => a.trainables)) {
    const p = await gpu.read(t.param);
    gpu.upload(
      t.param,
      p.map((v) => v + rng.normal() * 0.2),
    );
  }
}

async function roundTripLoss(gpu: Gpu, weights: ModelWeights, state: MethodState, asLora = false) {
  const spec = weights.spec;
  const exported = await exportAdapter(gpu, spec, state, { baseModel: 'tiny', asLora });
  const files = peftFiles(exported);
  const config = JSON.parse(files['adapter_config.json'] as string);
  const store = await openSafetensors(
    bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
  );
  const imported = await loadPeftAdapter(gpu, spec, config, store, 'export');
  const batches = [4, 5].map((s) => ({ ...randomBatch(spec, SHAPE.batch, SHAPE.seq, s), ...SHAPE }));
  const loss = async (adapters?: Map<string, LinearAdapter>) =>
    (await evaluate(gpu, new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none', adapters }), batches)).loss;
  return {
    config,
    exported,
    inMemory: await loss(state.adapters),
    roundTrip: await loss(imported.adapters),
    base: await loss(),
  };
}

const METHOD_CASES: [string, Partial<MethodOptions>][] = [
  ['lora', {}],
  ['rslora', {}],
  ['gora', { goraSteps: 2, rankMin: 1, rankMax: 8 }],
  ['gralora', { graloraK: 2 }],
  ['gralora', { graloraK: 2, hybridRank: 2 }],
  ['gelora', { geloraSamples: 40, geloraPerSequence: 4 }],
  ['gora', { goraSteps: 2, rankMin: 2, rankMax: 8, structure: 'gralora', graloraK: 2 }],
];

describe("methods: export then import gives the in-memory model's loss", () => {
  for (const family of ['llama', 'gpt2'] as const) {
    for (const [method, extra] of METHOD_CASES) {
      const label = `${family}: ${method}${Object.keys(extra).some((k) => k === 'hybridRank' || k === 'structure') ? ` ${JSON.stringify(extra)}` : ''}`;
      it(label, async () => {
        const gpu = await testGpu();
        const spec = tinySpec(family);
        const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
        const state = await buildMethod(
          gpu,
          weights,
          { method, rank: 4, alpha: 8, targets: ['all-linear'], seed: 3, ...extra },
          context(spec),
        );
        expect(state.analysis.modules.length).toBeGreaterThan(0);
        expect(state.analysis.trainableParameters).toBe(
          state.adapters.size &&
            [...state.adapters.values()].flatMap((a) => a.trainables).reduce((n, t) => n + t.param.size, 0),
        );
        await perturb(gpu, state, 7);
        const r = await roundTripLoss(gpu, weights, state);
        expect(Math.abs(r.roundTrip - r.inMemory)).toBeLessThan(1e-5);
        expect(Math.abs(r.inMemory - r.base)).toBeGreaterThan(1e-4); // the adapter does something
        if (method === 'gralora' && !extra.structure) {
          expect(r.config.peft_type).toBe('GRALORA');
          // ...and the requested plain-LoRA conversion is the same function.
          const asLora = await roundTripLoss(gpu, weights, state, true);
          expect(asLora.config.peft_type).toBe('LORA');
          expect(Math.abs(asLora.roundTrip - r.inMemory)).toBeLessThan(1e-5);
          // The studio's snapshot keeps both from one readback: the copy is that same plain LoRA.
          const both = await exportAdapter(gpu, spec, state, { baseModel: 'tiny', withLoraCopy: true });
          expect(both.format).toBe('gralora');
          expect(both.loraCopy!.config).toEqual(asLora.exported.config);
          expect(both.loraCopy!.tensors.map((t) => t.name)).toEqual(asLora.exported.tensors.map((t) => t.name));
        } else {
          expect(r.config.peft_type).toBe('LORA');
        }
        gpu.checkErrors(label);
      });
    }
  }
});

describe('GoRA ranks with GraLoRA blocks', () => {
  it('ranks are multiples of k, B₀ comes from the gradient (the loss drops), and gradients pass the finite-difference check', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const ctx = context(spec);
    const state = await buildMethod(
      gpu,
      weights,
      {
        method: 'gora',
        structure: 'gralora',
        graloraK: 2,
        rank: 4,
        alpha: 8,
        targets: ['all-linear'],
        seed: 3,
        goraSteps: 3,
        goraGamma: 0.05,
        rankMin: 2,
        rankMax: 8,
      },
      ctx,
    );
    expect(state.layers.structure === 'gralora' && state.layers.layers.size).toBe(state.analysis.modules.length);
    for (const m of state.analysis.modules) {
      expect(m.rank % (m.k ?? 1)).toBe(0);
      expect(m.initNorm).toBeGreaterThan(0);
    }
    expect(new Set(state.analysis.modules.map((m) => m.rank)).size).toBeGreaterThan(1);
    // The init is a descent step on the accumulation batches (seeds 100..102).
    const batches = [100, 101, 102].map((s) => ({ ...randomBatch(spec, 2, 5, s), ...SHAPE }));
    const base = await evaluate(gpu, new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none' }), batches);
    const adapted = await evaluate(
      gpu,
      new TransformerGraph(gpu, weights, { ...SHAPE, train: 'none', adapters: state.adapters }),
      batches,
    );
    expect(adapted.loss).toBeLessThan(base.loss);
    // B₀ is a small descent step (γ 0.05), so the A gradients, proportional to B, are at finite-difference noise
    // (‖g‖ 3e-4 to 6e-3): perturb every tensor so that both gradients of every module must be non-zero.
    await perturb(gpu, state, 5);
    await checkModelGradients(gpu, weights, { mode: 'adapters', adapters: state.adapters });
  });
});

describe('method options: specific errors', () => {
  const base: MethodOptions = { method: 'lora', rank: 8, alpha: 16, targets: [], seed: 0 };
  const cases: [Partial<MethodOptions>, RegExp][] = [
    [
      { method: 'vera' },
      /--method must be one of lora, rslora, gora, gralora, gelora, dora, pissa, loraga, adalora, full \(got "vera"\)/,
    ],
    [{ rank: 0 }, /--rank must be an integer >= 1/],
    [{ method: 'gora', rankMin: 16, rankMax: 4 }, /--rank-min \(16\) is larger than --rank-max \(4\)/],
    [{ method: 'gora', goraGamma: -0.1 }, /--gora-gamma/],
    [{ method: 'gralora', rank: 6, graloraK: 4 }, /--rank 6 must be divisible by --gralora-k 4/],
    [{ method: 'gralora', hybridRank: -1 }, /--hybrid-r must be an integer >= 0/],
    [{ method: 'lora', graloraK: 2 }, /--gralora-k is not an option of LoRA \(it belongs to GoRA, GraLoRA, GeLoRA\)/],
    [
      { method: 'gora', graloraK: 2 },
      /--gralora-k applies to GoRA only with the GraLoRA structure \(--structure gralora\)/,
    ],
    [{ method: 'lora', structure: 'gralora' }, /--structure is not an option of LoRA \(it belongs to GoRA, GeLoRA\)/],
    [{ method: 'gora', structure: 'blocks' }, /--structure must be one of dense, gralora/],
    [{ method: 'gelora', geloraSamples: 1 }, /--gelora-samples must be an integer from 3 to 4096/],
  ];
  for (const [o, message] of cases) {
    it(`${JSON.stringify(o)}`, () => {
      expect(() => validateMethodOptions({ ...base, ...o }, 'cli')).toThrow(message);
      // What the engine says to any surface names the options, never a CLI flag.
      expect(() => validateMethodOptions({ ...base, ...o })).toThrow(/^(?!.*--)/);
    });
  }

  it('a target module the model does not have, and an adapter for another model', async () => {
    const gpu = await testGpu();
    const llama = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, llama, randomSource(llama, 1));
    await expect(
      buildMethod(gpu, weights, { ...base, method: 'gralora', rank: 4, targets: ['c_attn'] }, context(llama)),
    ).rejects.toThrow(/Target module "c_attn" does not exist in this llama model/);
    const state = await buildMethod(
      gpu,
      weights,
      { ...base, method: 'gralora', rank: 4, graloraK: 2, targets: ['all-linear'] },
      context(llama),
    );
    const files = peftFiles(await exportAdapter(gpu, llama, state, { baseModel: 'tiny' }));
    const store = await openSafetensors(
      bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
    );
    const gpt2 = tinySpec('gpt2');
    await expect(
      loadPeftAdapter(gpu, gpt2, JSON.parse(files['adapter_config.json'] as string), store, 'run'),
    ).rejects.toThrow(/another model/);
    await expect(loadPeftAdapter(gpu, llama, { peft_type: 'IA3' }, store, 'run')).rejects.toThrow(
      /peft_type "IA3" is not supported; LORA, GRALORA and ADALORA adapters are/,
    );
  });
});
