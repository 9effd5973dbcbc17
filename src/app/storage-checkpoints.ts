/**
 * The checkpoints the studio stores, for the Storage panel: one per run that can resume (cut off by a reload, a
 * closed tab or a lost GPU) and one per active run, with its size; and deleting those of stopped runs to make
 * room. A deleted checkpoint is a record change ({ checkpoint: null }): persistence deletes the stored state in
 * the same transaction as the record saying so, and the other tabs hear of it like any save.
 */
import { isActive, type RunRecord } from './run-record';
import { useStudio } from './store';

export interface StoredCheckpointRow {
  id: string;
  name: string;
  status: RunRecord['status'];
  step: number;
  steps: number;
  bytes: number;
  /** False while the run is queued or training (here or in another tab): it writes the next one. */
  deletable: boolean;
}

/** Every run with a stored checkpoint, in the run list's order. */
export function storedCheckpoints(runs: Record<string, RunRecord>, order: string[]): StoredCheckpointRow[] {
  return order.flatMap((id) => {
    const r = runs[id];
    if (!r?.checkpoint?.kept) return [];
    const { step, bytes } = r.checkpoint;
    return [{ id, name: r.config.name, status: r.status, step, steps: r.config.steps, bytes, deletable: !isActive(r) }];
  });
}

/** `runs` without the checkpoints of `ids` (active runs keep theirs), each saying it can no longer resume. */
export function withoutCheckpoints(runs: Record<string, RunRecord>, ids: string[]): Record<string, RunRecord> {
  const next = { ...runs };
  for (const id of ids) {
    const r = runs[id];
    if (!r?.checkpoint?.kept || isActive(r)) continue;
    const why = `Its checkpoint (step ${r.checkpoint.step}) was deleted to free storage, so it cannot resume; "Run again" starts it over.`;
    next[id] = { ...r, checkpoint: null, message: `${r.message ?? ''} ${why}`.trim() };
  }
  return next;
}

/** Deletes the checkpoints of `ids` (stopped runs only). */
export function deleteStoredCheckpoints(ids: string[]): void {
  useStudio.setState((s) => ({ runs: withoutCheckpoints(s.runs, ids) }));
}
