/**
 * A run checkpointed to disk (src/cli/checkpoint-folder.ts), read back and resumed, equals the uninterrupted run bit
 * for bit: every later step's loss and every final trainable, for methods with state beyond LoRA's (AdaLoRA's
 * importance EMAs, masks and budget schedule; GoRA's gradient-measured allocation; DoRA's magnitudes). A checkpoint
 * folder a kill interrupted mid-write still reads as the previous checkpoint.
 */
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFolder, writeCheckpointFolder } from '../../src/cli/checkpoint-folder';
import type { RunIdentity } from '../../src/cli/run-identity';
import { trainRun, type RunCheckpoint, type TrainRunResult } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { eightStepOptions, randomExamples, tinyLlama } from '../helpers/tiny-train-runs';

const IDENTITY: RunIdentity = {
  settings: { lr: 0.01 },
  model: { path: '/models/tiny', files: { 'config.json': '1:sha256:00' } },
  data: { path: '/data/train.jsonl', digest: '2:sha256:11' },
};

async function setUp(method: string) {
  const { gpu, spec, weights, tokenizer } = await tinyLlama();
  const o = eightStepOptions(method, { gradAccum: 2, evalEvery: 3, checkpointEvery: 3 });
  return { gpu, weights, examples: randomExamples(spec.vocabSize), o, tokenizer };
}

async function finalTrainables(gpu: Gpu, r: TrainRunResult): Promise<Float32Array[]> {
  return gpu.readMany([...r.state.adapters.values()].flatMap((a) => a.trainables.map((t) => t.param)));
}

describe('train checkpoints on disk', () => {
  for (const method of ['lora', 'adalora', 'gora', 'dora']) {
    it(`${method}: killed after a checkpoint, resumed from the folder = the uninterrupted run, bit for bit`, async () => {
      const { gpu, weights, examples, o, tokenizer } = await setUp(method);
      const dir = await mkdtemp(join(tmpdir(), `lora-ckpt-${method}-`));
      const straight: number[] = [];
      const steps: number[] = [];
      // The uninterrupted run writes its checkpoints (after steps 3 and 6); the one after step 3 is kept aside by
      // resuming from a copy read right after it was written, as a run killed at step 4 or 5 would find it.
      let atStep3: Awaited<ReturnType<typeof readCheckpointFolder>> | null = null;
      const full = await trainRun(gpu, weights, tokenizer, examples, o, {
        onStep: (m) => {
          straight.push(m.loss);
          steps.push(m.step);
        },
        onCheckpoint: async (c: RunCheckpoint) => {
          await writeCheckpointFolder(
            dir,
            {
              step: c.step,
              steps: o.steps,
              batchHash: c.batchHash!,
              run: IDENTITY,
              progress: { skippedBatches: 0, initialValLoss: null },
              modules: [],
            },
            c.state,
          );
          atStep3 ??= await readCheckpointFolder(dir);
        },
      });
      expect(steps).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(atStep3!.manifest.step).toBe(3);
      // The folder holds the latest checkpoint only.
      const latest = await readCheckpointFolder(dir);
      expect(latest.manifest.step).toBe(6);
      expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', latest.manifest.state.file]);

      for (const saved of [atStep3!, latest]) {
        const { step, batchHash } = saved.manifest;
        const resumed: number[] = [];
        const r = await trainRun(
          gpu,
          weights,
          tokenizer,
          examples,
          { ...o, checkpointEvery: 0, resume: { step, state: saved.state, batchHash } },
          { onStep: (m) => resumed.push(m.loss) },
        );
        // Bit for bit: the same f32 losses and parameters, not merely close ones.
        expect(resumed).toEqual(straight.slice(step));
        expect(r.steps).toBe(8);
        expect(r.batchHash).toBe(full.batchHash);
        expect(r.finalEval!.loss).toBe(full.finalEval!.loss);
        const [a, b] = [await finalTrainables(gpu, full), await finalTrainables(gpu, r)];
        expect(b.length).toBe(a.length);
        a.forEach((t, i) => expect(b[i]).toEqual(t));
      }
    });
  }

  it('a resume whose batches differ from the checkpoint run’s is refused before it trains', async () => {
    const { gpu, weights, examples, o, tokenizer } = await setUp('lora');
    let checkpoint: RunCheckpoint | null = null;
    await trainRun(gpu, weights, tokenizer, examples, o, { onCheckpoint: (c) => void (checkpoint ??= c) });
    const steps: number[] = [];
    await expect(
      trainRun(
        gpu,
        weights,
        tokenizer,
        examples,
        { ...o, seed: 6, resume: checkpoint! },
        { onStep: (m) => steps.push(m.step) },
      ),
    ).rejects.toThrow(/batches before step 3 are not the ones the checkpoint's run trained on/);
    expect(steps).toEqual([]);
  });

  it('a kill mid-write leaves the previous checkpoint readable, and the next write cleans up after it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lora-ckpt-kill-'));
    const state = (x: number) => [
      {
        name: 'a.lora_A.weight',
        param: new Float32Array([x, 2]),
        m: new Float32Array([3, 4]),
        v: new Float32Array([5, 6]),
      },
      { name: 'method:mask', param: new Float32Array([1, 0, 1]), m: new Float32Array(0), v: new Float32Array(0) },
    ];
    const manifest = (step: number) => ({
      step,
      steps: 10,
      batchHash: '01234567',
      run: IDENTITY,
      progress: { skippedBatches: 1, initialValLoss: 4.5 },
      modules: [{ path: 'a', rank: 2 }],
    });
    await writeCheckpointFolder(dir, manifest(2), state(1));
    // What a kill leaves at each instant of the next write: a half-written state file, a written but not yet
    // renamed state file with a half-written manifest beside it.
    await writeFile(join(dir, `.state-00000004-zz.safetensors.${process.pid + 1}.tmp`), new Uint8Array(10));
    await writeFile(join(dir, 'state-00000004-zz.safetensors'), new Uint8Array(100));
    await writeFile(join(dir, `.checkpoint.json.${process.pid + 1}.tmp`), '{"format": "lora-stu');
    const read = await readCheckpointFolder(dir);
    expect(read.manifest).toMatchObject({ ...manifest(2), format: 'lora-studio-train-checkpoint', version: 1 });
    expect(read.state).toEqual(state(1));

    await writeCheckpointFolder(dir, manifest(4), state(7));
    const next = await readCheckpointFolder(dir);
    expect(next.manifest.step).toBe(4);
    expect(next.state).toEqual(state(7));
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', next.manifest.state.file]);
  });
});
