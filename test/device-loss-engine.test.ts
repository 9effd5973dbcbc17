/**
 * GPU device loss under Node, simulated with `GPUDevice.destroy()` through loseNodeDevice(): a run or an evaluation
 * on the lost device stops with DeviceLostError naming the loss (not WebGPU's bare AbortError, not a hang, no loss
 * reported after it), and the next nodeDevice() is a new device on which the run resumes from its last checkpoint
 * with the uninterrupted run's losses.
 */
import { describe, expect, it } from 'vitest';
import { idsOnlyTokenizer } from '../src/bench/generated-model';
import type { Example } from '../src/data/index';
import { trainRun, type RunCheckpoint } from '../src/engine/train-run';
import { DeviceLostError } from '../src/gpu/device-lost';
import { Gpu } from '../src/gpu/gpu';
import { loseNodeDevice, nodeDevice } from '../src/gpu/node-device';
import { TransformerGraph } from '../src/model/transformer';
import { ModelWeights } from '../src/model/weights';
import { evaluate } from '../src/train/evaluate';
import { randomSource, tinySpec } from './helpers/tiny-models';
import { evalBatch, shortLoraOptions } from './helpers/tiny-train-runs';

const spec = tinySpec('llama');
const tokenizer = idsOnlyTokenizer(spec.vocabSize);
const examples: Example[] = Array.from({ length: 24 }, (_, i) => ({
  inputIds: [1, 2, 3, (i % 5) + 4, (i % 7) + 2],
  labels: [1, 2, 3, (i % 5) + 4, (i % 7) + 2],
}));

const OPTIONS = shortLoraOptions({
  targets: ['q_proj', 'v_proj'],
  steps: 12,
  seq: 5,
  lr: 1e-2,
  validationFraction: 0.25,
  evalEvery: 4,
  checkpointEvery: 5,
});

/** The engine's device now (a new one after a loss) with the tiny model uploaded to it. */
async function engine() {
  const gpu = new Gpu(await nodeDevice());
  const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
  return { gpu, weights };
}

const LOST = /^The GPU device was lost \(destroyed\): everything it held is gone\.$/;

describe('GPU device loss in the engine', () => {
  it('a run whose device is lost at step 7 fails naming the loss; it resumes on a new device from step 5', async () => {
    const reference = await engine();
    const expected = new Map<number, number>();
    await trainRun(reference.gpu, reference.weights, tokenizer, examples, OPTIONS, {
      onStep: (m) => expected.set(m.step, m.loss),
    });

    const first = await engine();
    const reported: number[] = [];
    let checkpoint: RunCheckpoint | null = null;
    let lost: Promise<GPUDeviceLostInfo | null> | null = null;
    let lostAt = 0;
    const failure = await trainRun(first.gpu, first.weights, tokenizer, examples, OPTIONS, {
      onStep: (m) => {
        reported.push(m.step);
        // Every loss reported before the loss is the uninterrupted run's.
        expect(m.loss).toBe(expected.get(m.step));
        if (m.step === 7) {
          lostAt = performance.now();
          lost = loseNodeDevice();
        }
      },
      onCheckpoint: (c) => {
        checkpoint = c;
      },
    }).then(
      () => null,
      (err: unknown) => err,
    );
    const failedAfterMs = performance.now() - lostAt;
    expect(failure).toBeInstanceOf(DeviceLostError);
    expect((failure as Error).message).toMatch(LOST);
    expect(await lost).toMatchObject({ reason: 'destroyed' });
    // Nothing is reported from the lost device: step 8 was submitted before the loss, and its metrics arrive only if
    // the GPU had finished it and its readback was already resolved when destroy() ran (a busy machine); either way
    // every loss reported was the uninterrupted run's (checked in onStep), and nothing after step 8.
    expect(reported.slice(0, 8)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(reported.length).toBeLessThanOrEqual(9);
    expect(checkpoint!.step).toBe(5);

    const t1 = performance.now();
    const second = await engine();
    expect(second.gpu.device).not.toBe(first.gpu.device);
    const recoveredMs = performance.now() - t1;
    const resumed: number[] = [];
    const result = await trainRun(
      second.gpu,
      second.weights,
      tokenizer,
      examples,
      { ...OPTIONS, resume: checkpoint! },
      {
        onStep: (m) => {
          resumed.push(m.step);
          expect(m.loss).toBeCloseTo(expected.get(m.step)!, 5);
        },
      },
    );
    // Steps 5..11 once more on the new device: with the first session's 0..4, every step exactly once.
    expect(resumed).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(result.steps).toBe(12);
    console.info(
      `device loss at step 7: the run failed ${failedAfterMs.toFixed(0)} ms after it; new device and model in ` +
        `${recoveredMs.toFixed(0)} ms; resumed from step 5 (steps 5-7 trained twice)`,
    );
  });

  it('an evaluation whose device is lost between its batches fails naming the loss', async () => {
    const { gpu, weights } = await engine();
    const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 4, train: 'none' });
    const read = gpu.read.bind(gpu);
    let reads = 0;
    gpu.read = async (...args: Parameters<Gpu['read']>) => {
      if (++reads === 3) await loseNodeDevice();
      return read(...args);
    };
    await expect(evaluate(gpu, graph, [0, 1, 2, 3, 4].map(evalBatch))).rejects.toThrow(LOST);
    expect(reads).toBe(3);
  });

  it('a lost device with nothing pending leaves no error behind; the next nodeDevice() is a new device', async () => {
    const before = await nodeDevice();
    expect(await loseNodeDevice()).toMatchObject({ reason: 'destroyed' });
    const after = await nodeDevice();
    expect(after.device).not.toBe(before.device);
    const gpu = new Gpu(after);
    const t = gpu.tensorFrom(new Float32Array([1, 2, 3]), [3], 'after the loss');
    expect([...(await gpu.read(t))]).toEqual([1, 2, 3]);
  });
});
