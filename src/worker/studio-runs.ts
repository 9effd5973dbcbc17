/**
 * The studio's runs: the queue of training runs, training one (with checkpoints, exact match and the adapter it
 * leaves behind), cancelling and deleting them, and the trained adapters handed back after a reload.
 */
import { STUDIO_FIXED, studioCheckpointEvery } from '../engine/run-spec';
import { DEFAULT_TRUNCATION, type LoadedDataset } from '../data/index';
import { trainRun, type StepReport, type TrainRunOptions } from '../engine/train-run';
import { STUDIO_WORDING } from '../engine/wording';
import { ModelWeights } from '../model/weights';
import { exactMatch } from '../train/exact-match';
import { dataFit } from './dataset-preview';
import { upgradeSnapshot } from './export-files';
import type { Command, RunCheckpointData, RunConfig, RunStatus } from './protocol';
import { CHECKPOINT_LIMIT_BYTES } from './protocol';
import type { BufferScope, ScopedGpu } from './scoped-gpu';
import { adapterSnapshot } from './adapter-snapshot';
import type { DatasetState, ModelState, StudioState } from './studio-context';
import type { StudioDataset } from './studio-dataset';
import type { StudioDevice } from './studio-device';
import type { ResumePoint } from './device-loss';
import { configProblem, gradAccumOf } from './validate';

/** Held-out examples greedy-answered for the exact-match column (KV-cached greedy decoding: one pass per token). */
const EXACT_MATCH_EXAMPLES = 64;

export class StudioRuns {
  private active: { id: string; stop: boolean } | null = null;
  /** Runs removed while training: their results are dropped when they stop. */
  private readonly deleted = new Set<string>();

  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
    private readonly dataset: StudioDataset,
  ) {}

  /** `ahead`: before the runs waiting (a run a GPU loss cut off, see studio-device.ts). */
  startRun(config: RunConfig, resume?: RunCheckpointData, opts: { ahead?: boolean } = {}): void {
    const { id } = config;
    const model = this.studio.model;
    const dataset = this.studio.dataset;
    const fail = (message: string) => this.studio.post({ type: 'runStatus', id, status: 'failed', message });
    if (!model) return fail('Load a model before starting a run.');
    if (!dataset) return fail('Load a dataset before starting a run.');
    const problem = configProblem(config, model.card);
    if (problem) return fail(problem);
    this.studio.post({ type: 'runStatus', id, status: 'queued' });
    this.studio.queue.push({
      urgent: false,
      ahead: opts.ahead,
      runId: id,
      execute: () => this.train(config, model, dataset, resume),
      drop: () =>
        this.studio.post({ type: 'runStatus', id, status: 'cancelled', message: 'Cancelled before it started.' }),
    });
  }

  cancelRun(id: string): void {
    if (this.studio.queue.dropRun(id)) return;
    if (this.active?.id === id) {
      this.active.stop = true;
      this.studio.post({ type: 'runStatus', id, status: 'training', stage: 'Stopping after the current step…' });
    }
  }

  cancelAllRuns(message: string): void {
    for (const id of this.studio.queue.waitingRunIds()) {
      this.studio.queue.dropRun(id);
      this.studio.post({ type: 'runStatus', id, status: 'cancelled', message });
    }
    if (this.active) {
      this.active.stop = true;
      this.studio.post({
        type: 'runStatus',
        id: this.active.id,
        status: 'training',
        stage: 'Stopping: another model was loaded…',
      });
    }
  }

  async deleteRun(id: string): Promise<void> {
    if (this.active?.id === id) this.deleted.add(id);
    this.cancelRun(id);
    const run = this.studio.trained.get(id);
    this.studio.trained.delete(id);
    if (run?.full?.scope && this.device.gpu) await this.device.gpu.release(run.full.scope);
  }

  /** Adapters kept in IndexedDB, after a reload: export and the playground use them as if just trained. */
  restoreAdapters(adapters: Extract<Command, { type: 'restoreAdapters' }>['adapters']): void {
    for (const { id, method, adapter } of adapters) {
      if (!this.studio.trained.has(id))
        this.studio.trained.set(id, { method, adapter: upgradeSnapshot(adapter), full: null });
    }
  }

  private async train(
    config: RunConfig,
    model: ModelState,
    dataset: DatasetState,
    resume?: RunCheckpointData,
  ): Promise<void> {
    const { id } = config;
    const control = (this.active = { id, stop: false });
    const status = (s: RunStatus, stage?: string, message?: string) =>
      this.studio.post({ type: 'runStatus', id, status: s, stage, message });
    let scope: BufferScope | null = null;
    let gpu: ScopedGpu | null = null;
    let keep = new Set<GPUBuffer>();
    let fullWeights: ModelWeights | null = null;
    // Where a lost GPU device lets the run continue from (studio-device.ts).
    const resumePoint: ResumePoint = { reached: resume?.step ?? 0, checkpoint: resume };
    try {
      if (this.studio.model !== model) {
        status('cancelled', undefined, 'Cancelled: another model was loaded.');
        return;
      }
      gpu = await this.device.requireGpu();
      const weights = model.weights;
      if (!weights) throw new Error(model.uploadError ?? 'The model weights are not on the GPU.');
      const spec = weights.spec;
      status('preparing', `Tokenizing ${dataset.name} into ${config.seq}-token rows`);
      const truncation = config.truncation ?? DEFAULT_TRUNCATION;
      const fitted = await this.dataset.fitted(dataset, model, config.seq, truncation);
      this.studio.post({ type: 'runData', id, data: dataFit(config.seq, truncation, fitted) });
      // Nothing left to learn at this length: refused before step 0, with what to change.
      if ('problem' in fitted) throw new Error(fitted.problem);
      const ds = fitted;
      scope = gpu.open(`run ${config.name}`);
      gpu.peakBytes = gpu.liveBytes;

      let runWeights = weights;
      if (config.method === 'full') {
        status('preparing', 'Copying the base weights (full fine-tuning trains its own copy)');
        runWeights = fullWeights = await ModelWeights.upload(gpu, spec, model.loaded.source, { storage: 'f32' });
        keep = new Set(runWeights.allTensors().map((t) => t.buffer));
      }
      const options = trainOptionsOf(config, ds, runWeights, resume);

      // A resumed run continues its counters (tokens and time on the charts' x axes) from the checkpoint.
      const t0 = performance.now() - (resume?.elapsedMs ?? 0);
      let tokens = resume?.tokens ?? 0;
      const offsetMs = resume?.elapsedMs ?? 0;
      let lastStepMs = 0;
      const recent: number[] = [];
      const onStep = (m: StepReport) => {
        // The preparation's last stage ("Building the training graph") is over: the card must not keep saying it.
        if (m.step === (resume?.step ?? 0)) status('training', 'Training');
        resumePoint.reached = m.step + 1;
        tokens += m.supervised;
        // Step 0 includes the first submit's driver work: the ETA averages the steps after it.
        if (m.step > (resume?.step ?? 0)) recent.push(m.elapsedMs - lastStepMs);
        if (recent.length > 10) recent.shift();
        lastStepMs = m.elapsedMs;
        const remaining = config.steps - m.step - 1;
        const meanStep = recent.length ? recent.reduce((a, b) => a + b, 0) / recent.length : m.elapsedMs;
        this.studio.post({
          type: 'runStep',
          id,
          point: {
            step: m.step,
            loss: m.loss,
            lr: m.lr,
            gradNorm: m.gradNorm,
            tokensPerSecond: m.tokensPerSecond,
            tokens,
            elapsedMs: offsetMs + m.elapsedMs,
            layerGradNorms: m.layerGradNorms,
          },
          progress: {
            stage:
              remaining === 0 && options.validationFraction > 0 ? 'Measuring the final validation loss' : 'Training',
            step: m.step + 1,
            steps: config.steps,
            etaMs: remaining * meanStep,
            gpuBytes: gpu!.liveBytes,
          },
        });
      };
      status('preparing', 'Building the training graph and compiling kernels');
      const running = trainRun(gpu, runWeights, model.loaded.tokenizer, ds.examples, options, {
        onPrepare: (p) => this.studio.post({ type: 'runPrepare', id, phase: p.phase, done: p.done, total: p.total }),
        onWarning: (message) => this.studio.post({ type: 'runWarning', id, message }),
        onMethod: (state) => this.studio.post({ type: 'runAnalysis', id, analysis: state.analysis }),
        onSnapshot: (snapshot) => this.studio.post({ type: 'runSnapshot', id, snapshot }),
        onStep,
        onCheckpoint: (c) => {
          const checkpoint: RunCheckpointData = {
            step: c.step,
            tokens,
            elapsedMs: offsetMs + lastStepMs,
            state: c.state,
          };
          // Posted as a copy, not transferred: the worker keeps it to resume from after a GPU loss.
          resumePoint.checkpoint = checkpoint;
          this.studio.post({ type: 'runCheckpoint', id, checkpoint });
        },
        onEval: (step, r) => this.studio.post({ type: 'runEval', id, point: { step, tokens, loss: r.loss } }),
        shouldStop: () => control.stop,
      });
      const result = await running;
      gpu.checkErrors(`Run "${config.name}"`);

      const adapter = result.steps > 0 ? await adapterSnapshot(gpu, model, spec, result.state) : null;
      const trainableParams = result.state.analysis.trainableParameters;
      // Datasets with reference answers (not plain text): how many held-out answers the trained model gets exactly.
      let exact: { accuracy: number; total: number } | null = null;
      // Without tokenizer.json there is no text to compare: no exact match (the model card says so).
      if (
        ds.format !== 'text' &&
        model.loaded.noTokenizer === null &&
        result.validation.length > 0 &&
        result.steps > 0 &&
        result.stopReason !== 'non-finite'
      ) {
        const em = await exactMatch(gpu, runWeights, model.loaded.tokenizer, result.validation, {
          adapters: result.state.adapters,
          limit: EXACT_MATCH_EXAMPLES,
          onProgress: (done, total) => status('training', `Exact match on held-out answers ${done}/${total}`),
        });
        if (em) exact = { accuracy: em.accuracy, total: em.total };
      }
      const finalStatus: RunStatus =
        result.stopReason === 'stopped' ? 'cancelled' : result.stopReason === 'non-finite' ? 'failed' : 'done';
      const exportable = result.steps > 0 && !this.deleted.has(id);
      this.studio.trained.set(id, {
        method: config.method,
        adapter,
        full: fullWeights && exportable ? { weights: fullWeights, scope: null, modelEpoch: model.epoch } : null,
      });
      if (!exportable) keep = new Set();
      this.studio.post({
        type: 'runDone',
        id,
        status: finalStatus,
        adapter,
        exportable,
        summary: {
          steps: result.steps,
          stopReason: result.stopReason,
          message:
            result.stopReason === 'stopped'
              ? `Cancelled after ${result.steps} of ${config.steps} steps.`
              : result.message,
          initialValLoss: result.initialEval?.loss ?? null,
          finalValLoss: result.finalEval?.loss ?? null,
          trainableParams,
          elapsedMs: performance.now() - t0,
          // This session's steps only: a resumed run's earlier tokens took time before lastStepMs began.
          tokensPerSecond: lastStepMs > 0 ? (tokens - (resume?.tokens ?? 0)) / (lastStepMs / 1000) : 0,
          tokens,
          trainExamples: result.trainExamples,
          validationExamples: result.validationExamples,
          peakGpuBytes: gpu.peakBytes,
          exactMatch: exact,
          skippedBatches: result.skippedBatches,
        },
      });
    } catch (err) {
      keep = new Set();
      this.studio.trained.delete(id);
      if (!control.stop && (await this.device.resumeAfterLoss(err, gpu, config, resumePoint))) return;
      status('failed', undefined, this.device.failure(err, gpu));
    } finally {
      if (gpu && scope) {
        const kept = await gpu.release(scope, keep);
        const run = this.studio.trained.get(id);
        if (run?.full) run.full.scope = kept;
      }
      if (this.active === control) this.active = null;
      if (this.deleted.delete(id)) this.studio.trained.delete(id);
    }
  }
}

/**
 * The studio's run configuration as trainRun's options: the one place where its fields become the engine's.
 * `ds` is the run's examples at its length (their count caps the validation split, plain text is packed);
 * `runWeights` the weights it trains (a full fine-tune's size decides whether checkpoints are read back).
 */
export function trainOptionsOf(
  config: RunConfig,
  ds: LoadedDataset,
  runWeights: ModelWeights,
  resume?: RunCheckpointData,
): TrainRunOptions {
  const valCount = Math.min(config.valExamples, Math.floor(ds.examples.length / 2));
  const validationFraction = valCount > 0 ? valCount / ds.examples.length : 0;
  return {
    ...config.extras,
    method: config.method,
    rank: config.rank,
    alpha: config.alpha,
    seed: config.seed,
    targets: config.targets === 'all-linear' ? ['all-linear'] : [],
    steps: config.steps,
    batch: config.batch,
    gradAccum: gradAccumOf(config),
    seq: config.seq,
    lr: config.lr,
    warmupSteps: config.warmupSteps,
    ...STUDIO_FIXED,
    validationFraction,
    evalEvery: config.evalEvery,
    packing: ds.format === 'text',
    recompute: config.recompute ?? 'none',
    // The UI keeps up to CHECKPOINT_LIMIT_BYTES of weights and AdamW moments per run: a full fine-tune of a
    // real model is not worth reading back every 10% of the run.
    checkpointEvery:
      config.method === 'full' && runWeights.parameterCount() * 12 > CHECKPOINT_LIMIT_BYTES
        ? 0
        : studioCheckpointEvery(config.steps),
    resume: resume ? { step: resume.step, state: resume.state } : undefined,
    wording: STUDIO_WORDING,
  };
}
