/**
 * WebGPU validation errors during training and evaluation fail the run, naming the step (or batch) and the GPU's
 * message, instead of reporting the stale loss an invalid command buffer leaves (it used to read as loss 0).
 * The error is provoked by a deliberately mis-sized copy in the step's command encoder.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { idsOnlyTokenizer } from '../../src/bench/generated-model';
import type { Example } from '../../src/data/index';
import { trainRun, type TrainRunOptions } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { ModelWeights } from '../../src/model/weights';
import { TransformerGraph } from '../../src/model/transformer';
import { evaluate } from '../../src/train/evaluate';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

/** Makes every command encoder `when` accepts invalid: an 8-byte copy into a 4-byte buffer. */
function injectFault(gpu: Gpu, when: (label: string | undefined) => boolean): void {
  const device = gpu.device;
  const create = Object.getPrototypeOf(device).createCommandEncoder as GPUDevice['createCommandEncoder'];
  device.createCommandEncoder = (descriptor?: GPUCommandEncoderDescriptor) => {
    const encoder = create.call(device, descriptor);
    if (when(descriptor?.label)) {
      const src = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC, label: 'fault.src' });
      const dst = device.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_DST, label: 'fault.dst' });
      encoder.copyBufferToBuffer(src, 0, dst, 0, 8);
    }
    return encoder;
  };
}

async function setUp() {
  const gpu = await testGpu();
  const spec = tinySpec('llama');
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  const examples: Example[] = Array.from({ length: 12 }, (_, i) => ({
    inputIds: [1, 2, 3, (i % 5) + 4],
    labels: [1, 2, 3, (i % 5) + 4],
  }));
  return { gpu, spec, weights, examples, tokenizer: idsOnlyTokenizer(spec.vocabSize) };
}

const OPTIONS: TrainRunOptions = {
  method: 'lora',
  rank: 2,
  alpha: 4,
  targets: ['q_proj'],
  seed: 0,
  steps: 5,
  batch: 2,
  seq: 4,
  lr: 1e-3,
  warmupSteps: 0,
  weightDecay: 0,
  maxGradNorm: 1,
  minLrRatio: 1,
  validationFraction: 0,
  evalEvery: 0,
  packing: false,
};

describe('GPU errors during a run', () => {
  afterEach(async () => {
    const gpu = await testGpu();
    // The device's own createCommandEncoder again, and no error left for the next test.
    delete (gpu.device as { createCommandEncoder?: unknown }).createCommandEncoder;
    gpu.errors.length = 0;
  });

  it('a step whose command buffer the GPU rejects stops training with the step and the WebGPU message', async () => {
    const { gpu, weights, examples, tokenizer } = await setUp();
    injectFault(gpu, (label) => label === 'step 2');
    const reported: number[] = [];
    await expect(
      trainRun(gpu, weights, tokenizer, examples, OPTIONS, { onStep: (m) => reported.push(m.step) }),
    ).rejects.toThrow(
      /^Training step 2: the GPU reported 2 errors; first: Copy range .* does not fit in .*fault\.dst/s,
    );
    // Step 2's loss (an unwritten slot of the metrics ring: it read as 0) is never reported, nor is any after it.
    expect(reported).toEqual([0]);
  });

  it('an evaluation pass the GPU rejects fails naming the batch', async () => {
    const { gpu, weights } = await setUp();
    const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 4, train: 'none' });
    const batch = (i: number) => ({
      tokens: new Uint32Array([1, 2, 3, 4, 1, 2, 3, i + 4]),
      targets: new Int32Array([2, 3, 4, -100, 2, 3, i + 4, -100]),
      positions: new Uint32Array([0, 1, 2, 3, 0, 1, 2, 3]),
      supervised: 6,
    });
    expect((await evaluate(gpu, graph, [batch(0), batch(1)])).tokens).toBe(12);
    let passes = 0;
    injectFault(gpu, (label) => label === 'forward' && ++passes === 2);
    await expect(evaluate(gpu, graph, [batch(0), batch(1), batch(2)])).rejects.toThrow(
      /^Evaluation batch 2: the GPU reported 2 errors; first: Copy range/,
    );
  });
});
