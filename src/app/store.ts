/**
 * The studio's UI state (zustand): what the worker reported, the run list with its metrics, and the
 * panels' own settings, with the actions that change them (they send commands to the worker). Components
 * import useStudio from here. The store is composed of:
 * - run-record.ts: RunRecord and the pure helpers about records;
 * - reducer.ts: worker events -> state (applyEvent), with the step buffer;
 * - persistence.ts: restoring runs from IndexedDB, saving them as they change, checkpoints (over persist.ts);
 * - experiment-record.ts, experiment-actions.ts, experiment-reducer.ts, experiment-persistence.ts: the same four
 *   jobs for experiments (methods x rates x seeds);
 * - browser.ts: localStorage memories and downloads.
 * No GPU calls here.
 */
import { create } from 'zustand';
import type {
  BenchResult,
  DatasetFormatOverride,
  DatasetPreview,
  GenerationResult,
  GpuInfo,
  ModelCard,
  RunConfig,
  ExportTarget,
  ExportVariant,
} from '../worker/protocol';
import { configProblem } from '../worker/validate';
import { WEIGHT_STORAGES, type WeightStorage } from '../model/weights';
import { download, remember, remembered } from './browser';
import { formatChoice, historyBefore, resumeProblem, resumeStep } from './checkpoints';
import { listen, send } from './client';
import { installTestHooks } from './device-loss-hooks';
import { runnableConfig } from './methods';
import { createExperimentActions, whenState, type ExperimentActions } from './experiment-actions';
import { createExperimentPersistence } from './experiment-persistence';
import { isExperimentActive, type ExperimentRecord } from './experiment-record';
import { createPersistence } from './persistence';
import { DEMO_PROMPT, defaultRun, demoRuns, describeRun } from './presets';
import { chatRequestOf, finishedTurns, type ChatTurnRecord } from './playground-chat';
import { parseStopStrings, SAMPLING_DEFAULTS, type SamplingSettings } from '../model/sampling';
import { datasetLoadingProblem, type DatasetLoading } from './dataset-loading';
import { createReducer, createStepBuffer } from './reducer';
import { createRunActions, type RunActions } from './run-actions';
import { followPlaygroundPrefs } from './ui-prefs';
import { playgroundRuns } from './visible-runs';
import {
  invalidFieldsProblem,
  isActive,
  newRecord,
  patchedRuns,
  previewFitOf,
  type RunPatch,
  type RunRecord,
} from './run-record';

export type GpuState =
  | { status: 'checking' }
  | { status: 'ready'; info: GpuInfo }
  | { status: 'unavailable'; reason: string };

export interface ModelState {
  card: ModelCard | null;
  ready: boolean;
  loading: { stage: string; done: number; total: number } | null;
  error: string | null;
  gpuBytes: number;
}

export interface DatasetState {
  preview: DatasetPreview | null;
  /** A file being read or tokenized; `preview` stays the dataset in use until it is done. */
  loading: DatasetLoading | null;
  error: string | null;
}

export interface ChartSettings {
  smoothing: number;
  logScale: boolean;
  x: 'step' | 'tokens';
}

export interface PlaygroundState {
  prompt: string;
  maxNewTokens: number;
  includeBase: boolean;
  /** Runs picked for comparison; null = every run that can generate. */
  selected: string[] | null;
  requestId: string | null;
  /** Keyed by 'base' or run id. */
  results: Record<string, GenerationResult>;
  order: string[];
  /** The prompt of the shown generations (the text box may have changed since); in chat, the user's message. */
  lastPrompt: string;
  error: string | null;
  mode: 'completion' | 'chat';
  /** Greedy decoding (the argmax, as before sampling existed); off: each token drawn with `sampling`. */
  greedy: boolean;
  sampling: SamplingSettings;
  /** Stop strings as typed: comma-separated, with \n and \, escapes (parseStopStrings). */
  stop: string;
  /** Chat: the system prompt, the message being typed, finished turns and the model they were with. */
  system: string;
  message: string;
  turns: ChatTurnRecord[];
  chatModel: string | null;
  /** The mode the shown results were generated in. */
  shownMode: 'completion' | 'chat';
}

/** The playground fields the panel edits directly. */
type PlaygroundFields =
  | 'prompt'
  | 'maxNewTokens'
  | 'includeBase'
  | 'selected'
  | 'mode'
  | 'greedy'
  | 'sampling'
  | 'stop'
  | 'system'
  | 'message';

export interface BenchState {
  running: boolean;
  /** What the benchmark is measuring now. */
  stage: string | null;
  result: BenchResult | null;
  error: string | null;
}

export interface Toast {
  id: number;
  kind: 'error' | 'info';
  text: string;
}

export interface StudioState extends ExperimentActions, RunActions {
  gpu: GpuState;
  model: ModelState;
  dataset: DatasetState;
  runs: Record<string, RunRecord>;
  order: string[];
  /** Experiments by id, in display order (experiment-record.ts). */
  experiments: Record<string, ExperimentRecord>;
  experimentOrder: string[];
  chart: ChartSettings;
  playground: PlaygroundState;
  exporting: Record<string, boolean>;
  bench: BenchState;
  toasts: Toast[];
  /** IndexedDB has been read (past runs are in `runs`). */
  restored: boolean;

  start(): void;
  tryDemo(): void;
  /** How the base matrices are kept on the GPU (remembered across sessions); a loaded model is uploaded again. */
  setWeightStorage(storage: WeightStorage): void;
  /** False when the user kept the current model (runs were active and they declined the switch). */
  loadModelFiles(files: File[], name?: string): boolean;
  loadDatasetFile(file: File): void;
  /** Re-reads the current dataset with another format or column mapping (the preview updates, or an error says why not). */
  setDatasetFormat(override: DatasetFormatOverride): void;
  addRun(): void;
  updateRun(id: string, patch: Partial<RunConfig>): void;
  /** A draft field's text parses (or not): an invalid one keeps the run from starting. */
  setFieldValidity(id: string, field: string, valid: boolean): void;
  duplicateRun(id: string): void;
  removeRun(id: string): void;
  startRun(id: string): void;
  /** Continues an interrupted or failed run from its stored checkpoint. */
  resumeRun(id: string): Promise<void>;
  startAllDrafts(): void;
  cancelRun(id: string): void;
  setChart(patch: Partial<ChartSettings>): void;
  setPlayground(patch: Partial<Pick<PlaygroundState, PlaygroundFields>>): void;
  /** Completion mode: the prompt; chat mode: the message, after the conversation so far. */
  generate(): void;
  /** Ends the running generation after its current token. */
  stopGeneration(): void;
  /** Forgets the conversation (the system prompt stays). */
  clearChat(): void;
  /** variant 'lora': a GraLoRA run as its exactly equivalent plain LoRA; 'raw': the method's raw save (PiSSA). */
  exportRun(id: string, variant?: ExportVariant, target?: ExportTarget): void;
  /** Runs the in-browser benchmark (ours only) on the loaded model. */
  runBench(): void;
  toast(kind: Toast['kind'], text: string): void;
  dismissToast(id: number): void;
}

/** What the studio holds before the worker reports anything (the store's state without its actions). */
export type StudioData = Pick<
  StudioState,
  | 'gpu'
  | 'model'
  | 'dataset'
  | 'runs'
  | 'order'
  | 'experiments'
  | 'experimentOrder'
  | 'chart'
  | 'playground'
  | 'exporting'
  | 'bench'
  | 'toasts'
  | 'restored'
>;

export function initialStudioData(): StudioData {
  return {
    gpu: { status: 'checking' },
    model: { card: null, ready: false, loading: null, error: null, gpuBytes: 0 },
    dataset: { preview: null, loading: null, error: null },
    runs: {},
    order: [],
    experiments: {},
    experimentOrder: [],
    chart: { smoothing: 0.6, logScale: false, x: 'step' },
    playground: {
      prompt: 'Once upon a time',
      maxNewTokens: 40,
      includeBase: true,
      selected: null,
      requestId: null,
      results: {},
      order: [],
      lastPrompt: '',
      error: null,
      mode: 'completion',
      greedy: true,
      sampling: SAMPLING_DEFAULTS,
      stop: '',
      system: '',
      message: '',
      turns: [],
      chatModel: null,
      shownMode: 'completion',
    },
    exporting: {},
    bench: { running: false, stage: null, result: null, error: null },
    toasts: [],
    restored: false,
  };
}

/** The last toast's id (module state: ids are unique for the page). */
let toastSeq = 0;

export const useStudio = create<StudioState>()((set, get, store) => {
  const patchRun = (id: string, patch: RunPatch) => set((s) => patchedRuns(s.runs, id, patch));

  // The jobs the store delegates: steps are buffered, then flushed into the state; persistence flushes them
  // before storing a checkpoint; the reducer applies every worker event.
  const steps = createStepBuffer(set);
  const persistence = createPersistence(store, steps.flush);
  const experimentPersistence = createExperimentPersistence(store);
  const { applyEvent } = createReducer(get, set, {
    steps,
    keepCheckpoint: persistence.keepCheckpoint,
    saveAdapter: persistence.saveAdapter,
    download,
    experiments: { saveAdapter: experimentPersistence.saveAdapter },
  });
  const experimentActions = createExperimentActions(get, set, {
    send,
    download,
    confirmModelSwitch: () => confirmModelSwitch(),
    rememberDemo: () => {
      remember('model', 'demo');
      remember('dataset', 'demo');
    },
    when: (condition, then) => whenState(store, condition, then),
  });

  const addRecords = (configs: RunConfig[]) =>
    set((s) => {
      const runs = { ...s.runs };
      for (const c of configs) runs[c.id] = newRecord(c);
      return { runs, order: [...s.order, ...configs.map((c) => c.id)] };
    });
  const runActions = createRunActions(get, set, { addRecords, uniqueName: (name) => uniqueName(name) });

  const beginRun = (id: string): boolean => {
    const s = get();
    const r = s.runs[id];
    if (!r || r.status !== 'draft') return false;
    const card = s.model.card;
    const fail = (message: string) => {
      patchRun(id, { message });
      return false;
    };
    if (!card) return fail('Load a model first (or press "Try the demo").');
    const loading = datasetLoadingProblem(s.dataset.loading);
    if (loading) return fail(loading);
    if (!s.dataset.preview) return fail('Load a dataset first.');
    if (!s.dataset.preview.format) return fail("Choose the dataset's format and map its columns first.");
    const invalid = invalidFieldsProblem(r.invalidFields);
    if (invalid) return fail(invalid);
    // What runs is what the record keeps: the options of other methods the draft remembered are dropped.
    const config = runnableConfig(r.config);
    const problem = configProblem(config, card);
    if (problem) return fail(problem);
    patchRun(id, {
      config,
      status: 'queued',
      stage: 'Waiting for the GPU',
      message: null,
      startedAt: null,
      modelKey: card.key,
      modelName: card.name,
      weightStorage: card.weightStorage ?? 'auto',
      datasetName: s.dataset.preview.name,
      datasetDigest: s.dataset.preview.digest,
      datasetFormat: formatChoice(s.dataset.preview),
      points: [],
      evals: [],
      summary: null,
      progress: null,
      prepare: null,
      analysis: null,
      adapterFormat: null,
      checkpoint: null,
      data: null,
      warnings: [],
    });
    send({ type: 'startRun', config });
    return true;
  };

  return {
    ...initialStudioData(),
    ...experimentActions,
    ...runActions,

    start() {
      // The playground's decoding settings as the last session left them; saved again as they change.
      followPlaygroundPrefs(store);
      listen(applyEvent);
      followPreviewFit();
      if (!('gpu' in navigator) || !navigator.gpu) {
        set({
          gpu: { status: 'unavailable', reason: 'This browser does not expose WebGPU (navigator.gpu is undefined).' },
        });
        return;
      }
      // ?test-hooks: the worker honours the device-loss hook (device-loss-hooks.ts).
      send({ type: 'init', testHooks: installTestHooks(send) });
      const storage = remembered('weights');
      if (storage && storage !== 'auto' && (WEIGHT_STORAGES as readonly string[]).includes(storage)) {
        send({ type: 'setWeightStorage', storage: storage as WeightStorage });
      }
      void persistence.restore();
      void experimentPersistence.restore();
      // The demo is ours to fetch again: after a reload, put it back so the playground works at once.
      // (The user's own files cannot be reopened without asking them.)
      if (remembered('model') === 'demo') {
        set((s) => ({ model: { ...s.model, loading: { stage: 'Reloading the demo model', done: 0, total: 0 } } }));
        send({ type: 'loadModel', source: { kind: 'demo' } });
        if (remembered('dataset') === 'demo') send({ type: 'loadDataset', source: { kind: 'demo' } });
      }
    },

    tryDemo() {
      if (!confirmModelSwitch()) return;
      send({ type: 'loadModel', source: { kind: 'demo' } });
      send({ type: 'loadDataset', source: { kind: 'demo' } });
      remember('model', 'demo');
      remember('dataset', 'demo');
      // Replace unstarted runs with the demo's.
      const drafts = get().order.filter((id) => get().runs[id].status === 'draft');
      for (const id of drafts) get().removeRun(id);
      addRecords(demoRuns());
      set((s) => ({
        model: { ...s.model, error: null },
        playground: { ...s.playground, prompt: DEMO_PROMPT, selected: null },
      }));
    },

    setWeightStorage(storage) {
      remember('weights', storage);
      set((s) => ({ model: { ...s.model, error: null } }));
      send({ type: 'setWeightStorage', storage });
    },

    loadModelFiles(files, name) {
      if (!confirmModelSwitch()) return false;
      set((s) => ({ model: { ...s.model, error: null, loading: { stage: 'Reading files', done: 0, total: 0 } } }));
      send({ type: 'loadModel', source: { kind: 'files', files, name } });
      remember('model', 'files');
      return true;
    },

    loadDatasetFile(file) {
      set((s) => ({ dataset: { ...s.dataset, error: null, loading: { name: file.name, stage: 'Reading' } } }));
      send({ type: 'loadDataset', source: { kind: 'file', file } });
      remember('dataset', 'file');
    },

    setDatasetFormat(override) {
      const name = get().dataset.preview?.name ?? 'dataset';
      set((s) => ({ dataset: { ...s.dataset, error: null, loading: { name, stage: 'Applying the format to' } } }));
      send({
        type: 'setDatasetFormat',
        format: override.format,
        columns: override.columns,
        ...(override.promptJoin ? { promptJoin: override.promptJoin } : {}),
      });
    },

    addRun() {
      const s = get();
      const last = s.order.length ? s.runs[s.order[s.order.length - 1]].config : undefined;
      const config = defaultRun(s.model.card, last);
      addRecords([{ ...config, name: uniqueName(config.name) }]);
    },

    updateRun(id, patch) {
      patchRun(id, (r) => {
        if (r.status !== 'draft') return {};
        const config = { ...r.config, ...patch };
        // Keep generated names in sync with the settings until the user names the run.
        const family = get().model.card?.family;
        if (!('name' in patch) && r.config.name === describeRun(r.config, family))
          config.name = describeRun(config, family);
        return { config, message: null };
      });
    },

    setFieldValidity(id, field, valid) {
      patchRun(id, (r) => {
        const has = r.invalidFields.includes(field);
        if (has === !valid) return {};
        return {
          invalidFields: valid ? r.invalidFields.filter((f) => f !== field) : [...r.invalidFields, field],
          message: null,
        };
      });
    },

    duplicateRun(id) {
      const r = get().runs[id];
      if (!r) return;
      addRecords([{ ...r.config, id: crypto.randomUUID(), name: uniqueName(r.config.name) }]);
    },

    removeRun(id) {
      const r = get().runs[id];
      if (!r) return;
      if (isActive(r)) send({ type: 'cancelRun', id });
      send({ type: 'deleteRun', id });
      set((s) => {
        const runs = { ...s.runs };
        delete runs[id];
        return { runs, order: s.order.filter((x) => x !== id) };
      });
    },

    startRun(id) {
      beginRun(id);
    },

    async resumeRun(id) {
      const s = get();
      const r = s.runs[id];
      const step = r ? resumeStep(r) : null;
      if (!r || step === null) return;
      const problem = resumeProblem(r, s.model.card, s.dataset.preview);
      if (problem) return patchRun(id, { message: problem });
      const before = { status: r.status, message: r.message };
      patchRun(id, { status: 'queued', stage: 'Reading the checkpoint', message: null });
      // Unreadable storage is reported like a damaged checkpoint, below.
      const checkpoint = await persistence.readResumeCheckpoint(id, r.config.steps);
      const now = get().runs[id];
      if (now?.status !== 'queued') return; // removed or cancelled while reading
      if (!checkpoint) {
        return patchRun(id, {
          ...before,
          stage: null,
          checkpoint: null,
          message: `Its checkpoint (step ${step}) is missing or damaged in this browser's storage, so it cannot resume; "Run again" starts it over.`,
        });
      }
      patchRun(id, {
        ...historyBefore(now, checkpoint.step),
        stage: null,
        summary: null,
        progress: null,
        prepare: null,
        finishedAt: null,
        checkpoint: { ...now.checkpoint!, step: checkpoint.step },
      });
      send({ type: 'startRun', config: now.config, resume: checkpoint });
    },

    startAllDrafts() {
      for (const id of get().order) if (get().runs[id].status === 'draft') beginRun(id);
    },

    cancelRun(id) {
      // A resume still reading its checkpoint has not reached the worker: it stops here.
      if (persistence.isReadingCheckpoint(id)) {
        patchRun(id, {
          status: 'cancelled',
          stage: null,
          message: 'Cancelled before it started.',
          finishedAt: Date.now(),
        });
        // A cancelled run needs no checkpoint (the next save deletes it from IndexedDB).
        return patchRun(id, { checkpoint: null });
      }
      send({ type: 'cancelRun', id });
    },

    setChart(patch) {
      set((s) => ({ chart: { ...s.chart, ...patch } }));
    },

    setPlayground(patch) {
      set((s) => ({ playground: { ...s.playground, ...patch } }));
    },

    generate() {
      const s = get();
      const p = s.playground;
      const runIds = playgroundRuns(s).filter((id) => p.selected === null || p.selected.includes(id));
      const requestId = crypto.randomUUID();
      const order = [...(p.includeBase ? ['base'] : []), ...runIds];
      const modelKey = s.model.card?.key ?? null;
      // The shown answers join the conversation before anything replaces them.
      const turns = finishedTurns(p, modelKey);
      const chat = p.mode === 'chat';
      const text = chat ? p.message : p.prompt;
      set({
        playground: {
          ...p,
          requestId,
          results: {},
          order,
          lastPrompt: text,
          error: null,
          shownMode: p.mode,
          turns,
          chatModel: chat ? modelKey : p.chatModel,
          message: chat ? '' : p.message,
        },
      });
      send({
        type: 'generate',
        requestId,
        prompt: text,
        runIds,
        includeBase: p.includeBase,
        maxNewTokens: p.maxNewTokens,
        ...(p.greedy ? {} : { sampling: p.sampling }),
        stop: parseStopStrings(p.stop),
        ...(chat ? { chat: chatRequestOf(p.system, turns) } : {}),
      });
    },

    stopGeneration() {
      const requestId = get().playground.requestId;
      if (requestId) send({ type: 'stopGeneration', requestId });
    },

    clearChat() {
      set((s) => {
        const p = s.playground;
        const shownChat = p.shownMode === 'chat';
        return {
          playground: {
            ...p,
            turns: [],
            chatModel: null,
            message: '',
            ...(shownChat ? { results: {}, order: [], lastPrompt: '' } : {}),
          },
        };
      });
    },

    exportRun(id, variant, target) {
      const r = get().runs[id];
      if (!r) return;
      set((s) => ({ exporting: { ...s.exporting, [id]: true } }));
      send({
        type: 'exportRun',
        id,
        name: r.config.name,
        ...(variant ? { variant } : {}),
        ...(target ? { target } : {}),
      });
    },

    runBench() {
      if (get().bench.running) return;
      if (!get().model.card)
        return set((s) => ({
          bench: { ...s.bench, error: 'Load a model (or the demo) before running the benchmark.' },
        }));
      set((s) => ({ bench: { ...s.bench, running: true, stage: 'Starting', error: null } }));
      send({ type: 'runBench' });
    },

    toast(kind, text) {
      const id = ++toastSeq;
      set((s) => ({ toasts: [...s.toasts, { id, kind, text }] }));
      setTimeout(() => get().dismissToast(id), kind === 'error' ? 12000 : 5000);
    },

    dismissToast(id) {
      set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
    },
  };

  // ---------------------------------------------------------------------------------- helpers

  /** "LoRA q,v r=8" -> "LoRA q,v r=8 (2)" when the name is taken. */
  function uniqueName(name: string): string {
    const taken = new Set(Object.values(get().runs).map((r) => r.config.name));
    const stem = name.replace(/ \(\d+\)$/, '');
    if (!taken.has(stem)) return stem;
    let i = 2;
    while (taken.has(`${stem} (${i})`)) i++;
    return `${stem} (${i})`;
  }

  /**
   * The dataset preview reports truncated and dropped examples at the sequence length and truncation of the run
   * being configured (the last draft, else the last run): sent to the worker when they change, debounced.
   */
  function followPreviewFit() {
    let sent = '';
    let timer: ReturnType<typeof setTimeout> | null = null;
    useStudio.subscribe((s) => {
      const fit = previewFitOf(s);
      if (!fit || !s.model.card || !s.dataset.preview?.tokenized) return;
      // The worker keeps the last one it was sent and reports every later preview at it.
      const key = `${fit.seq}:${fit.truncation}`;
      if (key === sent) return;
      sent = key;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        send({ type: 'setPreviewFit', ...fit });
      }, 250);
    });
  }

  function confirmModelSwitch(): boolean {
    const active = Object.values(get().runs).filter(isActive).length;
    const experiments = Object.values(get().experiments).filter(isExperimentActive).length;
    if (active === 0 && experiments === 0) return true;
    const what = [
      active ? `${active} queued or running run${active > 1 ? 's' : ''}` : null,
      experiments ? `${experiments} experiment${experiments > 1 ? 's' : ''}` : null,
    ]
      .filter(Boolean)
      .join(' and ');
    return window.confirm(`Loading another model stops ${what}. Continue?`);
  }
});

/** Why runs and experiments wait (a dataset file is being read or tokenized), or null: the Start buttons' reason. */
export function useDatasetWait(): string | null {
  return useStudio((s) => datasetLoadingProblem(s.dataset.loading));
}
