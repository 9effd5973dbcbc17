/**
 * The experiment file: one JSON schema for the CLI's --config and the studio's panel. Keys are the run spec's
 * names in snake_case after the CLI's flags (--gralora-k -> gralora_k, --seq-len -> seq_len). Parsing fills every
 * default, so the parsed experiment is the whole truth of what runs; experimentToJson writes it back fully
 * resolved. Every problem is collected and reported at once, naming the key (and the configuration) it is about.
 */
import {
  allMethodOptions,
  isMethodId,
  METHOD_IDS,
  methodDescriptor,
  methodProblems,
  resolveMethodOptions,
} from '../adapters/registry';
import { formOptionWording, type OptionValues, type Wording } from '../adapters/options';
import { PROMPT_JOINS } from '../data/prompt-join';
import { TRUNCATIONS } from '../data/truncation';
import { RECOMPUTE_MODES } from '../model/recompute';
import { RUN_DEFAULTS } from '../engine/run-spec';
import { defaultLrGrid } from './plan';
import type { Experiment, ExperimentMethod, ExperimentTrain } from './types';

export type Surface = 'cli' | 'studio';

/** Default seeds, split and exact-match sample of an experiment. */
export const EXPERIMENT_DEFAULTS = {
  seeds: [0, 1, 2],
  split: { validation: 0.15, test: 0.15, seed: 0 },
  exactMatch: 32,
  referenceRank: RUN_DEFAULTS.rank,
};

const snake = (flag: string) => flag.replace(/-/g, '_');

/** The file names an option by its key: "gralora_k (3) must divide rank". */
const FILE_WORDING: Wording = {
  name: (o, value) => (value === undefined ? snake(o.flag) : `${snake(o.flag)} ${value}`),
  short: (o, value) => (value === undefined ? snake(o.flag) : `${snake(o.flag)} ${value}`),
  integer: (min, max) => (max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`),
  number: (min) => `a finite number >= ${min}`,
};

/** A bad experiment definition: every problem, one per line. */
export class ExperimentError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `The experiment has ${problems.length === 1 ? 'a problem' : `${problems.length} problems`}:\n- ${problems.join('\n- ')}`,
    );
  }
}

const TRAIN_KEYS: Record<string, keyof ExperimentTrain> = {
  steps: 'steps',
  batch: 'batch',
  grad_accum: 'gradAccum',
  seq_len: 'seqLen',
  warmup: 'warmup',
  weight_decay: 'weightDecay',
  max_grad_norm: 'maxGradNorm',
  min_lr_ratio: 'minLrRatio',
  lr_ratio_b: 'lrRatioB',
  truncation: 'truncation',
  prompt_join: 'promptJoin',
  packing: 'packing',
  recompute: 'recompute',
  eval_every: 'evalEvery',
};

const TOP_KEYS = [
  'name',
  'model',
  'data',
  'split',
  'train',
  'methods',
  'lrs',
  'seeds',
  'baseline',
  'reference_rank',
  'exact_match',
];
const METHOD_KEYS = ['name', 'method', 'rank', 'alpha', 'targets', 'lrs', 'seeds'];

export function defaultTrain(): ExperimentTrain {
  return {
    steps: RUN_DEFAULTS.steps,
    batch: RUN_DEFAULTS.batch,
    gradAccum: RUN_DEFAULTS.gradAccum,
    warmup: RUN_DEFAULTS.warmupSteps,
    weightDecay: RUN_DEFAULTS.weightDecay,
    maxGradNorm: RUN_DEFAULTS.maxGradNorm,
    minLrRatio: RUN_DEFAULTS.minLrRatio,
    lrRatioB: RUN_DEFAULTS.lrRatioB,
    truncation: RUN_DEFAULTS.truncation,
    promptJoin: RUN_DEFAULTS.promptJoin,
    packing: 'auto',
    recompute: RUN_DEFAULTS.recompute,
    evalEvery: 0,
  };
}

/** A starting experiment for a model and a dataset: LoRA, GoRA, GraLoRA and GeLoRA at one budget. */
export function defaultExperiment(model: string, data: string): Experiment {
  return parseExperiment(
    {
      model,
      data,
      methods: [
        { name: 'lora', method: 'lora' },
        { name: 'gora', method: 'gora' },
        { name: 'gralora', method: 'gralora' },
        { name: 'gelora', method: 'gelora' },
      ],
    },
    'studio',
  );
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses and checks an experiment definition; throws ExperimentError listing every problem. */
export function parseExperiment(json: unknown, surface: Surface): Experiment {
  const problems: string[] = [];
  if (!isObject(json)) problems.push('the experiment must be a JSON object');
  const root: Record<string, unknown> = isObject(json) ? json : {};
  for (const key of Object.keys(root))
    if (!TOP_KEYS.includes(key)) problems.push(`unknown key "${key}" (known keys: ${TOP_KEYS.join(', ')})`);

  const str = (v: unknown, where: string, required: boolean): string => {
    if (typeof v === 'string' && v.trim()) return v;
    if (v !== undefined || (required && surface === 'cli')) problems.push(`${where} must be a non-empty string`);
    return '';
  };
  const num = (v: unknown, where: string, check: (x: number) => boolean, what: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'number' && Number.isFinite(v) && check(v)) return v;
    problems.push(`${where} must be ${what} (got ${JSON.stringify(v)})`);
    return undefined;
  };
  const int1 = (x: number) => Number.isInteger(x) && x >= 1;
  const int0 = (x: number) => Number.isInteger(x) && x >= 0;
  const numberList = (v: unknown, where: string, check: (x: number) => boolean, what: string): number[] | undefined => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0) {
      problems.push(`${where} must be a non-empty list of ${what}`);
      return undefined;
    }
    const out = v.map((x, i) => num(x, `${where}[${i}]`, check, what));
    if (out.some((x) => x === undefined)) return undefined;
    const values = out as number[];
    if (new Set(values).size !== values.length) problems.push(`${where} lists a value twice (${values.join(', ')})`);
    return values;
  };

  const model = str(root.model, 'model', true);
  const data = str(root.data, 'data', true);

  // Split.
  const split = { ...EXPERIMENT_DEFAULTS.split };
  if (root.split !== undefined) {
    if (!isObject(root.split)) problems.push('split must be an object {"validation", "test", "seed"}');
    else {
      for (const key of Object.keys(root.split))
        if (!['validation', 'test', 'seed'].includes(key))
          problems.push(`unknown key "split.${key}" (known: validation, test, seed)`);
      const frac = (x: number) => x > 0 && x < 1;
      split.validation =
        num(root.split.validation, 'split.validation', frac, 'a fraction in (0, 1)') ?? split.validation;
      split.test = num(root.split.test, 'split.test', frac, 'a fraction in (0, 1)') ?? split.test;
      split.seed = num(root.split.seed, 'split.seed', int0, 'an integer >= 0') ?? split.seed;
    }
  }
  if (split.validation + split.test >= 0.9)
    problems.push(
      `split.validation + split.test is ${+(split.validation + split.test).toFixed(4)}: leave at least 10% for training`,
    );

  // Shared training settings.
  const train = defaultTrain();
  if (root.train !== undefined) {
    if (!isObject(root.train)) problems.push('train must be an object of training settings');
    else parseTrain(root.train, train, problems, num, int1, int0);
  }

  // Grids.
  const lrs = numberList(root.lrs, 'lrs', (x) => x > 0, 'positive learning rates');
  const seeds = numberList(root.seeds, 'seeds', int0, 'integers >= 0') ?? EXPERIMENT_DEFAULTS.seeds;
  const referenceRankGiven = num(root.reference_rank, 'reference_rank', int1, 'an integer >= 1');
  const exactMatch = num(root.exact_match, 'exact_match', int0, 'an integer >= 0') ?? EXPERIMENT_DEFAULTS.exactMatch;

  // Methods.
  const methods: ExperimentMethod[] = [];
  if (!Array.isArray(root.methods) || root.methods.length === 0)
    problems.push('methods must be a non-empty list of method configurations');
  else
    root.methods.forEach((entry, i) => {
      const m = parseMethod(entry, i, problems, num, numberList, int1, int0);
      if (m) methods.push(m);
    });
  const names = methods.map((m) => m.name);
  for (const [i, n] of names.entries())
    if (names.indexOf(n) !== i) problems.push(`methods: the name "${n}" is used twice (names must be unique)`);

  // The reference budget: a LoRA of this rank (default: the baseline's rank when it is a LoRA, else 8).
  let baseline = typeof root.baseline === 'string' ? root.baseline : undefined;
  if (root.baseline !== undefined && typeof root.baseline !== 'string') problems.push('baseline must be a method name');
  if (baseline !== undefined && methods.length && !names.includes(baseline))
    problems.push(`baseline "${baseline}" is not one of the methods' names (${names.join(', ')})`);
  baseline ??= (methods.find((m) => m.method === 'lora') ?? methods[0])?.name ?? '';
  const baselineMethod = methods.find((m) => m.name === baseline);
  const referenceRank =
    referenceRankGiven ??
    (baselineMethod && !baselineMethod.rankMatched ? baselineMethod.rank : EXPERIMENT_DEFAULTS.referenceRank);
  for (const m of methods) if (m.rankMatched) m.rank = referenceRank;
  for (const m of methods) {
    m.lrs ??= lrs ?? defaultLrGrid(m.method);
    m.seeds ??= seeds;
    const wording = surface === 'cli' ? FILE_WORDING : formOptionWording(methodDescriptor(m.method).label);
    const given = m.options as OptionValues;
    for (const p of methodProblems(m.method, { rank: m.rank, alpha: m.alpha, lrRatioB: train.lrRatioB, given }))
      problems.push(`methods "${m.name}": ${p.message(wording)}`);
  }

  if (problems.length) throw new ExperimentError(problems);
  const name =
    typeof root.name === 'string' && root.name.trim() ? root.name : `${baseName(model)} on ${baseName(data)}`;
  return {
    name,
    model,
    data,
    split,
    train,
    methods,
    lrs: lrs ?? [],
    seeds,
    baseline,
    referenceRank,
    exactMatch,
  };
}

type NumParser = (v: unknown, where: string, check: (x: number) => boolean, what: string) => number | undefined;

function parseTrain(
  t: Record<string, unknown>,
  train: ExperimentTrain,
  problems: string[],
  num: NumParser,
  int1: (x: number) => boolean,
  int0: (x: number) => boolean,
): void {
  for (const key of Object.keys(t))
    if (!(key in TRAIN_KEYS))
      problems.push(`unknown key "train.${key}" (known: ${Object.keys(TRAIN_KEYS).join(', ')})`);
  const set = <K extends keyof ExperimentTrain>(key: K, v: ExperimentTrain[K] | undefined) => {
    if (v !== undefined) train[key] = v;
  };
  set('steps', num(t.steps, 'train.steps', int1, 'an integer >= 1'));
  set('batch', num(t.batch, 'train.batch', int1, 'an integer >= 1'));
  set('gradAccum', num(t.grad_accum, 'train.grad_accum', int1, 'an integer >= 1'));
  set(
    'seqLen',
    num(t.seq_len, 'train.seq_len', (x) => Number.isInteger(x) && x >= 2, 'an integer >= 2'),
  );
  set('warmup', num(t.warmup, 'train.warmup', int0, 'an integer >= 0'));
  set(
    'weightDecay',
    num(t.weight_decay, 'train.weight_decay', (x) => x >= 0, 'a number >= 0'),
  );
  set(
    'maxGradNorm',
    num(t.max_grad_norm, 'train.max_grad_norm', (x) => x >= 0, 'a number >= 0 (0 = off)'),
  );
  set(
    'minLrRatio',
    num(t.min_lr_ratio, 'train.min_lr_ratio', (x) => x >= 0 && x <= 1, 'a fraction in [0, 1]'),
  );
  set(
    'lrRatioB',
    num(t.lr_ratio_b, 'train.lr_ratio_b', (x) => x > 0, 'a positive number'),
  );
  set('evalEvery', num(t.eval_every, 'train.eval_every', int0, 'an integer >= 0'));
  const choice = <T extends string>(v: unknown, where: string, choices: readonly T[]): T | undefined => {
    if (v === undefined) return undefined;
    if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T;
    problems.push(`${where} must be one of ${choices.join(', ')} (got ${JSON.stringify(v)})`);
    return undefined;
  };
  set('truncation', choice(t.truncation, 'train.truncation', TRUNCATIONS));
  set('promptJoin', choice(t.prompt_join, 'train.prompt_join', PROMPT_JOINS));
  set('packing', choice(t.packing, 'train.packing', ['auto', 'on', 'off'] as const));
  set('recompute', choice(t.recompute, 'train.recompute', RECOMPUTE_MODES));
}

function parseMethod(
  entry: unknown,
  i: number,
  problems: string[],
  num: NumParser,
  numberList: (v: unknown, where: string, check: (x: number) => boolean, what: string) => number[] | undefined,
  int1: (x: number) => boolean,
  int0: (x: number) => boolean,
): ExperimentMethod | null {
  const where = `methods[${i}]`;
  if (!isObject(entry)) {
    problems.push(`${where} must be an object like {"name": "lora-r8", "method": "lora", "rank": 8}`);
    return null;
  }
  const method = entry.method;
  if (typeof method !== 'string' || !isMethodId(method)) {
    problems.push(`${where}.method must be one of ${METHOD_IDS.join(', ')} (got ${JSON.stringify(method)})`);
    return null;
  }
  if (method === 'full') {
    problems.push(`${where}: full fine-tuning has no adapter budget to match; compare it in single runs`);
    return null;
  }
  const d = methodDescriptor(method);
  const name =
    entry.name === undefined ? method : typeof entry.name === 'string' ? entry.name : (undefined as unknown as string);
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    problems.push(
      `${where}.name must be letters, digits, ".", "_" or "-" (it names the runs' folders), got ${JSON.stringify(entry.name)}`,
    );
    return null;
  }
  const label = `methods "${name}"`;
  const options: Record<string, unknown> = {};
  const byName = new Map(allMethodOptions().map((o) => [snake(o.flag), o]));
  for (const [key, value] of Object.entries(entry)) {
    if (METHOD_KEYS.includes(key)) continue;
    const option = byName.get(key);
    if (!option) {
      const own = d.options.map((o) => snake(o.flag));
      problems.push(`${label}: unknown key "${key}" (${d.label} takes ${[...METHOD_KEYS, ...own].join(', ')})`);
      continue;
    }
    options[option.key] = value;
  }
  const rank = num(entry.rank, `${label}: rank`, int1, 'an integer >= 1');
  const alphaGiven = num(entry.alpha, `${label}: alpha`, (x) => x > 0, 'a positive number');
  const targets = parseTargets(entry.targets, label, problems);
  const lrs = numberList(entry.lrs, `${label}: lrs`, (x) => x > 0, 'positive learning rates');
  const seeds = numberList(entry.seeds, `${label}: seeds`, int0, 'integers >= 0');
  return {
    name,
    method,
    rank: rank ?? 0,
    rankMatched: rank === undefined,
    // The CLI's default alpha.
    alpha: alphaGiven ?? RUN_DEFAULTS.alpha,
    targets,
    options,
    ...(lrs ? { lrs } : {}),
    ...(seeds ? { seeds } : {}),
  };
}

/** "all-linear", "q_proj,v_proj", ["q_proj", "v_proj"], or absent (PEFT's default for the family). */
function parseTargets(v: unknown, label: string, problems: string[]): string[] {
  if (v === undefined) return [];
  const list =
    typeof v === 'string' ? v.split(',') : Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : null;
  if (!list) {
    problems.push(`${label}: targets must be "all-linear", a comma-separated string or a list of module names`);
    return [];
  }
  return list.map((s: string) => s.trim()).filter(Boolean);
}

function baseName(path: string): string {
  return (
    path
      .replace(/[/\\]+$/, '')
      .split(/[/\\]/)
      .pop() || path
  );
}

/** The experiment as its file: snake_case, every default filled in (what the report and experiment_peft.py read). */
export function experimentToJson(e: Experiment): Record<string, unknown> {
  const train: Record<string, unknown> = {};
  for (const [file, key] of Object.entries(TRAIN_KEYS)) if (e.train[key] !== undefined) train[file] = e.train[key];
  return {
    name: e.name,
    model: e.model,
    data: e.data,
    split: { ...e.split },
    train,
    methods: e.methods.map((m) => {
      const options = optionsAsFileKeys(m);
      return {
        name: m.name,
        method: m.method,
        rank: m.rank,
        alpha: m.alpha,
        targets: m.targets,
        ...options,
        lrs: m.lrs,
        seeds: m.seeds,
      };
    }),
    lrs: e.lrs.length ? e.lrs : undefined,
    seeds: e.seeds,
    baseline: e.baseline,
    reference_rank: e.referenceRank,
    exact_match: e.exactMatch,
  };
}

/** A configuration's options as the file names them (gralora_k, hybrid_r), every option it reads with its default. */
export function optionsAsFileKeys(m: ExperimentMethod): Record<string, unknown> {
  const flagOf = new Map(allMethodOptions().map((o) => [o.key, snake(o.flag)]));
  const { values } = resolveMethodOptions(m.method, m.rank, m.options as OptionValues);
  const options: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) if (value !== undefined) options[flagOf.get(key) ?? key] = value;
  return options;
}
