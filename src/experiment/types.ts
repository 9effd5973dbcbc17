/**
 * An experiment: methods x learning rates x seeds on one model and one dataset, with a deterministic
 * train/validation/test split, a paired design (a seed's batches are the same for every method), selection of each
 * method's rate on validation only, and statistics over seeds on the test split. The JSON file, the CLI and the
 * studio's panel share these types (the file's snake_case keys are parsed in schema.ts).
 */
import type { MethodId, MethodOptionValues } from '../adapters/registry';
import type { PromptJoin } from '../data/prompt-join';
import type { Truncation } from '../data/truncation';
import type { Recompute } from '../model/recompute';

export interface ExperimentSplit {
  /** Fractions of the examples held out for validation (rate selection) and test (the reported figures). */
  validation: number;
  test: number;
  /** The split is a function of this seed alone: every run of the experiment sees the same three parts. */
  seed: number;
}

/** The training settings every run shares (the run spec's, as the CLI's train command takes them). */
export interface ExperimentTrain {
  /** Optimizer steps. */
  steps: number;
  /** Rows per micro-batch. */
  batch: number;
  /** Micro-batches per optimizer step: each step trains on batch x gradAccum rows (the effective batch). */
  gradAccum: number;
  /** Tokens per row; absent: 128, or the model's maximum if smaller. */
  seqLen?: number;
  warmup: number;
  weightDecay: number;
  maxGradNorm: number;
  minLrRatio: number;
  lrRatioB: number;
  truncation: Truncation;
  promptJoin: PromptJoin;
  packing: 'auto' | 'on' | 'off';
  recompute: Recompute;
  /** Validation-loss points on each run's curve every N steps (0: no curve; the final validation loss is measured anyway). */
  evalEvery: number;
}

/** One method configuration of the comparison: a registered method with its options. */
export interface ExperimentMethod {
  /** Unique, safe as a folder name: runs/<name>/lr<lr>/seed<seed>/. */
  name: string;
  method: MethodId;
  /** Absent in the file: chosen to match the reference LoRA's trainable parameters (see budget.ts). */
  rank: number;
  /** True when the rank was chosen by budget matching rather than given. */
  rankMatched: boolean;
  alpha: number;
  /** As the CLI's --targets: names, ['all-linear'], or [] for PEFT's default of the family. */
  targets: string[];
  /** The method's own options by registry key (GraLoRA's k, GoRA's steps, ...); absent ones take defaults. */
  options: Partial<MethodOptionValues>;
  /** This configuration's own grids, overriding the experiment's. */
  lrs?: number[];
  seeds?: number[];
}

export interface Experiment {
  /** A title for the report; defaults to "<model> on <data>". */
  name: string;
  /** A model folder and a dataset file: paths for the CLI, the loaded files' names in the studio. */
  model: string;
  data: string;
  split: ExperimentSplit;
  train: ExperimentTrain;
  methods: ExperimentMethod[];
  /** The shared learning-rate grid (a method's own `lrs` overrides it). */
  lrs: number[];
  seeds: number[];
  /** The configuration every other one is compared with (a method name); default: the first LoRA. */
  baseline: string;
  /** The rank of the LoRA whose trainable-parameter count the configurations match (±5%). */
  referenceRank: number;
  /** Greedy-answer at most this many test examples for exact match (0: off; plain text has none). */
  exactMatch: number;
}

/** One finished (or failed) run of the grid. */
export interface ExperimentRunResult {
  name: string;
  method: MethodId;
  lr: number;
  seed: number;
  status: 'done' | 'failed';
  /** Why a failed run failed (it is left out of selection, statistics and the report's figures). */
  error?: string;
  trainableParams: number;
  /** The final adapter's token-weighted mean next-token cross-entropy (nats) on the validation and test splits. */
  valLoss: number | null;
  testLoss: number | null;
  valTokens: number;
  testTokens: number;
  /** Fraction of test answers reproduced exactly (absent: the data has no reference answers, or it is off). */
  exactMatch?: number;
  /** The PEFT adapter folder, relative to the experiment's output folder: runs/<name>/lr<lr>/seed<seed>. */
  adapter: string;
  elapsedMs: number;
  tokensPerSecond: number;
  /** Training loss per step and the validation points (for the mean-and-band curves). */
  curve: { step: number; loss: number | null }[];
  valCurve: { step: number; loss: number }[];
  /** FNV-1a of every training batch's token ids in order: equal across methods for a seed (the paired design). */
  batchHash: string;
  /** Rank per adapted module (path -> rank), for the heatmaps of the chosen runs. */
  ranks: Record<string, number>;
}

export interface PairedDifference {
  /** Mean over seeds of (this method's test loss - the baseline's), each at its own best rate. */
  diffMean: number;
  diffCi95: [number, number];
  /** Two-sided paired t-test; null with fewer than two seeds or no spread. */
  pValue: number | null;
  nPairs: number;
}

export interface MethodSummary {
  name: string;
  method: MethodId;
  /** The rate with the lowest mean validation loss over seeds. */
  bestLr: number;
  valLossMean: number;
  testLossMean: number;
  testLossCi95: [number, number];
  nSeeds: number;
  exactMatchMean?: number;
  trainableParams: number;
  /** trainableParams / the reference LoRA's; outside [0.95, 1.05] is flagged. */
  budgetRatio: number;
  /** Null for the baseline itself. */
  vsBaseline: PairedDifference | null;
  /** The words the evidence allows: "lower by 0.031 ± 0.012 nats (p = 0.02)" / "no difference resolved with 3 seeds". */
  verdict: string;
  /** The chosen rate is the grid's lowest or highest (of two or more): the best may lie beyond the grid. */
  lrAtGridEdge?: 'lowest' | 'highest';
  /** Mean validation loss and its 95% interval at each rate (the sensitivity chart). */
  lrCurve: { lr: number; valMean: number; valCi95: [number, number]; n: number }[];
}

export interface ExperimentResults {
  experiment: Experiment;
  runs: ExperimentRunResult[];
  baseline: string;
  summary: MethodSummary[];
  /** The reference LoRA's trainable parameters (the budget). */
  referenceParams: number;
  /** Names of summaries whose difference to the baseline excludes 0 in the favourable direction (the "best" badge). */
  best: string[];
  /** Examples in each split and the tokens evaluated. */
  splitSizes: { train: number; validation: number; test: number };
}
