/**
 * The recovery after a GPU device loss as pure decisions (src/worker/device-loss.ts), on a fake clock: where a run
 * the loss cut off continues and what its card says, when losses come too often to resume by themselves, and the
 * notice once a new device holds the model. Beside them: the test hook refused without the page's flag, and the GPU
 * queue putting a run queued again after a loss after the recovery's jobs and ahead of the runs that were waiting.
 */
import { describe, expect, it, vi } from 'vitest';
import {
  DeviceLossRecovery,
  LOSS_LIMIT,
  LOSS_WINDOW_MS,
  runPlan,
  type ResumePoint,
} from '../../src/worker/device-loss';
import type { RunCheckpointData, WorkerEvent } from '../../src/worker/protocol';
import { GpuQueue } from '../../src/worker/gpu-queue';
import { StudioDevice } from '../../src/worker/studio-device';

function checkpoint(step: number): RunCheckpointData {
  const a = new Float32Array(4);
  return { step, tokens: step * 64, elapsedMs: step * 10, state: [{ name: 'w', param: a, m: a, v: a }] };
}

const at = (reached: number, step?: number): ResumePoint => ({
  reached,
  checkpoint: step === undefined ? undefined : checkpoint(step),
});

/** A recovery on a clock the test moves. */
function clocked() {
  const clock = { t: 1000 };
  return { clock, recovery: new DeviceLossRecovery(() => clock.t) };
}

describe('runPlan', () => {
  it('resumes from the checkpoint, naming the steps trained again', () => {
    expect(runPlan('destroyed', at(8, 5), null)).toEqual({
      kind: 'resume',
      step: 5,
      message:
        'The GPU was lost (destroyed) after 8 steps: it resumed on a new device from its checkpoint at step 5; steps 5–7 are trained again.',
    });
    expect(runPlan('destroyed', at(6, 5), null).message).toBe(
      'The GPU was lost (destroyed) after 6 steps: it resumed on a new device from its checkpoint at step 5; step 5 is trained again.',
    );
    // A resumed run lost again before its next step: nothing is trained twice.
    expect(runPlan('destroyed', at(5, 5), null).message).toBe(
      'The GPU was lost (destroyed) after 5 steps: it resumed on a new device from its checkpoint at step 5.',
    );
  });

  it('restarts from step 0 without a checkpoint, and says so', () => {
    expect(runPlan('destroyed', at(0), null).message).toBe(
      "The GPU was lost (destroyed) before this run's first step: it restarted from step 0 on a new device.",
    );
    expect(runPlan('GPU process crashed', at(1), null)).toEqual({
      kind: 'restart',
      message:
        'The GPU was lost (GPU process crashed) after 1 step, before its first checkpoint: it restarted from step 0 on a new device.',
    });
  });

  it('stops when losses came too often, with what to do', () => {
    expect(runPlan('destroyed', at(12, 10), 3)).toEqual({
      kind: 'stop',
      message:
        'The GPU was lost (destroyed) after 12 steps, the 3rd loss within a minute, so it was not resumed automatically: resume it from its last checkpoint once the GPU is stable.',
    });
    expect(runPlan('destroyed', at(2), 4).message).toMatch(
      /the 4th loss within a minute, .*: run it again once the GPU is stable\.$/,
    );
  });
});

describe('DeviceLossRecovery', () => {
  it('a loss during a run: the run resumes, and the notice names it with the time to recover', () => {
    const { clock, recovery } = clocked();
    expect(recovery.recovering).toBe(false);
    expect(recovery.lost('destroyed')).toBe(true);
    expect(recovery.recovering).toBe(true);
    expect(recovery.lossCount).toBe(1);
    expect(recovery.interrupted('LoRA r=8', at(8, 5))).toMatchObject({ kind: 'resume', step: 5 });
    clock.t += 1432;
    expect(recovery.recovered('stories260K')).toEqual({
      message: 'The GPU was lost (destroyed): recovered in 1.4 s, resuming "LoRA r=8" from step 5.',
      ms: 1432,
      autoResume: true,
    });
    expect(recovery.recovering).toBe(false);
    expect(recovery.recovered('stories260K')).toBeNull();
  });

  it('a loss while idle: the model is on the GPU again (or nothing was loaded)', () => {
    const { clock, recovery } = clocked();
    recovery.lost('destroyed');
    clock.t += 250;
    expect(recovery.recovered('stories260K')?.message).toBe(
      'The GPU was lost (destroyed): recovered in 0.3 s; stories260K is on the GPU again.',
    );
    clock.t += LOSS_WINDOW_MS;
    recovery.lost('destroyed');
    expect(recovery.recovered(null)?.message).toBe('The GPU was lost (destroyed): recovered in 0.0 s.');
  });

  it('a restarted run and lost full fine-tunes are in the notice', () => {
    const { recovery } = clocked();
    recovery.lost('destroyed');
    recovery.weightsLost(2);
    expect(recovery.interrupted('Full', at(3))).toMatchObject({ kind: 'restart' });
    expect(recovery.recovered('stories260K')?.message).toBe(
      'The GPU was lost (destroyed): recovered in 0.0 s, restarting "Full" from step 0 (it had no checkpoint yet). ' +
        '2 full fine-tunes held only on the GPU are gone (their cards say so).',
    );
    recovery.lost('destroyed');
    recovery.weightsLost(1);
    expect(recovery.recovered(null)?.message).toMatch(
      /\. A full fine-tune held only on the GPU is gone \(its card says so\)\.$/,
    );
  });

  it(`the ${LOSS_LIMIT}rd loss within a minute stops the automatic resume; older losses leave the window`, () => {
    const { clock, recovery } = clocked();
    for (let i = 1; i < LOSS_LIMIT; i++) {
      expect(recovery.lost('destroyed')).toBe(true);
      expect(recovery.interrupted('A', at(7, 5)).kind).toBe('resume');
      expect(recovery.recovered('m')?.autoResume).toBe(true);
      clock.t += 20_000;
    }
    expect(recovery.lost('destroyed')).toBe(false);
    const plan = recovery.interrupted('A', at(7, 5));
    expect(plan.kind).toBe('stop');
    expect(plan.message).toMatch(/the 3rd loss within a minute/);
    expect(recovery.recovered('m')).toEqual({
      message:
        'The GPU was lost (destroyed): recovered in 0.0 s. It was lost 3 times within a minute, so runs no longer ' +
        'resume by themselves ("A" stopped): resume them once the GPU is stable.',
      ms: 0,
      autoResume: false,
    });
    // A minute after the first two, only the last loss is recent: runs resume by themselves again.
    clock.t += LOSS_WINDOW_MS - 20_000 + 1;
    expect(recovery.lost('destroyed')).toBe(true);
    expect(recovery.interrupted('A', at(9, 5)).kind).toBe('resume');
  });

  it('a new device lost before the model is back: one recovery, counted twice, told once', () => {
    const { clock, recovery } = clocked();
    recovery.lost('destroyed');
    expect(recovery.interrupted('A', at(12, 10)).kind).toBe('resume');
    clock.t += 300;
    recovery.lost('unknown GPU error');
    expect(recovery.lossCount).toBe(2);
    clock.t += 700;
    expect(recovery.recovered('m')).toEqual({
      message: 'The GPU was lost 2 times (unknown GPU error): recovered in 1.0 s, resuming "A" from step 10.',
      ms: 1000,
      autoResume: true,
    });
  });

  it('the model could not go back on the new device: an error notice that says why', () => {
    const { clock, recovery } = clocked();
    recovery.lost('destroyed');
    clock.t += 100;
    expect(recovery.failed('Out of memory')).toEqual({
      message:
        'The GPU was lost (destroyed): a new device is open, but the model could not be uploaded to it again: Out of memory',
      ms: 100,
      autoResume: false,
    });
    expect(recovery.recovering).toBe(false);
    expect(recovery.failed('again')).toBeNull();
  });

  it('a run that failed on a lost device nobody reported still gets a plan', () => {
    const { recovery } = clocked();
    expect(recovery.interrupted('A', at(3, undefined))).toMatchObject({ kind: 'restart' });
    expect(recovery.recovered(null)?.message).toMatch(
      /^The GPU was lost \(no reason given\): recovered in 0\.0 s, restarting "A"/,
    );
  });
});

describe('the test hook', () => {
  it('is refused unless the page asked for test hooks at init', () => {
    const posted: WorkerEvent[] = [];
    const studio = {
      post: (e: WorkerEvent) => posted.push(e),
      queue: new GpuQueue(),
      model: null,
      dataset: null,
      trained: new Map(),
    };
    const device = new StudioDevice(
      studio,
      () => {},
      () => {},
    );
    expect(() => device.loseDeviceForTest()).toThrow(
      'debugLoseDevice is a test hook: open the studio with ?test-hooks to enable it.',
    );
    expect(posted).toEqual([]);
  });
});

describe('GpuQueue', () => {
  it('a run queued again after a loss goes after the urgent jobs and ahead of the waiting runs', async () => {
    const queue = new GpuQueue();
    const order: string[] = [];
    let release!: () => void;
    const job = (name: string, extra: { urgent?: boolean; ahead?: boolean; wait?: boolean } = {}) => ({
      urgent: extra.urgent ?? false,
      ahead: extra.ahead,
      runId: extra.urgent ? undefined : name,
      execute: async () => {
        order.push(name);
        if (extra.wait) await new Promise<void>((resolve) => (release = resolve));
      },
    });
    queue.push(job('active', { wait: true }));
    queue.push(job('waiting 1'));
    queue.push(job('waiting 2'));
    queue.push(job('upload', { urgent: true }));
    queue.push(job('notice', { urgent: true }));
    queue.push(job('resumed', { ahead: true }));
    release();
    await vi.waitFor(() => expect(order).toHaveLength(6));
    expect(order).toEqual(['active', 'upload', 'notice', 'resumed', 'waiting 1', 'waiting 2']);
  });
});
