/**
 * Frozen base weights kept as packed 16-bit floats. A bf16 checkpoint stored as bf16 must train exactly like
 * the same checkpoint widened to f32 (the stored values are identical; only the kernels' reads differ), for
 * every family's weight layout (Linear, GPT-2's Conv1D, tied and separate LM heads) and through GoRA's
 * importance (which reads W) and GraLoRA. f16 storage of f32 weights is close, not equal.
 */
import { describe, expect, it } from 'vitest';
import type { Example } from '../../src/data/index';
import { trainRun, type TrainRunOptions } from '../../src/engine/train-run';
import { loadModelDir } from '../../src/engine/load-model';
import { roundToHalf } from '../../src/gpu/half';
import { expectedTensors, type ModelSpec } from '../../src/model/config';
import { memoryDir } from '../../src/model/formats/source';
import { openSafetensors, writeSafetensors } from '../../src/model/formats/safetensors';
import { nodeDir } from '../../src/model/formats/node-source';
import {
  halfCapableTensors,
  ModelWeights,
  plannedWeightBytes,
  storagePlan,
  type TensorSource,
} from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { expectSameTrainables, testGpu } from '../helpers/gpu';
import { bf16Source, randomSource, tinySpec } from '../helpers/tiny-models';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';

function examples(spec: ModelSpec): Example[] {
  const rng = new Rng(4);
  return Array.from({ length: 24 }, () => {
    const ids = Array.from({ length: 7 }, () => rng.int(spec.vocabSize));
    return { inputIds: ids, labels: ids };
  });
}

const tokenizer = idsOnlyTokenizer(0);

function options(method: 'gora' | 'gralora'): TrainRunOptions {
  return {
    method,
    rank: 4,
    alpha: 8,
    targets: ['all-linear'],
    seed: 2,
    ...(method === 'gora' ? { goraSteps: 2, rankMin: 2, rankMax: 8, goraGamma: 0.05 } : { graloraK: 2 }),
    steps: 4,
    batch: 2,
    seq: 7,
    lr: 1e-2,
    warmupSteps: 0,
    weightDecay: 0,
    maxGradNorm: 1,
    minLrRatio: 1,
    validationFraction: 0.2,
    evalEvery: 0,
    packing: false,
  };
}

describe('16-bit base weights', () => {
  for (const [family, method] of [
    ['llama', 'gora'],
    ['gpt2', 'gora'],
    ['qwen2', 'gralora'],
  ] as const) {
    it(`${family} ${method}: a bf16 checkpoint kept bf16 trains exactly like its f32 copy, in half the bytes`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec(family);
      const source = await bf16Source(spec, 1);
      const wide = await ModelWeights.upload(gpu, spec, source, { storage: 'f32' });
      const packed = await ModelWeights.upload(gpu, spec, source); // auto: as the checkpoint stores them
      for (const name of halfCapableTensors(spec)) expect(packed.get(name).dtype, name).toBe('bf16');
      expect(packed.get(spec.family === 'gpt2' ? 'ln_f.weight' : 'model.norm.weight').dtype).toBe('f32');
      const bytes = (w: ModelWeights) => Object.values(w.bytesByDtype()).reduce((a, b) => a + b, 0);
      expect(bytes(packed)).toBeLessThan(0.6 * bytes(wide));
      // The model card's plan, up to the 16-byte rounding of each buffer.
      const planned = plannedWeightBytes(spec, storagePlan(spec, source)).bytes;
      expect(bytes(packed) - planned).toBeGreaterThanOrEqual(0);
      expect(bytes(packed) - planned).toBeLessThan(16 * expectedTensors(spec).length);

      const data = examples(spec);
      const runs: { losses: number[]; r: Awaited<ReturnType<typeof trainRun>> }[] = [];
      for (const weights of [wide, packed]) {
        const losses: number[] = [];
        const r = await trainRun(gpu, weights, { ...tokenizer, vocabSize: spec.vocabSize }, data, options(method), {
          onStep: (m) => losses.push(m.loss),
        });
        runs.push({ losses, r });
      }
      runs[1].losses.forEach((l, i) => expect(Math.abs(l - runs[0].losses[i]), `step ${i}`).toBeLessThan(1e-5));
      expect(runs[1].r.finalEval!.loss).toBeCloseTo(runs[0].r.finalEval!.loss, 5);
      if (method === 'gora') {
        const ranks = (i: number) => runs[i].r.state.analysis.modules.map((m) => m.rank);
        expect(ranks(1)).toEqual(ranks(0));
      }
      const trainables = (i: number) => [...runs[i].r.state.adapters.values()].flatMap((a) => a.trainables);
      await expectSameTrainables(gpu, trainables(0), trainables(1));
    });
  }

  it('f32 weights stored as f16 give nearly the same loss; values beyond f16 range are refused by name', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const source = randomSource(spec, 3);
    const o = { ...options('gralora'), steps: 1 };
    const loss = async (storage: 'f32' | 'f16') => {
      const weights = await ModelWeights.upload(gpu, spec, source, { storage });
      return (await trainRun(gpu, weights, { ...tokenizer, vocabSize: spec.vocabSize }, examples(spec), o, {}))
        .initialEval!.loss;
    };
    const [l32, l16] = [await loss('f32'), await loss('f16')];
    expect(Math.abs(l16 - l32) / l32).toBeLessThan(1e-3);
    expect(l16).not.toBe(l32);

    const huge: TensorSource = {
      load: async (n) => (await source.load(n)).map((x, i) => (n.endsWith('up_proj.weight') && i === 5 ? 7e4 : x)),
    };
    await expect(ModelWeights.upload(gpu, spec, huge, { storage: 'f16' })).rejects.toThrow(
      /up_proj\.weight: value 70000 at element 5 is beyond f16's range.*bf16 or f32/,
    );
    await expect(ModelWeights.upload(gpu, spec, source, { storage: 'f8' as never })).rejects.toThrow(
      /weight storage "f8"/,
    );
  });

  it('full fine-tuning refuses 16-bit base weights with the fix', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, await bf16Source(spec, 1));
    const o = { ...options('gralora'), method: 'full' };
    await expect(
      trainRun(gpu, weights, { ...tokenizer, vocabSize: spec.vocabSize }, examples(spec), o, {}),
    ).rejects.toThrow(/Full fine-tuning needs the base weights in f32, but .* is stored as bf16.*--weights f32/);
  });

  it('a real checkpoint re-saved as BF16 loads 16-bit from its safetensors header (norms stay f32)', async () => {
    const gpu = await testGpu();
    const fixture = await nodeDir('test/fixtures/models/tiny-random-LlamaForCausalLM_hf');
    const original = await openSafetensors(fixture.file('model.safetensors')!);
    const tensors = await Promise.all(
      original.names().map(async (name) => ({
        name,
        shape: original.info(name)!.shape,
        data: await original.load(name),
        dtype: 'BF16' as const,
      })),
    );
    const dir = memoryDir('tiny-llama-bf16', {
      'config.json': await fixture.text('config.json'),
      'tokenizer.json': await fixture.text('tokenizer.json'),
      'model.safetensors': writeSafetensors(tensors),
    });
    const model = await loadModelDir(dir);
    const weights = await ModelWeights.upload(gpu, model.spec, model.source);
    expect(weights.get('model.layers.0.self_attn.q_proj.weight').dtype).toBe('bf16');
    expect(weights.get('model.embed_tokens.weight').dtype).toBe('bf16');
    expect(weights.get('model.layers.0.input_layernorm.weight').dtype).toBe('f32');
    expect(weights.storageSummary()).toMatch(/^bf16 \(.*MB\) \+ f32/);
    // The GPU holds exactly the checkpoint's bf16 values.
    const q = await gpu.read(weights.get('model.layers.0.self_attn.q_proj.weight'));
    expect([...q]).toEqual([...roundToHalf(await original.load('model.layers.0.self_attn.q_proj.weight'), 'bf16')]);
  });
});
