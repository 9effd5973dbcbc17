/**
 * The typed message protocol between the UI (main thread) and the training worker, which owns the
 * GPUDevice. Both directions are discriminated unions on `type`; everything here is structured-cloneable
 * (File objects travel by reference, export bytes are transferred).
 */
import type { AdapterFormat } from '../adapters/options';
import type { LoraModuleWeights } from '../adapters/lora/peft';
import type { ColumnMap, DatasetFormat } from '../data/types';
import type { PromptJoin, Truncation } from '../data/index';
import type { MethodAnalysis, MethodSnapshot } from '../engine/methods';
import type { TrainableState } from '../train/trainer';
import type { ModelSpec } from '../model/config';
import type { Recompute } from '../model/recompute';
import type { WeightStorage } from '../model/weights';
import type { SamplingSettings } from '../model/sampling';
import type { MatmulResult } from '../bench/matmul';
import type { GgufDtype, MergedDtype } from '../export/merged-model';
import type { MethodBenchResult } from '../bench/methods';
import type { PeerId } from '../bench/peers';
import type { KernelTime } from '../bench/profile';
import type { TrainBenchResult } from '../bench/train';
import type { Experiment, ExperimentResults, ExperimentRunResult } from '../experiment/types';

// ------------------------------------------------------------------------------------ shared data

/** Every method the registry knows (src/adapters/registry.ts). */
export type { MethodId } from '../adapters/registry';
import type { MethodId, MethodOptionValues } from '../adapters/registry';

/** A method's own options (structure for GoRA/GeLoRA ranks, GraLoRA's k and hybrid rank, GoRA's N and γ, ...). */
export type MethodExtras = MethodOptionValues;
/** 'qv': PEFT's default targets for the family (q_proj,v_proj / c_attn); 'all-linear': every projection. */
export type TargetPreset = 'qv' | 'all-linear';

export interface RunConfig {
  id: string;
  name: string;
  method: MethodId;
  rank: number;
  alpha: number;
  targets: TargetPreset;
  lr: number;
  steps: number;
  /** Sequences per micro-batch (one forward and backward pass). */
  batch: number;
  /** Micro-batches per optimizer step: the effective batch is batch x gradAccum (absent: 1, as runs saved before it). */
  gradAccum?: number;
  seq: number;
  warmupSteps: number;
  /** Held-out examples for validation loss (0 = none). Capped so evaluation stays cheap. */
  valExamples: number;
  /** Evaluate every N steps (0 = only at the start and the end). */
  evalEvery: number;
  seed: number;
  /**
   * Recompute activations in the backward pass instead of keeping them (absent: 'none'): each block's MLP ('mlp'), or
   * whole blocks from their saved inputs ('block').
   */
  recompute?: Recompute;
  /** How examples longer than `seq` are cut (absent: 'keep-answer'); plain text is split into pieces instead. */
  truncation?: Truncation;
  /** Method-specific options; absent fields take the method's defaults. */
  extras?: MethodExtras;
}

export type RunStatus =
  | 'draft'
  | 'queued'
  | 'preparing'
  | 'training'
  | 'done'
  | 'cancelled'
  | 'failed'
  /** The page was closed or reloaded while the run was queued or training. */
  | 'interrupted';

export interface GpuInfo {
  description: string;
  vendor: string;
  architecture: string;
  /** A CPU implementation (SwiftShader, lavapipe): everything works, slowly. */
  software: boolean;
  f16: boolean;
  subgroups: boolean;
  /** The matmul kernels the autotune picked for this adapter, in words. */
  matmul: string;
  /** Split-K partials each recorded command list holds under that choice (0 when nothing splits). */
  splitScratchBytes: number;
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface ModelCard {
  /** Identifies the architecture (name + shapes): adapters trained on one model only fit that model. */
  key: string;
  name: string;
  format: 'huggingface' | 'llama2c';
  demo: boolean;
  files: string[];
  modelType: string;
  family: ModelSpec['family'];
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocabSize: number;
  maxPositions: number;
  tiedEmbeddings: boolean;
  parameters: number;
  /** Bytes of the base weights on the GPU: 16-bit checkpoints keep their matrices 16-bit (model/weights.ts). */
  weightBytes: number;
  /** The precisions they are stored in, most bytes first (e.g. ['bf16', 'f32']: norms stay f32). */
  weightDtypes: string[];
  /** The storage choice they were uploaded under (absent in cards saved before it existed: auto). */
  weightStorage?: WeightStorage;
  /** A pre-quantized checkpoint, e.g. "4-bit (bitsandbytes NF4, double quantization)"; absent otherwise. */
  quantized?: string;
  tokenizer: { vocabSize: number; bos: string | null; eos: string | null; chatTemplate: boolean };
  warnings: string[];
  spec: ModelSpec;
}

export interface PreviewSegment {
  text: string;
  /** Tokens the loss is computed on (label != -100). */
  supervised: boolean;
}

/** The user's format choice for the dataset: a null format auto-detects; columns rename fields per role. */
export interface DatasetFormatOverride {
  format: DatasetFormat | null;
  columns: ColumnMap;
  /** Prompt/completion: what goes between them (absent: nothing, as TRL). */
  promptJoin?: PromptJoin;
}

/** What a sequence length and truncation make of the dataset's examples. */
export interface DataFit {
  seq: number;
  truncation: Truncation;
  /** Examples kept (text: pieces of at most `seq` tokens). */
  examples: number;
  /** Examples longer than `seq` (text: documents split into pieces). */
  truncated: number;
  /** Examples left with no supervised token after truncation: not trained on. */
  dropped: number;
  /** Tokens and supervised tokens (those the loss counts) of the kept examples; absent in runs saved before them. */
  tokens?: number;
  supervisedTokens?: number;
  /** Why no example is left (the run is refused), worded for the studio; null when some are. */
  problem: string | null;
}

export interface DatasetPreview {
  name: string;
  bytes: number;
  /** Size and SHA-256 of the file: what a resumed run compares. */
  digest: string;
  demo: boolean;
  /** Null when no format matches the fields (see `unmatched`): the user has to map the columns. */
  format: DatasetFormat | null;
  columns: Record<string, string>;
  rows: number;
  examples: number;
  tokens: number;
  supervisedTokens: number;
  skipped: number;
  /** At the sequence length and truncation of the run being configured (null before a model is loaded). */
  fit: DataFit | null;
  /** Chat: assistant turns, and those that render empty with the template (never supervised). */
  assistantTurns: number;
  emptyTurns: number;
  warnings: string[];
  /** The first few examples, decoded, split where supervision switches on or off. */
  samples: { segments: PreviewSegment[]; tokens: number; supervised: number }[];
  /** Token lengths of the examples. */
  histogram: { from: number; to: number; count: number }[];
  tokenized: boolean;
  /** Field names of the first records: the choices when mapping columns. */
  fields: string[];
  /** The format choice this preview was made with. */
  override: DatasetFormatOverride;
  /** Why auto-detection found no format (the records are kept so the user can map them); null otherwise. */
  unmatched: string | null;
}

export interface StepPoint {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  /** Gradient norm per transformer block (before clipping). */
  layerGradNorms?: number[];
  /** Supervised tokens seen so far, this step included. */
  tokens: number;
  elapsedMs: number;
}

export interface EvalPoint {
  step: number;
  tokens: number;
  loss: number;
}

export interface RunProgress {
  stage: string;
  step: number;
  steps: number;
  etaMs: number | null;
  /** GPU memory held by the worker right now (base weights + this run). */
  gpuBytes: number;
}

export interface RunSummary {
  steps: number;
  stopReason: 'done' | 'non-finite' | 'stopped';
  message: string | null;
  initialValLoss: number | null;
  finalValLoss: number | null;
  trainableParams: number;
  elapsedMs: number;
  /** Supervised tokens per second over the whole run. */
  tokensPerSecond: number;
  tokens: number;
  trainExamples: number;
  validationExamples: number;
  peakGpuBytes: number;
  /** Greedy answers equal to the reference on held-out supervised examples (null: plain text, or none held out). */
  exactMatch?: { accuracy: number; total: number } | null;
  /** Steps whose batch had no supervised token: no update was made. */
  skippedBatches?: number;
}

/**
 * A trained adapter on the CPU, as the PEFT folder it exports to: enough to export it or rebuild it on the
 * GPU after a reload (the import path is the one Python-written adapters take).
 */
export interface AdapterSnapshot {
  modelKey: string;
  baseModel: string;
  spec: ModelSpec;
  format: AdapterFormat;
  /** adapter_config.json */
  config: Record<string, unknown>;
  /** adapter_model.safetensors */
  safetensors: Uint8Array;
  /** GraLoRA only: the exactly equivalent plain LoRA folder (rank k·r + hybrid_r), for tools that only know LoRA. */
  asLora?: { config: Record<string, unknown>; safetensors: Uint8Array };
  /** A method's raw save beside its default export (MethodDescriptor.rawExport: PiSSA's default PEFT save). */
  raw?: { config: Record<string, unknown>; safetensors: Uint8Array; what: string };
}

/** An adapter run's second export: GraLoRA as plain LoRA, or a method's raw save. */
export type ExportVariant = 'lora' | 'raw';

/** A run exported as a whole model: the base with the run folded in, as a safetensors folder or one GGUF file. */
export type ExportTarget = { format: 'merged'; dtype: MergedDtype } | { format: 'gguf'; dtype: GgufDtype };

/** The snapshot format of the first releases (dense LoRA modules), still found in IndexedDB. */
export interface LegacyAdapterSnapshot {
  modelKey: string;
  baseModel: string;
  spec: ModelSpec;
  alpha: number;
  rslora: boolean;
  modules: LoraModuleWeights[];
}

/**
 * A run's resumable state, sent every ~10% of its steps and kept in IndexedDB: after a reload or a lost GPU
 * the run continues from here with the same batches, learning rate and optimizer moments.
 */
/** Bigger states (full fine-tunes of real models) would cost an IndexedDB write of that size every 10% of a run. */
export const CHECKPOINT_LIMIT_BYTES = 64 * 2 ** 20;

export interface RunCheckpointData {
  /** Steps completed. */
  step: number;
  /** Supervised tokens and wall time up to this step (the charts' x axes continue from them). */
  tokens: number;
  elapsedMs: number;
  state: TrainableState[];
}

/** Base model or a run: who produced a generation. */
export type GenerationSource = 'base' | { runId: string };

export interface GenerationResult {
  source: GenerationSource;
  text: string;
  tokens: number;
  ms: number;
  done: boolean;
  error?: string;
  /** Why it ended (when done): EOS or the end of a chat turn, a stop string, the token limit, or the Stop button. */
  finish?: 'eos' | 'stop-string' | 'length' | 'stopped';
}

/** One exchange of a playground chat: the user's message and the answer of each source ('base' or a run id). */
export interface ChatTurn {
  user: string;
  replies: Record<string, string>;
}

/** Playground chat: a system prompt (empty: none) and the turns before the new user message. */
export interface ChatRequest {
  system: string;
  turns: ChatTurn[];
}

/** One matmul shape of the in-browser benchmark: ours and every peer that started, in the same interleaved trials. */
export interface BenchMatmulRow {
  label: string;
  M: number;
  K: number;
  N: number;
  /** One per implementation (`impl`: 'ours', then the peers' names); a failed one carries its error. */
  results: MatmulResult[];
}

/** A peer library measured beside ours; `error` says why it could not start (its column shows it). */
export interface BenchPeer {
  id: PeerId;
  name: string;
  error: string | null;
}

/** The matmul autotune as the benchmark ran it on this adapter: ms per product per kernel and shape class. */
export interface BenchTune {
  /** The kernel chosen per class (choiceLabel: 'tiled-128', 'register+split-k'). */
  chosen: { wide: string; narrow: string };
  /** null: the kernel's spot-checked product was wrong, so it could not be chosen. */
  timings: { wide: Record<string, number | null>; narrow: Record<string, number | null> };
  /** The products of each class, in words. */
  shapes: { wide: string; narrow: string };
  tuneMs: number;
  /** One line, as the GPU badge shows it. */
  summary: string;
  error?: string;
}

/**
 * What `npm run bench` measures, in this tab, on its adapter: ours beside jax-js and TensorFlow.js. Sent whole at
 * the end and, while it runs, as it grows (benchPartial): sections fill in row by row.
 */
export interface BenchResult {
  adapter: string;
  software: boolean;
  modelName: string;
  /** Our matmul kernels timed against each other (the autotune, run again); null until measured. */
  tune: BenchTune | null;
  /** The peers, in column order, as soon as they have been loaded (empty before). */
  peers: BenchPeer[];
  /** The matmul rows to expect (the table shows the ones measured so far). */
  matmulShapes: number;
  matmul: BenchMatmulRow[];
  /** Our best correct matmul GFLOP/s: MFU is measured against it. */
  peakGflops: number | null;
  /** The same LoRA training step, ours then jax-js' autodiff version, on the same batches. */
  loraStep: TrainBenchResult[];
  methods: MethodBenchResult[];
  /** Per-kernel GPU time of one LoRA step (null without timestamp queries). */
  kernels: KernelTime[] | null;
  /** The profiled step's configuration. */
  profile: { label: string; rank: number; batch: number; seq: number } | null;
  elapsedMs: number;
}

// ------------------------------------------------------------------------------------ experiments

/** An experiment's definition as its JSON file (experimentToJson): the same schema the CLI reads. */
export type ExperimentJson = Record<string, unknown>;

/**
 * The id a finished experiment run's adapter is kept under (the worker's trained runs, the page's IndexedDB):
 * "<experiment id>:<run key>", so an experiment's adapters are found and deleted by their prefix.
 */
export function experimentAdapterId(experimentId: string, runKey: string): string {
  return `${experimentId}:${runKey}`;
}

/** One configuration's trainable parameters against the reference LoRA's (budget.ts's budgetTable). */
export interface ExperimentBudgetRow {
  name: string;
  params: number;
  /** 'exact': counted from its ranks; 'budget': a method that allocates ranks, counted at its budget. */
  kind: 'exact' | 'budget';
  ratio: number;
  /** Outside ±5% of the reference. */
  flagged: boolean;
}

export interface ExperimentBudget {
  referenceParams: number;
  rows: ExperimentBudgetRow[];
}

/** A run of the grid as the panel lists it: `key` identifies it (runs/<name>/lr<lr>/seed<seed>). */
export interface ExperimentRunRef {
  key: string;
  name: string;
  method: MethodId;
  lr: number;
  seed: number;
}

/** What the worker planned, before the first run: the grid, the split and the budget (ranks matched). */
export interface ExperimentPlanInfo {
  runs: ExperimentRunRef[];
  splitSizes: { train: number; validation: number; test: number };
  budget: ExperimentBudget;
  /** The definition with every rank matched to the budget: what the runs train (and the summary reads). */
  experiment: Experiment;
}

/** The run training now: its step (or preparation phase) and loss, throttled to a few reports a second. */
export interface ExperimentStepInfo {
  key: string;
  step: number;
  steps: number;
  loss: number | null;
  /** Set while the method prepares (GoRA's gradients, GeLoRA's hidden states, compiling). */
  phase: string | null;
  elapsedMs: number;
}

// ------------------------------------------------------------------------------------ commands

export type ModelSource = { kind: 'files'; files: File[]; name?: string } | { kind: 'demo' };
export type DatasetSource = { kind: 'file'; file: File } | { kind: 'demo' };

export type Command =
  /** testHooks: honour debugLoseDevice (the page was opened with ?test-hooks; see src/app/device-loss-hooks.ts). */
  | { type: 'init'; testHooks?: boolean }
  /** Test hook: destroys the GPU device as a loss would, to exercise the recovery. Refused without testHooks. */
  | { type: 'debugLoseDevice' }
  | { type: 'loadModel'; source: ModelSource }
  /** How the frozen base matrices are kept on the GPU; a loaded model is uploaded again. */
  | { type: 'setWeightStorage'; storage: WeightStorage }
  | { type: 'loadDataset'; source: DatasetSource }
  /** Re-reads the current dataset with this format and column mapping (null format: auto-detect). */
  | { type: 'setDatasetFormat'; format: DatasetFormat | null; columns: ColumnMap; promptJoin?: PromptJoin }
  /** The sequence length and truncation the dataset preview reports its fit at (the run being configured). */
  | { type: 'setPreviewFit'; seq: number; truncation: Truncation }
  /** resume: continue from a checkpoint of this same configuration. */
  | { type: 'startRun'; config: RunConfig; resume?: RunCheckpointData }
  | { type: 'cancelRun'; id: string }
  /** Forgets a run's adapter (and frees a full fine-tune's weights). */
  | { type: 'deleteRun'; id: string }
  /** Adapters persisted in IndexedDB, handed back after a reload so export and the playground work. */
  | {
      type: 'restoreAdapters';
      adapters: { id: string; method: MethodId; adapter: AdapterSnapshot | LegacyAdapterSnapshot }[];
    }
  | {
      type: 'generate';
      requestId: string;
      prompt: string;
      runIds: string[];
      includeBase: boolean;
      maxNewTokens: number;
      /** Absent: greedy decoding. */
      sampling?: SamplingSettings;
      /** The text ends before the first of these. */
      stop?: string[];
      /** Chat mode: `prompt` is the user's new message after this conversation, rendered with the chat template. */
      chat?: ChatRequest;
    }
  /** Ends a generation after its current token (sources not started yet are skipped). */
  | { type: 'stopGeneration'; requestId: string }
  /** variant 'lora': a GraLoRA run as the equivalent plain LoRA; 'raw': the method's raw save (PiSSA's). */
  | { type: 'exportRun'; id: string; name: string; variant?: ExportVariant; target?: ExportTarget }
  /** Measures matmul throughput and the LoRA step beside the peers, and every method's training step on the loaded model (a GPU job, after queued runs). */
  | { type: 'runBench' }
  /**
   * Queues an experiment on the loaded model and dataset (a GPU job, after the runs before it). `done`: runs
   * finished before an interruption, kept as they are (only the others are trained).
   */
  | { type: 'startExperiment'; id: string; experiment: ExperimentJson; done?: ExperimentRunResult[] }
  /** Stops an experiment after its current step (or drops it while it waits). */
  | { type: 'cancelExperiment'; id: string };

// ------------------------------------------------------------------------------------ events

export type ErrorScope = 'gpu' | 'model' | 'dataset' | 'run' | 'generate' | 'export' | 'bench' | 'internal';

export type WorkerEvent =
  | { type: 'gpu'; info: GpuInfo }
  | { type: 'gpuUnavailable'; reason: string }
  | { type: 'modelProgress'; stage: string; done: number; total: number }
  /** The card arrives from the headers, before the weights are on the GPU (`ready` false). */
  | { type: 'model'; card: ModelCard; ready: boolean; gpuBytes: number }
  /**
   * Reading or tokenizing a dataset: `done` of `total` bytes. A large file's first rows come as `preview` after the
   * first batch, while the rest is read; the dataset in use only changes with the `dataset` event.
   */
  | { type: 'datasetProgress'; name: string; stage: string; done?: number; total?: number; preview?: DatasetPreview }
  | { type: 'dataset'; preview: DatasetPreview }
  | { type: 'runStatus'; id: string; status: RunStatus; stage?: string; message?: string }
  /** The run's examples at its sequence length, before step 0. */
  | { type: 'runData'; id: string; data: DataFit }
  /** Something to know about the run that does not stop it (e.g. a split too small to mean much). */
  | { type: 'runWarning'; id: string; message: string }
  /** A method's preparation phase (GoRA's gradient accumulation, GeLoRA's hidden states and dimensions). */
  | { type: 'runPrepare'; id: string; phase: string; done: number; total: number }
  /** The method's analysis (ranks per module, importance, intrinsic dimensions), before step 0. */
  | { type: 'runAnalysis'; id: string; analysis: MethodAnalysis }
  /** What the method changed while training (AdaLoRA's ranks, DoRA's magnitudes), at an evaluation or the end. */
  | { type: 'runSnapshot'; id: string; snapshot: MethodSnapshot }
  | { type: 'runStep'; id: string; point: StepPoint; progress: RunProgress }
  | { type: 'runCheckpoint'; id: string; checkpoint: RunCheckpointData }
  | { type: 'runEval'; id: string; point: EvalPoint }
  /** The GPU device was lost: a new one is on its way; `weightsLost`: runs whose full fine-tuned weights it held. */
  | { type: 'deviceLost'; reason: string; weightsLost: string[] }
  /**
   * A run the loss cut off is queued again from `step` (its last checkpoint, or 0): the steps and evaluations it
   * reported from `step` on are reported again. `message` says so on its card.
   */
  | { type: 'runResumed'; id: string; step: number; message: string }
  /** A new device holds the model again (or could not): what happened, for a notice; `ms` since the loss. */
  | { type: 'deviceRecovered'; message: string; ms: number; autoResume: boolean }
  | {
      type: 'runDone';
      id: string;
      status: RunStatus;
      summary: RunSummary;
      adapter: AdapterSnapshot | null;
      exportable: boolean;
    }
  | { type: 'generation'; requestId: string; result: GenerationResult }
  | { type: 'generationDone'; requestId: string }
  | { type: 'export'; id: string; fileName: string; bytes: Uint8Array }
  | { type: 'benchProgress'; stage: string }
  /** The benchmark so far, after each finished row (the panel shows it while the rest runs). */
  | { type: 'benchPartial'; result: BenchResult }
  | { type: 'benchResult'; result: BenchResult }
  /** Waiting for the GPU, or a stage of its setup (tokenizing, splitting). */
  | { type: 'experimentStatus'; id: string; status: 'queued' | 'running'; stage: string }
  | { type: 'experimentPlan'; id: string; plan: ExperimentPlanInfo }
  | { type: 'experimentRunStart'; id: string; run: ExperimentRunRef; index: number; total: number }
  | { type: 'experimentStep'; id: string; info: ExperimentStepInfo }
  /** A run finished (or failed): its result, and its adapter for export (null when it has none). */
  | {
      type: 'experimentRunDone';
      id: string;
      key: string;
      result: ExperimentRunResult;
      adapter: AdapterSnapshot | null;
    }
  | { type: 'experimentDone'; id: string; results: ExperimentResults }
  /** Stopped by the user (or by another model loading) before every run finished; finished runs are kept. */
  | { type: 'experimentStopped'; id: string; message: string }
  | { type: 'experimentFailed'; id: string; message: string }
  | { type: 'error'; scope: ErrorScope; id?: string; requestId?: string; message: string };

export type EventOf<T extends WorkerEvent['type']> = Extract<WorkerEvent, { type: T }>;
