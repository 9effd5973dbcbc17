/** The run list's views, filters and groups (run-filter.ts), and tags as the card edits them (run-tags.ts). */
import { describe, expect, test } from 'vitest';
import {
  filterChoices,
  filterRuns,
  groupRuns,
  narrows,
  NO_FILTER,
  NOT_STARTED,
  validFilter,
} from '../src/app/run-filter';
import type { RunList, RunRecord } from '../src/app/run-record';
import { cleanTags, hasTag, parseTags, tagsText } from '../src/app/run-tags';
import { record } from './app/fixtures';

const trained = (id: string, model: string, dataset: string, patch: Partial<RunRecord> = {}) =>
  record(id, { status: 'done', modelName: model, datasetName: dataset, ...patch });

function list(...records: RunRecord[]): RunList {
  return { runs: Object.fromEntries(records.map((r) => [r.config.id, r])), order: records.map((r) => r.config.id) };
}

const runs = list(
  trained('a', 'stories260K', 'tinyshakespeare.txt', { tags: ['baseline'] }),
  trained('b', 'Qwen3-0.6B', 'alpaca.csv', { tags: ['Sweep', 'baseline'] }),
  trained('c', 'stories260K', 'alpaca.csv', { archived: true, tags: ['old'] }),
  record('d'), // a draft: no model or dataset yet
  trained('e', 'Qwen3-0.6B', 'tinyshakespeare.txt', { tags: ['sweep'] }),
);

describe('filterRuns', () => {
  test('the current view leaves archived runs out; the archived view shows only them', () => {
    expect(filterRuns(runs, NO_FILTER)).toEqual(['a', 'b', 'd', 'e']);
    expect(filterRuns(runs, { ...NO_FILTER, view: 'archived' })).toEqual(['c']);
  });

  test('by model, by dataset, by tag (any case), and together; drafts are "not started"', () => {
    expect(filterRuns(runs, { ...NO_FILTER, model: 'stories260K' })).toEqual(['a']);
    expect(filterRuns(runs, { ...NO_FILTER, model: NOT_STARTED })).toEqual(['d']);
    expect(filterRuns(runs, { ...NO_FILTER, dataset: 'tinyshakespeare.txt' })).toEqual(['a', 'e']);
    expect(filterRuns(runs, { ...NO_FILTER, tag: 'SWEEP' })).toEqual(['b', 'e']);
    expect(filterRuns(runs, { ...NO_FILTER, model: 'Qwen3-0.6B', dataset: 'alpaca.csv', tag: 'sweep' })).toEqual(['b']);
    expect(filterRuns(runs, { ...NO_FILTER, view: 'archived', model: 'stories260K' })).toEqual(['c']);
    expect(narrows(NO_FILTER)).toBe(false);
    expect(narrows({ ...NO_FILTER, tag: 'x' })).toBe(true);
  });

  test("the choices are the view's models, datasets and tags, counted, tags merged without regard to case", () => {
    const choices = filterChoices(runs, 'current');
    expect(choices.models).toEqual([
      { value: 'stories260K', label: 'stories260K', count: 1 },
      { value: 'Qwen3-0.6B', label: 'Qwen3-0.6B', count: 2 },
      { value: NOT_STARTED, label: 'Not started yet', count: 1 },
    ]);
    expect(choices.datasets.map((c) => [c.value, c.count])).toEqual([
      ['tinyshakespeare.txt', 2],
      ['alpaca.csv', 1],
      [NOT_STARTED, 1],
    ]);
    expect(choices.tags).toEqual([
      { value: 'baseline', label: 'baseline', count: 2 },
      { value: 'Sweep', label: 'Sweep', count: 2 },
    ]);
    expect(filterChoices(runs, 'archived').tags.map((t) => t.value)).toEqual(['old']);
  });

  test('a pick no run of the view has any more is dropped (the list never filters to nothing by itself)', () => {
    expect(validFilter(runs, { ...NO_FILTER, model: 'gone', tag: 'sweep' })).toEqual({ ...NO_FILTER, tag: 'sweep' });
    expect(validFilter(runs, { ...NO_FILTER, view: 'archived', tag: 'baseline' })).toEqual({
      ...NO_FILTER,
      view: 'archived',
    });
  });
});

describe('groupRuns', () => {
  const ids = filterRuns(runs, NO_FILTER);
  test('by model or dataset: groups in order of their first run, runs in list order', () => {
    expect(groupRuns(runs, ids, 'model')).toEqual([
      { key: 'stories260K', label: 'stories260K', ids: ['a'] },
      { key: 'Qwen3-0.6B', label: 'Qwen3-0.6B', ids: ['b', 'e'] },
      { key: NOT_STARTED, label: 'Not started yet', ids: ['d'] },
    ]);
    expect(groupRuns(runs, ids, 'dataset').map((g) => [g.label, g.ids])).toEqual([
      ['tinyshakespeare.txt', ['a', 'e']],
      ['alpaca.csv', ['b']],
      ['Not started yet', ['d']],
    ]);
  });

  test('no grouping: one unnamed group', () => {
    expect(groupRuns(runs, ids, 'none')).toEqual([{ key: '', label: '', ids }]);
  });
});

describe('tags', () => {
  test('a typed line: trimmed, inner spaces collapsed, empty and duplicate (any case) tags dropped', () => {
    expect(parseTags(' baseline, tiny ,, Baseline,  lr   sweep ,')).toEqual(['baseline', 'tiny', 'lr sweep']);
    expect(parseTags('')).toEqual([]);
    expect(parseTags(tagsText(['a b', 'c']))).toEqual(['a b', 'c']);
  });

  test('a tag is cut at 40 characters; matching ignores case', () => {
    expect(cleanTags(['x'.repeat(60)])).toEqual(['x'.repeat(40)]);
    expect(hasTag(['Sweep'], 'sweep')).toBe(true);
    expect(hasTag(['Sweep'], 'swee')).toBe(false);
  });
});
