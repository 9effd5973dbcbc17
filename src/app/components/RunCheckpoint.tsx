import { canUseCheckpoint, resumeProblem, resumeStep } from '../checkpoints';
import { formatBytes } from '../format';
import { isActive, type RunRecord } from '../run-record';
import { useStudio } from '../store';
import { ReopenForRun } from './Reopen';

/** Why the run cannot resume with what is loaded now, or null (also when it has nothing to resume). */
function useResumeProblem(run: RunRecord): string | null {
  return useStudio((s) => (resumeStep(run) === null ? null : resumeProblem(run, s.model.card, s.dataset.preview)));
}

/** "Resume from step N" for a run cut off by a reload or a lost GPU; disabled until its model and dataset are loaded. */
export function ResumeButton({ run }: { run: RunRecord }) {
  const step = resumeStep(run);
  const problem = useResumeProblem(run);
  const resumeRun = useStudio((s) => s.resumeRun);
  if (step === null) return null;
  return (
    <button
      className="btn btn-primary btn-sm"
      data-testid="run-resume"
      disabled={problem !== null}
      onClick={() => void resumeRun(run.config.id)}
      title={problem ?? 'Continue with the same batches, learning rate schedule and optimizer state'}
    >
      Resume from step {step}
    </button>
  );
}

/** What the run's checkpoint allows: where it would resume, what to load first, or why there is none. */
export function CheckpointLine({ run }: { run: RunRecord }) {
  const problem = useResumeProblem(run);
  const c = run.checkpoint;
  if (!c || !(isActive(run) || canUseCheckpoint(run))) return null;
  if (!c.kept) {
    return (
      <div className="run-settings" data-testid="run-checkpoint">
        Too large to checkpoint ({formatBytes(c.bytes)} of weights and optimizer state): after a reload or a lost GPU
        this run starts over.
      </div>
    );
  }
  return (
    <>
      <div className="run-settings" data-testid="run-checkpoint" data-checkpoint-step={c.step}>
        Checkpoint: step {c.step} of {run.config.steps}
        {c.bytes > 0 && ` (${formatBytes(c.bytes)})`}
        {problem && <span data-testid="resume-problem"> · {problem}</span>}
      </div>
      {/* The model or dataset is missing: the files of the last session can come back with one click. */}
      {problem && resumeStep(run) !== null && <ReopenForRun run={run} />}
    </>
  );
}
