/**
 * "Copy as CLI command": the `npm run cli -- train ...` line that trains what a studio run trains, with every
 * setting it uses that the CLI has a flag for (src/cli/train-options.ts; method options through the registry's
 * flags). The browser does not know where the user's model and dataset are on disk: those paths are placeholders
 * (the demo's are its folders in this repository). Pure.
 */
import { resolveMethodOptions } from '../adapters/registry';
import { DEFAULT_TRUNCATION } from '../data/truncation';
import { STUDIO_FIXED } from '../engine/run-spec';
import { shellQuote } from '../experiment/report/cli-command';
import type { DatasetPreview, ModelCard, RunConfig } from '../worker/protocol';
import { slug } from '../worker/snippets';
import { gradAccumOf, runnableConfig } from './methods';
import type { RunRecord } from './run-record';

/** Where the demo's files are in this repository (the CLI runs from its root). */
export const DEMO_MODEL_DIR = 'public/demo/model';
export const DEMO_DATA_DIR = 'public/demo/data';

export const MODEL_PLACEHOLDER = '<model-folder>';
export const DATA_PLACEHOLDER = '<dataset-file>';

/** What is loaded in the studio now: a draft trains on it, and it tells whether a run's files are the demo's. */
export interface LoadedFiles {
  card: ModelCard | null;
  dataset: DatasetPreview | null;
}

export interface CliCommand {
  /** The arguments after `npm run cli --`, starting with the command. */
  argv: string[];
  /** The shell text: one option per line, joined with backslash continuations. */
  text: string;
  /** Placeholders in it and what to put there. */
  placeholders: { placeholder: string; what: string }[];
  /** Where the command cannot say exactly what the studio did. */
  notes: string[];
}

type CommandRun = Pick<
  RunRecord,
  'config' | 'status' | 'modelKey' | 'modelName' | 'datasetName' | 'datasetDigest' | 'datasetFormat' | 'data'
> &
  Partial<Pick<RunRecord, 'weightStorage'>>;

export function cliCommand(run: CommandRun, loaded: LoadedFiles): CliCommand {
  const c = runnableConfig(run.config);
  const draft = run.status === 'draft';
  const placeholders: CliCommand['placeholders'] = [];
  const notes: string[] = [];
  // [flag, value]; a null value is a flag without one.
  const options: [string, string | null][] = [];
  const add = (flag: string, value: string | number | null) =>
    options.push([flag, value === null ? null : String(value)]);

  // A started run records its model and data; a draft trains on what is loaded.
  const card = loaded.card && (draft || loaded.card.key === run.modelKey) ? loaded.card : null;
  const dataset = loaded.dataset && (draft || sameDataset(run, loaded.dataset)) ? loaded.dataset : null;
  const modelName = run.modelName ?? card?.name ?? null;
  const datasetName = run.datasetName ?? dataset?.name ?? null;

  if (card?.demo) add('model', DEMO_MODEL_DIR);
  else {
    add('model', MODEL_PLACEHOLDER);
    placeholders.push({
      placeholder: MODEL_PLACEHOLDER,
      what: `the folder of ${modelName ?? 'the model'} (config.json, the safetensors, tokenizer.json)`,
    });
  }
  if (dataset?.demo) add('data', `${DEMO_DATA_DIR}/${dataset.name}`);
  else {
    add('data', DATA_PLACEHOLDER);
    placeholders.push({ placeholder: DATA_PLACEHOLDER, what: `the path of ${datasetName ?? 'the dataset file'}` });
  }
  add('out', `out/${slug(c.name)}`);

  add('method', c.method);
  if (c.method !== 'full') {
    add('rank', c.rank);
    add('alpha', c.alpha);
    // 'qv' is the CLI's default: PEFT's targets for the family.
    if (c.targets === 'all-linear') add('targets', 'all-linear');
    methodFlags(c, add);
  }

  add('steps', c.steps);
  add('batch', c.batch);
  add('grad-accum', gradAccumOf(c));
  add('seq-len', c.seq);
  add('truncation', c.truncation ?? DEFAULT_TRUNCATION);
  const join = promptJoinOf(run, dataset);
  if (join && join !== 'none') add('prompt-join', join);
  if (dataset && (dataset.override.format !== null || Object.keys(dataset.override.columns).length > 0))
    notes.push(
      `The studio read ${dataset.name} with a format or column mapping chosen in the Dataset panel; the CLI detects the format itself.`,
    );

  add('lr', c.lr);
  add('warmup', c.warmupSteps);
  // What the studio fixes instead of asking (the CLI's defaults may differ).
  add('min-lr-ratio', STUDIO_FIXED.minLrRatio);
  add('weight-decay', STUDIO_FIXED.weightDecay);
  add('max-grad-norm', STUDIO_FIXED.maxGradNorm);
  add('seed', c.seed);

  validationFlags(c, examplesOf(run, dataset), add, notes);
  add('eval-every', c.evalEvery);
  add('recompute', c.recompute ?? 'none');

  // Full fine-tuning trains an f32 copy whatever the storage (the CLI's auto means f32 there).
  const storage = run.weightStorage ?? (draft ? (card?.weightStorage ?? 'auto') : null);
  if (c.method !== 'full') {
    if (storage && storage !== 'auto') add('weights', storage);
    if (storage === null)
      notes.push('How this run kept the base weights on the GPU was not recorded: --weights is left at auto.');
  }

  const argv = [
    'train',
    ...options.flatMap(([flag, value]) => (value === null ? [`--${flag}`] : [`--${flag}`, value])),
  ];
  const lines = [
    'npm run cli -- train',
    ...options.map(([flag, value]) => (value === null ? `  --${flag}` : `  --${flag} ${shellQuote(value)}`)),
  ];
  return { argv, text: lines.join(' \\\n'), placeholders, notes };
}

/** The method's options, each through its registry flag: the values the run reads, defaults written out. */
function methodFlags(c: RunConfig, add: (flag: string, value: string | number | null) => void) {
  const given = { ...c.extras } as Record<string, unknown>;
  const { applicable, values } = resolveMethodOptions(c.method, c.rank, given as never);
  for (const o of applicable) {
    // Options the form does not show keep their default in the studio, as in the CLI: no need to name them.
    if (!o.inForm && given[o.key] === undefined) continue;
    const value = values[o.key];
    if (o.kind === 'flag') {
      if (value === true) add(o.flag, null);
    } else if (value !== undefined) add(o.flag, value as string | number);
  }
}

/**
 * The studio holds out `valExamples` examples (at most half of them) and measures every validation batch; the CLI
 * takes a fraction and a cap on batches. `examples`: the run's examples at its length, when known.
 */
function validationFlags(
  c: RunConfig,
  examples: number | null,
  add: (flag: string, value: string | number) => void,
  notes: string[],
) {
  if (c.valExamples === 0) return add('val-fraction', 0);
  if (examples === null) {
    notes.push(
      `The studio holds out ${c.valExamples} validation examples (at most half the data); --val-fraction is left at the CLI's default: set it to ${c.valExamples} ÷ the number of examples.`,
    );
  } else {
    const held = Math.min(c.valExamples, Math.floor(examples / 2));
    // splitTrainValidation rounds examples × fraction: held / examples gives back `held` exactly.
    add('val-fraction', examples > 0 ? held / examples : 0);
  }
  // Every held-out batch is measured: packed rows hold at most seq tokens of examples of at most seq + 1 tokens
  // (separator included), so there are at most ceil(held·(seq+1)/seq) rows; padded rows hold one example each.
  const held = examples === null ? c.valExamples : Math.min(c.valExamples, Math.floor(examples / 2));
  const rows = Math.ceil((held * (c.seq + 1)) / c.seq);
  add('val-batches', Math.max(1, Math.ceil(rows / c.batch)));
}

/** The run's examples at its sequence length: as it trained, or, for a draft, the preview's fit at its length. */
function examplesOf(run: CommandRun, dataset: DatasetPreview | null): number | null {
  if (run.data && run.data.problem === null) return run.data.examples;
  const fit = dataset?.fit;
  const truncation = run.config.truncation ?? DEFAULT_TRUNCATION;
  return fit && fit.problem === null && fit.seq === run.config.seq && fit.truncation === truncation
    ? fit.examples
    : null;
}

/** What goes between prompt and completion: as the run read its data, else as the loaded dataset is read. */
function promptJoinOf(run: CommandRun, dataset: DatasetPreview | null): string | null {
  if (run.datasetFormat) {
    try {
      const join = (JSON.parse(run.datasetFormat) as { promptJoin?: string }).promptJoin;
      if (join) return join;
    } catch {
      // A format string from an older release: fall back to the loaded dataset's choice.
    }
  }
  return dataset ? (dataset.override.promptJoin ?? 'none') : null;
}

/** Whether the loaded dataset is the file the run trained on (by content when the run recorded it). */
function sameDataset(run: CommandRun, dataset: DatasetPreview): boolean {
  return run.datasetDigest !== null ? run.datasetDigest === dataset.digest : run.datasetName === dataset.name;
}
