/**
 * What the studio does after losing its GPU device, as pure decisions (studio-device.ts drives them): whether a run
 * the loss cut off resumes by itself, from where (its last checkpoint, or step 0 when it had none), and the words on
 * its card and in the notice shown once a new device holds the model again. Losses that come too often (LOSS_LIMIT
 * within LOSS_WINDOW_MS) stop the automatic resumes: a GPU that keeps failing would only fail the run again.
 */
import type { RunCheckpointData } from './protocol';

export const LOSS_WINDOW_MS = 60_000;
export const LOSS_LIMIT = 3;

/** Where a run stands while it trains: the steps it completed and its latest checkpoint (kept in the worker). */
export interface ResumePoint {
  reached: number;
  checkpoint: RunCheckpointData | undefined;
}

export type RunPlan =
  | { kind: 'resume'; step: number; message: string }
  | { kind: 'restart'; message: string }
  | { kind: 'stop'; message: string };

/** The notice once the new device holds the model (or failed to). */
export interface RecoveryNotice {
  message: string;
  /** From the first loss of this recovery to now. */
  ms: number;
  /** False when runs no longer resume by themselves (the notice is then an error). */
  autoResume: boolean;
}

export interface Recovery {
  reason: string;
  since: number;
  /** Losses during this recovery (a new device can be lost again before the model is back on it). */
  losses: number;
  autoResume: boolean;
  runs: { name: string; plan: RunPlan }[];
  weightsLost: number;
}

export class DeviceLossRecovery {
  /** When recent losses happened (only those within the window are kept). */
  private readonly times: number[] = [];
  private current: Recovery | null = null;
  /** Every loss so far: a notice queued before a later loss leaves the telling to that loss's notice. */
  private count = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  get lossCount(): number {
    return this.count;
  }

  get recovering(): boolean {
    return this.current !== null;
  }

  /** A loss, by its reason ('destroyed', or the driver's message). Returns whether runs still resume by themselves. */
  lost(reason: string): boolean {
    const at = this.now();
    this.count++;
    this.times.push(at);
    while (this.times.length && at - this.times[0] > LOSS_WINDOW_MS) this.times.shift();
    const autoResume = this.times.length < LOSS_LIMIT;
    const r = this.current;
    this.current = r
      ? { ...r, reason, losses: r.losses + 1, autoResume: r.autoResume && autoResume }
      : { reason, since: at, losses: 1, autoResume, runs: [], weightsLost: 0 };
    return autoResume;
  }

  /** Full fine-tunes whose trained weights were only on the lost device. */
  weightsLost(count: number): void {
    if (this.current) this.current.weightsLost += count;
  }

  /** A run the loss cut off: where it continues (recorded for the notice), and what its card says. */
  interrupted(name: string, point: ResumePoint): RunPlan {
    const r = (this.current ??= {
      reason: 'no reason given',
      since: this.now(),
      losses: 1,
      autoResume: true,
      runs: [],
      weightsLost: 0,
    });
    const plan = runPlan(r.reason, point, r.autoResume ? null : this.times.length);
    r.runs.push({ name, plan });
    return plan;
  }

  /** The new device holds the model (`model`: its name, null when none is loaded): the notice; the recovery ends. */
  recovered(model: string | null): RecoveryNotice | null {
    const r = this.current;
    if (!r) return null;
    this.current = null;
    const ms = this.now() - r.since;
    return { message: recoveredNotice(r, model, this.times.length, ms), ms, autoResume: r.autoResume };
  }

  /** The new device is open but the model could not go back on it (`why`): the notice; the recovery ends. */
  failed(why: string): RecoveryNotice | null {
    const r = this.current;
    if (!r) return null;
    this.current = null;
    return {
      message: `The GPU was lost (${r.reason}): a new device is open, but the model could not be uploaded to it again: ${why}`,
      ms: this.now() - r.since,
      autoResume: false,
    };
  }
}

/**
 * Where a run the loss cut off continues: from its checkpoint, or step 0 without one; `tooMany` (losses within the
 * window) when it is not resumed by itself.
 */
export function runPlan(reason: string, point: ResumePoint, tooMany: number | null): RunPlan {
  const at =
    point.reached === 0
      ? `The GPU was lost (${reason}) before this run's first step`
      : `The GPU was lost (${reason}) after ${plural(point.reached, 'step')}`;
  const checkpoint = point.checkpoint;
  if (tooMany !== null) {
    const then = checkpoint ? 'resume it from its last checkpoint' : 'run it again';
    return {
      kind: 'stop',
      message: `${at}, the ${ordinal(tooMany)} loss within a minute, so it was not resumed automatically: ${then} once the GPU is stable.`,
    };
  }
  if (!checkpoint) {
    const before = point.reached === 0 ? '' : ', before its first checkpoint';
    return { kind: 'restart', message: `${at}${before}: it restarted from step 0 on a new device.` };
  }
  const again = point.reached - checkpoint.step;
  const redo =
    again <= 0
      ? ''
      : again === 1
        ? `; step ${checkpoint.step} is trained again`
        : `; steps ${checkpoint.step}–${point.reached - 1} are trained again`;
  return {
    kind: 'resume',
    step: checkpoint.step,
    message: `${at}: it resumed on a new device from its checkpoint at step ${checkpoint.step}${redo}.`,
  };
}

/** "The GPU was lost (destroyed): recovered in 1.4 s, resuming "LoRA r=8" from step 10." (`ms`: since the loss) */
export function recoveredNotice(r: Recovery, model: string | null, recentLosses: number, ms: number): string {
  const lost = r.losses > 1 ? `The GPU was lost ${r.losses} times (${r.reason})` : `The GPU was lost (${r.reason})`;
  const seconds = `${(ms / 1000).toFixed(1)} s`;
  const parts = r.runs.map(({ name, plan }) =>
    plan.kind === 'resume'
      ? `resuming "${name}" from step ${plan.step}`
      : plan.kind === 'restart'
        ? `restarting "${name}" from step 0 (it had no checkpoint yet)`
        : `"${name}" stopped`,
  );
  let text = `${lost}: recovered in ${seconds}`;
  if (!r.autoResume) {
    text += `. It was lost ${recentLosses} times within a minute, so runs no longer resume by themselves`;
    text += parts.length ? ` (${parts.join(', ')}): resume them once the GPU is stable.` : '.';
  } else if (parts.length) {
    text += `, ${parts.join(', ')}.`;
  } else {
    text += model ? `; ${model} is on the GPU again.` : '.';
  }
  if (r.weightsLost > 0)
    text +=
      r.weightsLost === 1
        ? ' A full fine-tune held only on the GPU is gone (its card says so).'
        : ` ${r.weightsLost} full fine-tunes held only on the GPU are gone (their cards say so).`;
  return text;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function ordinal(n: number): string {
  const suffix = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}
