/**
 * LoRA Studio's headless CLI (Node + Dawn). Contract (other tools drive it):
 *   eval      last stdout line: {"loss": L, "tokens": T}
 *   train     one JSON line per step (step, loss, lr, tokens_per_s, ...), then writes a PEFT adapter to --out;
 *             with --checkpoint-every N also {"checkpoint": DIR, "steps": S} after each checkpoint (train-checkpoint.ts)
 *   generate  prints the continuation (greedy, or sampled with --temperature > 0), cut before a --stop string
 *   quantize  writes a bitsandbytes (NF4/FP4/int8) copy of a model folder; last stdout line: {"done": true, ...}
 *   export    writes a model (with --adapter merged in) as a Hugging Face folder or a GGUF file + Ollama Modelfile;
 *             last stdout line: {"done": true, "format": ..., "dtype": ..., "out": ..., "tensors": N, "bytes": B}
 *   bench     matmul and training throughput, side by side with jax-js and TensorFlow.js
 * Human-readable progress goes to stderr; stdout carries only results.
 */
import type { LinearAdapter } from '../model/adapter';
import { NoSupervisedTokensError, padBatches, type Example, type PromptJoin } from '../data/index';
import { loadModelDataset, type LoadedModel } from '../engine/load-model';
import { validateMethodOptions, type MethodOptions } from '../engine/methods';
import { methodOptionsFromFlags } from './method-flags';
import { exportAdapter, loadPeftFolder, peftFiles } from '../engine/export';
import { mergeModel } from '../export/merge';
import { modelFolderTexts } from '../export/model-files';
import { trainRun, validateTrainOptions, type TrainRunOptions } from '../engine/train-run';
import { defaultSeqLen, RUN_DEFAULTS } from '../engine/run-spec';
import { CLI_WORDING, noSupervisedMessage } from '../engine/wording';
import type { Gpu } from '../gpu/gpu';
import { nodeDir } from '../model/formats/node-source';
import { Generator } from '../model/generate';
import { parseStopStrings, samplingProblems, type SamplingSettings } from '../model/sampling';
import { TextStream } from '../model/text-stream';
import { TransformerGraph, type Recompute } from '../model/transformer';
import type { ModelWeights } from '../model/weights';
import { evaluate } from '../train/evaluate';
import { exactMatch } from '../train/exact-match';
import { helpText, parseOptions, type OptionSpec } from './args';
import { cmdData, DATA_OPTS } from './data';
import { dataProgressLog } from './data-progress';
import { openModelPath, openDataFile, writeOutputFiles } from './node-files';
import { log, out, round } from './output';
import { setup, WEIGHTS_OPTION, weightStorage } from './setup';
import { cmdExperiment, EXPERIMENT_OPTS } from './experiment';
import { cmdQuantize, QUANTIZE_OPTS } from './quantize';
import { cmdExport, EXPORT_OPTS, writeMergedFolder } from './export';
import { MODEL, PROMPT_JOIN, promptJoinOption, TRAIN_OPTS, truncationOption } from './train-options';
import { runIdentity } from './run-identity';
import { TrainCheckpoints } from './train-checkpoint';

const ADAPTER: OptionSpec = {
  kind: 'string',
  help: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
};
const WEIGHTS = WEIGHTS_OPTION;

const EVAL_OPTS: Record<string, OptionSpec> = {
  model: MODEL,
  adapter: ADAPTER,
  weights: WEIGHTS,
  data: {
    kind: 'string',
    help: 'dataset file (.txt, .jsonl, .json, .csv, .tsv, .parquet; .jsonl.gz, .csv.gz, ...)',
    required: true,
  },
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

const GENERATE_OPTS: Record<string, OptionSpec> = {
  model: MODEL,
  adapter: ADAPTER,
  weights: WEIGHTS,
  prompt: { kind: 'string', help: 'prompt text ("" starts from BOS)', default: '' },
  'max-new-tokens': { kind: 'int', help: 'tokens to generate', default: 64 },
  temperature: {
    kind: 'number',
    help: 'sampling temperature; 0 = greedy (the argmax, and the filters below are ignored)',
    default: 0,
  },
  'top-k': {
    kind: 'int',
    help: 'sample from the k most likely tokens (ties with the k-th included); 0 = off',
    default: 0,
  },
  'top-p': {
    kind: 'number',
    help: 'sample from the most likely tokens holding this much probability; 1 = off',
    default: 1,
  },
  'min-p': { kind: 'number', help: 'drop tokens less likely than min-p x the most likely one; 0 = off', default: 0 },
  'repetition-penalty': {
    kind: 'number',
    help: "transformers' repetition penalty over the prompt's and generated tokens (greedy too); 1 = off",
    default: 1,
  },
  seed: { kind: 'int', help: 'seed of the draws: the same seed, prompt and settings repeat a run exactly', default: 0 },
  stop: {
    kind: 'string',
    help: 'stop strings, comma-separated (\\n newline, \\t tab, \\, comma, \\\\ backslash): the output ends before the first one',
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const commands: Record<string, [string, Record<string, OptionSpec>, (o: Record<string, unknown>) => Promise<void>]> =
    {
      eval: ['Mean next-token cross-entropy of a model (and adapter) over a dataset.', EVAL_OPTS, cmdEval],
      train: ['Train an adapter and write it as a PEFT folder.', TRAIN_OPTS, cmdTrain],
      generate: [
        "Greedy or sampled generation (filters in transformers' order: repetition penalty, temperature, top-k, top-p, min-p).",
        GENERATE_OPTS,
        cmdGenerate,
      ],
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
      data: [
        'Read a dataset file as training would, streamed (any size), and report its format, rows and warnings; with --model, also its examples and tokens at --seq-len. No GPU needed.',
        DATA_OPTS,
        cmdData,
      ],
      export: [
        'Write a model, with a PEFT adapter merged in (PEFT merge_and_unload, in float64), as a Hugging Face folder (f32/bf16/f16) or a GGUF file (f32/f16/q8_0) with an Ollama Modelfile.',
        EXPORT_OPTS,
        cmdExport,
      ],
    };
  if (command === 'bench') {
    const { runBench } = await import('./bench');
    await runBench(rest);
    return 0;
  }
  if (!command || command === '--help' || command === 'help' || !commands[command]) {
    const usage = [
      'Usage: npm run cli -- <eval|train|generate|experiment|quantize|export|data|bench> [options]   (--help after a command lists its options)',
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
  const ds = await loadModelDataset(model, await openDataFile(path), { promptJoin, onProgress: dataProgressLog(path) });
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
  // A loop, not Math.max(...): a large file has more examples than a call takes arguments.
  const longest = examples.reduce((m, e) => Math.max(m, e.inputIds.length), 0);
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
  const truncation = truncationOption(o);
  const promptJoin = promptJoinOption(o);
  // Bad options fail before the model loads.
  validateTrainOptions(options);
  validateMethodOptions(options, 'cli');
  const checkpoints = await TrainCheckpoints.open(o);
  // Full fine-tuning trains the base weights: they must be f32 (auto means f32 there).
  const storage = weightStorage(o);
  if (options.method === 'full' && storage !== 'auto' && storage !== 'f32') {
    throw new Error(
      `--weights ${storage}: full fine-tuning trains the base weights, which needs them in f32 (use --weights f32 or auto)`,
    );
  }
  const { gpu, model, weights } = await setup(o.model as string, options.method === 'full' ? 'f32' : storage);
  if (o['seq-len'] === undefined) options.seq = defaultSeqLen(model.spec.maxPositions);
  const dataFile = await openDataFile(o.data as string);
  const ds = await loadModelDataset(model, dataFile, {
    seqLen: options.seq,
    truncation,
    promptJoin,
    onProgress: dataProgressLog(o.data as string),
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
  Object.assign(options, await checkpoints.bind(() => runIdentity(o, options.seq, dataFile), options.steps));
  let lastPhase = '';
  const result = await trainRun(gpu, weights, model.tokenizer, ds.examples, options, {
    onMethod: (s) => checkpoints.onMethod(s),
    onCheckpoint: (c) => checkpoints.write(c, options.steps),
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
    onEval: (step, r) => {
      checkpoints.onEval(step, r.loss);
      out({ step, val_loss: round(r.loss), val_tokens: r.tokens });
    },
    onSkip: (step) => {
      checkpoints.onSkip();
      out({ step, loss: null, skipped: 'no supervised token in this batch: no update' });
    },
    onWarning: (w) => log(`warning: ${w}`),
  }).catch((e: unknown) => {
    throw checkpoints.withResumeHint(e);
  });
  if (result.skippedBatches > 0)
    log(`warning: ${result.skippedBatches} step(s) had no supervised token in their batch and made no update`);
  if (result.message) log(result.message);
  const dir = o.out as string;
  const s = result.state;
  for (const w of s.analysis.warnings) log(`warning: ${w}`);
  if (s.method === 'full') {
    // The trained weights are f32: the merged writer with no adapter, written as they are.
    const texts = await modelFolderTexts(await openModelPath(o.model as string));
    await writeMergedFolder(dir, await mergeModel(gpu, weights, { ...texts, dtype: 'f32' }), 'f32');
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
    initial_val_loss: checkpoints.startingValLoss === null ? null : round(checkpoints.startingValLoss),
    final_val_loss: result.finalEval ? round(result.finalEval.loss) : null,
    train_examples: result.trainExamples,
    validation_examples: result.validationExamples,
    truncated_examples: ds.stats.truncated,
    dropped_examples: ds.stats.dropped,
    skipped_batches: checkpoints.skippedBatches,
    resumed_from_step: checkpoints.resumedFrom,
    buffers_created_after_step0: result.buffersCreatedAfterStep0,
    submits_per_step: result.submitsPerStep,
    trainable_parameters: s.analysis.trainableParameters,
    preparation_ms: Math.round(s.analysis.preparationMs),
  });
  if (result.stopReason === 'non-finite') process.exitCode = 3;
}

async function cmdGenerate(o: Record<string, unknown>): Promise<void> {
  const sampling = samplingOptions(o);
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
  const stream = new TextStream(tok, prompt, parseStopStrings((o.stop as string | undefined) ?? ''));
  const gen = new Generator(gpu, adapted.weights, adapted.adapters);
  await gen.generate(prompt, {
    maxNewTokens: o['max-new-tokens'] as number,
    stopId: tok.eosId,
    sampling,
    onToken: (id) => stream.push(id),
    shouldStop: () => stream.stop !== null,
  });
  // The prompt and continuation decoded in one piece, the prompt cut off (word boundaries as in one piece).
  out(stream.finish());
}

/** generate's sampling flags, checked; filters given with --temperature 0 are said to do nothing. */
function samplingOptions(o: Record<string, unknown>): SamplingSettings {
  const s: SamplingSettings = {
    temperature: o.temperature as number,
    topK: o['top-k'] as number,
    topP: o['top-p'] as number,
    minP: o['min-p'] as number,
    repetitionPenalty: o['repetition-penalty'] as number,
    seed: o.seed as number,
  };
  const flags: Record<keyof SamplingSettings, string> = {
    temperature: '--temperature',
    topK: '--top-k',
    topP: '--top-p',
    minP: '--min-p',
    repetitionPenalty: '--repetition-penalty',
    seed: '--seed',
  };
  const problems = samplingProblems(s, (key) => flags[key]);
  if (problems.length) throw new Error(`generate: ${problems.join('; ')}`);
  if (s.temperature === 0) {
    const ignored = (['topK', 'topP', 'minP'] as const).filter((k) => s[k] !== { topK: 0, topP: 1, minP: 0 }[k]);
    if (ignored.length) log(`${ignored.map((k) => flags[k]).join(', ')} ignored: --temperature 0 is greedy decoding`);
  }
  return s;
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
