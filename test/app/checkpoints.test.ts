/**
 * The decisions behind resuming a run from a checkpoint (src/app/checkpoints.ts): what a run can resume from, with
 * what loaded, from which stored data, over which history. Moved from e2e/helpers.spec.ts (no browser needed).
 */
import { describe, expect, it } from 'vitest';
import {
  checkpointInfo,
  formatChoice,
  historyBefore,
  readCheckpoint,
  resumeProblem,
  resumeStep,
} from '../../src/app/checkpoints';
import { demoRuns } from '../../src/app/presets';
import type { RunRecord } from '../../src/app/run-record';
import type { DatasetPreview, ModelCard, RunCheckpointData } from '../../src/worker/protocol';

const [lora] = demoRuns();

describe('checkpoints', () => {
  it('what a run can resume from, with what loaded, from which stored data, over which history', () => {
    const tensor = (n: number) => ({
      name: 'model.layers.0.self_attn.q_proj',
      param: new Float32Array(n),
      m: new Float32Array(n),
      v: new Float32Array(n),
    });
    const checkpoint: RunCheckpointData = { step: 10, tokens: 640, elapsedMs: 1200, state: [tensor(100)] };
    expect(checkpointInfo(checkpoint)).toEqual({ step: 10, bytes: 1200, kept: true });
    // Above 64 MiB of weights and moments (a full fine-tune of a real model) the state is not stored.
    const big = new Float32Array(6 * 2 ** 20);
    expect(checkpointInfo({ ...checkpoint, state: [{ name: 'w', param: big, m: big, v: big }] })).toMatchObject({
      kept: false,
      bytes: 72 * 2 ** 20,
    });

    const run = {
      config: { ...lora, steps: 40 },
      status: 'interrupted',
      modelKey: 'stories-key',
      modelName: 'stories260K',
      datasetName: 'tinyshakespeare.txt',
      checkpoint: { step: 10, bytes: 1200, kept: true },
      points: [0, 5, 9, 10, 12].map((step) => ({
        step,
        loss: 1,
        lr: 1,
        gradNorm: 1,
        tokensPerSecond: 1,
        tokens: 64 * (step + 1),
        elapsedMs: step,
      })),
      evals: [0, 10].map((step) => ({ step, tokens: 64 * step, loss: 1 })),
    } as RunRecord;
    // Interrupted by a reload or failed (a lost GPU) with a stored checkpoint: nothing else resumes.
    expect(resumeStep(run)).toBe(10);
    expect(resumeStep({ ...run, status: 'failed' })).toBe(10);
    expect(resumeStep({ ...run, status: 'done' })).toBeNull();
    expect(resumeStep({ ...run, status: 'cancelled' })).toBeNull();
    expect(resumeStep({ ...run, checkpoint: { ...run.checkpoint!, kept: false } })).toBeNull();
    expect(resumeStep({ ...run, checkpoint: null })).toBeNull();

    // The same model and dataset must be loaded, and the message says which.
    const stories = { key: 'stories-key', name: 'stories260K' } as ModelCard;
    const shakespeare = { name: 'tinyshakespeare.txt' } as DatasetPreview;
    expect(resumeProblem(run, null, null)).toBe('Load stories260K to resume this run.');
    expect(resumeProblem(run, { key: 'other', name: 'SmolLM2-135M' } as ModelCard, shakespeare)).toBe(
      'This run trained on stories260K; load it to resume (SmolLM2-135M is loaded).',
    );
    expect(resumeProblem(run, stories, null)).toBe('Load tinyshakespeare.txt to resume this run.');
    expect(resumeProblem(run, stories, { name: 'alpaca.json' } as DatasetPreview)).toBe(
      'This run trained on tinyshakespeare.txt; load it to resume (alpaca.json is loaded).',
    );
    expect(resumeProblem(run, stories, shakespeare)).toBeNull();
    // The same name is not the same data: runs record the file's size and SHA-256, and the format it was read with.
    const digest = '1115394:sha256:ab12';
    const read = {
      name: 'tinyshakespeare.txt',
      digest,
      format: 'text',
      columns: { text: 'text' },
      override: { format: null, columns: {} },
    } as unknown as DatasetPreview;
    const withDigest = { ...run, datasetDigest: digest, datasetFormat: formatChoice(read) } as RunRecord;
    expect(resumeProblem(withDigest, stories, read)).toBeNull();
    expect(resumeProblem(withDigest, stories, { ...read, digest: '1115394:sha256:cd34' })).toBe(
      'The loaded tinyshakespeare.txt is not the file this run trained on (its size or contents differ); load the original file to resume.',
    );
    expect(resumeProblem(withDigest, stories, { ...read, format: 'prompt_completion' } as DatasetPreview)).toBe(
      'This run read tinyshakespeare.txt with another format or column mapping; choose the same one in the Dataset panel to resume.',
    );

    // A stored checkpoint is checked before it reaches the worker: missing, out of range or damaged is null.
    expect(readCheckpoint({ ...checkpoint, id: run.config.id }, 40)).toEqual(checkpoint);
    expect(readCheckpoint(undefined, 40)).toBeNull();
    expect(readCheckpoint({ ...checkpoint, step: 40 }, 40)).toBeNull();
    expect(readCheckpoint({ ...checkpoint, tokens: Number.NaN }, 40)).toBeNull();
    expect(readCheckpoint({ ...checkpoint, state: [] }, 40)).toBeNull();
    expect(readCheckpoint({ ...checkpoint, state: [{ ...tensor(100), v: new Float32Array(99) }] }, 40)).toBeNull();
    expect(
      readCheckpoint({ ...checkpoint, state: [{ ...tensor(100), m: Array.from({ length: 100 }, () => 0) }] }, 40),
    ).toBeNull();

    // The resumed run reports steps 10.. and the evaluation at step 10 again: only what came before stays.
    const kept = historyBefore(run, 10);
    expect(kept.points.map((p) => p.step)).toEqual([0, 5, 9]);
    expect(kept.evals.map((e) => e.step)).toEqual([0]);
  });
});
