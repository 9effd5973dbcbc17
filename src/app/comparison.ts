/**
 * The comparison table's logic, pure: which runs it lists, their groups (one per model and dataset: losses on
 * different data or models are not comparable), and each group's "best" run, or why it has none.
 */
import { BUDGET_TOLERANCE, withinBudget } from '../experiment/budget';
import type { RunRecord } from './run-record';

/**
 * Single runs differ by about this much (relative) in final validation loss from the seed alone: a smaller lead
 * is a tie, not a win.
 */
export const NOISE_MARGIN = 0.01;
export { BUDGET_TOLERANCE };

export const BEST_RULE =
  `"best" marks the lowest final validation loss of a model and dataset, only when it is at least ` +
  `${NOISE_MARGIN * 100}% lower than every other run's there (less is within the noise of a single run) and ` +
  `every run it beats trains within ±${BUDGET_TOLERANCE * 100}% of its trainable parameters (a bigger budget ` +
  `can buy the lead). Failed runs and runs without a validation loss are left out.`;

export interface ComparisonRow {
  run: RunRecord;
  /** Its position in the run list: its colour. */
  index: number;
}

export type BestVerdict =
  /** Fewer than two runs of the group have a validation loss: nothing to compare. */
  | { kind: 'none' }
  | { kind: 'best'; id: string }
  /** `id` has the lowest loss, less than NOISE_MARGIN below `other`'s. */
  | { kind: 'tie'; id: string; other: string; lead: number }
  /** `id` has the lowest loss, but `other`, a run it beats, trains `ratio` times as many parameters. */
  | { kind: 'budget-differs'; id: string; other: string; ratio: number };

export interface ComparisonGroup {
  key: string;
  model: string;
  dataset: string;
  rows: ComparisonRow[];
  verdict: BestVerdict;
}

export const isFailed = (run: RunRecord) => run.status === 'failed';

/** Finished runs with results, and failed runs (with their message instead). */
export function isListed(run: RunRecord): boolean {
  return run.summary !== null || isFailed(run);
}

/** The final validation loss a run competes with: none for a failed run (NaN, or the last good adapter's). */
export function rankedLoss(run: RunRecord): number | null {
  if (isFailed(run)) return null;
  const loss = run.summary?.finalValLoss;
  return loss != null && Number.isFinite(loss) ? loss : null;
}

export function trainableParameters(run: RunRecord): number | null {
  return run.analysis?.trainableParameters ?? run.summary?.trainableParams ?? null;
}

/** `params` against `other`'s as a ratio; NaN when either is unknown. */
export function budgetRatio(params: number | null, other: number | null): number {
  return params !== null && other !== null && params > 0 && other > 0 ? params / other : Number.NaN;
}

/** Within ±BUDGET_TOLERANCE; an unknown count is never comparable. */
export function sameBudget(ratio: number): boolean {
  return withinBudget(ratio);
}

/** The best run of one group's rows, or why there is none (see BEST_RULE). */
export function bestOf(rows: readonly ComparisonRow[]): BestVerdict {
  const ranked = rows
    .map(({ run }) => ({ id: run.config.id, loss: rankedLoss(run), params: trainableParameters(run) }))
    .filter((r): r is { id: string; loss: number; params: number | null } => r.loss !== null)
    .sort((a, b) => a.loss - b.loss);
  if (ranked.length < 2) return { kind: 'none' };
  const [lowest, ...beaten] = ranked;
  for (const other of beaten) {
    const ratio = budgetRatio(lowest.params, other.params);
    if (!sameBudget(ratio)) return { kind: 'budget-differs', id: lowest.id, other: other.id, ratio };
  }
  const runnerUp = beaten[0];
  const lead = (runnerUp.loss - lowest.loss) / runnerUp.loss;
  // `!(>=)`: a lead of NaN (two losses of 0) is no lead either.
  if (!(lead >= NOISE_MARGIN)) return { kind: 'tie', id: lowest.id, other: runnerUp.id, lead };
  return { kind: 'best', id: lowest.id };
}

/** The groups of the listed runs, in the order of their first run; rows in run order. */
export function comparisonGroups(runs: Record<string, RunRecord>, order: readonly string[]): ComparisonGroup[] {
  const groups = new Map<string, ComparisonGroup>();
  order.forEach((id, index) => {
    const run = runs[id];
    if (!run || !isListed(run)) return;
    const key = groupKey(run);
    let group = groups.get(key);
    if (!group) {
      group = {
        key,
        model: run.modelName ?? 'Unknown model',
        dataset: run.datasetName ?? 'unknown dataset',
        rows: [],
        verdict: { kind: 'none' },
      };
      groups.set(key, group);
    }
    group.rows.push({ run, index });
  });
  const list = [...groups.values()];
  for (const g of list) g.verdict = bestOf(g.rows);
  return distinctHeadings(list);
}

/** The model's identity (its name and shapes) and the dataset's (its size and SHA-256), names where older records lack them. */
function groupKey(run: RunRecord): string {
  return `${run.modelKey ?? run.modelName ?? ''}\n${run.datasetDigest ?? run.datasetName ?? ''}`;
}

/** Two files of one name (or two models of one name) get headings that tell them apart. */
function distinctHeadings(groups: ComparisonGroup[]): ComparisonGroup[] {
  const heading = (g: ComparisonGroup) => `${g.model}\n${g.dataset}`;
  return groups.map((g) => {
    const same = groups.filter((x) => heading(x) === heading(g));
    if (same.length === 1) return g;
    const digests = same.map((x) => x.rows[0].run.datasetDigest);
    const digest = g.rows[0].run.datasetDigest;
    // Different files: their hashes say which; otherwise the models differ (same name, other shapes).
    if (digest && new Set(digests).size === same.length)
      return { ...g, dataset: `${g.dataset} (sha256 ${shortDigest(digest)}…)` };
    return { ...g, model: `${g.model} (#${same.indexOf(g) + 1})` };
  });
}

/** "1234:sha256:ab12…" -> "ab12cd34". */
function shortDigest(digest: string): string {
  return (digest.split(':').pop() ?? digest).slice(0, 8);
}

/** What the table says beside the lowest loss when it is not "best", and why (a title). */
export interface VerdictNote {
  /** The run the note goes beside: the one with the lowest loss. */
  id: string;
  text: string;
  why: string;
}

export function verdictNote(verdict: BestVerdict, nameOf: (id: string) => string): VerdictNote | null {
  switch (verdict.kind) {
    case 'none':
    case 'best':
      return null;
    case 'tie':
      return {
        id: verdict.id,
        text: 'no clear winner',
        why: `${nameOf(verdict.id)} is ${(verdict.lead * 100).toFixed(2)}% below ${nameOf(verdict.other)}: less than the ${NOISE_MARGIN * 100}% a single run varies by.`,
      };
    case 'budget-differs':
      return {
        id: verdict.id,
        text: 'not comparable: budget differs',
        why: Number.isFinite(verdict.ratio)
          ? `${nameOf(verdict.id)} trains ${(verdict.ratio * 100).toFixed(0)}% of the trainable parameters of ${nameOf(verdict.other)} (more than ±${BUDGET_TOLERANCE * 100}% apart): its lower loss may come from the budget, not the method.`
          : `The trainable parameters of ${nameOf(verdict.id)} or ${nameOf(verdict.other)} are unknown: their losses are not compared.`,
      };
  }
}

/** A message cut to `max` characters on one line (the whole text goes in a title). */
export function truncateMessage(text: string, max = 80): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1).trimEnd()}…`;
}
