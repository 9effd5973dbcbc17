/**
 * What the charts, comparison, analysis and playground work with once runs are archived (visible-runs.ts): archived
 * runs left out, colours kept from each run's place in the whole list, the export panel's two sections.
 */
import { describe, expect, test } from 'vitest';
import { comparisonGroups } from '../src/app/comparison';
import { runColor } from '../src/app/palette';
import type { RunList, RunRecord } from '../src/app/run-record';
import { archivedCount, exportSections, playgroundRuns, unarchivedRuns, visibleRuns } from '../src/app/visible-runs';
import { record } from './app/fixtures';
import { trained } from './helpers/trained-runs';

function list(...records: RunRecord[]): RunList {
  return { runs: Object.fromEntries(records.map((r) => [r.config.id, r])), order: records.map((r) => r.config.id) };
}

// b is archived, and the best of them: it must neither show nor win.
const runs = list(
  trained('a', 2.0),
  trained('b', 1.0, { archived: true }),
  trained('c', 2.5),
  record('d'),
  trained('e', 3.0, { modelKey: 'gpt2:gpt2', modelName: 'gpt2' }),
);

describe('visibleRuns', () => {
  test('leaves archived runs out; the others keep the colour of their place in the whole list', () => {
    expect(visibleRuns(runs).map(({ run, color }) => [run.config.id, color])).toEqual([
      ['a', runColor(0)],
      ['c', runColor(2)],
      ['d', runColor(3)],
      ['e', runColor(4)],
    ]);
    expect(Object.keys(unarchivedRuns(runs.runs))).toEqual(['a', 'c', 'd', 'e']);
    expect(unarchivedRuns(runs.runs).a).toBe(runs.runs.a);
  });

  test('counts the archived runs a view leaves out', () => {
    expect(archivedCount(runs)).toBe(1);
    expect(archivedCount(runs, (r) => r.status === 'draft')).toBe(0);
  });
});

describe('the comparison over unarchived runs', () => {
  test('an archived run has no row and no say in "best"; rows keep their colour index', () => {
    const groups = comparisonGroups(unarchivedRuns(runs.runs), runs.order);
    const stories = groups.find((g) => g.model === 'stories260K')!;
    expect(stories.rows.map((r) => [r.run.config.id, r.index])).toEqual([
      ['a', 0],
      ['c', 2],
    ]);
    expect(stories.verdict).toMatchObject({ kind: 'best', id: 'a' });
    // Without the archive filter, b would win.
    const all = comparisonGroups(runs.runs, runs.order).find((g) => g.model === 'stories260K')!;
    expect(all.verdict).toMatchObject({ kind: 'best', id: 'b' });
  });
});

describe('playgroundRuns', () => {
  test('the runs that can generate with the loaded model, archived ones left out', () => {
    const card = { key: 'stories:llama' } as never;
    expect(playgroundRuns({ ...runs, model: { card } })).toEqual(['a', 'c']);
    expect(playgroundRuns({ ...runs, model: { card: null } })).toEqual([]);
  });
});

describe('exportSections', () => {
  test('runs with weights, the unarchived first, the archived apart, in list order', () => {
    expect(exportSections(runs)).toEqual({ current: ['a', 'c', 'e'], archived: ['b'] });
  });
});
