/**
 * Activation recomputation (GraphOptions.recompute): 'mlp' rebuilds each block's MLP activations in the backward
 * pass, 'block' keeps only each block's input and re-runs the whole block there (adapters, qk-norm, RoPE, attention
 * and its logsumexp) into one set of buffers shared by every block. Both record the same dispatches on the same
 * inputs as the forward, so the loss and every gradient must equal the graph that keeps everything, bit for bit:
 * for each family (llama; qwen3 with its per-head qk-norms; gpt2 with LayerNorm, Conv1D and biases) at 3 layers
 * (blocks 0 and 1 are recomputed, the last one's buffers are still in place), for LoRA, GraLoRA with a hybrid
 * part, DoRA (whose forward rescales the base output), AdaLoRA (whose forward forms A ⊙ E), full fine-tuning, and
 * GoRA's gradient probes (whose backward accumulates: a recomputed forward must not add anything).
 */
import { QLORA_SHAPES } from '../../src/bench/memory';
import { describe, expect, it } from 'vitest';
import { GradientAccumulator } from '../../src/adapters/gora/gradients';
import type { Example } from '../../src/data/index';
import { buildMethod, type MethodState } from '../../src/engine/methods';
import { trainRun, type TrainRunOptions } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import type { LinearAdapter } from '../../src/model/adapter';
import { graphAllocations, planBytes } from '../../src/model/allocation-plan';
import { parseConfig, type ModelSpec } from '../../src/model/config';
import { allLinearTargets, selectTargets } from '../../src/model/layout';
import { RECOMPUTE_MODES, TransformerGraph, type Recompute } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, TINY_CONFIGS } from '../helpers/tiny-models';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';

const SHAPE = { batch: 2, seq: 5 };
type Family = 'llama' | 'qwen3' | 'gpt2';

/** The tiny test model of a family with 3 blocks. */
function spec3(family: Family): ModelSpec {
  const layers = family === 'gpt2' ? { n_layer: 3 } : { num_hidden_layers: 3 };
  return parseConfig({ ...TINY_CONFIGS[family], ...layers }, `${family}/config.json`);
}

/** Loss sum and every trainable's gradient after one training list, per recomputation mode. */
async function lossAndGradients(
  gpu: Gpu,
  weights: ModelWeights,
  train: 'adapters' | 'full',
  adapters: Map<string, LinearAdapter> | undefined,
  recompute: Recompute,
): Promise<{ loss: number; forwardLoss: number; grads: Map<string, Float32Array> }> {
  const mark = gpu.mark();
  try {
    const graph = new TransformerGraph(gpu, weights, { ...SHAPE, train, adapters, recompute });
    graph.setBatch(randomBatch(weights.spec, SHAPE.batch, SHAPE.seq, 4));
    graph.forwardList.run();
    const [forwardLoss] = await gpu.read(graph.lossSum);
    graph.backwardList!.run();
    const [loss] = await gpu.read(graph.lossSum);
    const grads = new Map<string, Float32Array>();
    for (const t of graph.trainables) grads.set(t.name, await gpu.read(t.grad));
    gpu.checkErrors(`recompute ${recompute}`);
    return { loss, forwardLoss, grads };
  } finally {
    await gpu.freeSince(mark);
  }
}

/** 'mlp' and 'block' against 'none': the same loss and gradients, bit for bit, and no gradient vanishes. */
async function expectSameAsNone(
  gpu: Gpu,
  weights: ModelWeights,
  train: 'adapters' | 'full',
  adapters?: Map<string, LinearAdapter>,
): Promise<void> {
  const none = await lossAndGradients(gpu, weights, train, adapters, 'none');
  expect(Number.isFinite(none.loss)).toBe(true);
  expect(none.forwardLoss).toBe(none.loss);
  expect(none.grads.size).toBeGreaterThan(0);
  for (const [name, g] of none.grads)
    expect(
      g.some((v) => v !== 0),
      `${name}: a zero gradient`,
    ).toBe(true);
  for (const recompute of ['mlp', 'block'] as const) {
    const r = await lossAndGradients(gpu, weights, train, adapters, recompute);
    expect(r.loss, `loss, recompute ${recompute}`).toBe(none.loss);
    expect(r.forwardLoss, `forward list's loss, recompute ${recompute}`).toBe(none.loss);
    expect([...r.grads.keys()]).toEqual([...none.grads.keys()]);
    for (const [name, g] of none.grads) {
      const got = r.grads.get(name)!;
      const differ = g.findIndex((v, i) => !Object.is(v, got[i]));
      expect(differ, `${name}, recompute ${recompute}: element ${differ} ${got[differ]} vs ${g[differ]}`).toBe(-1);
    }
  }
}

/** A trained-looking adapter: every trainable moved off its init (B = 0 would zero every dA). */
async function perturb(gpu: Gpu, state: MethodState, seed: number): Promise<void> {
  const rng = new Rng(seed);
  for (const t of [...state.adapters.values()].flatMap((a) => a.trainables)) {
    const p = await gpu.read(t.param);
    const magnitude = t.name.endsWith('lora_magnitude_vector');
    gpu.upload(
      t.param,
      p.map((v) => (magnitude ? v * (1 + 0.2 * rng.normal()) : v + 0.2 * rng.normal())),
    );
  }
}

async function tinyModel(family: Family) {
  const gpu = await testGpu();
  const spec = spec3(family);
  return { gpu, spec, weights: await ModelWeights.upload(gpu, spec, randomSource(spec, 1)) };
}

async function method(gpu: Gpu, weights: ModelWeights, options: Record<string, unknown>): Promise<MethodState> {
  let seed = 100;
  const state = await buildMethod(
    gpu,
    weights,
    { rank: 2, alpha: 4, targets: ['all-linear'], seed: 3, ...options } as never,
    {
      nextBatch: () => ({ ...randomBatch(weights.spec, SHAPE.batch, SHAPE.seq, seed++), ...SHAPE }) as never,
      shape: SHAPE,
      totalSteps: 10,
    },
  );
  await perturb(gpu, state, 7);
  return state;
}

describe('block recomputation equals no recomputation (loss and every gradient, bit for bit)', () => {
  for (const family of ['llama', 'qwen3', 'gpt2'] as const) {
    it(`${family}: LoRA on every linear layer`, async () => {
      const { gpu, weights } = await tinyModel(family);
      const mark = gpu.mark();
      try {
        const state = await method(gpu, weights, { method: 'lora' });
        await expectSameAsNone(gpu, weights, 'adapters', state.adapters);
      } finally {
        await gpu.freeSince(mark);
      }
    });
    it(`${family}: GraLoRA k = 2 with a hybrid LoRA`, async () => {
      const { gpu, weights } = await tinyModel(family);
      const mark = gpu.mark();
      try {
        const state = await method(gpu, weights, { method: 'gralora', rank: 4, graloraK: 2, hybridRank: 1 });
        await expectSameAsNone(gpu, weights, 'adapters', state.adapters);
      } finally {
        await gpu.freeSince(mark);
      }
    });
    it(`${family}: DoRA`, async () => {
      const { gpu, weights } = await tinyModel(family);
      const mark = gpu.mark();
      try {
        const state = await method(gpu, weights, { method: 'dora' });
        await expectSameAsNone(gpu, weights, 'adapters', state.adapters);
      } finally {
        await gpu.freeSince(mark);
      }
    });
    it(`${family}: full fine-tuning`, async () => {
      const { gpu, weights } = await tinyModel(family);
      await expectSameAsNone(gpu, weights, 'full');
    });
  }

  it('llama: AdaLoRA (its forward forms A ⊙ E; the orthogonality regularizer in the backward)', async () => {
    const { gpu, weights } = await tinyModel('llama');
    const mark = gpu.mark();
    try {
      const state = await method(gpu, weights, { method: 'adalora', initR: 3, tinit: 1, tfinal: 2 });
      await expectSameAsNone(gpu, weights, 'adapters', state.adapters);
    } finally {
      await gpu.freeSince(mark);
    }
  });

  it("llama: GoRA's gradient probes accumulate the same Ḡ over two batches", async () => {
    const { gpu, spec, weights } = await tinyModel('llama');
    const targets = selectTargets(spec, allLinearTargets(spec));
    const probes = async (recompute: Recompute) => {
      const mark = gpu.mark();
      try {
        const acc = new GradientAccumulator(gpu, weights, targets, { ...SHAPE, recompute });
        for (const seed of [4, 5]) acc.add({ ...randomBatch(spec, SHAPE.batch, SHAPE.seq, seed), ...SHAPE } as never);
        await acc.finish();
        return Promise.all(targets.map((t) => gpu.read(acc.probes.get(t.path)!.grad)));
      } finally {
        await gpu.freeSince(mark);
      }
    };
    const none = await probes('none');
    const block = await probes('block');
    targets.forEach((t, i) => {
      expect(
        none[i].some((v) => v !== 0),
        t.path,
      ).toBe(true);
      expect(block[i], t.path).toEqual(none[i]);
    });
  });
});

describe('block recomputation in a training run', () => {
  it('llama: the same losses, validation losses and final adapter as without, for GraLoRA over 3 steps', async () => {
    const { gpu, spec, weights } = await tinyModel('llama');
    const rng = new Rng(6);
    const data: Example[] = Array.from({ length: 12 }, () => {
      const ids = Array.from({ length: 8 }, () => rng.int(spec.vocabSize));
      return { inputIds: ids, labels: ids };
    });
    const tokenizer = idsOnlyTokenizer(spec.vocabSize);
    const options: TrainRunOptions = {
      method: 'gralora',
      rank: 4,
      alpha: 8,
      targets: ['all-linear'],
      seed: 3,
      steps: 3,
      batch: 2,
      seq: 8,
      lr: 1e-2,
      warmupSteps: 0,
      weightDecay: 0,
      maxGradNorm: 1,
      minLrRatio: 1,
      // Validation between steps runs the training graph's forward list over the shared block buffers.
      validationFraction: 0.25,
      evalEvery: 1,
      packing: false,
    };
    const train = async (recompute: Recompute) => {
      const losses: number[] = [];
      const evals: number[] = [];
      const r = await trainRun(
        gpu,
        weights,
        tokenizer,
        data,
        { ...options, recompute },
        {
          onStep: (m) => losses.push(m.loss),
          onEval: (_, e) => evals.push(e.loss),
        },
      );
      const params = await Promise.all(
        [...r.state.adapters.values()].flatMap((a) => a.trainables).map((t) => gpu.read(t.param)),
      );
      return { losses, evals, params };
    };
    const none = await train('none');
    const block = await train('block');
    expect(none.losses).toHaveLength(3);
    expect(none.evals.length).toBeGreaterThanOrEqual(3);
    expect(block.losses).toEqual(none.losses);
    expect(block.evals).toEqual(none.evals);
    expect(block.params).toEqual(none.params);
  });
});

describe('block recomputation: the allocation table', () => {
  /** Llama-3.2-1B's config.json shapes. */
  const llama1b = parseConfig(QLORA_SHAPES['Llama-3.2-1B'], 'Llama-3.2-1B/config.json');

  it('keeps one resid per block and one set of every other block buffer', () => {
    for (const family of ['llama', 'qwen3', 'gpt2'] as const) {
      const spec = spec3(family);
      const names = (recompute: Recompute) =>
        graphAllocations(spec, { ...SHAPE, train: 'adapters', recompute }).map((b) => b.name);
      const block = names('block');
      expect(block.filter((n) => n.startsWith('layer'))).toEqual(['layer0.resid', 'layer1.resid', 'layer2.resid']);
      // The per-layer buffers of 'none' but resid, once, as block.*.
      const perLayer = names('none')
        .filter((n) => n.startsWith('layer0.') && n !== 'layer0.resid')
        .map((n) => n.replace('layer0.', 'block.'));
      expect(block.filter((n) => n.startsWith('block.')).sort()).toEqual(perLayer.sort());
      // A forward-only graph does not recompute: the same table whatever the mode.
      for (const recompute of RECOMPUTE_MODES)
        expect(graphAllocations(spec, { ...SHAPE, train: 'none', recompute })).toEqual(
          graphAllocations(spec, { ...SHAPE, train: 'none' }),
        );
    }
  });

  it('Llama-3.2-1B, LoRA r16 on every linear layer, batch 1 x 512: activations none > mlp > block', () => {
    const adapters = selectTargets(llama1b, allLinearTargets(llama1b)).map((m) => ({
      kind: 'lora' as const,
      path: m.path,
      in: m.in,
      out: m.out,
      rank: 16,
    }));
    const bytes = (recompute: Recompute) =>
      planBytes(
        graphAllocations(llama1b, { batch: 1, seq: 512, train: 'adapters', recompute, adapters }).filter(
          (b) => b.owner === 'graph',
        ),
      );
    const [none, mlp, block] = (['none', 'mlp', 'block'] as const).map(bytes);
    const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log(`Llama-3.2-1B graph buffers at 1 x 512: none ${mib(none)}, mlp ${mib(mlp)}, block ${mib(block)}`);
    expect(mlp).toBeLessThan(none);
    expect(block).toBeLessThan(mlp);
    // Exactly: 15 blocks' buffers but resid (lse included) fewer than 'none'.
    const R = 512;
    const perBlock = 4 * (R * (3 * 2048 + (32 + 2 * 8) * 64 + 32 * 64 + 3 * 8192 + 2) + 32 * R);
    expect(none - block).toBe(15 * perBlock);
  });
});
