/**
 * The studio's UI state (zustand): what the worker reported, the run list with its metrics, and the
 * panels' own settings. Actions send commands to the worker; worker events come back through applyEvent.
 * No GPU calls here.
 */
import { create } from 'zustand';
import type { MethodAnalysis } from '../engine/methods';
import type {
  BenchResult, DataFit, DatasetFormatOverride, DatasetPreview, EvalPoint, GenerationResult, GpuInfo, ModelCard, RunCheckpointData, RunConfig, RunProgress, RunStatus, RunSummary,
  StepPoint, WorkerEvent,
} from '../worker/protocol';
import { configProblem } from '../worker/validate';
import { WEIGHT_STORAGES, type WeightStorage } from '../model/weights';
import { DEFAULT_TRUNCATION, type Truncation } from '../data/truncation';
import { canUseCheckpoint, checkpointInfo, formatChoice, historyBefore, readCheckpoint, resumeProblem, resumeStep, type CheckpointInfo } from './checkpoints';
import { listen, send } from './client';
import { runnableConfig } from './methods';
import {
  checkpointSteps, deleteCheckpoints, deleteRuns, loadAdapters, loadCheckpoint, loadRuns, saveAdapter, saveCheckpoint, saveRuns,
} from './persist';
import { DEMO_PROMPT, defaultRun, demoRuns, describeRun } from './presets';

export interface RunRecord {
  config: RunConfig;
  status: RunStatus;
  /** What the run is doing now ("Compiling kernels", "Training"). */
  stage: string | null;
  /** Why it failed or stopped, or a warning. */
  message: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  modelKey: string | null;
  modelName: string | null;
  datasetName: string | null;
  /** The dataset file's size and SHA-256, and the format choice it was read with: resuming needs the same batches. */
  datasetDigest: string | null;
  datasetFormat: string | null;
  points: StepPoint[];
  evals: EvalPoint[];
  progress: RunProgress | null;
  /** The method's preparation phase as last reported (GoRA's gradients, GeLoRA's hidden states, compiling). */
  prepare: RunPrepare | null;
  /** Ranks, scales and importance per module, GeLoRA's dimensions: what the method chose before step 0. */
  analysis: MethodAnalysis | null;
  summary: RunSummary | null;
  /** 'adapter': adapter weights, kept in IndexedDB; 'session': a full fine-tune on the GPU until reload. */
  weights: 'adapter' | 'session' | null;
  /** The PEFT format of the adapter: a 'gralora' one can also be exported as its equivalent plain LoRA. */
  adapterFormat: 'lora' | 'gralora' | null;
  /** The latest checkpoint of an unfinished run (its state is in IndexedDB only), or null. */
  checkpoint: CheckpointInfo | null;
  /** Its examples at its sequence length (truncated, dropped), as the worker tokenized them before step 0. */
  data: DataFit | null;
  /** What to know about the run that did not stop it (a split too small, steps without supervised tokens). */
  warnings: string[];
  /** Draft fields whose text is not a valid number: Start waits until they are (not saved). */
  invalidFields: string[];
}

export interface RunPrepare {
  phase: string;
  done: number;
  total: number;
}

export type GpuState = { status: 'checking' } | { status: 'ready'; info: GpuInfo } | { status: 'unavailable'; reason: string };

export interface ModelState {
  card: ModelCard | null;
  ready: boolean;
  loading: { stage: string; done: number; total: number } | null;
  error: string | null;
  gpuBytes: number;
}

export interface DatasetState {
  preview: DatasetPreview | null;
  loading: { name: string; stage: string } | null;
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
  /** The prompt of the shown generations (the text box may have changed since). */
  lastPrompt: string;
  error: string | null;
}

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

export interface StudioState {
  gpu: GpuState;
  model: ModelState;
  dataset: DatasetState;
  runs: Record<string, RunRecord>;
  order: string[];
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
  loadModelFiles(files: File[], name?: string): void;
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
  setPlayground(patch: Partial<Pick<PlaygroundState, 'prompt' | 'maxNewTokens' | 'includeBase' | 'selected'>>): void;
  generate(): void;
  /** asLora: a GraLoRA run as its exactly equivalent plain LoRA. */
  exportRun(id: string, asLora?: boolean): void;
  /** Runs the in-browser benchmark (ours only) on the loaded model. */
  runBench(): void;
  toast(kind: Toast['kind'], text: string): void;
  dismissToast(id: number): void;
}

const ACTIVE: RunStatus[] = ['queued', 'preparing', 'training'];
const FINISHED: RunStatus[] = ['done', 'cancelled', 'failed'];

export const isActive = (r: RunRecord) => ACTIVE.includes(r.status);
export const isFinished = (r: RunRecord) => FINISHED.includes(r.status) || r.status === 'interrupted';

/** Strictly increasing creation times keep the run order (and colors) stable across reloads. */
let lastCreated = 0;

function newRecord(config: RunConfig): RunRecord {
  lastCreated = Math.max(Date.now(), lastCreated + 1);
  return {
    config, status: 'draft', stage: null, message: null, createdAt: lastCreated, startedAt: null, finishedAt: null,
    modelKey: null, modelName: null, datasetName: null, datasetDigest: null, datasetFormat: null, points: [], evals: [], progress: null, prepare: null, analysis: null,
    summary: null, weights: null, adapterFormat: null, checkpoint: null, data: null, warnings: [], invalidFields: [],
  };
}

let toastSeq = 0;

export const useStudio = create<StudioState>()((set, get) => {
  const patchRun = (id: string, patch: Partial<RunRecord> | ((r: RunRecord) => Partial<RunRecord>)) =>
    set((s) => {
      const r = s.runs[id];
      if (!r) return {};
      return { runs: { ...s.runs, [id]: { ...r, ...(typeof patch === 'function' ? patch(r) : patch) } } };
    });

  const addRecords = (configs: RunConfig[]) =>
    set((s) => {
      const runs = { ...s.runs };
      for (const c of configs) runs[c.id] = newRecord(c);
      return { runs, order: [...s.order, ...configs.map((c) => c.id)] };
    });

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
    if (!s.dataset.preview) return fail('Load a dataset first.');
    if (!s.dataset.preview.format) return fail('Choose the dataset\'s format and map its columns first.');
    const invalid = invalidFieldsProblem(r.invalidFields);
    if (invalid) return fail(invalid);
    // What runs is what the record keeps: the options of other methods the draft remembered are dropped.
    const config = runnableConfig(r.config);
    const problem = configProblem(config, card);
    if (problem) return fail(problem);
    patchRun(id, {
      config, status: 'queued', stage: 'Waiting for the GPU', message: null, startedAt: null, modelKey: card.key, modelName: card.name,
      datasetName: s.dataset.preview.name, datasetDigest: s.dataset.preview.digest, datasetFormat: formatChoice(s.dataset.preview), points: [], evals: [], summary: null, progress: null, prepare: null, analysis: null,
      adapterFormat: null, checkpoint: null, data: null, warnings: [],
    });
    send({ type: 'startRun', config });
    return true;
  };

  return {
    gpu: { status: 'checking' },
    model: { card: null, ready: false, loading: null, error: null, gpuBytes: 0 },
    dataset: { preview: null, loading: null, error: null },
    runs: {},
    order: [],
    chart: { smoothing: 0.6, logScale: false, x: 'step' },
    playground: { prompt: 'Once upon a time', maxNewTokens: 40, includeBase: true, selected: null, requestId: null, results: {}, order: [], lastPrompt: '', error: null },
    exporting: {},
    bench: { running: false, stage: null, result: null, error: null },
    toasts: [],
    restored: false,

    start() {
      listen(applyEvent);
      followPreviewFit();
      if (!('gpu' in navigator) || !navigator.gpu) {
        set({ gpu: { status: 'unavailable', reason: 'This browser does not expose WebGPU (navigator.gpu is undefined).' } });
        return;
      }
      send({ type: 'init' });
      const storage = remembered('weights');
      if (storage && storage !== 'auto' && (WEIGHT_STORAGES as readonly string[]).includes(storage)) {
        send({ type: 'setWeightStorage', storage: storage as WeightStorage });
      }
      void restore();
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
      set((s) => ({ model: { ...s.model, error: null }, playground: { ...s.playground, prompt: DEMO_PROMPT, selected: null } }));
    },

    setWeightStorage(storage) {
      remember('weights', storage);
      set((s) => ({ model: { ...s.model, error: null } }));
      send({ type: 'setWeightStorage', storage });
    },

    loadModelFiles(files, name) {
      if (!confirmModelSwitch()) return;
      set((s) => ({ model: { ...s.model, error: null, loading: { stage: 'Reading files', done: 0, total: 0 } } }));
      send({ type: 'loadModel', source: { kind: 'files', files, name } });
      remember('model', 'files');
    },

    loadDatasetFile(file) {
      set((s) => ({ dataset: { ...s.dataset, error: null, loading: { name: file.name, stage: 'Reading' } } }));
      send({ type: 'loadDataset', source: { kind: 'file', file } });
      remember('dataset', 'file');
    },

    setDatasetFormat(override) {
      const name = get().dataset.preview?.name ?? 'dataset';
      set((s) => ({ dataset: { ...s.dataset, error: null, loading: { name, stage: 'Applying the format to' } } }));
      send({ type: 'setDatasetFormat', format: override.format, columns: override.columns, ...(override.promptJoin ? { promptJoin: override.promptJoin } : {}) });
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
        if (!('name' in patch) && r.config.name === describeRun(r.config, family)) config.name = describeRun(config, family);
        return { config, message: null };
      });
    },

    setFieldValidity(id, field, valid) {
      patchRun(id, (r) => {
        const has = r.invalidFields.includes(field);
        if (has === !valid) return {};
        return { invalidFields: valid ? r.invalidFields.filter((f) => f !== field) : [...r.invalidFields, field], message: null };
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
      readingCheckpoint.add(id);
      let checkpoint: RunCheckpointData | null = null;
      try {
        checkpoint = readCheckpoint(await loadCheckpoint(id), r.config.steps);
      } catch {
        // Unreadable storage is reported like a damaged checkpoint, below.
      } finally {
        readingCheckpoint.delete(id);
      }
      const now = get().runs[id];
      if (now?.status !== 'queued') return; // removed or cancelled while reading
      if (!checkpoint) {
        return patchRun(id, {
          ...before, stage: null, checkpoint: null,
          message: `Its checkpoint (step ${step}) is missing or damaged in this browser's storage, so it cannot resume; "Run again" starts it over.`,
        });
      }
      patchRun(id, {
        ...historyBefore(now, checkpoint.step), stage: null, summary: null, progress: null, prepare: null, finishedAt: null,
        checkpoint: { ...now.checkpoint!, step: checkpoint.step },
      });
      send({ type: 'startRun', config: now.config, resume: checkpoint });
    },

    startAllDrafts() {
      for (const id of get().order) if (get().runs[id].status === 'draft') beginRun(id);
    },

    cancelRun(id) {
      // A resume still reading its checkpoint has not reached the worker: it stops here.
      if (readingCheckpoint.has(id)) {
        patchRun(id, { status: 'cancelled', stage: null, message: 'Cancelled before it started.', finishedAt: Date.now() });
        return dropCheckpoint(id);
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
      const runIds = generationRuns(s).filter((id) => p.selected === null || p.selected.includes(id));
      const requestId = crypto.randomUUID();
      const order = [...(p.includeBase ? ['base'] : []), ...runIds];
      set({ playground: { ...p, requestId, results: {}, order, lastPrompt: p.prompt, error: null } });
      send({ type: 'generate', requestId, prompt: p.prompt, runIds, includeBase: p.includeBase, maxNewTokens: p.maxNewTokens });
    },

    exportRun(id, asLora = false) {
      const r = get().runs[id];
      if (!r) return;
      set((s) => ({ exporting: { ...s.exporting, [id]: true } }));
      send({ type: 'exportRun', id, name: r.config.name, ...(asLora ? { asLora } : {}) });
    },

    runBench() {
      if (get().bench.running) return;
      if (!get().model.card) return set((s) => ({ bench: { ...s.bench, error: 'Load a model (or the demo) before running the benchmark.' } }));
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
    if (active === 0) return true;
    return window.confirm(`Loading another model cancels ${active} queued or running run${active > 1 ? 's' : ''}. Continue?`);
  }

  /** Restores past runs and their adapters from IndexedDB, then saves changes as they happen. */
  async function restore() {
    try {
      const [records, adapters, steps] = await Promise.all([loadRuns(), loadAdapters(), checkpointSteps()]);
      const runs: Record<string, RunRecord> = {};
      for (const saved of records) {
        const r = upgradeRecord(saved);
        // Full fine-tunes live on the GPU only for the session that trained them.
        const weights = r.weights === 'session' ? null : r.weights;
        const restored: RunRecord = ACTIVE.includes(r.status)
          ? { ...r, weights, status: 'interrupted', stage: null, message: 'Interrupted: the page was closed or reloaded during this run.', progress: null }
          : { ...r, weights };
        runs[r.config.id] = { ...restored, ...storedCheckpoint(restored, steps.get(r.config.id)) };
      }
      // Checkpoints of runs that finished or were removed while a write was in flight.
      const orphans = [...steps.keys()].filter((id) => !runs[id] || !canUseCheckpoint(runs[id]));
      void deleteCheckpoints(orphans).catch(() => {});
      if (adapters.length) send({ type: 'restoreAdapters', adapters });
      set((s) => ({
        runs: { ...runs, ...s.runs },
        order: [...records.map((r) => r.config.id).filter((id) => !s.runs[id]), ...s.order],
        restored: true,
      }));
    } catch (err) {
      set({ restored: true });
      get().toast('error', `Past runs could not be read from IndexedDB: ${(err as Error).message}`);
    }
    persistChanges();
  }

  function persistChanges() {
    let saved = get().runs;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      timer = null;
      if (timer) clearTimeout(timer);
      timer = null;
      const runs = get().runs;
      const changed = Object.values(runs).filter((r) => saved[r.config.id] !== r);
      const removed = Object.keys(saved).filter((id) => !runs[id]);
      saved = runs;
      // Finished, cancelled or unresumable runs lose their checkpoint in the same transaction as the record saying so.
      const dropped = changed.filter((r) => r.checkpoint === null && !isActive(r)).map((r) => r.config.id);
      void saveRuns(changed.map(storedRecord), dropped).catch((err) => get().toast('error', `Saving runs failed: ${err.message}`));
      void deleteRuns(removed).catch(() => {});
    };
    // Save everything restored-but-modified (e.g. runs marked interrupted) once.
    saved = {};
    flush();
    useStudio.subscribe((s, prev) => {
      if (s.runs === prev.runs) return;
      // A run that starts, stops or finishes is saved at once: a reload just after must not find it still running.
      if (Object.values(s.runs).some((r) => prev.runs[r.config.id]?.status !== r.status)) flush();
      else timer ??= setTimeout(flush, 800);
    });
    // The metrics since the last save, as the page goes away (a reload mid-run keeps more of its curve).
    window.addEventListener('pagehide', flush);
  }

  /**
   * The run's record as IndexedDB has it: the checkpoint's step comes from the checkpoint store (the two are
   * written together, but the record can be overwritten by a save that started before a newer checkpoint).
   */
  function storedCheckpoint(r: RunRecord, step: number | undefined): Pick<RunRecord, 'checkpoint' | 'message'> {
    if (!canUseCheckpoint(r)) return { checkpoint: null, message: r.message };
    if (step !== undefined) return { checkpoint: { step, bytes: r.checkpoint?.bytes ?? 0, kept: true }, message: r.message };
    // Not kept (too large) says why there is nothing to resume from; kept but absent: the storage was cleared.
    if (!r.checkpoint?.kept) return { checkpoint: r.checkpoint, message: r.message };
    return {
      checkpoint: null,
      message: `${r.message ?? ''} Its checkpoint (step ${r.checkpoint.step}) is missing from this browser's storage, so it cannot resume.`.trim(),
    };
  }

  /** Stores a run's checkpoint (with the history up to it), unless the state is too large to write every 10% of a run. */
  function keepCheckpoint(id: string, checkpoint: RunCheckpointData) {
    const r = get().runs[id];
    if (!r || !isActive(r)) return; // removed or stopped meanwhile
    const info = checkpointInfo(checkpoint);
    if (!info.kept) return patchRun(id, { checkpoint: info });
    flushSteps();
    void saveCheckpoint(storedRecord({ ...get().runs[id], checkpoint: info }), checkpoint)
      .then(() => patchRun(id, (now) => (isActive(now) && (now.checkpoint?.step ?? -1) < info.step ? { checkpoint: info } : {})))
      .catch((err: Error) => {
        // One toast per run: a full disk fails every checkpoint after the first.
        if (checkpointFailures.has(id)) return;
        checkpointFailures.add(id);
        get().toast('error', `Saving a checkpoint of "${r.config.name}" failed (${err.message}): it cannot resume after a reload.`);
      });
  }

  /** A run that finished, or was cancelled, needs no checkpoint (the next save deletes it from IndexedDB). */
  function dropCheckpoint(id: string) {
    patchRun(id, { checkpoint: null });
  }

  function applyEvent(e: WorkerEvent) {
    switch (e.type) {
      case 'gpu':
        return set({ gpu: { status: 'ready', info: e.info } });
      case 'gpuUnavailable':
        return set({ gpu: { status: 'unavailable', reason: e.reason } });
      case 'modelProgress':
        return set((s) => ({ model: { ...s.model, loading: { stage: e.stage, done: e.done, total: e.total } } }));
      case 'model':
        return set((s) => ({
          model: { card: e.card, ready: e.ready, loading: e.ready ? null : s.model.loading, error: null, gpuBytes: e.gpuBytes },
        }));
      case 'datasetProgress':
        return set((s) => ({ dataset: { ...s.dataset, loading: { name: e.name, stage: e.stage } } }));
      case 'dataset':
        return set({ dataset: { preview: e.preview, loading: null, error: null } });
      case 'runStatus':
        // A failed run keeps its checkpoint: it failed on an error (a lost GPU) that resuming can get past.
        if (e.status === 'cancelled') dropCheckpoint(e.id);
        return patchRun(e.id, (r) => ({
          status: e.status,
          stage: e.stage ?? (e.status === 'training' ? r.stage : null),
          message: e.message ?? (e.status === 'failed' || e.status === 'cancelled' ? r.message : null),
          startedAt: r.startedAt ?? (e.status === 'preparing' ? Date.now() : null),
          finishedAt: FINISHED.includes(e.status) ? Date.now() : r.finishedAt,
        }));
      case 'runData':
        return patchRun(e.id, { data: e.data });
      case 'runWarning':
        return patchRun(e.id, (r) => ({ warnings: [...r.warnings, e.message] }));
      case 'runPrepare':
        return patchRun(e.id, { prepare: { phase: e.phase, done: e.done, total: e.total } });
      case 'runAnalysis':
        return patchRun(e.id, { analysis: e.analysis });
      case 'runStep':
        return bufferStep(e.id, e.point, e.progress);
      case 'runCheckpoint':
        return keepCheckpoint(e.id, e.checkpoint);
      case 'runEval':
        flushSteps();
        return patchRun(e.id, (r) => ({ evals: [...r.evals, e.point] }));
      case 'runDone':
        flushSteps();
        if (e.adapter) void saveAdapter(e.id, get().runs[e.id]?.config.method ?? 'lora', e.adapter).catch(() => {});
        dropCheckpoint(e.id);
        return patchRun(e.id, (r) => ({
          status: e.status, stage: null, message: e.summary.message, finishedAt: Date.now(), prepare: null,
          // A resumed run skips the starting evaluation: it was measured (step 0) before the interruption.
          summary: { ...e.summary, initialValLoss: e.summary.initialValLoss ?? r.evals.find((p) => p.step === 0)?.loss ?? null },
          weights: !e.exportable ? null : e.adapter ? 'adapter' : 'session', adapterFormat: e.adapter?.format ?? null,
        }));
      case 'generation': {
        const p = get().playground;
        if (e.requestId !== p.requestId) return;
        const key = e.result.source === 'base' ? 'base' : e.result.source.runId;
        return set({ playground: { ...p, results: { ...p.results, [key]: e.result } } });
      }
      case 'generationDone':
        return set((s) => (s.playground.requestId === e.requestId ? { playground: { ...s.playground, requestId: null } } : {}));
      case 'export':
        download(e.fileName, e.bytes);
        return set((s) => ({ exporting: { ...s.exporting, [e.id]: false } }));
      case 'benchProgress':
        return set((s) => ({ bench: { ...s.bench, running: true, stage: e.stage } }));
      case 'benchResult':
        return set({ bench: { running: false, stage: null, result: e.result, error: null } });
      case 'error':
        return applyError(e);
    }
  }

  function applyError(e: Extract<WorkerEvent, { type: 'error' }>) {
    switch (e.scope) {
      case 'model':
        return set((s) => ({ model: { ...s.model, loading: null, error: e.message } }));
      case 'dataset':
        return set((s) => ({ dataset: { ...s.dataset, loading: null, error: e.message } }));
      case 'generate':
        return set((s) => ({ playground: { ...s.playground, error: e.message } }));
      case 'export':
        if (e.id) set((s) => ({ exporting: { ...s.exporting, [e.id!]: false } }));
        return get().toast('error', `Export failed: ${e.message}`);
      case 'bench':
        return set((s) => ({ bench: { ...s.bench, running: false, stage: null, error: e.message } }));
      case 'run':
        if (e.id) return patchRun(e.id, { status: 'failed', message: e.message });
        return get().toast('error', e.message);
      default:
        return get().toast('error', e.message);
    }
  }

  // Training can report hundreds of steps a second on a real GPU: batch them into one render per frame or so.
  function bufferStep(id: string, point: StepPoint, progress: RunProgress) {
    const entry = pendingSteps.get(id) ?? { points: [], progress };
    entry.points.push(point);
    entry.progress = progress;
    pendingSteps.set(id, entry);
    flushTimer ??= setTimeout(flushSteps, 120);
  }

  function flushSteps() {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = null;
    if (pendingSteps.size === 0) return;
    const batch = [...pendingSteps];
    pendingSteps.clear();
    set((s) => {
      const runs = { ...s.runs };
      for (const [id, { points, progress }] of batch) {
        const r = runs[id];
        if (r) runs[id] = { ...r, points: [...r.points, ...points], progress, stage: progress.stage };
      }
      return { runs };
    });
  }
});

/** Records saved by earlier releases lack the fields added since. */
function upgradeRecord(r: RunRecord): RunRecord {
  return {
    ...r,
    prepare: null,
    analysis: r.analysis ?? null,
    adapterFormat: r.adapterFormat ?? (r.weights === 'adapter' ? 'lora' : null),
    checkpoint: r.checkpoint ?? null,
    data: r.data ?? null,
    datasetDigest: r.datasetDigest ?? null,
    datasetFormat: r.datasetFormat ?? null,
    warnings: r.warnings ?? [],
    invalidFields: [],
  };
}

/** Why a draft cannot start while some of its fields do not hold a number (null when all do). */
export function invalidFieldsProblem(fields: string[]): string | null {
  if (fields.length === 0) return null;
  const names = fields.map((f) => `"${f}"`).join(', ');
  return `${names} ${fields.length > 1 ? 'are not valid numbers' : 'is not a valid number'}: correct ${fields.length > 1 ? 'them' : 'it'} to start this run.`;
}

/** Live progress is not worth a write: it is rebuilt by the next run. */
function storedRecord(r: RunRecord): RunRecord {
  return { ...r, progress: null, prepare: null, invalidFields: [] };
}

/** Resumes reading their checkpoint from IndexedDB, not yet sent to the worker. */
const readingCheckpoint = new Set<string>();
/** Runs whose checkpoint write failed and said so. */
const checkpointFailures = new Set<string>();

const pendingSteps = new Map<string, { points: StepPoint[]; progress: RunProgress }>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;

/** The sequence length and truncation of the run being configured: the last draft, else the last run. */
export function previewFitOf(s: Pick<StudioState, 'runs' | 'order'>): { seq: number; truncation: Truncation } | null {
  const ids = [...s.order].reverse();
  const id = ids.find((x) => s.runs[x].status === 'draft') ?? ids[0];
  const c = id ? s.runs[id].config : null;
  if (!c || !Number.isInteger(c.seq) || c.seq < 2) return null;
  return { seq: c.seq, truncation: c.truncation ?? DEFAULT_TRUNCATION };
}

/** Runs that can generate with the loaded model (their adapter fits it, or a full fine-tune still on the GPU). */
export function generationRuns(s: Pick<StudioState, 'runs' | 'order' | 'model'>): string[] {
  const key = s.model.card?.key;
  return s.order.filter((id) => {
    const r = s.runs[id];
    return r.weights !== null && r.modelKey === key;
  });
}

/** Which model and dataset the last session used ('demo' is reloaded automatically), and the weight storage. */
function remember(what: 'model' | 'dataset' | 'weights', value: string) {
  try {
    localStorage.setItem(`lora-studio:${what}`, value);
  } catch {
    // Storage can be disabled; remembering is a convenience.
  }
}

function remembered(what: 'model' | 'dataset' | 'weights'): string | null {
  try {
    return localStorage.getItem(`lora-studio:${what}`);
  } catch {
    return null;
  }
}

function download(fileName: string, bytes: Uint8Array) {
  const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/zip' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
