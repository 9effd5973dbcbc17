/**
 * The worker's state and command handlers: the GPU device, the loaded model and dataset, the run queue,
 * and the trained adapters. Every handler reports failure as an event with a specific message; nothing
 * here may throw past `handle`, so the worker never dies.
 */
import { readRecords, detectFormat, DEFAULT_TRUNCATION, NoSupervisedTokensError, type FormatSpec, type LoadedDataset, type LoadOptions, type RawRecord, type Truncation } from '../data/index';
import { fileDigest } from '../data/digest';
import { exportAdapter, loadPeftAdapter, mergedModelFiles } from '../engine/export';
import { loadModelDataset, loadModelDir, previewTokenizer, type LoadedModel } from '../engine/load-model';
import { trainRun, type StepReport } from '../engine/train-run';
import { noSupervisedMessage, STUDIO_WORDING } from '../engine/wording';
import { exactMatch } from '../train/exact-match';
import { requestDevice } from '../gpu/device';
import { describeTune, tuneMatmul } from '../kernels/matmul-tune';
import { listScratchBytes } from '../kernels/matmul';
import { filesDir } from '../model/formats/blob-source';
import { openSafetensors, writeSafetensors } from '../model/formats/safetensors';
import { bytesSource, type DirSource } from '../model/formats/source';
import { Generator } from '../model/generate';
import { ModelWeights, WEIGHT_STORAGES, type WeightStorage } from '../model/weights';
import { fetchDemoDataset, fetchDemoModel } from './demo';
import { dataFit, tokenizedPreview, untokenizedPreview, type DatasetInfo } from './dataset-preview';
import { runStudioBench } from './bench';
import { adapterZip, mergedZip, upgradeSnapshot } from './export-files';
import { GpuQueue } from './gpu-queue';
import { modelCard } from './model-card';
import type {
  AdapterSnapshot, Command, RunCheckpointData, DatasetFormatOverride, DatasetPreview, DatasetSource, GenerationResult, GenerationSource, GpuInfo, MethodId, ModelCard, ModelSource, RunConfig,
  RunStatus, WorkerEvent,
} from './protocol';
import { CHECKPOINT_LIMIT_BYTES } from './protocol';
import { ScopedGpu, type BufferScope } from './scoped-gpu';
import { browserTuneCache } from './tune-cache';
import { configProblem } from './validate';

export type Post = (event: WorkerEvent, transfer?: Transferable[]) => void;

interface ModelState {
  epoch: number;
  loaded: LoadedModel;
  card: ModelCard;
  dir: DirSource;
  /** Null until the upload job has run (or when it failed). */
  weights: ModelWeights | null;
  scope: BufferScope | null;
  uploadError: string | null;
}

interface DatasetState {
  id: number;
  name: string;
  bytes: number;
  digest: string;
  demo: boolean;
  file: { name: string; bytes: Uint8Array };
  /** The first records, all that format detection looks at: re-detecting with a new mapping needs no re-read. */
  sample: RawRecord[];
  rows: number;
  readWarnings: string[];
  malformed: number;
  fields: string[];
  override: DatasetFormatOverride;
  /** Tokenized examples per (tokenizer, sequence length, format override). */
  cache: Map<string, Promise<LoadedDataset>>;
}

/** detectFormat only inspects this many rows (SAMPLE_ROWS in data/detect.ts). */
const DETECTION_SAMPLE_ROWS = 100;
const AUTO_DETECT: DatasetFormatOverride = { format: null, columns: {} };

/** What a finished run leaves behind for export and generation. */
interface TrainedRun {
  method: MethodId;
  adapter: AdapterSnapshot | null;
  /** Full fine-tuning: the trained copy of the model, alive until the run is deleted or another model loads. */
  full: { weights: ModelWeights; scope: BufferScope | null; modelEpoch: number } | null;
}

/** Held-out examples greedy-answered for the exact-match column (KV-cached greedy decoding: one pass per token). */
const EXACT_MATCH_EXAMPLES = 64;

const CONFIG_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];

export class Studio {
  private gpu: ScopedGpu | null = null;
  private gpuError: string | null = null;
  /** What the UI was told about the device (the benchmark's retune updates its matmul line). */
  private gpuInfo: GpuInfo | null = null;
  private gpuInit: Promise<void> | null = null;
  private lostReason: string | null = null;
  private model: ModelState | null = null;
  private modelEpoch = 0;
  /** How base matrices are kept on the GPU (model/weights.ts); the studio's choice, auto by default. */
  private weightStorage: WeightStorage = 'auto';
  private dataset: DatasetState | null = null;
  private datasetSeq = 0;
  /** The sequence length and truncation of the run being configured: the preview reports the data's fit at them. */
  private previewFit: { seq: number; truncation: Truncation } | null = null;
  private readonly queue = new GpuQueue();
  private active: { id: string; stop: boolean } | null = null;
  private readonly trained = new Map<string, TrainedRun>();
  /** Runs removed while training: their results are dropped when they stop. */
  private readonly deleted = new Set<string>();

  constructor(private readonly post: Post) {}

  async handle(cmd: Command): Promise<void> {
    try {
      switch (cmd.type) {
        case 'init':
          return await this.init();
        case 'loadModel':
          return await this.loadModel(cmd.source);
        case 'setWeightStorage':
          return this.setWeightStorage(cmd.storage);
        case 'loadDataset':
          return await this.loadDataset(cmd.source);
        case 'setDatasetFormat':
          return await this.setDatasetFormat({ format: cmd.format, columns: cmd.columns, ...(cmd.promptJoin ? { promptJoin: cmd.promptJoin } : {}) });
        case 'setPreviewFit':
          this.previewFit = { seq: cmd.seq, truncation: cmd.truncation };
          return await this.refreshDatasetPreview();
        case 'startRun':
          return this.startRun(cmd.config, cmd.resume);
        case 'cancelRun':
          return this.cancelRun(cmd.id);
        case 'deleteRun':
          return await this.deleteRun(cmd.id);
        case 'restoreAdapters':
          for (const { id, method, adapter } of cmd.adapters) {
            if (!this.trained.has(id)) this.trained.set(id, { method, adapter: upgradeSnapshot(adapter), full: null });
          }
          return;
        case 'generate':
          return this.generate(cmd.requestId, cmd.prompt, cmd.runIds, cmd.includeBase, cmd.maxNewTokens);
        case 'exportRun':
          return await this.exportRun(cmd.id, cmd.name, cmd.asLora ?? false);
        case 'runBench':
          return this.runBench();
      }
    } catch (err) {
      this.post({ type: 'error', scope: 'internal', message: messageOf(err) });
    }
  }

  // ------------------------------------------------------------------------------------ GPU

  private init(): Promise<void> {
    this.gpuInit ??= this.acquireGpu();
    return this.gpuInit;
  }

  private async acquireGpu(): Promise<void> {
    const api = (self.navigator as Navigator).gpu;
    if (!api) {
      this.gpuError = 'This browser does not expose WebGPU (navigator.gpu is undefined).';
      this.post({ type: 'gpuUnavailable', reason: this.gpuError });
      return;
    }
    try {
      const handle = await requestDevice(api);
      if (!handle) {
        this.gpuError = 'WebGPU is present, but requestAdapter() returned no adapter: the GPU may be blocklisted or disabled.';
        this.post({ type: 'gpuUnavailable', reason: this.gpuError });
        return;
      }
      const gpu = (this.gpu = new ScopedGpu(handle));
      this.gpuError = null;
      void handle.device.lost.then((info) => {
        if (info.reason !== 'destroyed') this.onDeviceLost(gpu, info.message || 'no reason given');
      });
      // Before anything else runs on the device: the tuned kernels serve every graph built after this.
      const tune = await tuneMatmul(gpu, { cache: browserTuneCache() });
      const limits = handle.device.limits;
      this.gpuInfo = {
        description: handle.adapter.description || handle.adapter.architecture || handle.adapter.vendor || 'WebGPU adapter',
        vendor: handle.adapter.vendor,
        architecture: handle.adapter.architecture,
        software: handle.adapter.software,
        f16: handle.features.f16,
        subgroups: handle.features.subgroups,
        matmul: describeTune(tune),
        splitScratchBytes: listScratchBytes(handle.device),
        maxBufferSize: limits.maxBufferSize,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      };
      this.post({ type: 'gpu', info: this.gpuInfo });
    } catch (err) {
      this.gpuError = `Could not open the GPU: ${messageOf(err)}`;
      this.post({ type: 'gpuUnavailable', reason: this.gpuError });
    }
  }

  /**
   * A lost device (driver reset, GPU process crash, out of memory) takes every buffer with it. Get a new
   * device, upload the model again, and let the user re-run what failed.
   */
  private onDeviceLost(gpu: ScopedGpu, reason: string): void {
    if (this.gpu !== gpu) return;
    this.gpu = null;
    this.gpuInit = null;
    this.lostReason = reason;
    for (const run of this.trained.values()) run.full = null;
    this.post({ type: 'error', scope: 'gpu', message: `The GPU device was lost (${reason}). Reconnecting and uploading the model again; re-run anything that failed.` });
    const model = this.model;
    if (model) {
      model.weights = null;
      model.scope = null;
      this.post({ type: 'model', card: model.card, ready: false, gpuBytes: 0 });
      this.queueUpload(model, null);
    } else {
      void this.init();
    }
  }

  /** Why a job failed: the device loss when the GPU it started on is gone, else its own error. */
  private failure(err: unknown, gpu: ScopedGpu | null): string {
    if (gpu && this.gpu !== gpu) return `The GPU device was lost during this job (${this.lostReason ?? 'no reason given'}). Start it again, or resume it from its last checkpoint.`;
    return messageOf(err);
  }

  private async requireGpu(): Promise<ScopedGpu> {
    await this.init();
    if (!this.gpu) throw new Error(this.gpuError ?? 'No GPU device.');
    return this.gpu;
  }

  // ------------------------------------------------------------------------------------ model

  private async loadModel(source: ModelSource): Promise<void> {
    const epoch = ++this.modelEpoch;
    const demo = source.kind === 'demo';
    let loaded: LoadedModel;
    let dir: DirSource;
    try {
      this.post({ type: 'modelProgress', stage: demo ? 'Downloading the demo model' : 'Reading config.json and tokenizer.json', done: 0, total: 0 });
      dir = demo
        ? await fetchDemoModel((done, total) => this.post({ type: 'modelProgress', stage: 'Downloading the demo model', done, total }))
        : filesDir(source.files, source.name);
      if (!demo && source.files.length === 0) throw new Error('The folder is empty: no files were dropped.');
      loaded = await loadModelDir(dir);
    } catch (err) {
      if (epoch === this.modelEpoch) this.post({ type: 'error', scope: 'model', message: messageOf(err) });
      return;
    }
    if (epoch !== this.modelEpoch) return; // a newer load started meanwhile

    // Runs were configured for the previous model: stop them before its weights go away.
    this.cancelAllRuns('Cancelled: another model was loaded.');
    const card = modelCard(loaded, dir.list(), demo, this.weightStorage);
    const state: ModelState = { epoch, loaded, card, dir, weights: null, scope: null, uploadError: null };
    const previous = this.model;
    this.model = state;
    this.post({ type: 'model', card, ready: false, gpuBytes: this.gpu?.liveBytes ?? 0 });
    if (this.dataset) void this.refreshDatasetPreview();

    this.queueUpload(state, previous);
  }

  /**
   * Keeps the base matrices as `storage` from now on; a loaded model is uploaded again under it (runs in the
   * queue are cancelled: they were sized for the old weights; trained adapters and full fine-tunes stay).
   */
  private setWeightStorage(storage: WeightStorage): void {
    if (!WEIGHT_STORAGES.includes(storage)) throw new Error(`Unknown weight storage "${storage}" (expected ${WEIGHT_STORAGES.join(', ')})`);
    if (storage === this.weightStorage) return;
    this.weightStorage = storage;
    const model = this.model;
    if (!model) return;
    this.cancelAllRuns(`Cancelled: the base weights were reloaded (${storage}).`);
    const state: ModelState = { ...model, card: modelCard(model.loaded, model.dir.list(), model.card.demo, storage), weights: null, scope: null, uploadError: null };
    this.model = state;
    this.post({ type: 'model', card: state.card, ready: false, gpuBytes: this.gpu?.liveBytes ?? 0 });
    this.queueUpload(state, model, { keepFullRuns: true });
  }

  /** Uploads a model's weights as a GPU job (after the previous model's buffers are freed). */
  private queueUpload(state: ModelState, previous: ModelState | null, opts: { keepFullRuns?: boolean } = {}): void {
    const { card, loaded } = state;
    this.queue.push({
      urgent: true,
      execute: async () => {
        if (this.model !== state) return;
        let gpu: ScopedGpu | null = null;
        try {
          gpu = await this.requireGpu();
          if (previous?.scope) await gpu.release(previous.scope);
          if (!opts.keepFullRuns) await this.freeFullRuns();
          const scope = gpu.open(`model ${card.name}`);
          try {
            state.weights = await ModelWeights.upload(gpu, loaded.spec, loaded.source, {
              storage: state.card.weightStorage ?? 'auto',
              onProgress: (done, total) => this.post({ type: 'modelProgress', stage: 'Uploading weights to the GPU', done, total }),
            });
            gpu.checkErrors(`Uploading ${card.name}`);
          } catch (err) {
            state.weights = null;
            await gpu.release(scope);
            throw err;
          }
          gpu.close(scope);
          state.scope = scope;
          state.uploadError = null;
          if (this.model === state) this.post({ type: 'model', card, ready: true, gpuBytes: gpu.liveBytes });
        } catch (err) {
          state.uploadError = this.failure(err, gpu);
          if (this.model === state) this.post({ type: 'error', scope: 'model', message: state.uploadError });
        }
      },
    });
  }

  private async freeFullRuns(): Promise<void> {
    for (const run of this.trained.values()) {
      if (run.full?.scope && this.gpu) {
        await this.gpu.release(run.full.scope);
        run.full = null;
      }
    }
  }

  // ------------------------------------------------------------------------------------ dataset

  private async loadDataset(source: DatasetSource): Promise<void> {
    const name = source.kind === 'demo' ? 'tinyshakespeare.txt' : source.file.name;
    this.post({ type: 'datasetProgress', name, stage: 'Reading' });
    try {
      const file = source.kind === 'demo'
        ? await fetchDemoDataset()
        : { name: source.file.name, bytes: new Uint8Array(await source.file.arrayBuffer()) };
      this.post({ type: 'datasetProgress', name, stage: 'Parsing' });
      const candidate = await this.readDataset(file, source.kind === 'demo');
      if (this.model) this.post({ type: 'datasetProgress', name, stage: 'Tokenizing' });
      const preview = await this.preview(candidate);
      // A failed file never replaces a good one, so only now does the candidate become the dataset.
      this.dataset = candidate;
      this.post({ type: 'dataset', preview });
    } catch (err) {
      this.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  /** Parses the file once, keeping what detection and the mapping UI need (the tokenizer reads the file itself). */
  private async readDataset(file: { name: string; bytes: Uint8Array }, demo: boolean): Promise<DatasetState> {
    const read = await readRecords(file);
    if (read.records.length === 0) throw new Error(`${file.name}: no records found (the file is empty)`);
    const sample = read.records.slice(0, DETECTION_SAMPLE_ROWS);
    return {
      id: ++this.datasetSeq, name: file.name, bytes: file.bytes.length, digest: await fileDigest(file.bytes), demo, file, sample, rows: read.records.length,
      readWarnings: read.warnings, malformed: read.malformed, fields: fieldsOf(sample), override: AUTO_DETECT, cache: new Map(),
    };
  }

  /**
   * A new format choice for the current dataset. It only replaces the current choice once its preview
   * worked, so a wrong mapping reports its error and leaves the previous preview in use.
   */
  private async setDatasetFormat(override: DatasetFormatOverride): Promise<void> {
    const ds = this.dataset;
    if (!ds) return this.post({ type: 'error', scope: 'dataset', message: 'Load a dataset before choosing its format.' });
    const candidate: DatasetState = { ...ds, override, cache: new Map() };
    this.post({ type: 'datasetProgress', name: ds.name, stage: this.model ? 'Tokenizing' : 'Checking' });
    try {
      const preview = await this.preview(candidate);
      if (this.dataset !== ds) return; // another file was loaded meanwhile
      this.dataset = candidate;
      this.post({ type: 'dataset', preview });
    } catch (err) {
      this.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  private async refreshDatasetPreview(): Promise<void> {
    const ds = this.dataset;
    if (!ds) return;
    try {
      const preview = await this.preview(ds);
      if (this.dataset === ds) this.post({ type: 'dataset', preview });
    } catch (err) {
      this.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  /**
   * Auto-detection finding no format is not a failure: the preview says why (`unmatched`) and lists the
   * fields so the user can map them. A mapping the user chose that does not fit throws its specific error.
   */
  private async preview(ds: DatasetState): Promise<DatasetPreview> {
    const info: DatasetInfo = { name: ds.name, bytes: ds.bytes, digest: ds.digest, demo: ds.demo, fields: ds.fields, override: ds.override, unmatched: null };
    let spec: FormatSpec;
    try {
      spec = detectFormat(ds.sample, overrideOptions(ds.override));
    } catch (err) {
      const message = messageOf(err).startsWith(ds.name) ? messageOf(err) : `${ds.name}: ${messageOf(err)}`;
      if (!isAutoDetect(ds.override)) throw new Error(message);
      return untokenizedPreview({ ...info, unmatched: message }, ds.rows, null, {}, ds.readWarnings, ds.malformed);
    }
    const model = this.model;
    if (!model) return untokenizedPreview(info, ds.rows, spec.format, spec.columns, ds.readWarnings, ds.malformed);
    const loaded = await this.examples(ds, model, null);
    const fit = this.previewFit;
    return tokenizedPreview(info, loaded, previewTokenizer(model.loaded), fit && dataFit(fit.seq, fit.truncation, await this.fitted(ds, model, fit.seq, fit.truncation)));
  }

  /** The examples at a run's length, or why none is left, worded for the studio. */
  private async fitted(ds: DatasetState, model: ModelState, seq: number, truncation: Truncation): Promise<LoadedDataset | { problem: string }> {
    try {
      return await this.examples(ds, model, seq, truncation);
    } catch (err) {
      if (err instanceof NoSupervisedTokensError) return { problem: noSupervisedMessage(err, STUDIO_WORDING, model.card.maxPositions) };
      throw err;
    }
  }

  /**
   * Tokenized once per (model, sequence length, truncation, format choice); `seq` null keeps documents whole (for
   * the preview).
   */
  private examples(ds: DatasetState, model: ModelState, seq: number | null, truncation: Truncation = DEFAULT_TRUNCATION): Promise<LoadedDataset> {
    const key = `${model.epoch}:${seq ?? 'whole'}:${seq === null ? '' : truncation}:${JSON.stringify(ds.override)}`;
    let p = ds.cache.get(key);
    if (!p) {
      p = loadModelDataset(model.loaded, ds.file, { ...overrideOptions(ds.override), ...(seq === null ? {} : { seqLen: seq, truncation }) });
      ds.cache.set(key, p);
      p.catch(() => ds.cache.delete(key));
    }
    return p;
  }

  // ------------------------------------------------------------------------------------ runs

  private startRun(config: RunConfig, resume?: RunCheckpointData): void {
    const { id } = config;
    const model = this.model;
    const dataset = this.dataset;
    const fail = (message: string) => this.post({ type: 'runStatus', id, status: 'failed', message });
    if (!model) return fail('Load a model before starting a run.');
    if (!dataset) return fail('Load a dataset before starting a run.');
    const problem = configProblem(config, model.card);
    if (problem) return fail(problem);
    this.post({ type: 'runStatus', id, status: 'queued' });
    this.queue.push({
      urgent: false,
      runId: id,
      execute: () => this.train(config, model, dataset, resume),
      drop: () => this.post({ type: 'runStatus', id, status: 'cancelled', message: 'Cancelled before it started.' }),
    });
  }

  private cancelRun(id: string): void {
    if (this.queue.dropRun(id)) return;
    if (this.active?.id === id) {
      this.active.stop = true;
      this.post({ type: 'runStatus', id, status: 'training', stage: 'Stopping after the current step…' });
    }
  }

  private cancelAllRuns(message: string): void {
    for (const id of this.queue.waitingRunIds()) {
      this.queue.dropRun(id);
      this.post({ type: 'runStatus', id, status: 'cancelled', message });
    }
    if (this.active) {
      this.active.stop = true;
      this.post({ type: 'runStatus', id: this.active.id, status: 'training', stage: 'Stopping: another model was loaded…' });
    }
  }

  private async deleteRun(id: string): Promise<void> {
    if (this.active?.id === id) this.deleted.add(id);
    this.cancelRun(id);
    const run = this.trained.get(id);
    this.trained.delete(id);
    if (run?.full?.scope && this.gpu) await this.gpu.release(run.full.scope);
  }

  private async train(config: RunConfig, model: ModelState, dataset: DatasetState, resume?: RunCheckpointData): Promise<void> {
    const { id } = config;
    const control = (this.active = { id, stop: false });
    const status = (s: RunStatus, stage?: string, message?: string) => this.post({ type: 'runStatus', id, status: s, stage, message });
    let scope: BufferScope | null = null;
    let gpu: ScopedGpu | null = null;
    let keep = new Set<GPUBuffer>();
    let fullWeights: ModelWeights | null = null;
    try {
      if (this.model !== model) {
        status('cancelled', undefined, 'Cancelled: another model was loaded.');
        return;
      }
      gpu = await this.requireGpu();
      const weights = model.weights;
      if (!weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU.');
      const spec = weights.spec;
      status('preparing', `Tokenizing ${dataset.name} into ${config.seq}-token rows`);
      const truncation = config.truncation ?? DEFAULT_TRUNCATION;
      const fitted = await this.fitted(dataset, model, config.seq, truncation);
      this.post({ type: 'runData', id, data: dataFit(config.seq, truncation, fitted) });
      // Nothing left to learn at this length: refused before step 0, with what to change.
      if ('problem' in fitted) throw new Error(fitted.problem);
      const ds = fitted;
      scope = gpu.open(`run ${config.name}`);
      gpu.peakBytes = gpu.liveBytes;

      let runWeights = weights;
      if (config.method === 'full') {
        status('preparing', 'Copying the base weights (full fine-tuning trains its own copy)');
        runWeights = fullWeights = await ModelWeights.upload(gpu, spec, model.loaded.source, { storage: 'f32' });
        keep = new Set(runWeights.names().map((n) => runWeights.get(n).buffer));
      }
      const valCount = Math.min(config.valExamples, Math.floor(ds.examples.length / 2));
      const validationFraction = valCount > 0 ? valCount / ds.examples.length : 0;

      // A resumed run continues its counters (tokens and time on the charts' x axes) from the checkpoint.
      const t0 = performance.now() - (resume?.elapsedMs ?? 0);
      let tokens = resume?.tokens ?? 0;
      const offsetMs = resume?.elapsedMs ?? 0;
      let lastStepMs = 0;
      const recent: number[] = [];
      const onStep = (m: StepReport) => {
        if (m.step === (resume?.step ?? 0)) status('training');
        tokens += m.supervised;
        // Step 0 includes the first submit's driver work: the ETA averages the steps after it.
        if (m.step > (resume?.step ?? 0)) recent.push(m.elapsedMs - lastStepMs);
        if (recent.length > 10) recent.shift();
        lastStepMs = m.elapsedMs;
        const remaining = config.steps - m.step - 1;
        const meanStep = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : m.elapsedMs;
        this.post({
          type: 'runStep', id,
          point: {
            step: m.step, loss: m.loss, lr: m.lr, gradNorm: m.gradNorm, tokensPerSecond: m.tokensPerSecond, tokens, elapsedMs: offsetMs + m.elapsedMs,
            layerGradNorms: m.layerGradNorms,
          },
          progress: {
            stage: remaining === 0 && valCount > 0 ? 'Measuring the final validation loss' : 'Training',
            step: m.step + 1, steps: config.steps, etaMs: remaining * meanStep, gpuBytes: gpu!.liveBytes,
          },
        });
      };
      status('preparing', 'Building the training graph and compiling kernels');
      const running = trainRun(gpu, runWeights, model.loaded.tokenizer, ds.examples, {
        ...config.extras,
        method: config.method, rank: config.rank, alpha: config.alpha, seed: config.seed,
        targets: config.targets === 'all-linear' ? ['all-linear'] : [],
        steps: config.steps, batch: config.batch, seq: config.seq, lr: config.lr, warmupSteps: config.warmupSteps,
        weightDecay: 0, maxGradNorm: 1, minLrRatio: 0.1, validationFraction, evalEvery: config.evalEvery,
        packing: ds.format === 'text', recompute: config.recompute ?? 'none',
        // The UI keeps up to CHECKPOINT_LIMIT_BYTES of weights and AdamW moments per run: a full fine-tune of a
        // real model is not worth reading back every 10% of the run.
        checkpointEvery: config.method === 'full' && runWeights.parameterCount() * 12 > CHECKPOINT_LIMIT_BYTES ? 0 : Math.max(5, Math.ceil(config.steps / 10)),
        resume: resume ? { step: resume.step, state: resume.state } : undefined,
        wording: STUDIO_WORDING,
      }, {
        onPrepare: (p) => this.post({ type: 'runPrepare', id, phase: p.phase, done: p.done, total: p.total }),
        onWarning: (message) => this.post({ type: 'runWarning', id, message }),
        onMethod: (state) => this.post({ type: 'runAnalysis', id, analysis: state.analysis }),
        onStep,
        onCheckpoint: (c) => {
          const checkpoint: RunCheckpointData = { step: c.step, tokens, elapsedMs: offsetMs + lastStepMs, state: c.state };
          // The arrays share one readback buffer: transfer it once.
          const buffers = new Set(c.state.flatMap((t) => [t.param.buffer, t.m.buffer, t.v.buffer]) as ArrayBuffer[]);
          this.post({ type: 'runCheckpoint', id, checkpoint }, [...buffers]);
        },
        onEval: (step, r) => this.post({ type: 'runEval', id, point: { step, tokens, loss: r.loss } }),
        shouldStop: () => control.stop,
      });
      const result = await running;
      gpu.checkErrors(`Run "${config.name}"`);

      let adapter: AdapterSnapshot | null = null;
      if (result.state.method !== 'full' && result.steps > 0) {
        // PEFT's base_model_name_or_path: the Hub id when config.json names one, else the folder's name.
        const exported = await exportAdapter(gpu, spec, result.state, { baseModel: model.loaded.hubId ?? model.loaded.name, withLoraCopy: true });
        adapter = {
          modelKey: model.card.key, baseModel: model.loaded.name, spec, format: exported.format,
          config: exported.config, safetensors: writeSafetensors(exported.tensors),
        };
        if (exported.loraCopy) {
          adapter.asLora = { config: exported.loraCopy.config, safetensors: writeSafetensors(exported.loraCopy.tensors) };
        }
      }
      const trainableParams = result.state.analysis.trainableParameters;
      // Datasets with reference answers (not plain text): how many held-out answers the trained model gets exactly.
      let exact: { accuracy: number; total: number } | null = null;
      // Without tokenizer.json there is no text to compare: no exact match (the model card says so).
      if (ds.format !== 'text' && model.loaded.noTokenizer === null && result.validation.length > 0 && result.steps > 0 && result.stopReason !== 'non-finite') {
        const em = await exactMatch(gpu, runWeights, model.loaded.tokenizer, result.validation, {
          adapters: result.state.adapters, limit: EXACT_MATCH_EXAMPLES,
          onProgress: (done, total) => status('training', `Exact match on held-out answers ${done}/${total}`),
        });
        if (em) exact = { accuracy: em.accuracy, total: em.total };
      }
      const finalStatus: RunStatus = result.stopReason === 'stopped' ? 'cancelled' : result.stopReason === 'non-finite' ? 'failed' : 'done';
      const exportable = result.steps > 0 && !this.deleted.has(id);
      this.trained.set(id, {
        method: config.method, adapter, full: fullWeights && exportable ? { weights: fullWeights, scope: null, modelEpoch: model.epoch } : null,
      });
      if (!exportable) keep = new Set();
      this.post({
        type: 'runDone', id, status: finalStatus, adapter, exportable,
        summary: {
          steps: result.steps, stopReason: result.stopReason,
          message: result.stopReason === 'stopped' ? `Cancelled after ${result.steps} of ${config.steps} steps.` : result.message,
          initialValLoss: result.initialEval?.loss ?? null, finalValLoss: result.finalEval?.loss ?? null,
          trainableParams, elapsedMs: performance.now() - t0,
          // This session's steps only: a resumed run's earlier tokens took time before lastStepMs began.
          tokensPerSecond: lastStepMs > 0 ? (tokens - (resume?.tokens ?? 0)) / (lastStepMs / 1000) : 0, tokens,
          trainExamples: result.trainExamples, validationExamples: result.validationExamples, peakGpuBytes: gpu.peakBytes,
          exactMatch: exact, skippedBatches: result.skippedBatches,
        },
      });
    } catch (err) {
      keep = new Set();
      this.trained.delete(id);
      status('failed', undefined, this.failure(err, gpu));
    } finally {
      if (gpu && scope) {
        const kept = await gpu.release(scope, keep);
        const run = this.trained.get(id);
        if (run?.full) run.full.scope = kept;
      }
      if (this.active === control) this.active = null;
      if (this.deleted.delete(id)) this.trained.delete(id);
    }
  }

  // ------------------------------------------------------------------------------------ playground

  private generate(requestId: string, prompt: string, runIds: string[], includeBase: boolean, maxNewTokens: number): void {
    const model = this.model;
    const fail = (message: string) => {
      this.post({ type: 'error', scope: 'generate', requestId, message });
      this.post({ type: 'generationDone', requestId });
    };
    if (!model) return fail('Load a model to use the playground.');
    const sources: GenerationSource[] = [...(includeBase ? ['base' as const] : []), ...runIds.map((runId) => ({ runId }))];
    if (sources.length === 0) return fail('Pick the base model or at least one run.');
    if (model.loaded.noTokenizer !== null) {
      return fail(`${model.loaded.noTokenizer}: the playground encodes the prompt and decodes what the model writes.`);
    }
    this.queue.push({
      urgent: true,
      execute: async () => {
        let gpu: ScopedGpu;
        try {
          gpu = await this.requireGpu();
          if (!model.weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU yet.');
        } catch (err) {
          return fail(messageOf(err));
        }
        const tok = model.loaded.tokenizer;
        const promptIds = tok.encode(prompt, { addSpecial: true });
        if (promptIds.length === 0 || (prompt === '' && tok.bosId !== null && promptIds[0] !== tok.bosId)) {
          if (tok.bosId === null) return fail('The prompt is empty and this tokenizer has no BOS token to start from.');
          promptIds.unshift(tok.bosId);
        }
        const room = model.card.maxPositions - promptIds.length;
        if (room <= 0) return fail(`The prompt is ${promptIds.length} tokens; this model reads at most ${model.card.maxPositions}.`);
        const head = tok.decode(promptIds, { skipSpecial: true });
        const textOf = (ids: number[]) => {
          // Decode with the prompt so word boundaries come out as in one piece, then cut the prompt off.
          const full = tok.decode([...promptIds, ...ids], { skipSpecial: true });
          return full.startsWith(head) ? full.slice(head.length) : tok.decode(ids, { skipSpecial: true });
        };
        for (const source of sources) {
          const t0 = performance.now();
          const send = (r: Omit<GenerationResult, 'source' | 'ms'>) =>
            this.post({ type: 'generation', requestId, result: { source, ms: performance.now() - t0, ...r } });
          const scope = gpu.open('generate');
          try {
            const { weights, adapters } = await this.generationModel(source, model, gpu);
            const ids: number[] = [];
            send({ text: '', tokens: 0, done: false });
            await new Generator(gpu, weights, adapters).greedy(promptIds, {
              maxNewTokens: Math.min(maxNewTokens, room),
              stopId: tok.eosId,
              onToken: (tokenId) => {
                ids.push(tokenId);
                send({ text: textOf(ids), tokens: ids.length, done: false });
              },
            });
            gpu.checkErrors('Generation');
            send({ text: textOf(ids), tokens: ids.length, done: true });
          } catch (err) {
            send({ text: '', tokens: 0, done: true, error: this.failure(err, gpu) });
          } finally {
            await gpu.release(scope);
          }
        }
        this.post({ type: 'generationDone', requestId });
      },
    });
  }

  private async generationModel(source: GenerationSource, model: ModelState, gpu: ScopedGpu) {
    const weights = model.weights!;
    if (source === 'base') return { weights, adapters: undefined };
    const run = this.trained.get(source.runId);
    if (!run) throw new Error('This run has no trained weights (it failed, or was trained before weights were kept).');
    if (run.full) {
      if (run.full.modelEpoch !== model.epoch) throw new Error('This full fine-tune belongs to a model that is no longer loaded.');
      return { weights: run.full.weights, adapters: undefined };
    }
    if (!run.adapter) throw new Error(run.method === 'full'
      ? 'Full fine-tunes are kept on the GPU only until the page is reloaded or another model is loaded; train it again to generate.'
      : 'This run has no adapter weights.');
    if (run.adapter.modelKey !== model.card.key) {
      throw new Error(`This adapter was trained on ${run.adapter.baseModel}; load that model to generate with it.`);
    }
    const store = await openSafetensors(bytesSource('adapter_model.safetensors', run.adapter.safetensors));
    const loaded = await loadPeftAdapter(gpu, model.loaded.spec, run.adapter.config, store, 'the run\'s adapter');
    return { weights: await weights.withReplacements(gpu, loaded.baseWeights), adapters: loaded.adapters };
  }

  // ------------------------------------------------------------------------------------ benchmark

  /**
   * What `npm run bench` measures (matmul GFLOP/s and the LoRA step beside jax-js and TensorFlow.js, every method's
   * training step, per-kernel time), in this tab (bench.ts). A GPU job queued behind waiting runs, so it never shares
   * the GPU with training.
   */
  private runBench(): void {
    const model = this.model;
    if (!model) return this.post({ type: 'error', scope: 'bench', message: 'Load a model (or the demo) before running the benchmark.' });
    this.post({ type: 'benchProgress', stage: 'Waiting for the GPU' });
    this.queue.push({ urgent: false, execute: () => this.bench(model) });
  }

  private async bench(model: ModelState): Promise<void> {
    let gpu: ScopedGpu | null = null;
    let scope: BufferScope | null = null;
    let mark: ReadonlySet<GPUBuffer> | null = null;
    try {
      if (this.model !== model) throw new Error('Another model was loaded meanwhile; run the benchmark again.');
      gpu = await this.requireGpu();
      scope = gpu.open('bench');
      mark = gpu.mark();
      const result = await runStudioBench(gpu, model.loaded, model.card.maxPositions, {
        stage: (stage) => this.post({ type: 'benchProgress', stage }),
        partial: (partial) => this.post({ type: 'benchPartial', result: partial }),
      });
      this.post({ type: 'benchResult', result });
      if (result.tune && this.gpuInfo) this.post({ type: 'gpu', info: (this.gpuInfo = { ...this.gpuInfo, matmul: result.tune.summary, splitScratchBytes: listScratchBytes(gpu.device) }) });
    } catch (err) {
      this.post({ type: 'error', scope: 'bench', message: this.failure(err, gpu) });
    } finally {
      if (gpu) {
        try {
          if (mark) await gpu.freeSince(mark);
        } catch {
          // A lost device: release() below still drops the buffers.
        }
        if (scope) await gpu.release(scope);
      }
    }
  }

  // ------------------------------------------------------------------------------------ export

  private async exportRun(id: string, name: string, asLora: boolean): Promise<void> {
    const fail = (message: string) => this.post({ type: 'error', scope: 'export', id, message });
    const run = this.trained.get(id);
    if (!run) return fail(`"${name}" has no trained weights to export.`);
    if (run.adapter) {
      try {
        const { fileName, bytes } = adapterZip(name, run.adapter, asLora);
        this.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
      } catch (err) {
        fail(messageOf(err));
      }
      return;
    }
    const full = run.full;
    const model = this.model;
    if (!full || !model || full.modelEpoch !== model.epoch) {
      return fail('Full fine-tunes stay on the GPU only while their base model is loaded; this one is gone. Train it again to export it.');
    }
    this.queue.push({
      urgent: true,
      execute: async () => {
        try {
          const gpu = await this.requireGpu();
          const files = await mergedModelFiles(gpu, full.weights);
          for (const f of CONFIG_FILES) if (model.dir.list().includes(f)) files[f] = await model.dir.text(f);
          const { fileName, bytes } = mergedZip(name, files);
          this.post({ type: 'export', id, fileName, bytes }, [bytes.buffer]);
        } catch (err) {
          fail(messageOf(err));
        }
      },
    });
  }
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The override as data/ takes it: absent fields mean "detect". */
function overrideOptions(override: DatasetFormatOverride): Pick<LoadOptions, 'format' | 'columns' | 'promptJoin'> {
  return { ...(override.format ? { format: override.format } : {}), columns: override.columns, ...(override.promptJoin ? { promptJoin: override.promptJoin } : {}) };
}

function isAutoDetect(override: DatasetFormatOverride): boolean {
  return override.format === null && Object.values(override.columns).every((field) => !field);
}

/** Every field name of the records, in first-seen order. */
function fieldsOf(records: RawRecord[]): string[] {
  const fields = new Set<string>();
  for (const record of records) for (const key of Object.keys(record)) fields.add(key);
  return [...fields];
}
