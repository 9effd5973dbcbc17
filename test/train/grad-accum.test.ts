/**
 * Gradient accumulation: N micro-batches per optimizer step train exactly as one batch of all their rows. The loss
 * is the mean over every supervised token of the step (each micro-batch's gradient weighted by its share of them,
 * not a plain average of micro-batch means), clipping and AdamW run once on the summed gradient, and a run with
 * --batch 2 --grad-accum 3 follows the --batch 6 run step by step, through a checkpoint and a resume.
 */
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import type { Example } from '../../src/data/index';
import { trainRun, type RunCheckpoint, type TrainRunOptions } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import type { Trainable } from '../../src/model/adapter';
import { adapterShapeOf, trainableShapes, trainerAllocations } from '../../src/model/allocation-plan';
import type { ModelSpec } from '../../src/model/config';
import { allLinearTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { DEFAULT_OPTIMIZER, Trainer, type StepBatch, type StepMetrics } from '../../src/train/trainer';
import { Rng } from '../../src/util/random';
import { expectSameTrainables, testGpu } from '../helpers/gpu';
import { randomBatch, randomSource, tinySpec } from '../helpers/tiny-models';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';

const SEQ = 6;
const ROWS = 2;
const N = 3;

/** Micro-batch k of a step: random rows, with 4k more targets masked (so each has its own supervised count). */
function microBatch(spec: ModelSpec, seed: number, k: number, allMasked = false): StepBatch {
  const b = randomBatch(spec, ROWS, SEQ, seed);
  for (let i = 0; i < (allMasked ? b.targets.length : 4 * k); i++) b.targets[i] = -100;
  return { ...b, supervised: b.targets.filter((t) => t >= 0).length };
}

/** The micro-batches' rows as one batch. */
function concat(parts: StepBatch[]): StepBatch {
  const join = <T extends Uint32Array | Int32Array>(make: (n: number) => T, pick: (b: StepBatch) => T) => {
    const out = make(parts.reduce((n, b) => n + pick(b).length, 0));
    let at = 0;
    for (const b of parts) {
      out.set(pick(b), at);
      at += pick(b).length;
    }
    return out;
  };
  return {
    tokens: join(
      (n) => new Uint32Array(n),
      (b) => b.tokens,
    ),
    targets: join(
      (n) => new Int32Array(n),
      (b) => b.targets,
    ),
    positions: join(
      (n) => new Uint32Array(n),
      (b) => b.positions,
    ),
    supervised: parts.reduce((n, b) => n + b.supervised, 0),
  };
}

async function expectSameGradients(gpu: Gpu, a: Trainable[], b: Trainable[]): Promise<void> {
  for (let i = 0; i < a.length; i++) {
    const [ga, gb] = await gpu.readMany([a[i].grad, b[i].grad]);
    const scale = ga.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let worst = 0;
    ga.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - gb[j]))));
    expect(scale, `${a[i].name}: a gradient to compare`).toBeGreaterThan(0);
    expect(worst, a[i].name).toBeLessThanOrEqual(2e-5 * scale + 1e-9);
  }
}

function expectSameMetrics(a: StepMetrics, b: StepMetrics): void {
  expect(b.supervised).toBe(a.supervised);
  expect(b.loss).toBeCloseTo(a.loss, 5);
  expect(b.lr).toBe(a.lr);
  expect(Math.abs(b.gradNorm - a.gradNorm)).toBeLessThanOrEqual(1e-5 * a.gradNorm);
  a.gradNorms.forEach((g, i) => expect(Math.abs(b.gradNorms[i] - g)).toBeLessThanOrEqual(1e-5 * a.gradNorm));
}

describe('gradient accumulation (Trainer)', () => {
  const cases = [
    { name: 'llama, LoRA on every linear layer', family: 'llama', full: false },
    { name: 'qwen2 (tied embeddings), full fine-tuning', family: 'qwen2', full: true },
  ] as const;
  for (const c of cases) {
    it(`${c.name}: ${N} micro-batches of ${ROWS} rows = one batch of ${N * ROWS} rows (loss, gradients, 2 AdamW steps)`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec(c.family);
      // Two identical models: full fine-tuning trains the base weights in place.
      const build = async (rows: number, gradAccum: number) => {
        const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1), { storage: 'f32' });
        const adapters = c.full
          ? undefined
          : new Map(
              createLoraLayers(
                gpu,
                spec,
                { rank: 3, alpha: 6, targets: allLinearTargets(spec), rslora: false, lrRatioB: 1 },
                4,
              ),
            );
        const graph = new TransformerGraph(gpu, weights, {
          batch: rows,
          seq: SEQ,
          train: c.full ? 'full' : 'adapters',
          adapters,
        });
        const mark = gpu.mark();
        const trainer = new Trainer(gpu, graph, {
          ...DEFAULT_OPTIMIZER,
          lr: 5e-3,
          totalSteps: 2,
          weightDecay: 0.01,
          // A gradient of the size of rounding noise flips an update's sign at eps 1e-8; 1e-6 keeps it smooth.
          eps: 1e-6,
          // Small enough to clip: the factor must come from the whole step's gradient.
          maxGradNorm: 0.05,
          gradAccum,
        });
        // Everything the trainer holds is in the allocation table, accumulation's buffers included.
        const made = gpu
          .createdSince(mark)
          .filter((b) => !(b.usage & GPUBufferUsage.UNIFORM))
          .map((b) => `${b.label} ${b.size}`)
          .sort();
        const shapes = trainableShapes(
          spec,
          c.full ? 'full' : 'adapters',
          [...(adapters?.values() ?? [])].map(adapterShapeOf),
        );
        const plan = trainerAllocations(shapes, { gradAccum, rows: rows * SEQ })
          .map((b) => `${b.name} ${b.bytes}`)
          .sort();
        expect(made).toEqual(plan);
        return trainer;
      };
      const big = await build(N * ROWS, 1);
      const micro = await build(ROWS, N);
      // LoRA's B starts at 0 (so A has no gradient): start both from the same random adapter instead.
      if (!c.full) {
        const rng = new Rng(9);
        for (let i = 0; i < big.trainables.length; i++) {
          const values = new Float32Array(big.trainables[i].param.size).map(() => (rng.next() - 0.5) * 0.4);
          gpu.upload(big.trainables[i].param, values);
          gpu.upload(micro.trainables[i].param, values);
        }
      }

      // Step 0: three micro-batches with 14, 10 and 6 supervised tokens (the plain mean of their means would differ).
      const step0 = [0, 1, 2].map((k) => microBatch(spec, 10 + k, k));
      expect(new Set(step0.map((b) => b.supervised)).size).toBe(3);
      const before = { buffers: gpu.counters.buffersCreated, submits: gpu.counters.submits };
      const m0 = await (await micro.submit(step0))();
      // One submit per optimizer step, nothing allocated.
      expect(gpu.counters.submits - before.submits).toBe(1);
      expect(gpu.counters.buffersCreated).toBe(before.buffers);
      const b0 = await (await big.submit(concat(step0)))();
      expectSameMetrics(b0, m0);
      expect(m0.gradNorm).toBeGreaterThan(0.05); // clipped
      await expectSameGradients(gpu, big.trainables, micro.trainables);
      await expectSameTrainables(gpu, big.trainables, micro.trainables);

      // Step 1: the middle micro-batch has no supervised token (left out; the big batch has its rows masked too).
      const step1 = [0, 1, 2].map((k) => microBatch(spec, 20 + k, k, k === 1));
      expect(step1[1].supervised).toBe(0);
      const m1 = await (await micro.submit(step1))();
      const b1 = await (await big.submit(concat(step1)))();
      expectSameMetrics(b1, m1);
      await expectSameGradients(gpu, big.trainables, micro.trainables);
      await expectSameTrainables(gpu, big.trainables, micro.trainables);
      expect(micro.step).toBe(2);
      gpu.checkErrors(c.name);
    });
  }

  it('refuses more micro-batches than it was built for, and a step without a supervised token', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const adapters = new Map(
      createLoraLayers(gpu, spec, { rank: 2, alpha: 4, targets: ['q_proj'], rslora: false, lrRatioB: 1 }, 0),
    );
    const graph = new TransformerGraph(gpu, weights, { batch: ROWS, seq: SEQ, train: 'adapters', adapters });
    const o = { ...DEFAULT_OPTIMIZER, lr: 1e-3, totalSteps: 1 };
    expect(() => new Trainer(gpu, graph, { ...o, gradAccum: 0 })).toThrow('gradAccum must be an integer >= 1');
    const trainer = new Trainer(gpu, graph, { ...o, gradAccum: 2 });
    const batches = [0, 1, 2].map((k) => microBatch(spec, k, 0));
    await expect(trainer.submit(batches)).rejects.toThrow('A step takes 1 to 2 micro-batches (got 3)');
    const empty = [microBatch(spec, 0, 0, true), microBatch(spec, 1, 0, true)];
    await expect(trainer.submit(empty)).rejects.toThrow('no supervised token');
    expect(trainer.step).toBe(0);
  });
});

describe('gradient accumulation (trainRun)', () => {
  const tokenizer = (spec: ModelSpec) => idsOnlyTokenizer(spec.vocabSize);
  /** 36 training examples (a multiple of 6: both streams cut the same epochs) of 3 to 6 tokens, prompts masked. */
  function examples(spec: ModelSpec): { train: Example[]; validation: Example[] } {
    const rng = new Rng(3);
    const make = (): Example => {
      const ids = Array.from({ length: 3 + rng.int(4) }, () => rng.int(spec.vocabSize));
      const prompt = rng.int(3);
      return { inputIds: ids, labels: ids.map((t, i) => (i < prompt ? -100 : t)) };
    };
    return { train: Array.from({ length: 36 }, make), validation: Array.from({ length: 6 }, make) };
  }

  for (const method of ['lora', 'adalora'] as const) {
    it(`${method}: --batch 2 --grad-accum 3 trains as --batch 6, and resumes from a checkpoint exactly`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec('llama');
      const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
      const data = examples(spec);
      const o: TrainRunOptions = {
        method,
        rank: 4,
        alpha: 8,
        targets: ['all-linear'],
        seed: 5,
        // A regularizer as large as the loss's gradient on P and Q here: added in every micro-batch's backward, it must
        // count once per step (at 3x it moves the adapter by more than the bound below).
        ...(method === 'adalora' ? { initR: 6, tinit: 1, tfinal: 2, orthRegWeight: 0.05 } : {}),
        steps: 6,
        batch: 6,
        seq: SEQ,
        lr: 1e-3,
        warmupSteps: 1,
        weightDecay: 0.01,
        maxGradNorm: 1,
        minLrRatio: 0.1,
        validationFraction: 0,
        evalEvery: 0,
        packing: false,
      };
      const run = async (extra: Partial<TrainRunOptions>, onCheckpoint?: (c: RunCheckpoint) => void) => {
        const losses: number[] = [];
        const supervised: number[] = [];
        const r = await trainRun(
          gpu,
          weights,
          tokenizer(spec),
          data,
          { ...o, ...extra },
          {
            onStep: (m) => {
              losses.push(m.loss);
              supervised.push(m.supervised);
            },
            onCheckpoint,
          },
        );
        return { r, losses, supervised, trainables: [...r.state.adapters.values()].flatMap((a) => a.trainables) };
      };
      const whole = await run({});
      let checkpoint: RunCheckpoint | null = null;
      const accum = await run({ batch: 2, gradAccum: 3, checkpointEvery: 3 }, (c) => void (checkpoint ??= c));
      expect(accum.r.steps).toBe(6);
      expect(accum.r.submitsPerStep).toBe(1);
      expect(accum.r.buffersCreatedAfterStep0).toBe(0);
      expect(accum.r.state.analysis.training).toEqual({ batch: 2, gradAccum: 3, effectiveBatch: 6 });
      // The same rows in the same order: the batch fingerprint folds the micro-batches' tokens in turn.
      expect(accum.r.batchHash).toBe(whole.r.batchHash);
      expect(accum.supervised).toEqual(whole.supervised);
      accum.losses.forEach((l, i) => expect(l, `step ${i}`).toBeCloseTo(whole.losses[i], 4));
      expect(accum.r.finalEval!.loss).toBeCloseTo(whole.r.finalEval!.loss, 4);
      // AdamW at eps 1e-8 amplifies rounding on a near-zero gradient: a looser bound than a replay's.
      await expectSameTrainables(gpu, whole.trainables, accum.trainables, 5e-4);

      // Resumed from step 3 (the stream skips 3 x 3 micro-batches): the same steps as the uninterrupted run, exactly.
      expect(checkpoint!.step).toBe(3);
      const resumed = await run({ batch: 2, gradAccum: 3, resume: checkpoint! });
      expect(resumed.r.steps).toBe(6);
      expect(resumed.losses.length).toBe(3);
      resumed.losses.forEach((l, i) => expect(l).toBeCloseTo(accum.losses[3 + i], 5));
      await expectSameTrainables(gpu, accum.trainables, resumed.trainables);
    });
  }
});
