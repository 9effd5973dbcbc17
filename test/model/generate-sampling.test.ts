/**
 * Sampled decoding through Generator: every token is the reference sampler's draw from the decoder's own logits
 * with the seeded uniform number of its step and the tokens seen so far (the penalty tracked on the GPU), a seed
 * repeats a run exactly, greedy settings give the greedy tokens, and a sampled token still costs one submit.
 */
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { LinearAdapter } from '../../src/model/adapter';
import { sampleRef } from '../../src/kernels/sample.ref';
import { Decoder } from '../../src/model/decode';
import { Generator } from '../../src/model/generate';
import { allLinearTargets } from '../../src/model/layout';
import { GREEDY, uniformAt, type SamplingSettings } from '../../src/model/sampling';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu, validated } from '../helpers/gpu';
import { randomSource, tinySpec, type TINY_CONFIGS } from '../helpers/tiny-models';

type Family = keyof typeof TINY_CONFIGS;

async function setup(family: Family, withLora = false) {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  // Larger weights than the default make the distributions peaked enough for the filters to bite.
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 21));
  let adapters: Map<string, LinearAdapter> | undefined;
  if (withLora) {
    const layers = createLoraLayers(
      gpu,
      spec,
      { rank: 2, alpha: 4, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 },
      5,
    );
    const rng = new Rng(6);
    for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
    adapters = new Map(layers);
  }
  return { gpu, spec, weights, adapters };
}

/** The tokens the reference sampler draws from the decoder's logits row at each step (read back whole). */
async function oracle(
  setupResult: Awaited<ReturnType<typeof setup>>,
  prompt: number[],
  maxNew: number,
  s: SamplingSettings,
): Promise<number[]> {
  const { gpu, weights, adapters } = setupResult;
  const decoder = new Decoder(gpu, weights, { capacity: prompt.length + maxNew, adapters });
  decoder.prefill(prompt.slice(0, -1));
  const seen = new Set(prompt);
  const out: number[] = [];
  let next = prompt[prompt.length - 1];
  for (let step = 0; step < maxNew; step++) {
    next = sampleRef(await decoder.stepLogits(next), seen, s, uniformAt(s.seed, step)).token;
    seen.add(next);
    out.push(next);
  }
  await decoder.dispose();
  return out;
}

const randomTokens = (rng: Rng, n: number, vocab: number) => Array.from({ length: n }, () => rng.int(vocab));

const SETTINGS: Record<string, SamplingSettings> = {
  'temperature 1.2': { ...GREEDY, temperature: 1.2, seed: 3 },
  'top-k 4, top-p 0.8, penalty 1.5': { temperature: 0.8, topK: 4, topP: 0.8, minP: 0, repetitionPenalty: 1.5, seed: 9 },
  'min-p 0.2, penalty 0.7': { ...GREEDY, temperature: 1, minP: 0.2, repetitionPenalty: 0.7, seed: 77 },
  'greedy with penalty 2': { ...GREEDY, repetitionPenalty: 2 },
};

describe('Generator.generate with sampling', () => {
  for (const family of ['llama', 'gpt2', 'qwen3'] as Family[]) {
    it(`${family}: each token is the reference draw from the decoder's logits, penalties over prompt and output`, async () => {
      const ctx = await setup(family, family === 'llama');
      const prompt = randomTokens(new Rng(family.length), 5, ctx.spec.vocabSize);
      const generator = new Generator(ctx.gpu, ctx.weights, ctx.adapters);
      await validated(ctx.gpu, async () => {
        for (const [name, s] of Object.entries(SETTINGS)) {
          const got = await generator.generate(prompt, { maxNewTokens: 12, sampling: s });
          expect(got, name).toEqual(await oracle(ctx, prompt, 12, s));
        }
      });
      await generator.dispose();
    });
  }

  it('a seed repeats a run exactly; other seeds give other runs; greedy settings give the greedy tokens', async () => {
    const ctx = await setup('qwen2');
    const prompt = [1, 2, 3];
    const generator = new Generator(ctx.gpu, ctx.weights);
    const hot = (seed: number): SamplingSettings => ({ ...GREEDY, temperature: 1.5, seed });
    const first = await generator.generate(prompt, { maxNewTokens: 16, sampling: hot(42) });
    expect(await generator.generate(prompt, { maxNewTokens: 16, sampling: hot(42) })).toEqual(first);
    const others = await Promise.all(
      [1, 2, 3].map((seed) => generator.generate(prompt, { maxNewTokens: 16, sampling: hot(seed) })),
    );
    for (const o of others) expect(o).not.toEqual(first);
    const greedy = await generator.greedy(prompt, { maxNewTokens: 16 });
    expect(await generator.generate(prompt, { maxNewTokens: 16, sampling: { ...GREEDY, seed: 5 } })).toEqual(greedy);
    // Temperature 0 ignores the filters; top_k 1 keeps only the largest logit: both are greedy.
    expect(
      await generator.generate(prompt, { maxNewTokens: 16, sampling: { ...hot(1), temperature: 0, topK: 3 } }),
    ).toEqual(greedy);
    expect(await generator.generate(prompt, { maxNewTokens: 16, sampling: { ...hot(1), topK: 1 } })).toEqual(greedy);
    await generator.dispose();
  });

  it('stop tokens, shouldStop, and settings out of range', async () => {
    const ctx = await setup('llama');
    const generator = new Generator(ctx.gpu, ctx.weights);
    const sampling = { ...GREEDY, temperature: 1, seed: 11 };
    const all = await generator.generate([4, 5], { maxNewTokens: 10, sampling });
    const stopAt = all.indexOf(all[3]);
    expect(await generator.generate([4, 5], { maxNewTokens: 10, sampling, stopIds: [all[3]] })).toEqual(
      all.slice(0, stopAt),
    );
    let seen = 0;
    const stopped = await generator.generate([4, 5], {
      maxNewTokens: 10,
      sampling,
      onToken: () => seen++,
      shouldStop: () => seen === 2,
    });
    expect(stopped).toEqual(all.slice(0, 2));
    await expect(generator.generate([4, 5], { maxNewTokens: 3, sampling: { ...sampling, topP: 0 } })).rejects.toThrow(
      /topP must be in \(0, 1\]/,
    );
    await generator.dispose();
  });

  it('after the first sampled call, a token costs one submit and no new GPU buffers', async () => {
    const ctx = await setup('llama');
    const generator = new Generator(ctx.gpu, ctx.weights);
    const prompt = randomTokens(new Rng(13), 5, ctx.spec.vocabSize);
    const sampling = SETTINGS['top-k 4, top-p 0.8, penalty 1.5'];
    await generator.generate(prompt, { maxNewTokens: 10, sampling });
    const buffers = ctx.gpu.counters.buffersCreated;
    const submits = ctx.gpu.counters.submits;
    expect((await generator.generate(prompt, { maxNewTokens: 10, sampling })).length).toBe(10);
    expect(ctx.gpu.counters.buffersCreated - buffers).toBe(0);
    // One prefill submit for the first 4 prompt tokens, then one per token (the uploads are queue writes).
    expect(ctx.gpu.counters.submits - submits).toBe(1 + 10);
    await generator.dispose();
  });
});
