/**
 * "Copy as CLI command": the command a run card shows is parsed by the CLI's own parser (parseOptions with the
 * train command's options and the registry's method flags), and what the CLI would train from it equals what the
 * studio trains (trainOptionsOf, the worker's mapping of a run to trainRun's options), method options included.
 */
import { describe, expect, test } from 'vitest';
import type { OptionValues } from '../src/adapters/options';
import { allMethodOptions, resolveMethodOptions } from '../src/adapters/registry';
import { packBatches, splitTrainValidation, type Example, type LoadedDataset } from '../src/data/index';
import { cliCommand, DATA_PLACEHOLDER, MODEL_PLACEHOLDER, type LoadedFiles } from '../src/app/run-cli-command';
import { newRecord, type RunRecord } from '../src/app/run-record';
import { parseOptions, type ParsedOptions } from '../src/cli/args';
import { methodOptionsFromFlags } from '../src/cli/method-flags';
import { TRAIN_OPTS } from '../src/cli/train-options';
import type { ModelWeights } from '../src/model/weights';
import type { DataFit, DatasetPreview, ModelCard, RunConfig } from '../src/worker/protocol';
import { trainOptionsOf } from '../src/worker/studio-runs';

/** POSIX shell words of a command line: blanks split, single quotes group, backslash-newline continues. */
function shellWords(text: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\' && text[i + 1] === '\n') i++;
    else if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed quote in: ${text}`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else word = (word ?? '') + ch;
  }
  if (word !== null) words.push(word);
  return words;
}

/** The command's text as a shell passes it on: `npm run cli -- train ...` -> the train command's arguments. */
function parsedCommand(text: string): ParsedOptions {
  const words = shellWords(text);
  expect(words.slice(0, 5)).toEqual(['npm', 'run', 'cli', '--', 'train']);
  return parseOptions('train', words.slice(5), TRAIN_OPTS);
}

/** What cmdTrain (src/cli/main.ts) builds from its parsed options, field by field as it reads them. */
function cliTrainOptions(o: ParsedOptions) {
  return {
    method: o.method,
    rank: o.rank,
    alpha: o.alpha,
    targets: o.targets,
    seed: o.seed,
    lrRatioB: o['lr-ratio-b'],
    ...methodOptionsFromFlags(o),
    steps: o.steps,
    batch: o.batch,
    gradAccum: o['grad-accum'],
    seq: o['seq-len'],
    lr: o.lr,
    warmupSteps: o.warmup,
    weightDecay: o['weight-decay'],
    maxGradNorm: o['max-grad-norm'],
    minLrRatio: o['min-lr-ratio'],
    validationFraction: o['val-fraction'] as number,
    evalEvery: o['eval-every'],
    maxValidationBatches: o['val-batches'] as number,
    recompute: o.recompute,
  };
}

const card = (patch: Partial<ModelCard> = {}) =>
  ({
    key: 'stories260K:5x64',
    name: 'stories260K',
    demo: true,
    family: 'llama',
    maxPositions: 512,
    ...patch,
  }) as ModelCard;

const fit = (examples: number, seq = 64): DataFit => ({
  seq,
  truncation: 'keep-answer',
  examples,
  truncated: 0,
  dropped: 0,
  problem: null,
});

const preview = (patch: Partial<DatasetPreview> = {}) =>
  ({
    name: 'tinyshakespeare.txt',
    digest: 'abc',
    demo: true,
    format: 'text',
    override: { format: null, columns: {} },
    fit: fit(500),
    ...patch,
  }) as DatasetPreview;

function config(patch: Partial<RunConfig> = {}): RunConfig {
  return {
    id: 'r1',
    name: 'LoRA all-linear r=8',
    method: 'lora',
    rank: 8,
    alpha: 16,
    targets: 'all-linear',
    lr: 3e-3,
    steps: 80,
    batch: 8,
    seq: 64,
    warmupSteps: 5,
    valExamples: 64,
    evalEvery: 20,
    seed: 0,
    ...patch,
  };
}

/** A run that trained on the demo (what the record keeps once started), with `examples` at its length. */
function trained(c: RunConfig, examples: number, patch: Partial<RunRecord> = {}): RunRecord {
  return {
    ...newRecord(c),
    status: 'done',
    modelKey: 'stories260K:5x64',
    modelName: 'stories260K',
    datasetName: 'tinyshakespeare.txt',
    datasetDigest: 'abc',
    datasetFormat: JSON.stringify({ format: 'text', columns: {}, promptJoin: 'none' }),
    data: { ...fit(examples, c.seq), truncation: c.truncation ?? 'keep-answer' },
    weightStorage: 'auto',
    ...patch,
  };
}

/** The studio's own mapping of the run (the worker's trainOptionsOf) on a dataset of `examples` examples. */
function studioOptions(c: RunConfig, examples: number, format: LoadedDataset['format'] = 'text') {
  const ds = { examples: new Array(examples).fill({ inputIds: [1], labels: [1] }), format } as LoadedDataset;
  const weights = { parameterCount: () => 1000 } as unknown as ModelWeights;
  return trainOptionsOf(c, ds, weights);
}

const OPTION_KEYS = new Set(allMethodOptions().map((o) => o.key));

/** Training options -> [the rest, the method's own options]. */
function splitOptions(o: Record<string, unknown>): [Record<string, unknown>, OptionValues] {
  const core: Record<string, unknown> = {};
  const extras: OptionValues = {};
  for (const [k, v] of Object.entries(o)) {
    if (OPTION_KEYS.has(k)) extras[k] = v as OptionValues[string];
    else core[k] = v;
  }
  return [core, extras];
}

/** Both mappings agree on everything a run trains with; the CLI measures every validation batch the studio does. */
function expectSameRun(c: RunConfig, examples: number, run: RunRecord = trained(c, examples)) {
  const o = parsedCommand(cliCommand(run, { card: card(), dataset: preview() }).text);
  const cli = cliTrainOptions(o);
  const studio = studioOptions(c, examples);
  const { maxValidationBatches, validationFraction, targets, lrRatioB, ...rest } = cli;
  const {
    validationFraction: studioFraction,
    targets: studioTargets,
    packing: _packing,
    checkpointEvery: _checkpoints,
    resume: _resume,
    wording: _wording,
    ...studioRest
  } = studio;
  // Method options: the command writes the defaults out, the studio leaves them to the engine; both resolve alike.
  const [cliCore, cliExtras] = splitOptions(rest);
  const [studioCore, studioExtras] = splitOptions(studioRest);
  // A full fine-tune has no adapter: its rank, alpha and targets are not read (the command leaves them out).
  const unused = c.method === 'full' ? ['rank', 'alpha'] : [];
  const used = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => !unused.includes(k)));
  expect(used(cliCore)).toEqual(used({ ...studioCore, gradAccum: studioCore.gradAccum ?? 1 }));
  expect(resolveMethodOptions(c.method, c.rank, cliExtras)).toEqual(
    resolveMethodOptions(c.method, c.rank, studioExtras),
  );
  if (c.method !== 'full') expect(targets).toEqual(studioTargets);
  expect(lrRatioB).toBe(1);
  // The split holds out the same number of examples (splitTrainValidation rounds n x fraction).
  const held = (f: number) => splitTrainValidation([...Array(examples).keys()], f, c.seed).validation.length;
  expect(held(validationFraction)).toBe(held(studioFraction));
  // However the held-out pieces fall into packed rows, every batch of them is measured.
  const rng = (i: number) => 1 + ((i * 7919) % c.seq);
  const pieces: Example[] = Array.from({ length: held(studioFraction) }, (_, i) => ({
    inputIds: new Array(rng(i)).fill(5),
    labels: new Array(rng(i)).fill(5),
  }));
  const batches = packBatches(pieces, { batch: c.batch, seq: c.seq, padId: 0, separatorId: 0 }).length;
  expect(maxValidationBatches).toBeGreaterThanOrEqual(batches);
  return o;
}

describe('cliCommand: the CLI parses it and trains what the studio trains', () => {
  test("the demo's LoRA: its folders in this repository, every setting, the studio's fixed schedule floor", () => {
    const c = config();
    const o = expectSameRun(c, 500);
    expect(o).toMatchObject({
      model: 'public/demo/model',
      data: 'public/demo/data/tinyshakespeare.txt',
      method: 'lora',
      rank: 8,
      alpha: 16,
      targets: ['all-linear'],
      steps: 80,
      batch: 8,
      'grad-accum': 1,
      'seq-len': 64,
      lr: 0.003,
      warmup: 5,
      'min-lr-ratio': 0.1,
      'eval-every': 20,
      'val-fraction': 64 / 500,
      recompute: 'none',
      truncation: 'keep-answer',
      weights: 'auto',
      out: 'out/lora-all-linear-r-8',
    });
    expect(cliCommand(trained(c, 500), { card: card(), dataset: preview() }).placeholders).toEqual([]);
  });

  test('every method, with its options written out through the registry flags', () => {
    const cases: Partial<RunConfig>[] = [
      { method: 'rslora', targets: 'qv' },
      { method: 'gralora', extras: { graloraK: 4, hybridRank: 2 } },
      { method: 'gralora' }, // k from the rank: its default, written out
      { method: 'gora', extras: { goraSteps: 8, rankMin: 2, rankMax: 16 } },
      { method: 'gora', extras: { structure: 'gralora', graloraK: 2, goraAdaptiveSteps: true } },
      { method: 'gelora', extras: { geloraSamples: 512, geloraBudget: 'fit' } },
      { method: 'dora' },
      { method: 'pissa' },
      { method: 'loraga' },
      { method: 'adalora' },
      { method: 'full', lr: 1e-4 },
      { gradAccum: 4, recompute: 'block', truncation: 'right', seed: 7 },
      { valExamples: 0 },
      { valExamples: 1000 }, // more than half the data: the studio holds out half
    ];
    for (const patch of cases) {
      const c = config(patch);
      const o = expectSameRun(c, 300);
      expect(o.method).toBe(c.method);
    }
  });

  test('a flag option given true becomes a bare flag, and given false is left out', () => {
    const on = cliCommand(trained(config({ method: 'gora', extras: { goraAdaptiveSteps: true } }), 100), {
      card: card(),
      dataset: preview(),
    });
    expect(on.argv).toContain('--gora-adaptive-steps');
    expect(parsedCommand(on.text)['gora-adaptive-steps']).toBe(true);
    const off = cliCommand(trained(config({ method: 'gora', extras: { goraAdaptiveSteps: false } }), 100), {
      card: card(),
      dataset: preview(),
    });
    expect(off.argv).not.toContain('--gora-adaptive-steps');
  });

  test("the user's own files are placeholders the UI explains; the weight storage and prompt join are kept", () => {
    const c = config({ name: "Bob's run" });
    const run = trained(c, 200, {
      modelKey: 'qwen3:x',
      modelName: 'Qwen3-0.6B',
      datasetName: 'alpaca.csv',
      datasetDigest: 'def',
      datasetFormat: JSON.stringify({ format: 'prompt-completion', columns: {}, promptJoin: 'newline' }),
      weightStorage: 'nf4',
    });
    const loaded: LoadedFiles = {
      card: card({ key: 'qwen3:x', name: 'Qwen3-0.6B', demo: false }),
      dataset: preview({ name: 'alpaca.csv', digest: 'def', demo: false }),
    };
    const command = cliCommand(run, loaded);
    const o = parsedCommand(command.text);
    expect(o).toMatchObject({
      model: MODEL_PLACEHOLDER,
      data: DATA_PLACEHOLDER,
      weights: 'nf4',
      'prompt-join': 'newline',
      out: 'out/bob-s-run',
    });
    expect(command.text).toContain(`--model '${MODEL_PLACEHOLDER}'`);
    expect(command.placeholders.map((p) => p.what)).toEqual([
      'the folder of Qwen3-0.6B (config.json, the safetensors, tokenizer.json)',
      'the path of alpaca.csv',
    ]);
    expect(command.notes).toEqual([]);
  });

  test('a draft takes what is loaded; without the data it says how to set the validation fraction', () => {
    const draft = newRecord(config({ valExamples: 10 }));
    const withData = cliCommand(draft, { card: card(), dataset: preview({ fit: fit(40) }) });
    expect(parsedCommand(withData.text)['val-fraction']).toBe(10 / 40);
    expect(parsedCommand(withData.text).data).toBe('public/demo/data/tinyshakespeare.txt');

    const noData = cliCommand(draft, { card: null, dataset: null });
    const o = parsedCommand(noData.text);
    expect(o.model).toBe(MODEL_PLACEHOLDER);
    expect(o['val-fraction']).toBe(TRAIN_OPTS['val-fraction'].default);
    expect(noData.notes).toEqual([
      "The studio holds out 10 validation examples (at most half the data); --val-fraction is left at the CLI's default: set it to 10 ÷ the number of examples.",
    ]);
    // The preview's fit at another length is not this draft's.
    const otherSeq = cliCommand(draft, { card: card(), dataset: preview({ fit: fit(40, 128) }) });
    expect(otherSeq.notes).toHaveLength(1);
  });

  test('a full fine-tune leaves out the adapter settings and the weight storage (it trains an f32 copy)', () => {
    const c = config({ method: 'full', lr: 1e-4 });
    const command = cliCommand(trained(c, 100, { weightStorage: 'f16' }), { card: card(), dataset: preview() });
    for (const flag of ['--rank', '--alpha', '--targets', '--weights']) expect(command.argv).not.toContain(flag);
  });

  test('a run whose dataset was read with a chosen mapping, or whose storage was not recorded, says so', () => {
    const c = config();
    const mapped = preview({ override: { format: 'alpaca', columns: { instruction: 'question' } } });
    const command = cliCommand(trained(c, 100, { weightStorage: null }), { card: card(), dataset: mapped });
    expect(command.notes).toEqual([
      'The studio read tinyshakespeare.txt with a format or column mapping chosen in the Dataset panel; the CLI detects the format itself.',
      'How this run kept the base weights on the GPU was not recorded: --weights is left at auto.',
    ]);
  });
});
