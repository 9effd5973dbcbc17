/**
 * A run's configuration as a JSON file: exported from a run card, imported as a new draft. Import checks every
 * field and says which one is wrong, naming it as the file spells it and as the run form labels it. Pure.
 */
import type { MethodOption } from '../adapters/options';
import { checkOption, formOptionWording } from '../adapters/options';
import {
  allMethodOptions,
  formMessages,
  isMethodId,
  METHOD_IDS,
  methodDescriptor,
  methodProblems,
} from '../adapters/registry';
import { DEFAULT_TRUNCATION, TRUNCATIONS } from '../data/truncation';
import { RECOMPUTE_MODES } from '../model/recompute';
import type { MethodExtras, RunConfig } from '../worker/protocol';
import { gradAccumOf, runnableConfig } from './methods';

/** A run's settings as the file holds them: the configuration without its id (an import gets a new one). */
export type RunSettings = Omit<RunConfig, 'id'>;

export const RUN_CONFIG_FORMAT = 'lora-studio-run';
export const RUN_CONFIG_VERSION = 1;

/** The settings a run uses, every optional one written out (what the file says is what runs). */
export function runConfigSettings(c: RunConfig): RunSettings {
  const { id: _id, extras, ...rest } = runnableConfig(c);
  return {
    ...rest,
    gradAccum: gradAccumOf(c),
    truncation: c.truncation ?? DEFAULT_TRUNCATION,
    recompute: c.recompute ?? 'none',
    ...(extras ? { extras } : {}),
  };
}

/** The file "Export config" writes. */
export function runConfigJson(c: RunConfig): string {
  const doc = { format: RUN_CONFIG_FORMAT, version: RUN_CONFIG_VERSION, settings: runConfigSettings(c) };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

type FieldKind =
  | { kind: 'text' }
  | { kind: 'int'; min?: number }
  | { kind: 'positive' }
  | { kind: 'choice'; choices: readonly string[] };

/** Every setting a file may hold (but extras, checked option by option), with the run form's label. */
const FIELDS: Record<Exclude<keyof RunSettings, 'extras'>, { label: string } & FieldKind> = {
  name: { label: 'Run name', kind: 'text' },
  method: { label: 'Method', kind: 'choice', choices: METHOD_IDS },
  rank: { label: 'Rank', kind: 'int', min: 1 },
  alpha: { label: 'Alpha', kind: 'positive' },
  targets: { label: 'Targets', kind: 'choice', choices: ['qv', 'all-linear'] },
  lr: { label: 'Learning rate', kind: 'positive' },
  steps: { label: 'Steps', kind: 'int', min: 1 },
  batch: { label: 'Batch', kind: 'int', min: 1 },
  gradAccum: { label: 'Gradient accumulation', kind: 'int', min: 1 },
  seq: { label: 'Seq. length', kind: 'int', min: 2 },
  truncation: { label: 'Truncation', kind: 'choice', choices: TRUNCATIONS },
  warmupSteps: { label: 'Warmup', kind: 'int', min: 0 },
  valExamples: { label: 'Val. examples', kind: 'int', min: 0 },
  evalEvery: { label: 'Eval every', kind: 'int', min: 0 },
  seed: { label: 'Seed', kind: 'int' },
  recompute: { label: 'Activations', kind: 'choice', choices: RECOMPUTE_MODES },
};

const SETTING_KEYS = [...Object.keys(FIELDS), 'extras'];

export type ImportResult = { ok: true; settings: RunSettings } | { ok: false; problems: string[] };

/**
 * The settings of a run configuration file (Export config's, or its `settings` object alone). Settings the file
 * leaves out take `defaults` (a new run's); a name left out is made from the settings by `nameOf`. Every problem is
 * listed, each naming its field.
 */
export function parseRunConfigJson(
  text: string,
  defaults: RunSettings,
  nameOf: (s: RunSettings) => string,
): ImportResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return fail(`The file is not valid JSON (${(err as Error).message}).`);
  }
  const settings = settingsObject(doc);
  if (typeof settings === 'string') return fail(settings);

  const problems: string[] = [];
  for (const key of Object.keys(settings))
    if (!SETTING_KEYS.includes(key))
      problems.push(`"${key}" is not a run setting. The settings are: ${SETTING_KEYS.join(', ')}.`);
  const { extras: _defaultExtras, ...base } = defaults;
  const out: Record<string, unknown> = { ...base };
  for (const [key, field] of Object.entries(FIELDS)) {
    const value = settings[key];
    if (value === undefined) continue;
    const problem = fieldProblem(value, field);
    if (problem) problems.push(`"${key}" (${labelOf(key, field.label, settings)}) ${problem} (got ${shown(value)}).`);
    else out[key] = value;
  }
  if (settings.extras !== undefined) {
    const extras = extrasOf(settings.extras, String(out.method), problems);
    if (extras) out.extras = extras;
  }
  if (problems.length) return { ok: false, problems };

  const result = out as unknown as RunSettings;
  // Options of one method checked against each other and the rank (GraLoRA's k must divide r), in the form's words.
  const method = methodProblems(result.method, {
    rank: result.rank,
    alpha: result.alpha,
    given: { ...result.extras },
  });
  if (method.length) {
    const field = (key: string) => (key in FIELDS ? key : `extras.${key}`);
    return { ok: false, problems: method.map((p) => `"${field(p.key)}": ${formMessages(result.method, [p])[0]}`) };
  }
  if (settings.name === undefined) result.name = nameOf(result);
  return { ok: true, settings: result };
}

const fail = (problem: string): ImportResult => ({ ok: false, problems: [problem] });

/** The settings object of a file, or why the file is not a run configuration. */
function settingsObject(doc: unknown): Record<string, unknown> | string {
  if (!isObject(doc)) return 'The file must hold a JSON object: a run configuration (Export config on a run card).';
  if (doc.format === undefined && doc.settings === undefined) return doc;
  if (doc.format === undefined)
    return `The file has "settings" but no "format": a run configuration says "format": "${RUN_CONFIG_FORMAT}" (a run card's Export config writes one).`;
  if (doc.format !== RUN_CONFIG_FORMAT) {
    return `This file is not a run configuration: its "format" is ${shown(doc.format)}, not "${RUN_CONFIG_FORMAT}" (a run card's Export config writes one).`;
  }
  if (doc.version !== RUN_CONFIG_VERSION) {
    return `"version" must be ${RUN_CONFIG_VERSION} (got ${shown(doc.version)}): this studio reads version ${RUN_CONFIG_VERSION} run configurations.`;
  }
  if (!isObject(doc.settings)) return `"settings" must be an object of run settings (got ${shown(doc.settings)}).`;
  const extra = Object.keys(doc).filter((k) => !['format', 'version', 'settings'].includes(k));
  if (extra.length)
    return `"${extra[0]}" is not part of a run configuration file (it holds format, version and settings).`;
  return doc.settings;
}

function fieldProblem(value: unknown, field: FieldKind): string | null {
  switch (field.kind) {
    case 'text':
      return typeof value === 'string' && value.trim() !== '' ? null : 'must be a non-empty text';
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= (field.min ?? -Infinity)
        ? null
        : field.min === undefined
          ? 'must be a whole number'
          : `must be a whole number of at least ${field.min}`;
    case 'positive':
      return typeof value === 'number' && Number.isFinite(value) && value > 0 ? null : 'must be a positive number';
    case 'choice':
      return typeof value === 'string' && field.choices.includes(value)
        ? null
        : `must be one of ${field.choices.join(', ')}`;
  }
}

/** The rank's label follows the method: GoRA's and GeLoRA's rank is the budget r_ref. */
function labelOf(key: string, label: string, settings: Record<string, unknown>): string {
  const method = settings.method;
  return key === 'rank' && typeof method === 'string' && isMethodId(method) && methodDescriptor(method).allocatesRanks
    ? 'r_ref'
    : label;
}

/** The method options of a file, each a known option of a valid value; problems are added to `problems`. */
function extrasOf(value: unknown, method: string, problems: string[]): MethodExtras | null {
  if (!isObject(value)) {
    problems.push(`"extras" must be an object of method options, e.g. {"graloraK": 2} (got ${shown(value)}).`);
    return null;
  }
  const options = allMethodOptions();
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const option = options.find((o) => o.key === key);
    if (!option) {
      problems.push(
        `"extras.${key}" is not an option of any method. The options are: ${options.map((o) => o.key).join(', ')}.`,
      );
      continue;
    }
    // Only the run's method reads its options (a draft keeps other methods' options, but the file is what runs).
    if (isMethodId(method) && !methodDescriptor(method).options.some((o) => o.key === key)) {
      const owners = METHOD_IDS.map(methodDescriptor).filter((m) => m.options.some((o) => o.key === key));
      problems.push(
        `"extras.${key}" (${option.label}) is not an option of ${methodDescriptor(method).label}: it belongs to ${owners.map((m) => m.label).join(', ')}.`,
      );
      continue;
    }
    const problem = checkOption(option, v as never);
    if (problem) problems.push(`"extras.${key}": ${problem.message(formOptionWording(ownerLabel(option, method)))}.`);
    else out[key] = v;
  }
  return Object.keys(out).length ? (out as MethodExtras) : null;
}

/** The label of the method the option belongs to: the run's own, else (an unknown method) the first that has it. */
function ownerLabel(option: MethodOption, method: string): string {
  if (isMethodId(method)) return methodDescriptor(method).label;
  return METHOD_IDS.map(methodDescriptor).find((m) => m.options.some((o) => o.key === option.key))!.label;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A value as a message quotes it: JSON, so a string shows its quotes and an object its shape. */
function shown(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}
