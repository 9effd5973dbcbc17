/**
 * Which runs the studio's views work with once some are archived: the charts, the comparison, the analysis and
 * the playground leave archived runs out (archiving declutters); the export panel keeps them, apart. A run's
 * colour stays its place in the whole list (archived runs included), so archiving one recolours no other. Pure.
 */
import { runColor } from './palette';
import { generationRuns, type RunList, type RunRecord } from './run-record';

/** A run as a view draws it: its record and its colour. */
export interface ColoredRun {
  run: RunRecord;
  color: string;
}

/** The runs that are not archived, by id (records are the same objects). */
export function unarchivedRuns(runs: Record<string, RunRecord>): Record<string, RunRecord> {
  const kept: Record<string, RunRecord> = {};
  for (const [id, r] of Object.entries(runs)) if (!r.archived) kept[id] = r;
  return kept;
}

/** The runs that are not archived, in list order, each with its colour from its place in the whole list. */
export function visibleRuns(list: RunList): ColoredRun[] {
  return list.order.flatMap((id, index) => {
    const run = list.runs[id];
    return run && !run.archived ? [{ run, color: runColor(index) }] : [];
  });
}

/** How many archived runs `has` holds for: what a view says it leaves out. */
export function archivedCount(list: RunList, has: (r: RunRecord) => boolean = () => true): number {
  return list.order.filter((id) => list.runs[id]?.archived && has(list.runs[id])).length;
}

/** The runs the playground offers and generates with: those that can generate with the loaded model, unarchived. */
export function playgroundRuns(s: Parameters<typeof generationRuns>[0]): string[] {
  return generationRuns(s).filter((id) => !s.runs[id].archived);
}

/** The runs with something to export (weights), the unarchived ones first and the archived apart, in list order. */
export function exportSections(list: RunList): { current: string[]; archived: string[] } {
  const exportable = list.order.filter((id) => list.runs[id]?.weights != null);
  return {
    current: exportable.filter((id) => !list.runs[id].archived),
    archived: exportable.filter((id) => list.runs[id].archived),
  };
}
