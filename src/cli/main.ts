/**
 * LoRA Studio's headless CLI (Node + Dawn). Contract (other tools drive it):
 *   eval      last stdout line: {"loss": L, "tokens": T}
 *   train     one JSON line per step (step, loss, lr, tokens_per_s, ...), then writes a PEFT adapter to --out
 *   generate  prints the greedy continuation
 *   quantize  writes a bitsandbytes (NF4/FP4/int8) copy of a model folder; last stdout line: {"done": true, ...}
 *   bench     matmul and training throughput, side by side with jax-js and TensorFlow.js
 * Human-readable progress goes to stderr; stdout carries only results.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LinearAdapter } from '../model/adapter';
import {
  NoSupervisedTokensError,
  padBatches,
  PROMPT_JOINS,
  TRUNCATIONS,
  type Example,
  type PromptJoin,
  type Truncation,
} from '../data/index';
import { loadModelDataset, type LoadedModel } from '../engine/load-model';
import { validateMethodOptions, type MethodOptions } from '../engine/methods';
import { METHOD_FLAG, methodFlagSpecs, methodOptionsFromFlags } from './method-flags';
import { exportAdapter, loadPeftFolder, mergedConfigJson, mergedModelFiles, peftFiles } from '../engine/export';
import { trainRun, validateTrainOptions, type TrainRunOptions } from '../engine/train-run';
import { defaultSeqLen, RUN_DEFAULTS } from '../engine/run-spec';
import { CLI_WORDING, noSupervisedMessage } from '../engine/wording';
import type { Gpu } from '../gpu/gpu';
import { nodeDir } from '../model/formats/node-source';
import { Generator } from '../model/generate';
import { TransformerGraph, type Recompute } from '../model/transformer';
import type { ModelWeights } from '../model/weights';
import { evaluate } from '../train/evaluate';
import { exactMatch } from '../train/exact-match';
import { helpText, parseOptions, type OptionSpec } from './args';
import { readDataFile, writeOutputFiles } from './node-files';
import { log, out, round } from './output';
import { setup, WEIGHTS_OPTION, weightStorage } from './setup';
import { cmdExperiment, EXPERIMENT_OPTS } from './experiment';
import { cmdQuantize, QUANTIZE_OPTS } from './quantize';

const MODEL: OptionSpec = { kind: 'string', help: 'model folder (Hugging Face) or llama2.c .bin', required: true };
const ADAPTER: OptionSpec = {
  kind: 'string',
  help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
};
const WEIGHTS = WEIGHTS_OPTION;

const PROMPT_JOIN: OptionSpec = {
  kind: 'string',
  default: RUN_DEFAULTS.promptJoin,
  help: `prompt/completion data: what goes between them: ${PROMPT_JOINS.join(' | ')} (none, as TRL; chat-template: a user and an assistant turn)`,
};

const EVAL_OPTS: Record<string, OptionSpec> = {
  model: MODEL,
  adapter: ADAPTER,
  weights: WEIGHTS,
  data: { kind: 'string', help: 'dataset file (.txt, .jsonl, .json, .csv, .parquet)', required: true },
  'seq-len': {
    kind: 'int',
    help: "examples longer than this are truncated (default: the longest example, up to the model's maximum)",
  },
  batch: { kind: 'int', help: 'examples per forward pass', default: 8 },
  'exact-match': {
    kind: 'int',
    help: 'also greedy-answer the first N supervised examples and report exact_match (0 = off)',
    default: 0,
  },
  'prompt-join': PROMPT_JOIN,
};

const TRAIN_OPTS: Record<string, OptionSpec> = {
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
  out: { kind: 'string', help: 'output folder for the adapter (or merged model with --method full)', required: true },
};

const GENERATE_OPTS: Record<string, OptionSpec> = {
  model: MODEL,
  adapter: ADAPTER,
  weights: WEIGHTS,
  prompt: { kind: 'string', help: 'prompt text ("" starts from BOS)', default: '' },
  'max-new-tokens': { kind: 'int', help: 'tokens to generate', default: 64 },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commands: Record<string, [string, Record<string, OptionSpec>, (o: Record<string, unknown>) => Promise<void>]> =
    {
      eval: ['Mean next-token cross-entropy of a model (and adapter) over a dataset.', EVAL_OPTS, cmdEval],
      train: ['Train an adapter and write it as a PEFT folder.', TRAIN_OPTS, cmdTrain],
      generate: ['Greedy generation.', GENERATE_OPTS, cmdGenerate],
      experiment: [
        'Methods x learning rates x seeds on one split: each method at its best validation rate, test loss with 95% intervals, paired differences to a baseline, and a report.',
        EXPERIMENT_OPTS,
        cmdExperiment,
      ],
      quantize: [
        'Quantize a model folder for QLoRA as transformers + bitsandbytes save it: NF4/FP4 (double quantization) or int8.',
        QUANTIZE_OPTS,
        cmdQuantize,
      ],
    };
  if (command === 'bench') {
    const { runBench } = await import('./bench');
    await runBench(rest);
    return 0;
  }
  if (!command || command === '--help' || command === 'help' || !commands[command]) {
    const usage = [
      'Usage: npm run cli -- <eval|train|generate|experiment|quantize|bench> [options]   (--help after a command lists its options)',
    ];
    if (command && command !== '--help' && command !== 'help') {
      log(`Unknown command "${command}".`);
      log(usage[0]);
      return 2;
    }
    out(usage[0]);
    return 0;
  }
  const [summary, specs, run] = commands[command];
  if (rest.includes('--help')) {
    out(helpText(command, summary, specs));
    return 0;
  }
  await run(parseOptions(command, rest, specs));
  return 0;
}

/**
 * --adapter: its adapters, and the base weights with what the folder replaces (PEFT modules_to_save, saved biases,
 * trainable token rows); without --adapter, the base weights.
 */
async function loadAdapter(
  gpu: Gpu,
  weights: ModelWeights,
  dir: string | undefined,
): Promise<{ adapters?: Map<string, LinearAdapter>; weights: ModelWeights }> {
  if (!dir) return { weights };
  const loaded = await loadPeftFolder(gpu, weights, await nodeDir(dir), dir);
  log(`adapter: ${loaded.summary}`);
  return { adapters: loaded.adapters, weights: loaded.weights };
}

async function loadExamples(model: LoadedModel, path: string, promptJoin: PromptJoin): Promise<Example[]> {
  const ds = await loadModelDataset(model, await readDataFile(path), { promptJoin });
  for (const w of ds.warnings) log(`warning: ${w}`);
  log(`data: ${ds.examples.length} examples (${ds.format}), ${ds.stats.tokens.toLocaleString('en')} tokens`);
  if (ds.examples.length === 0) throw new Error(`${path}: no usable examples`);
  return ds.examples;
}

async function cmdEval(o: Record<string, unknown>): Promise<void> {
  const promptJoin = promptJoinOption(o);
  const exact =
    (o['exact-match'] as number) > 0 ? '--exact-match decodes the greedy answers to compare them as text' : undefined;
  const { gpu, model, weights } = await setup(o.model as string, weightStorage(o), exact);
  const adapted = await loadAdapter(gpu, weights, o.adapter as string | undefined);
  const adapters = adapted.adapters;
  const examples = await loadExamples(model, o.data as string, promptJoin);
  const longest = Math.max(...examples.map((e) => e.inputIds.length));
  const seq = Math.min((o['seq-len'] as number | undefined) ?? longest, longest, model.spec.maxPositions);
  const batch = Math.min(o.batch as number, examples.length);
  const graph = new TransformerGraph(gpu, adapted.weights, { batch, seq, train: 'none', adapters });
  const r = await evaluate(gpu, graph, padBatches(examples, { batch, seq, padId: model.tokenizer.padId ?? 0 }));
  const n = o['exact-match'] as number;
  if (n > 0) {
    const em = await exactMatch(gpu, adapted.weights, model.tokenizer, examples, { adapters, limit: n });
    if (!em) log('exact match: the dataset has no supervised answers (plain text), so there is nothing to compare');
    out({ loss: r.loss, tokens: r.tokens, exact_match: em?.accuracy ?? null, exact_match_examples: em?.total ?? 0 });
    return;
  }
  out({ loss: r.loss, tokens: r.tokens });
}

async function cmdTrain(o: Record<string, unknown>): Promise<void> {
  const packingOpt = o.packing as string;
  if (!['auto', 'on', 'off'].includes(packingOpt))
    throw new Error(`--packing must be auto, on or off (got "${packingOpt}")`);
  const options: TrainRunOptions = {
    ...methodOptions(o),
    steps: o.steps as number,
    batch: o.batch as number,
    gradAccum: o['grad-accum'] as number,
    seq: (o['seq-len'] as number | undefined) ?? RUN_DEFAULTS.seq,
    lr: o.lr as number,
    warmupSteps: o.warmup as number,
    weightDecay: o['weight-decay'] as number,
    maxGradNorm: o['max-grad-norm'] as number,
    minLrRatio: o['min-lr-ratio'] as number,
    validationFraction: o['val-fraction'] as number,
    evalEvery: o['eval-every'] as number,
    packing: false,
    maxValidationBatches: o['val-batches'] as number,
    recompute: o.recompute as Recompute,
  };
  const truncation = o.truncation as Truncation;
  if (!TRUNCATIONS.includes(truncation))
    throw new Error(`--truncation must be one of ${TRUNCATIONS.join(', ')} (got "${truncation}")`);
  const promptJoin = promptJoinOption(o);
  // Bad options fail before the model loads.
  validateTrainOptions(options);
  validateMethodOptions(options, 'cli');
  // Full fine-tuning trains the base weights: they must be f32 (auto means f32 there).
  const storage = weightStorage(o);
  if (options.method === 'full' && storage !== 'auto' && storage !== 'f32') {
    throw new Error(
      `--weights ${storage}: full fine-tuning trains the base weights, which needs them in f32 (use --weights f32 or auto)`,
    );
  }
  const { gpu, model, weights } = await setup(o.model as string, options.method === 'full' ? 'f32' : storage);
  if (o['seq-len'] === undefined) options.seq = defaultSeqLen(model.spec.maxPositions);
  const ds = await loadModelDataset(model, await readDataFile(o.data as string), {
    seqLen: options.seq,
    truncation,
    promptJoin,
  }).catch((e: unknown) => {
    throw e instanceof NoSupervisedTokensError
      ? new Error(noSupervisedMessage(e, CLI_WORDING, model.spec.maxPositions))
      : e;
  });
  for (const w of ds.warnings) log(`warning: ${w}`);
  log(
    `data: ${ds.examples.length} examples (${ds.format}), ${ds.stats.tokens.toLocaleString('en')} tokens` +
      (ds.stats.truncated
        ? `; ${ds.stats.truncated} truncated to ${options.seq} tokens (${truncation}), ${ds.stats.dropped} dropped`
        : ''),
  );
  options.packing = packingOpt === 'on' || (packingOpt === 'auto' && ds.format === 'text');
  let lastPhase = '';
  const result = await trainRun(gpu, weights, model.tokenizer, ds.examples, options, {
    onPrepare: (p) => {
      if (p.phase !== lastPhase || p.done === p.total) log(`${p.phase}${p.total > 1 ? ` ${p.done}/${p.total}` : ''}`);
      lastPhase = p.phase;
    },
    onStep: (m) =>
      out({
        step: m.step,
        loss: round(m.loss),
        lr: m.lr,
        tokens_per_s: Math.round(m.tokensPerSecond),
        grad_norm: round(m.gradNorm),
        tokens: m.supervised,
      }),
    onEval: (step, r) => out({ step, val_loss: round(r.loss), val_tokens: r.tokens }),
    onSkip: (step) => out({ step, loss: null, skipped: 'no supervised token in this batch: no update' }),
    onWarning: (w) => log(`warning: ${w}`),
  });
  if (result.skippedBatches > 0)
    log(`warning: ${result.skippedBatches} step(s) had no supervised token in their batch and made no update`);
  if (result.message) log(result.message);
  const dir = o.out as string;
  const s = result.state;
  for (const w of s.analysis.warnings) log(`warning: ${w}`);
  if (s.method === 'full') {
    const files = await mergedModelFiles(gpu, weights);
    const modelDir = o.model as string;
    for (const f of [
      'config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'generation_config.json',
      'special_tokens_map.json',
    ]) {
      const text = await readFile(join(modelDir, f), 'utf8').catch(() => null);
      if (text !== null) files[f] = f === 'config.json' ? mergedConfigJson(text, join(modelDir, f)) : text;
    }
    await writeOutputFiles(dir, files);
  } else {
    // PEFT's base_model_name_or_path must resolve: the Hub id when config.json names one, else the path as given.
    const exported = await exportAdapter(gpu, model.spec, s, {
      baseModel: model.hubId ?? (o.model as string),
      asLora: o['export-lora'] === true,
      raw: o['export-raw'] === true,
    });
    if (exported.note && exported.note !== 'requested')
      log(`note: written as an equivalent plain LoRA because ${exported.note}`);
    await writeOutputFiles(dir, {
      ...peftFiles(exported),
      'allocation.json': JSON.stringify(s.analysis, null, 2) + '\n',
    });
  }
  out({
    done: true,
    stop_reason: result.stopReason,
    steps: result.steps,
    out: dir,
    initial_val_loss: result.initialEval ? round(result.initialEval.loss) : null,
    final_val_loss: result.finalEval ? round(result.finalEval.loss) : null,
    train_examples: result.trainExamples,
    validation_examples: result.validationExamples,
    truncated_examples: ds.stats.truncated,
    dropped_examples: ds.stats.dropped,
    skipped_batches: result.skippedBatches,
    buffers_created_after_step0: result.buffersCreatedAfterStep0,
    submits_per_step: result.submitsPerStep,
    trainable_parameters: s.analysis.trainableParameters,
    preparation_ms: Math.round(s.analysis.preparationMs),
  });
  if (result.stopReason === 'non-finite') process.exitCode = 3;
}

async function cmdGenerate(o: Record<string, unknown>): Promise<void> {
  const { gpu, model, weights } = await setup(
    o.model as string,
    weightStorage(o),
    'generate encodes the prompt and decodes the continuation',
  );
  const adapted = await loadAdapter(gpu, weights, o.adapter as string | undefined);
  const tok = model.tokenizer;
  const text = o.prompt as string;
  const prompt = text === '' ? [] : tok.encode(text, { addSpecial: true });
  if (prompt.length === 0 || (text === '' && tok.bosId !== null)) {
    if (tok.bosId === null) throw new Error('The prompt is empty and the tokenizer has no BOS token to start from.');
    if (prompt[0] !== tok.bosId) prompt.unshift(tok.bosId);
  }
  const gen = new Generator(gpu, adapted.weights, adapted.adapters);
  const ids = await gen.greedy(prompt, { maxNewTokens: o['max-new-tokens'] as number, stopId: tok.eosId });
  // Decode prompt + continuation together and cut the prompt off, so word boundaries decode as they would in one piece.
  const full = tok.decode([...prompt, ...ids], { skipSpecial: true });
  const head = tok.decode(prompt, { skipSpecial: true });
  out(full.startsWith(head) ? full.slice(head.length) : tok.decode(ids, { skipSpecial: true }));
}

function promptJoinOption(o: Record<string, unknown>): PromptJoin {
  const join = o['prompt-join'] as PromptJoin;
  if (!PROMPT_JOINS.includes(join))
    throw new Error(`--prompt-join must be one of ${PROMPT_JOINS.join(', ')} (got "${join}")`);
  return join;
}

/** The method's options from the parsed command line (absent options keep the method's defaults). */
function methodOptions(o: Record<string, unknown>): MethodOptions {
  return {
    method: o.method as string,
    rank: o.rank as number,
    alpha: o.alpha as number,
    targets: o.targets as string[],
    seed: o.seed as number,
    lrRatioB: o['lr-ratio-b'] as number,
    ...methodOptionsFromFlags(o),
  };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(process.exitCode ?? code),
  (err: Error) => {
    log(`error: ${err.message}`);
    if (process.env.LORA_STUDIO_DEBUG) log(err.stack ?? '');
    process.exit(1);
  },
);
