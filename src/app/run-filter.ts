/**
 * Which runs the run list shows and how it groups them: the archive view, filters by model, dataset and tag, and
 * groups by model or dataset. Pure: the Runs panel keeps the choices, these functions apply them.
 */
import type { RunList, RunRecord } from './run-record';
import { hasTag } from './run-tags';

/** The list's two views: the runs being worked with, and the archived ones. */
export const RUN_VIEWS = ['current', 'archived'] as const;
export type RunView = (typeof RUN_VIEWS)[number];

/** The model or dataset choice of a run that has not started: it has none yet (it takes whatever is loaded). */
export const NOT_STARTED = '__not-started__';

export interface RunFilter {
  view: RunView;
  /** A model name, NOT_STARTED, or null for any. */
  model: string | null;
  /** A dataset name, NOT_STARTED, or null for any. */
  dataset: string | null;
  /** A tag (matched without regard to case), or null for any. */
  tag: string | null;
}

export const NO_FILTER: RunFilter = { view: 'current', model: null, dataset: null, tag: null };

export const RUN_GROUPINGS = ['none', 'model', 'dataset'] as const;
export type RunGrouping = (typeof RUN_GROUPINGS)[number];

/** The model a run trained on, or NOT_STARTED. */
export const modelOf = (r: RunRecord): string => r.modelName ?? NOT_STARTED;
/** The dataset a run trained on, or NOT_STARTED. */
export const datasetOf = (r: RunRecord): string => r.datasetName ?? NOT_STARTED;

/** Whether the filter leaves any run of its view out. */
export function narrows(f: RunFilter): boolean {
  return f.model !== null || f.dataset !== null || f.tag !== null;
}

/** The ids of the view's runs (archived or not), in list order. */
export function viewIds(list: RunList, view: RunView): string[] {
  return list.order.filter((id) => list.runs[id].archived === (view === 'archived'));
}

/** The ids the filter keeps, in list order. */
export function filterRuns(list: RunList, f: RunFilter): string[] {
  return viewIds(list, f.view).filter((id) => {
    const r = list.runs[id];
    return (
      (f.model === null || modelOf(r) === f.model) &&
      (f.dataset === null || datasetOf(r) === f.dataset) &&
      (f.tag === null || hasTag(r.tags, f.tag))
    );
  });
}

export interface FilterChoice {
  value: string;
  label: string;
  /** Runs of the view with it. */
  count: number;
}

/** What each filter can pick among the view's runs: models, datasets and tags, in order of first appearance. */
export function filterChoices(
  list: RunList,
  view: RunView,
): { models: FilterChoice[]; datasets: FilterChoice[]; tags: FilterChoice[] } {
  const runs = viewIds(list, view).map((id) => list.runs[id]);
  return {
    models: counted(runs.map(modelOf)),
    datasets: counted(runs.map(datasetOf)),
    // Tags that differ only in case are one choice, spelled as first seen.
    tags: counted(
      runs.flatMap((r) => r.tags).map((t) => t.toLowerCase()),
      runs.flatMap((r) => r.tags),
    ),
  };
}

function counted(keys: string[], spellings: string[] = keys): FilterChoice[] {
  const byKey = new Map<string, FilterChoice>();
  keys.forEach((key, i) => {
    const choice = byKey.get(key);
    if (choice) choice.count++;
    else byKey.set(key, { value: spellings[i], label: choiceLabel(spellings[i]), count: 1 });
  });
  return [...byKey.values()];
}

/** A model or dataset choice as the list says it. */
export function choiceLabel(value: string): string {
  return value === NOT_STARTED ? 'Not started yet' : value;
}

/** A filter whose picks still exist in the view (a removed run's model leaves no filter that shows nothing). */
export function validFilter(list: RunList, f: RunFilter): RunFilter {
  const { models, datasets, tags } = filterChoices(list, f.view);
  const keep = (value: string | null, choices: FilterChoice[], same = (a: string, b: string) => a === b) =>
    value !== null && choices.some((c) => same(c.value, value)) ? value : null;
  return {
    view: f.view,
    model: keep(f.model, models),
    dataset: keep(f.dataset, datasets),
    tag: keep(f.tag, tags, (a, b) => a.toLowerCase() === b.toLowerCase()),
  };
}

export interface RunGroup {
  /** The model or dataset name (NOT_STARTED for drafts); '' when the list is not grouped. */
  key: string;
  label: string;
  ids: string[];
}

/** `ids` in groups by model or dataset, groups in order of their first run, runs in list order within each. */
export function groupRuns(list: RunList, ids: string[], by: RunGrouping): RunGroup[] {
  if (by === 'none') return [{ key: '', label: '', ids }];
  const keyOf = by === 'model' ? modelOf : datasetOf;
  const groups = new Map<string, RunGroup>();
  for (const id of ids) {
    const key = keyOf(list.runs[id]);
    const group = groups.get(key) ?? { key, label: choiceLabel(key), ids: [] };
    group.ids.push(id);
    groups.set(key, group);
  }
  return [...groups.values()];
}
