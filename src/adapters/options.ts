/**
 * How a method describes itself and its options, once, in its own folder (src/adapters/<method>/method.ts):
 * the CLI's flags and help, the studio's form and the validation of both are generated from these descriptors
 * (src/adapters/registry.ts). Problems are phrased without naming a surface: each surface supplies the names
 * (`--gralora-k` in the CLI, "k" in the studio) through a Wording.
 */

/** A method option's value as the run keeps it (numbers, choices, flags). */
export type OptionValue = number | string | boolean;
/** Option key -> value: the method's own options of one run, as typed or defaulted. */
export type OptionValues = Record<string, OptionValue | undefined>;

/** What a method's options and defaults can depend on: the run's rank and its other options. */
export interface OptionContext {
  rank: number;
  values: OptionValues;
}

export interface MethodOption {
  /** The key in the run's options (MethodOptions / RunConfig.extras), e.g. 'graloraK'. */
  key: string;
  kind: 'int' | 'number' | 'choice' | 'flag';
  /** The studio's field label ("k", "N batches", "γ"). */
  label: string;
  /** The CLI flag without its dashes ("gralora-k"). */
  flag: string;
  /** One line on what it does (the CLI's help, and the field's tooltip unless `hint` says it for the form). */
  help: string;
  hint?: string;
  /** The value when none is given; a function when it depends on the run (GraLoRA's k from the total rank). */
  default: OptionValue | ((c: OptionContext) => OptionValue);
  /** How a computed default reads in the CLI's help ("2 up to total rank 32, 4 from 64"). */
  defaultText?: string;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** The studio's text per choice (absent: the choice itself). */
  choiceLabels?: Record<string, string>;
  /** Shown in the studio's form (false: a CLI option only). */
  inForm: boolean;
  /** Applies to this run (e.g. k only with the GraLoRA structure). Absent: always. */
  appliesTo?(c: OptionContext): boolean;
}

/**
 * A problem with a run's method options, phrased for any surface: `message` gets a namer that turns an option
 * key (and the value, when the sentence quotes it) into the surface's words.
 */
export interface OptionProblem {
  key: string;
  message(w: Wording): string;
}

/** The words of one surface: option names, and how number ranges are said. */
export interface Wording {
  /** First mention: "--gralora-k 4" / "GraLoRA k 4" with a value; "--gralora-k" / "GraLoRA k" without. */
  name(option: OptionName, value?: OptionValue): string;
  /** Later mentions in the same sentence: "--rank-max" / "r_max". */
  short(option: OptionName, value?: OptionValue): string;
  integer(min: number, max?: number): string;
  number(min: number): string;
}

export type OptionName = Pick<MethodOption, 'flag' | 'label'>;

/** The rank every adapter method has (r, or r_ref for the allocating ones), for messages about it. */
export const RANK_OPTION: OptionName = { flag: 'rank', label: 'rank' };

const withValue = (text: string, value?: OptionValue) => (value === undefined ? text : `${text} ${value}`);

/** The CLI names its flags: "--rank-min (9) is larger than --rank-max (3)". */
export const CLI_OPTION_WORDING: Wording = {
  name: (o, value) => withValue(`--${o.flag}`, value),
  short: (o, value) => withValue(`--${o.flag}`, value),
  integer: (min, max) => (max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`),
  number: (min) => `a finite number >= ${min}`,
};

/** A field label inside a sentence: "Hybrid r" -> "hybrid r"; symbols and initials ("N batches", "k", "γ") stay. */
function inSentence(label: string): string {
  return /^[A-Z][a-z]/.test(label) ? label.charAt(0).toLowerCase() + label.slice(1) : label;
}

/** The studio names its fields, the first time with the method: "GoRA r_min (20) is larger than r_max (16)". */
export function formOptionWording(methodLabel: string): Wording {
  return {
    name: (o, value) => withValue(`${methodLabel} ${inSentence(o.label)}`, value),
    short: (o, value) => withValue(inSentence(o.label), value),
    integer: (min, max) =>
      max === undefined ? `a whole number of at least ${min}` : `a whole number from ${min} to ${max}`,
    number: (min) => `a number of at least ${min}`,
  };
}

/** The option's value in a run: as given, else its default. */
export function optionValue(option: MethodOption, c: OptionContext): OptionValue {
  const given = c.values[option.key];
  if (given !== undefined) return given;
  return typeof option.default === 'function' ? option.default(c) : option.default;
}

/** The checks every option gets from its description: kind, range and choices. */
export function checkOption(option: MethodOption, value: OptionValue): OptionProblem | null {
  const { key } = option;
  switch (option.kind) {
    case 'int': {
      const ok =
        typeof value === 'number' &&
        Number.isInteger(value) &&
        value >= (option.min ?? -Infinity) &&
        value <= (option.max ?? Infinity);
      return ok
        ? null
        : { key, message: (w) => `${w.name(option)} must be ${w.integer(option.min ?? 0, option.max)} (got ${value})` };
    }
    case 'number': {
      const ok = typeof value === 'number' && Number.isFinite(value) && value >= (option.min ?? -Infinity);
      return ok
        ? null
        : { key, message: (w) => `${w.name(option)} must be ${w.number(option.min ?? 0)} (got ${value})` };
    }
    case 'choice':
      return option.choices!.includes(String(value))
        ? null
        : { key, message: (w) => `${w.name(option)} must be one of ${option.choices!.join(', ')} (got "${value}")` };
    case 'flag':
      return typeof value === 'boolean'
        ? null
        : { key, message: (w) => `${w.name(option)} is a flag (true or false), got ${JSON.stringify(value)}` };
  }
}

/** How a method's adapters scale their update: the formula, and its value at the configured rank. */
export interface ScaleRule {
  /** "α/r", "α/√r_l per module", ... */
  formula: string;
  /** The scale at the configured rank (GoRA: at r_ref; each module uses its own r_l); null: no adapter. */
  value: number | null;
  perModule: boolean;
}

/** The structure option's choices (what an allocating method gives its ranks to). */
export type Structure = 'dense' | 'gralora';
/** What a method trains: the two structures above, DoRA's magnitude-scaled dense pair, AdaLoRA's P·Λ·Q triplets. */
export type AdapterStructure = Structure | 'dora' | 'adalora';
export type Allocation = 'uniform' | 'gora' | 'gelora' | 'adalora';
/** How A and B start: LoRA's (B = 0), GoRA's gradient compression, PiSSA's top singular triplets of W, LoRA-GA's of the gradient, AdaLoRA's. */
export type Init = 'lora' | 'gora' | 'pissa' | 'loraga' | 'adalora';

/** What a method is made of: a structure x a rank allocation x an initialization (docs/METHODS.md). */
export interface Recipe {
  structure: AdapterStructure;
  allocation: Allocation;
  init: Init;
}

export interface MethodDescriptor<Id extends string = string> {
  id: Id;
  /** "GoRA". */
  label: string;
  /** The method select's text: "GoRA (gradient ranks)". */
  choiceLabel: string;
  /** What it does before and during training, in a sentence (the studio's method panel). */
  note: string;
  /** The PEFT format it exports (null: full fine-tuning writes a model). */
  peftType: 'LORA' | 'GRALORA' | 'ADALORA' | null;
  /** null: full fine-tuning (no adapter). */
  recipe: Recipe | null;
  /** The rank field means r_ref, the budget of a uniform LoRA, for methods that allocate ranks. */
  allocatesRanks: boolean;
  /** The learning rate it is usually trained at here: the centre of an experiment's default rate grid. */
  usualLr: number;
  /** Its own options, in form order (only those that apply to a run are read). */
  options: readonly MethodOption[];
  scaleRule(rank: number, alpha: number, c: OptionContext): ScaleRule;
  /** Checks across options (ranges and choices come from the options themselves). */
  validate?(rank: number, c: OptionContext, options: readonly MethodOption[]): OptionProblem[];
  /**
   * Trainable parameters of one target module [out, in] at the run's rank, before training (absent: a rank-r LoRA's
   * r·(in + out)). Methods that allocate ranks return their budget; DoRA adds its magnitude vector.
   */
  moduleParameters?(module: { in: number; out: number }, rank: number, c: OptionContext): number;
  /**
   * A second export the method offers beside its default one (PiSSA: the raw adapter as PEFT saves it by default):
   * the studio's button and what its zip's README says it is.
   */
  rawExport?: { button: string; what: string };
  /** The settings line of a started run ("N 8, γ 0.05, r 2–16"); null when there is nothing to add. */
  summary?(c: OptionContext): string | null;
}

/** The PEFT adapter formats this app writes and reads. */
export type AdapterFormat = 'lora' | 'gralora' | 'adalora';
