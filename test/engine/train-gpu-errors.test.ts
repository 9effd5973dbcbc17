/**
 * WebGPU validation errors during training and evaluation fail the run, naming the step (or batch) and the GPU's
 * message, instead of reporting the stale loss an invalid command buffer leaves (it used to read as loss 0).
 * The error is provoked by a deliberately mis-sized copy in the step's command encoder.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { trainRun } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { TransformerGraph } from '../../src/model/transformer';
import { evaluate } from '../../src/train/evaluate';
import { testGpu } from '../helpers/gpu';
import { cyclingExamples, evalBatch, shortLoraOptions, tinyLlama } from '../helpers/tiny-train-runs';

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
  return { ...(await tinyLlama()), examples: cyclingExamples(12) };
}

const OPTIONS = shortLoraOptions({ steps: 5 });

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
    expect((await evaluate(gpu, graph, [evalBatch(0), evalBatch(1)])).tokens).toBe(12);
    let passes = 0;
    injectFault(gpu, (label) => label === 'forward' && ++passes === 2);
    await expect(evaluate(gpu, graph, [evalBatch(0), evalBatch(1), evalBatch(2)])).rejects.toThrow(
      /^Evaluation batch 2: the GPU reported 2 errors; first: Copy range/,
    );
  });
});
