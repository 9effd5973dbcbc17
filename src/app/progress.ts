/**
 * What a run card says about progress, as pure functions: the phase text that matches the run's status, the time
 * left for the queue (every queued run, with its validation passes), and the supervised tokens a run trains on.
 * No state, no DOM.
 */
import { DEFAULT_TRUNCATION } from '../data/truncation';
import type { DataFit, RunConfig } from '../worker/protocol';
import { gradAccumOf } from './methods';
import { isActive, type RunRecord } from './run-record';

// ------------------------------------------------------------------------------------------------ phase

export interface RunPhase {
  /** 'waiting' for the GPU; 'preparing' before the first step (tokenizing, the method's phase, compiling); 'training'. */
  kind: 'waiting' | 'preparing' | 'training';
  /** The line under the bar; null when there is nothing to add. */
  text: string | null;
}

/** The stage text consistent with the status: a training run never shows a preparation stage. */
export function runPhase(run: RunRecord): RunPhase | null {
  switch (run.status) {
    case 'queued':
      return { kind: 'waiting', text: run.stage ?? 'Waiting for the GPU' };
    case 'preparing':
      return { kind: 'preparing', text: run.prepare?.phase ?? run.stage ?? 'Preparing' };
    case 'training':
      // The worker sends 'Training' with the status, so the preparation's last stage never shows here.
      return { kind: 'training', text: run.stage ?? run.progress?.stage ?? 'Training' };
    default:
      return null;
  }
}

// ------------------------------------------------------------------------------------------------ timing

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** Token positions one optimizer step computes (rows x length): what the time of a step scales with. */
export function stepPositions(c: RunConfig): number {
  return c.batch * gradAccumOf(c) * c.seq;
}

/**
 * Milliseconds per step from the run's last steps: the median of the gaps between consecutive steps, so the
 * gaps that hold an evaluation or a checkpoint do not count; null before two steps.
 */
export function stepMs(run: RunRecord): number | null {
  const recent = run.points.slice(-12);
  const gaps: number[] = [];
  for (let i = 1; i < recent.length; i++) {
    if (recent[i].step === recent[i - 1].step + 1) gaps.push(recent[i].elapsedMs - recent[i - 1].elapsedMs);
  }
  const m = median(gaps.filter((g) => g > 0));
  return m ?? null;
}

/** Validation batches of one evaluation: the held-out examples (at most half the data) in batches of `batch`. */
export function validationBatches(c: RunConfig, data: DataFit | null): number {
  const available = data ? Math.floor(data.examples / 2) : c.valExamples;
  return Math.ceil(Math.min(c.valExamples, available) / c.batch);
}

/**
 * One validation pass: measured where an evaluation sat between two steps (the gap beyond a step's time), else
 * estimated as a forward pass per validation batch, a third of a training micro-batch (forward + backward).
 */
export function evalMs(run: RunRecord, perStep: number): number {
  const at = new Map(run.points.map((p) => [p.step, p.elapsedMs]));
  const measured: number[] = [];
  for (const e of run.evals) {
    const before = at.get(e.step);
    const after = at.get(e.step + 1);
    if (e.step > 0 && before !== undefined && after !== undefined && after - before > perStep)
      measured.push(after - before - perStep);
  }
  return median(measured) ?? (validationBatches(run.config, run.data) * perStep) / gradAccumOf(run.config) / 3;
}

/** Evaluations still ahead of a run after `done` steps: every evalEvery steps, and the final one. */
export function evalsAhead(c: RunConfig, done: number, fromStart: boolean): number {
  if (c.valExamples <= 0) return 0;
  let n = 1; // the final validation pass
  if (fromStart) n++; // the starting one, before step 0
  if (c.evalEvery > 0) for (let s = Math.max(done, 1); s < c.steps; s++) if (s % c.evalEvery === 0) n++;
  return n;
}

export interface QueueEntry {
  id: string;
  /** Time this run still needs, with its validation passes; null when no pace is known yet. */
  remainingMs: number | null;
  /** Time before it starts (0 for the run on the GPU). */
  startsInMs: number | null;
}

export interface QueueEta {
  entries: Map<string, QueueEntry>;
  /** Time until every queued run is done; null when some run's pace is unknown. */
  totalMs: number | null;
}

/** Milliseconds per token position on `modelKey`: the run on the GPU, else the latest run that trained there. */
function paceOn(runs: RunRecord[], modelKey: string | null): number | null {
  const candidates = runs
    .filter((r) => r.modelKey === modelKey && r.points.length >= 2)
    .sort((a, b) => Number(isActive(b)) - Number(isActive(a)) || (b.startedAt ?? 0) - (a.startedAt ?? 0));
  for (const r of candidates) {
    const ms = stepMs(r);
    if (ms !== null) return ms / stepPositions(r.config);
  }
  return null;
}

/**
 * The GPU's queue of runs: the one preparing or training first, then the queued ones in the studio's order (the
 * order they were started in). Runs that have not trained yet are timed at the pace of the run on the same model.
 * `experimentMs`: what is left of an experiment holding the GPU now (the runs wait for it; null: unknown).
 */
export function queueEta(runs: Record<string, RunRecord>, order: string[], experimentMs: number | null = 0): QueueEta {
  const all = order.map((id) => runs[id]).filter(Boolean);
  const running = all.filter((r) => r.status === 'preparing' || r.status === 'training');
  const queued = all.filter((r) => r.status === 'queued');
  const entries = new Map<string, QueueEntry>();
  // One job on the GPU at a time: a run preparing or training means no experiment is running.
  let clock: number | null = running.length ? 0 : experimentMs;
  for (const r of [...running, ...queued]) {
    const remaining = remainingMs(r, paceOn(all, r.modelKey));
    entries.set(r.config.id, {
      id: r.config.id,
      remainingMs: remaining,
      startsInMs: r.status === 'queued' ? clock : 0,
    });
    clock = clock === null || remaining === null ? null : clock + remaining;
  }
  return { entries, totalMs: clock };
}

/** Time left for one run: its steps left at its pace (or the reference pace) and its evaluations ahead. */
export function remainingMs(run: RunRecord, pacePerPosition: number | null): number | null {
  const c = run.config;
  const own = run.status === 'training' ? stepMs(run) : null;
  const perStep = own ?? (pacePerPosition === null ? null : pacePerPosition * stepPositions(c));
  if (perStep === null) return null;
  const done = run.status === 'training' ? (run.progress?.step ?? 0) : (run.checkpoint?.step ?? 0);
  const stepsLeft = Math.max(0, c.steps - done);
  // A resumed run skips the starting evaluation (it was measured before the interruption).
  const fromStart = run.status !== 'training' && done === 0;
  return stepsLeft * perStep + evalsAhead(c, done, fromStart) * evalMs(run, perStep);
}

// ------------------------------------------------------------------------------------------------ tokens

export interface TrainTokens {
  /** Token positions the run computes (rows x length, padding included). */
  positions: number;
  /** Supervised tokens (what the loss counts), estimated from the dataset at the run's length; null when unknown. */
  supervised: number | null;
}

/** Plain text is packed into full rows (worker: packing when the format is text); `choice` is checkpoints.ts's formatChoice. */
export function isPackedFormat(choice: string | null): boolean {
  if (!choice) return false;
  try {
    return (JSON.parse(choice) as { format?: unknown }).format === 'text';
  } catch {
    return false;
  }
}

/**
 * What a run trains on: steps x rows of `seq` positions, of which the supervised share comes from the dataset
 * at the run's length and truncation. Padded rows hold one example each; packed rows (plain text) are full.
 */
export function trainTokens(c: RunConfig, fit: DataFit | null, packed: boolean): TrainTokens {
  const rows = c.steps * c.batch * gradAccumOf(c);
  const positions = rows * c.seq;
  const usable =
    fit &&
    !fit.problem &&
    fit.seq === c.seq &&
    fit.truncation === (c.truncation ?? DEFAULT_TRUNCATION) &&
    fit.examples > 0 &&
    fit.supervisedTokens !== undefined &&
    fit.tokens !== undefined &&
    fit.tokens > 0;
  if (!usable) return { positions, supervised: null };
  const perRow = packed
    ? (c.seq * fit.supervisedTokens!) / fit.tokens!
    : Math.min(c.seq, fit.supervisedTokens! / fit.examples);
  return { positions, supervised: Math.round(rows * perRow) };
}
