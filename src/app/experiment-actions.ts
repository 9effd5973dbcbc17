/**
 * The store's experiment actions: drafts (new, edit, import, copy), start, resume, stop, remove, exporting a
 * run's adapter, the report download and the demo's "Compare fairly". They send commands to the worker; the
 * events come back through experiment-reducer.ts. Written over the store's get and set (a zustand slice).
 */
import { resultsJson } from '../experiment/results-json';
import { experimentToJson, parseExperiment } from '../experiment/schema';
import type { Experiment } from '../experiment/types';
import { experimentCliCommand, reportZip } from '../experiment/report';
import type { Command } from '../worker/protocol';
import { formatChoice } from './checkpoints';
import { datasetLoadingProblem } from './dataset-loading';
import {
  canResumeExperiment,
  definitionJson,
  experimentAdapterId,
  experimentResumeProblem,
  isExperimentActive,
  liveResults,
  newExperimentRecord,
  patchedExperiments,
  resultKey,
  resumeDone,
  type ExperimentPatch,
  type ExperimentRecord,
  type LrMode,
} from './experiment-record';
import { invalidFieldsProblem } from './run-record';
import { demoExperiment, studioExperiment } from './experiment-presets';
import type { GetState, SetState } from './reducer';

export interface ExperimentActions {
  /** A new draft on what is loaded (LoRA, GoRA, GraLoRA, GeLoRA at one budget); returns its id. */
  newExperiment(): string;
  /** Edits a draft's definition (started experiments are not edited). */
  updateExperiment(id: string, update: (e: Experiment) => Experiment): void;
  setExperimentLrMode(id: string, mode: LrMode): void;
  setExperimentFieldValidity(id: string, field: string, valid: boolean): void;
  /**
   * A definition from a JSON file's text, as a new draft (or replacing draft `replace`). Returns the problems in
   * the studio's words (nothing is changed), or null.
   */
  importExperiment(text: string, replace?: string): string | null;
  startExperiment(id: string): void;
  /** Continues an interrupted, stopped or failed experiment, keeping its finished runs. */
  resumeExperiment(id: string): void;
  cancelExperiment(id: string): void;
  removeExperiment(id: string): void;
  /** A new draft with the same definition. */
  duplicateExperiment(id: string): void;
  /** Downloads a finished run's adapter (a PEFT folder zip), as a run's export. */
  exportExperimentRun(id: string, key: string): void;
  /** The report bundle (HTML, Markdown, runs CSV, experiment and results files, the CLI command) as a zip. */
  downloadExperimentReport(id: string): void;
  /** Loads the demo if needed, then starts its fair comparison (4 methods x 3 rates x 3 seeds at one budget). */
  compareFairly(): void;
}

export interface ExperimentActionDeps {
  send(cmd: Command): void;
  download(fileName: string, bytes: Uint8Array): void;
  /** Asks before a model switch cancels active runs (false: the user declined). */
  confirmModelSwitch(): boolean;
  /** Remembers that the demo is loaded (a reload brings it back). */
  rememberDemo(): void;
  /** Calls `then` once, at the first state change after which `condition` holds. */
  when(condition: () => boolean, then: () => void): void;
}

/**
 * Calls `then` once, at the first change of `store` after which `condition` holds. Fired at most once even though
 * `then` changes the state, which notifies this listener again before it returns.
 */
export function whenState(
  store: { subscribe(listener: () => void): () => void },
  condition: () => boolean,
  then: () => void,
): void {
  let fired = false;
  const unsubscribe = store.subscribe(() => {
    if (fired || !condition()) return;
    fired = true;
    unsubscribe();
    then();
  });
}

/** The report's base name: the experiment's name as a safe file name. */
export function reportFileName(name: string): string {
  const safe = name
    .trim()
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `${safe || 'experiment'}-report.zip`;
}

/** Why a draft cannot start while some of its fields do not parse (null when all do). */
export function invalidExperimentFields(fields: string[]): string | null {
  return invalidFieldsProblem(fields)?.replace(/this run\.$/, 'this experiment.') ?? null;
}

/** What a draft's definition lacks before it can start, in the form's words; null when it parses. */
export function definitionProblem(e: Experiment): string | null {
  try {
    parseExperiment(definitionJson(e), 'studio');
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Which rate mode a definition reads as: shared when every configuration has the experiment's own grid. */
export function lrModeOf(e: Experiment): LrMode {
  const same = (a: number[] | undefined) => !!a && a.length === e.lrs.length && a.every((x, i) => x === e.lrs[i]);
  return e.lrs.length > 0 && e.methods.every((m) => same(m.lrs)) ? 'shared' : 'per-config';
}

export function createExperimentActions(get: GetState, set: SetState, deps: ExperimentActionDeps): ExperimentActions {
  const patch = (id: string, p: ExperimentPatch) => set((s) => patchedExperiments(s.experiments, id, p));

  const addDraft = (experiment: Experiment, lrMode: LrMode = lrModeOf(experiment)): string => {
    const id = crypto.randomUUID();
    const unique = { ...experiment, name: uniqueName(experiment.name) };
    set((s) => ({
      experiments: { ...s.experiments, [id]: newExperimentRecord(id, unique, lrMode) },
      experimentOrder: [...s.experimentOrder, id],
    }));
    return id;
  };

  function uniqueName(name: string): string {
    const taken = new Set(Object.values(get().experiments).map((r) => r.experiment.name));
    const stem = name.replace(/ \(\d+\)$/, '');
    if (!taken.has(stem)) return stem;
    let i = 2;
    while (taken.has(`${stem} (${i})`)) i++;
    return `${stem} (${i})`;
  }

  /** Why experiment `r` cannot start with what is loaded (in the form's words), or null. */
  function startProblem(r: ExperimentRecord): string | null {
    const s = get();
    if (!s.model.card) return 'Load a model first (or press "Try the demo").';
    const loading = datasetLoadingProblem(s.dataset.loading);
    if (loading) return loading;
    if (!s.dataset.preview) return 'Load a dataset first.';
    if (!s.dataset.preview.format) return "Choose the dataset's format and map its columns first.";
    return invalidExperimentFields(r.invalidFields) ?? definitionProblem(r.experiment);
  }

  /** Marks the record queued on what is loaded now and sends it to the worker. */
  function launch(r: ExperimentRecord, resume: boolean) {
    const card = get().model.card!;
    const preview = get().dataset.preview!;
    const done = resume ? resumeDone(r) : [];
    // The definition names what it ran on (the report and the exported file say so).
    const experiment = resume ? r.experiment : { ...r.experiment, model: card.name, data: preview.name };
    patch(r.id, {
      experiment,
      status: 'queued',
      stage: 'Waiting for the GPU',
      message: null,
      startedAt: resume ? r.startedAt : null,
      finishedAt: null,
      modelKey: card.key,
      modelName: card.name,
      datasetName: preview.name,
      datasetDigest: preview.digest,
      datasetFormat: formatChoice(preview),
      current: null,
      final: null,
      ...(resume ? { results: done } : { plan: null, results: [], runMs: [], adapters: [] }),
    });
    deps.send({
      type: 'startExperiment',
      id: r.id,
      experiment: definitionJson(experiment),
      ...(done.length ? { done } : {}),
    });
  }

  const actions: ExperimentActions = {
    newExperiment() {
      return addDraft(studioExperiment(get().model.card, get().dataset.preview), 'per-config');
    },

    updateExperiment(id, update) {
      patch(id, (r) => (r.status === 'draft' ? { experiment: update(r.experiment), message: null } : {}));
    },

    setExperimentLrMode(id, mode) {
      patch(id, (r) => {
        if (r.status !== 'draft') return {};
        // Shared: every configuration takes the first configuration's grid until the user edits it.
        const e = r.experiment;
        const shared = e.lrs.length ? e.lrs : (e.methods[0]?.lrs ?? []);
        const experiment =
          mode === 'shared' ? { ...e, lrs: shared, methods: e.methods.map((m) => ({ ...m, lrs: shared })) } : e;
        return { lrMode: mode, experiment, message: null };
      });
    },

    setExperimentFieldValidity(id, field, valid) {
      patch(id, (r) => {
        const has = r.invalidFields.includes(field);
        if (has === !valid) return {};
        return {
          invalidFields: valid ? r.invalidFields.filter((f) => f !== field) : [...r.invalidFields, field],
          message: null,
        };
      });
    },

    importExperiment(text, replace) {
      let experiment: Experiment;
      try {
        experiment = parseExperiment(JSON.parse(text), 'studio');
      } catch (err) {
        const message = (err as Error).message;
        return err instanceof SyntaxError ? `The file is not valid JSON: ${message}` : message;
      }
      const old = replace ? get().experiments[replace] : undefined;
      if (old?.status === 'draft') {
        patch(old.id, { experiment, lrMode: lrModeOf(experiment), message: null, invalidFields: [] });
      } else addDraft(experiment);
      return null;
    },

    startExperiment(id) {
      const r = get().experiments[id];
      if (r?.status !== 'draft') return;
      const problem = startProblem(r);
      if (problem) return patch(id, { message: problem });
      launch(r, false);
    },

    resumeExperiment(id) {
      const r = get().experiments[id];
      if (!r || !canResumeExperiment(r)) return;
      const problem = experimentResumeProblem(r, get().model.card, get().dataset.preview) ?? startProblem(r);
      if (problem) return patch(id, { message: problem });
      launch(r, true);
    },

    cancelExperiment(id) {
      deps.send({ type: 'cancelExperiment', id });
    },

    removeExperiment(id) {
      const r = get().experiments[id];
      if (!r) return;
      if (isExperimentActive(r)) deps.send({ type: 'cancelExperiment', id });
      // The worker forgets the runs' adapters; persistence deletes them from IndexedDB with the record.
      for (const key of r.adapters) deps.send({ type: 'deleteRun', id: experimentAdapterId(id, key) });
      set((s) => {
        const experiments = { ...s.experiments };
        delete experiments[id];
        return { experiments, experimentOrder: s.experimentOrder.filter((x) => x !== id) };
      });
    },

    duplicateExperiment(id) {
      const r = get().experiments[id];
      if (r) addDraft(r.experiment, r.lrMode);
    },

    exportExperimentRun(id, key) {
      const r = get().experiments[id];
      const result = r?.results.find((x) => resultKey(x) === key);
      if (!r || !result || !r.adapters.includes(key)) return;
      const adapterId = experimentAdapterId(id, key);
      set((s) => ({ exporting: { ...s.exporting, [adapterId]: true } }));
      deps.send({
        type: 'exportRun',
        id: adapterId,
        name: `${r.experiment.name}-${result.name}-lr${result.lr}-seed${result.seed}`,
      });
    },

    downloadExperimentReport(id) {
      const r = get().experiments[id];
      const results = r && liveResults(r);
      if (!r || !results) return;
      try {
        const fileName = reportFileName(r.experiment.name);
        const configFile = `${fileName.replace(/-report\.zip$/, '')}.json`;
        const bytes = reportZip(results, {
          command: experimentCliCommand(configFile, fileName.replace(/-report\.zip$/, '')),
          // What ran, ranks as matched (the CLI reruns it as is), and the results in the CLI's snake_case contract.
          experimentJson: `${JSON.stringify(experimentToJson(results.experiment), null, 2)}\n`,
          resultsJson: `${JSON.stringify(resultsJson(results), null, 2)}\n`,
        });
        deps.download(fileName, bytes);
      } catch (err) {
        get().toast('error', `The report could not be written: ${(err as Error).message}`);
      }
    },

    compareFairly() {
      const ready = () => {
        const s = get();
        return !!(
          s.model.card?.demo &&
          s.dataset.preview?.demo &&
          s.dataset.preview.tokenized &&
          s.dataset.preview.format
        );
      };
      const go = () => {
        const s = get();
        const id = addDraft(demoExperiment(s.model.card!.name, s.dataset.preview!.name), 'shared');
        actions.startExperiment(id);
      };
      if (ready()) return go();
      const s = get();
      if (!s.model.card?.demo) {
        if (!deps.confirmModelSwitch()) return;
        deps.send({ type: 'loadModel', source: { kind: 'demo' } });
      }
      if (!s.dataset.preview?.demo) deps.send({ type: 'loadDataset', source: { kind: 'demo' } });
      deps.rememberDemo();
      deps.when(ready, go);
    },
  };
  return actions;
}
