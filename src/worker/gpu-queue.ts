/**
 * One GPU, one job at a time. Training runs wait in order; short jobs (model upload, generation,
 * merged-model export) go ahead of waiting runs, so the playground never waits for a whole queue, only
 * for the run that is training now.
 */
export interface Job {
  /** Short jobs jump ahead of queued runs. */
  urgent: boolean;
  /** Run id, for cancelling a queued run. */
  runId?: string;
  /** A run that goes ahead of the waiting runs (one a GPU loss cut off continues first), after urgent jobs. */
  ahead?: boolean;
  execute(): Promise<void>;
  /** Called instead of execute() when the job is dropped before it started. */
  drop?(): void;
}

export class GpuQueue {
  private readonly waiting: Job[] = [];
  private active: Job | null = null;

  get busyWith(): Job | null {
    return this.active;
  }

  push(job: Job): void {
    if (job.urgent || job.ahead) {
      const firstRun = this.waiting.findIndex((j) => !j.urgent);
      this.waiting.splice(firstRun < 0 ? this.waiting.length : firstRun, 0, job);
    } else {
      this.waiting.push(job);
    }
    void this.pump();
  }

  /** Removes a run that has not started; false when it is not waiting (running, finished or unknown). */
  dropRun(runId: string): boolean {
    const i = this.waiting.findIndex((j) => j.runId === runId);
    if (i < 0) return false;
    const [job] = this.waiting.splice(i, 1);
    job.drop?.();
    return true;
  }

  waitingRunIds(): string[] {
    return this.waiting.filter((j) => j.runId).map((j) => j.runId!);
  }

  private async pump(): Promise<void> {
    if (this.active) return;
    while (this.waiting.length) {
      const job = (this.active = this.waiting.shift()!);
      try {
        await job.execute();
      } catch (err) {
        // Jobs report their own errors; this only keeps the queue alive if one forgot to.
        console.error('GPU job failed', err);
      } finally {
        this.active = null;
      }
    }
  }
}
