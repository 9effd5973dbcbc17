/**
 * Incremental decoding against the training graph's forward: the KV-cache decoder's logits at every position
 * equal TransformerGraph's logits over the whole prefix, and Generator's greedy tokens equal the argmax of
 * full-prefix forwards, on tiny random models of every family, without adapters, with LoRA and with GraLoRA
 * (B non-zero, so the adapters change the output).
 */
import { describe, expect, it } from 'vitest';
import { createGraloraLayers } from '../../src/adapters/gralora/model';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { LinearAdapter } from '../../src/model/adapter';
import type { Gpu } from '../../src/gpu/gpu';
import { argmaxRef } from '../../src/kernels/argmax.ref';
import { Decoder } from '../../src/model/decode';
import { Generator } from '../../src/model/generate';
import { allLinearTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu, validated } from '../helpers/gpu';
import { randomSource, tinySpec, TINY_CONFIGS } from '../helpers/tiny-models';

type Family = keyof typeof TINY_CONFIGS;
type AdapterKind = 'none' | 'lora' | 'gralora';
const FAMILIES = Object.keys(TINY_CONFIGS) as Family[];

async function setup(family: Family, kind: AdapterKind) {
  const gpu = await testGpu();
  const spec = tinySpec(family);
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  const rng = new Rng(4);
  let adapters: Map<string, LinearAdapter> | undefined;
  if (kind === 'lora') {
    const layers = createLoraLayers(
      gpu,
      spec,
      { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 },
      3,
    );
    // B = 0 at init would make the adapter a no-op: random B makes it count.
    for (const l of layers.values()) gpu.upload(l.B, rng.normals(l.B.size, 0.3));
    adapters = new Map(layers);
  } else if (kind === 'gralora') {
    // k 2 divides every tiny model's widths (qwen2's 12 and 20 included); a hybrid part of rank 1.
    const { layers, warnings } = createGraloraLayers(
      gpu,
      spec,
      { rank: 2, k: 2, hybridRank: 1, alpha: 6, targets: allLinearTargets(spec), lrRatioB: 1 },
      3,
    );
    if (warnings.length) throw new Error(warnings.join('; '));
    for (const l of layers.values()) {
      gpu.upload(l.GB, rng.normals(l.GB.size, 0.3));
      if (l.hybrid) gpu.upload(l.hybrid.B, rng.normals(l.hybrid.B.size, 0.3));
    }
    adapters = new Map(layers);
  }
  return { gpu, spec, weights, adapters };
}

/** Logits of every position of one sequence from the training graph's forward [seq, vocab] (row i sees tokens 0..i). */
function fullForward(gpu: Gpu, weights: ModelWeights, adapters: Map<string, LinearAdapter> | undefined, seq: number) {
  const graph = new TransformerGraph(gpu, weights, { batch: 1, seq, train: 'none', adapters });
  const V = weights.spec.vocabSize;
  return async (ids: number[]): Promise<Float32Array[]> => {
    // Causal attention: tokens after ids (zero padding) do not change rows before them.
    const tokens = new Uint32Array(seq);
    tokens.set(ids);
    graph.setBatch({
      tokens,
      targets: new Int32Array(seq).fill(-100),
      positions: Uint32Array.from({ length: seq }, (_, i) => i),
      supervised: 0,
    });
    graph.forwardList.run();
    const all = await gpu.read(graph.logits);
    return ids.map((_, i) => all.slice(i * V, (i + 1) * V));
  };
}

/** |decoded - full| <= 1e-4 x the row's largest |logit|, elementwise. */
function expectRowClose(actual: Float32Array, expected: Float32Array, what: string): void {
  const scale = Math.max(...expected.map(Math.abs));
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst / scale, `${what}: max error ${worst} vs row scale ${scale}`).toBeLessThanOrEqual(1e-4);
}

const randomTokens = (rng: Rng, n: number, vocab: number) => Array.from({ length: n }, () => rng.int(vocab));

describe('KV-cache decoding equals the full forward', () => {
  for (const family of FAMILIES) {
    for (const kind of ['none', 'lora', 'gralora'] as const) {
      it(`${family}, ${kind === 'none' ? 'base model' : kind}: logits at every position, step by step and after a chunked prefill`, async () => {
        const { gpu, spec, weights, adapters } = await setup(family, kind);
        const rng = new Rng(family.length * 7 + kind.length);
        const S = 13;
        const tokens = randomTokens(rng, S, spec.vocabSize);
        await validated(gpu, async () => {
          const full = await fullForward(gpu, weights, adapters, S)(tokens);
          // A cache of an awkward size; prefill in chunks of 4 rows (two full chunks and one with 3 padding rows).
          const decoder = new Decoder(gpu, weights, { capacity: 19, prefillRows: 4, adapters });
          for (let i = 0; i < S; i++)
            expectRowClose(await decoder.stepLogits(tokens[i]), full[i], `step at position ${i}`);
          decoder.reset();
          decoder.prefill(tokens.slice(0, 9));
          expect(decoder.length).toBe(9);
          for (let i = 9; i < S; i++)
            expectRowClose(await decoder.stepLogits(tokens[i]), full[i], `after prefill, position ${i}`);
          // The greedy step (GPU argmax) picks the full forward's argmax.
          decoder.reset();
          decoder.prefill(tokens.slice(0, S - 1));
          expect(await decoder.step(tokens[S - 1])).toBe(argmaxRef(full[S - 1], 1, spec.vocabSize)[0]);
          await decoder.dispose();
        });
      });
    }
  }
});

/** Greedy continuation by re-running the whole prefix through the training graph's forward each step. */
async function oracleGreedy(
  gpu: Gpu,
  weights: ModelWeights,
  adapters: Map<string, LinearAdapter> | undefined,
  prompt: number[],
  maxNew: number,
) {
  const total = Math.min(weights.spec.maxPositions, prompt.length + maxNew);
  const forward = fullForward(gpu, weights, adapters, total);
  const ids = [...prompt];
  while (ids.length < total) {
    const rows = await forward(ids);
    ids.push(argmaxRef(rows[ids.length - 1], 1, weights.spec.vocabSize)[0]);
  }
  return ids.slice(prompt.length);
}

describe('Generator.greedy with the KV cache', () => {
  for (const family of FAMILIES) {
    for (const kind of ['none', 'lora'] as const) {
      it(`${family}, ${kind === 'none' ? 'base model' : 'LoRA'}: the tokens of full-prefix forwards`, async () => {
        const { gpu, spec, weights, adapters } = await setup(family, kind);
        const rng = new Rng(family.length + kind.length * 3);
        const prompt = randomTokens(rng, 6, spec.vocabSize);
        const want = await oracleGreedy(gpu, weights, adapters, prompt, 12);
        const seen: number[] = [];
        const generator = new Generator(gpu, weights, adapters);
        const got = await generator.greedy(prompt, { maxNewTokens: 12, onToken: (id) => seen.push(id) });
        expect(got).toEqual(want);
        expect(seen).toEqual(want);
        // Stopping: the first occurrence of a token ends the output just before it.
        const stopAt = want.findIndex((id) => id === want[4]);
        expect(await generator.greedy(prompt, { maxNewTokens: 12, stopId: want[4] })).toEqual(want.slice(0, stopAt));
        await generator.dispose();
      });
    }
  }

  it("runs to the model's maxPositions (gpt2: 32 learned positions), one token prompt and a prompt longer than a prefill chunk", async () => {
    const { gpu, spec, weights } = await setup('gpt2', 'none');
    const generator = new Generator(gpu, weights);
    const rng = new Rng(9);
    for (const prompt of [[3], randomTokens(rng, 5, spec.vocabSize)]) {
      const got = await generator.greedy(prompt, { maxNewTokens: 100 });
      expect(got.length).toBe(spec.maxPositions - prompt.length);
      expect(got).toEqual(await oracleGreedy(gpu, weights, undefined, prompt, 100));
    }
    // No room left, or nothing asked for: nothing generated.
    expect(await generator.greedy(randomTokens(rng, spec.maxPositions, spec.vocabSize), { maxNewTokens: 5 })).toEqual(
      [],
    );
    expect(await generator.greedy([1, 2], { maxNewTokens: 0 })).toEqual([]);
    await expect(generator.greedy([], { maxNewTokens: 1 })).rejects.toThrow(/at least one prompt token/);
    await generator.dispose();
    // Prompts longer than one 64-row prefill chunk (llama: 64 positions would not leave room; use a requested cache).
    const llama = await setup('llama', 'lora');
    const long = randomTokens(rng, 40, llama.spec.vocabSize);
    const small = new Decoder(llama.gpu, llama.weights, { capacity: 48, prefillRows: 16, adapters: llama.adapters });
    small.prefill(long.slice(0, -1));
    const first = await small.step(long[long.length - 1]);
    expect(first).toBe((await oracleGreedy(llama.gpu, llama.weights, llama.adapters, long, 1))[0]);
    expect(() => small.prefill(randomTokens(rng, 9, llama.spec.vocabSize))).toThrow(/cache holds 48/);
    await small.dispose();
  });

  it('adapters passed per call, and calls made concurrently, give the same tokens as sequential calls', async () => {
    const { gpu, spec, weights, adapters } = await setup('qwen3', 'lora');
    const rng = new Rng(12);
    const prompts = [
      randomTokens(rng, 3, spec.vocabSize),
      randomTokens(rng, 7, spec.vocabSize),
      randomTokens(rng, 1, spec.vocabSize),
    ];
    const own = new Generator(gpu, weights, adapters);
    const sequential: number[][] = [];
    for (const p of prompts) sequential.push(await own.greedy(p, { maxNewTokens: 5 }));
    const shared = new Generator(gpu, weights);
    // The calls share one cache: the generator runs them one after another.
    const concurrent = await Promise.all(prompts.map((p) => shared.greedy(p, { maxNewTokens: 5, adapters })));
    expect(concurrent).toEqual(sequential);
    // Without the adapters the model answers differently (B is non-zero).
    expect(await shared.greedy(prompts[1], { maxNewTokens: 5 })).not.toEqual(sequential[1]);
    await own.dispose();
    await shared.dispose();
  });

  it('after the first call, a token costs one submit and no new GPU buffers', async () => {
    const { gpu, spec, weights } = await setup('llama', 'none');
    const generator = new Generator(gpu, weights);
    const prompt = randomTokens(new Rng(13), 5, spec.vocabSize);
    await generator.greedy(prompt, { maxNewTokens: 10 }); // allocates and records
    const buffers = gpu.counters.buffersCreated;
    const submits = gpu.counters.submits;
    const out = await generator.greedy(prompt, { maxNewTokens: 10 });
    expect(out.length).toBe(10);
    expect(gpu.counters.buffersCreated - buffers).toBe(0);
    // One prefill submit for the first 4 prompt tokens, then one per generated token.
    expect(gpu.counters.submits - submits).toBe(1 + 10);
    await generator.dispose();
  });
});
