/**
 * Whatever the autotune picks on a user's GPU must train the same model: every tile size, the register
 * kernels, and split-K on the narrow products (LoRA's dA and dB, whose K is every token of the batch), inside
 * real training graphs where many products share one list's split-K scratch.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Example } from '../../src/data/index';
import { trainRun, type TrainRunOptions } from '../../src/engine/train-run';
import { CommandList, Gpu, type KernelSpec } from '../../src/gpu/gpu';
import { listScratchBytes, splitCount } from '../../src/kernels/matmul';
import { setMatmulPlan, type MatmulPlan } from '../../src/kernels/matmul-plan';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { expectSameTrainables, testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';

const SEQ = 64;
const BATCH = 8; // 512 tokens: K long enough for split-K to split dA and dB in two

const tokenizer = idsOnlyTokenizer(0);

const options: TrainRunOptions = {
  method: 'lora',
  rank: 4,
  alpha: 8,
  targets: ['all-linear'],
  seed: 3,
  steps: 2,
  batch: BATCH,
  seq: SEQ,
  lr: 1e-2,
  warmupSteps: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  minLrRatio: 1,
  validationFraction: 0,
  evalEvery: 0,
  packing: false,
};

const PLANS: Record<string, MatmulPlan> = {
  'tiled 64 / tiled 64 split': {
    wide: { variant: 'tiled', splitK: false },
    narrow: { variant: 'tiled', splitK: true },
  },
  'tiled 128 / register-vec4 split': {
    wide: { variant: 'tiled-128', splitK: false },
    narrow: { variant: 'register-vec4', splitK: true },
  },
  'tiled 128x64 / register split': {
    wide: { variant: 'tiled-128x64', splitK: false },
    narrow: { variant: 'register', splitK: true },
  },
  'tiled 128 v4 / tiled v4 split': {
    wide: { variant: 'tiled-128-v4', splitK: false },
    narrow: { variant: 'tiled-v4', splitK: true },
  },
  'tiled 128 g4 / tiled g4 split': {
    wide: { variant: 'tiled-128-g4', splitK: false },
    narrow: { variant: 'tiled-g4', splitK: true },
  },
  'tiled g4 / tiled 128x64 g4 split': {
    wide: { variant: 'tiled-g4', splitK: false },
    narrow: { variant: 'tiled-128x64-g4', splitK: true },
  },
};

describe('matmul plans in training', () => {
  afterEach(async () => {
    setMatmulPlan((await testGpu()).device, null);
    vi.restoreAllMocks();
  });

  it('every plan the autotune can choose trains LoRA like the default kernels', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    expect(splitCount(1, options.rank, spec.hidden, BATCH * SEQ, 1), 'dA = dHᵀ·x is split').toBe(2);
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 5));
    const rng = new Rng(6);
    const data: Example[] = Array.from({ length: BATCH }, () => {
      const ids = Array.from({ length: SEQ }, () => rng.int(spec.vocabSize));
      return { inputIds: ids, labels: ids };
    });
    const entries: string[] = [];
    const scratches: { label: string; bytes: number }[] = [];
    const createBuffer = Gpu.prototype.createBuffer;
    vi.spyOn(Gpu.prototype, 'createBuffer').mockImplementation(function (
      this: Gpu,
      bytes: number,
      usage: number,
      label: string,
    ) {
      if (label.endsWith('.scratch')) scratches.push({ label, bytes });
      return createBuffer.call(this, bytes, usage, label);
    });
    const dispatch = CommandList.prototype.dispatch;
    vi.spyOn(CommandList.prototype, 'dispatch').mockImplementation(function (
      this: CommandList,
      s: KernelSpec,
      ...rest
    ) {
      entries.push(s.entry);
      return dispatch.call(this, s, ...rest);
    });
    const train = async () => {
      const losses: number[] = [];
      const r = await trainRun(gpu, weights, { ...tokenizer, vocabSize: spec.vocabSize }, data, options, {
        onStep: (m) => losses.push(m.loss),
      });
      return { losses, trainables: [...r.state.adapters.values()].flatMap((a) => a.trainables) };
    };
    const reference = await train();
    expect(entries).not.toContain('split_sum');
    expect(scratches).toEqual([]);
    expect(listScratchBytes(gpu.device), 'the untuned plan splits nothing').toBe(0);
    for (const [name, plan] of Object.entries(PLANS)) {
      setMatmulPlan(gpu.device, plan);
      entries.length = 0;
      scratches.length = 0;
      const run = await train();
      expect(entries, name).toContain('split_sum');
      // What the studio's memory estimate counts: one scratch of listScratchBytes per list that splits (the
      // forward list's x·Aᵀ has K = hidden < 256 here, so only the training list splits).
      expect(scratches, name).toEqual([{ label: 'train.scratch', bytes: listScratchBytes(gpu.device) }]);
      // The vec4-load kernels really ran on the 4-aligned products (the unaligned ones fall back).
      if (name.includes('g4')) expect(entries, name).toContain('main_g4');
      run.losses.forEach((l, i) =>
        expect(Math.abs(l - reference.losses[i]), `${name}: step ${i} loss`).toBeLessThan(1e-5),
      );
      await expectSameTrainables(gpu, reference.trainables, run.trainables, 1e-5);
    }
  });
});
