/**
 * The train command's options: the CLI parses its command line with them (main.ts), and the studio's "Copy as CLI
 * command" is tested against them (test/run-cli-command.test.ts). Method options come from the registry's flags.
 */
import { PROMPT_JOINS, TRUNCATIONS, type PromptJoin, type Truncation } from '../data/index';
import { RUN_DEFAULTS } from '../engine/run-spec';
import type { OptionSpec } from './args';
import { METHOD_FLAG, methodFlagSpecs } from './method-flags';
import { WEIGHTS_OPTION } from './setup';

export const MODEL: OptionSpec = {
  kind: 'string',
  help: 'model folder (Hugging Face) or llama2.c .bin',
  required: true,
};
const WEIGHTS = WEIGHTS_OPTION;

export const PROMPT_JOIN: OptionSpec = {
  kind: 'string',
  default: RUN_DEFAULTS.promptJoin,
  help: `prompt/completion data: what goes between them: ${PROMPT_JOINS.join(' | ')} (none, as TRL; chat-template: a user and an assistant turn)`,
};

export const TRAIN_OPTS: Record<string, OptionSpec> = {
  model: MODEL,
  weights: WEIGHTS,
  data: { kind: 'string', help: 'dataset file', required: true },
  method: METHOD_FLAG,
  rank: {
    kind: 'int',
    help: "rank r (LoRA, rsLoRA, GraLoRA's block part); r_ref, the uniform-LoRA budget, for GoRA and GeLoRA",
    default: RUN_DEFAULTS.rank,
  },
  alpha: {
    kind: 'number',
    help: 'alpha: scale alpha/r (LoRA), alpha/sqrt r (rsLoRA, GoRA per module), alpha/(r+hybrid-r) (GraLoRA), alpha/r_ref (GeLoRA)',
    default: RUN_DEFAULTS.alpha,
  },
  targets: {
    kind: 'list',
    help: "modules to adapt, comma-separated (q_proj,v_proj,... | c_attn,... | all-linear); default PEFT's for the family",
    default: [],
  },
  ...methodFlagSpecs(),
  'export-lora': {
    kind: 'flag',
    help: 'GraLoRA: write the exactly equivalent plain LoRA (rank k·r + hybrid-r) instead of the GRALORA format',
  },
  'export-raw': {
    kind: 'flag',
    help: 'PiSSA: write the raw adapter as PEFT saves it by default (init_lora_weights "pissa", for the residual base PEFT recomputes at load) instead of the rank-2r LoRA on the original base',
  },
  steps: { kind: 'int', help: 'optimizer steps', default: RUN_DEFAULTS.steps },
  batch: {
    kind: 'int',
    help: 'sequences per micro-batch (one forward and backward pass)',
    default: RUN_DEFAULTS.batch,
  },
  'grad-accum': {
    kind: 'int',
    help: 'micro-batches per optimizer step: a step trains on --batch x --grad-accum sequences (the effective batch) with the memory of --batch',
    default: RUN_DEFAULTS.gradAccum,
  },
  'seq-len': { kind: 'int', help: 'tokens per sequence (default: 128, or the model maximum if smaller)' },
  truncation: {
    kind: 'string',
    default: RUN_DEFAULTS.truncation,
    help:
      `how examples longer than --seq-len are cut: ${TRUNCATIONS.join(' | ')} (keep-answer: split the budget between prompt and ` +
      `answer as LLaMA-Factory does, cutting the prompt from the left; right: cut at the end, as TRL does). Examples left ` +
      `with no supervised token are dropped`,
  },
  'prompt-join': PROMPT_JOIN,
  lr: { kind: 'number', help: 'peak learning rate', default: RUN_DEFAULTS.lr },
  'lr-ratio-b': { kind: 'number', help: 'LoRA+: learning-rate multiplier of B', default: RUN_DEFAULTS.lrRatioB },
  warmup: { kind: 'int', help: 'linear warmup steps', default: RUN_DEFAULTS.warmupSteps },
  'min-lr-ratio': {
    kind: 'number',
    help: 'cosine decay floor as a fraction of --lr',
    default: RUN_DEFAULTS.minLrRatio,
  },
  'weight-decay': { kind: 'number', help: 'AdamW decoupled weight decay', default: RUN_DEFAULTS.weightDecay },
  'max-grad-norm': {
    kind: 'number',
    help: 'global gradient-norm clipping (0 = off)',
    default: RUN_DEFAULTS.maxGradNorm,
  },
  seed: { kind: 'int', help: 'seed for initialization, shuffling and the split', default: RUN_DEFAULTS.seed },
  'val-fraction': {
    kind: 'number',
    help: 'held-out fraction of examples for evaluation',
    default: RUN_DEFAULTS.validationFraction,
  },
  'eval-every': {
    kind: 'int',
    help: 'evaluate every N steps (0 = start and end only)',
    default: RUN_DEFAULTS.evalEvery,
  },
  'val-batches': {
    kind: 'int',
    help: 'at most this many validation batches per evaluation',
    default: RUN_DEFAULTS.maxValidationBatches,
  },
  packing: {
    kind: 'string',
    help: 'auto | on | off: pack examples into full rows (auto: on for plain text)',
    default: 'auto',
  },
  recompute: {
    kind: 'string',
    help: "none | mlp | block: recompute activations in the backward pass instead of keeping them. mlp: each block's MLP activations (less memory, ~20% more compute); block: whole blocks from their saved inputs (least memory: one residual per block and one block's buffers; about one more forward pass per step)",
    default: RUN_DEFAULTS.recompute,
  },
  'checkpoint-every': {
    kind: 'int',
    help: 'every N steps, write a checkpoint to --checkpoint-dir (adapter, AdamW state, schedule and data position, method state; atomically: a kill never leaves a broken one); 0 = never',
    default: 0,
  },
  'checkpoint-dir': { kind: 'string', help: 'where --checkpoint-every writes (default: <--out>/checkpoint)' },
  resume: {
    kind: 'string',
    help: 'continue the run saved in this checkpoint folder exactly (same flags, model and data; only where it writes, checkpoints and evaluates may change)',
  },
  out: { kind: 'string', help: 'output folder for the adapter (or merged model with --method full)', required: true },
};

/** --prompt-join, checked. */
export function promptJoinOption(o: Record<string, unknown>): PromptJoin {
  const join = o['prompt-join'] as PromptJoin;
  if (!PROMPT_JOINS.includes(join))
    throw new Error(`--prompt-join must be one of ${PROMPT_JOINS.join(', ')} (got "${join}")`);
  return join;
}

/** --truncation, checked. */
export function truncationOption(o: Record<string, unknown>): Truncation {
  const truncation = o.truncation as Truncation;
  if (!TRUNCATIONS.includes(truncation))
    throw new Error(`--truncation must be one of ${TRUNCATIONS.join(', ')} (got "${truncation}")`);
  return truncation;
}
