/**
 * train's checkpoints and resume: --checkpoint-every N writes the run's state every N steps into --checkpoint-dir
 * (default <--out>/checkpoint, see checkpoint-folder.ts); --resume DIR reads one, refuses it when this run differs
 * (settings, model, data, the method's modules), and hands it to trainRun, which continues exactly where it stopped.
 */
import { join } from 'node:path';
import type { MethodState } from '../engine/methods';
import type { RunCheckpoint, TrainRunOptions } from '../engine/train-run';
import type { TrainableState } from '../train/trainer';
import { readCheckpointFolder, writeCheckpointFolder, type CheckpointManifest } from './checkpoint-folder';
import { log, out } from './output';
import { identityProblem, type RunIdentity } from './run-identity';

/** The folder --checkpoint-every writes to when --checkpoint-dir is not given. */
export function defaultCheckpointDir(outDir: string): string {
  return join(outDir, 'checkpoint');
}

export class TrainCheckpoints {
  private identity: RunIdentity | null = null;
  private modules: CheckpointManifest['modules'] | null = null;
  private skipped: number;
  private initialValLoss: number | null;
  /** The step of the last checkpoint this process wrote. */
  private written: number | null = null;

  private constructor(
    /** Write a checkpoint every this many steps (0: never). */
    readonly every: number,
    /** Where checkpoints go. */
    readonly dir: string,
    private readonly saved: { dir: string; manifest: CheckpointManifest; state: TrainableState[] } | null,
  ) {
    this.skipped = saved?.manifest.progress.skippedBatches ?? 0;
    this.initialValLoss = saved?.manifest.progress.initialValLoss ?? null;
  }

  /** Checks the flags and reads --resume's checkpoint (before the model loads: a wrong folder fails fast). */
  static async open(o: Record<string, unknown>): Promise<TrainCheckpoints> {
    const every = (o['checkpoint-every'] as number | undefined) ?? 0;
    if (!Number.isInteger(every) || every < 0)
      throw new Error(`--checkpoint-every must be an integer >= 0 (got ${every})`);
    const dirFlag = o['checkpoint-dir'] as string | undefined;
    if (dirFlag !== undefined && every === 0)
      throw new Error(
        '--checkpoint-dir is where --checkpoint-every N writes its checkpoints: give --checkpoint-every too',
      );
    const resumeDir = o.resume as string | undefined;
    const saved = resumeDir ? { dir: resumeDir, ...(await readCheckpointFolder(resumeDir)) } : null;
    return new TrainCheckpoints(every, dirFlag ?? defaultCheckpointDir(o.out as string), saved);
  }

  /** The step --resume continues at (null without --resume). */
  get resumedFrom(): number | null {
    return this.saved?.manifest.step ?? null;
  }

  /** Steps without a supervised token so far, the checkpoint's run's included. */
  get skippedBatches(): number {
    return this.skipped;
  }

  /** The run's starting validation loss: measured by this process, or by the run the checkpoint continues. */
  get startingValLoss(): number | null {
    return this.initialValLoss;
  }

  /**
   * This run's identity (computed only when checkpointing or resuming: it hashes the model's files); with --resume, a
   * checkpoint of another run is refused here, naming what differs. Returns trainRun's checkpoint options.
   */
  async bind(
    identity: () => Promise<RunIdentity>,
    steps: number,
  ): Promise<Pick<TrainRunOptions, 'checkpointEvery' | 'resume'>> {
    const saved = this.saved;
    if (this.every === 0 && !saved) return {};
    this.identity = await identity();
    if (!saved) return { checkpointEvery: this.every };
    const problem = identityProblem(saved.manifest.run, this.identity, `--resume ${saved.dir}`);
    if (problem) throw new Error(problem);
    const { step } = saved.manifest;
    log(`resuming ${saved.dir} at step ${step} of ${steps}`);
    return {
      checkpointEvery: this.every,
      resume: { step, state: saved.state, batchHash: saved.manifest.batchHash },
    };
  }

  /** trainRun's onMethod: the modules and ranks as built, which a resumed run must rebuild identically. */
  onMethod(state: MethodState): void {
    this.modules = state.analysis.modules.map((m) => ({ path: m.path, rank: m.rank }));
    const before = this.saved?.manifest.modules;
    if (!before) return;
    const i = this.modules.findIndex((m, k) => m.path !== before[k]?.path || m.rank !== before[k]?.rank);
    if (i >= 0 || before.length !== this.modules.length) {
      const here = this.modules[i];
      const there = before.find((m) => m.path === here?.path);
      throw new Error(
        `--resume ${this.saved!.dir}: the method built other modules than the checkpoint's run did` +
          (here && there ? ` (${here.path}: rank ${there.rank} there, ${here.rank} here)` : '') +
          ', so it cannot continue exactly (GoRA and GeLoRA measure their allocation on the GPU: resume on the one ' +
          'that wrote the checkpoint).',
      );
    }
  }

  /** trainRun's onEval: the starting validation loss is reported again after a resume. */
  onEval(step: number, loss: number): void {
    if (step === 0 && this.saved === null) this.initialValLoss = loss;
  }

  /** trainRun's onSkip. */
  onSkip(): void {
    this.skipped++;
  }

  /** trainRun's onCheckpoint: writes it (atomically) and says so on stdout. */
  async write(c: RunCheckpoint, steps: number): Promise<void> {
    if (!this.identity || !this.modules) throw new Error('A checkpoint came before the run was bound and built');
    if (c.batchHash === undefined) throw new Error('The engine gave a checkpoint without its batch hash');
    await writeCheckpointFolder(
      this.dir,
      {
        step: c.step,
        steps,
        batchHash: c.batchHash,
        run: this.identity,
        progress: { skippedBatches: this.skipped, initialValLoss: this.initialValLoss },
        modules: this.modules,
      },
      c.state,
    );
    this.written = c.step;
    log(`checkpoint: step ${c.step} written to ${this.dir}`);
    out({ checkpoint: this.dir, steps: c.step });
  }

  /** A failed run's error, with where to continue from when a checkpoint was written (a lost GPU, a GPU error). */
  withResumeHint(err: unknown): unknown {
    // The newest checkpoint: this process's last one, else the one it resumed from.
    const latest =
      this.written !== null
        ? { step: this.written, dir: this.dir }
        : this.saved && { step: this.saved.manifest.step, dir: this.saved.dir };
    if (!latest || !(err instanceof Error)) return err;
    return new Error(
      `${err.message}\nThe checkpoint after step ${latest.step} is in ${latest.dir}: run the same command with ` +
        `--resume ${latest.dir} to continue from it.`,
    );
  }
}
