/**
 * The scale-out export of an experiment: experiment_peft.py runs the same grid with Hugging Face PEFT on a machine
 * with several GPUs (one process per GPU, whole runs each) and writes results.json in the CLI's schema, so a study
 * started in the studio goes on on a cluster. The script reads the experiment's folder (experiment.json, data/);
 * what only a finished studio run knows, the ranks GoRA and GeLoRA allocated, comes in rank_patterns.json.
 */
import { geloraScale } from '../adapters/gelora/config';
import { stripPeftPrefix } from '../adapters/lora/peft';
import type { OptionValues } from '../adapters/options';
import { methodDescriptor, resolveMethodOptions } from '../adapters/registry';
import type { ModelSpec } from '../model/config';
import { allLinearTargets, defaultTargets } from '../model/layout';
import { accelerateConfig, MIN_PEFT } from '../worker/snippets';
import { BUDGET_TOLERANCE } from './budget';
import { experimentPeftPython } from './peft-python';
import type { ExperimentMethod, ExperimentResults, ExperimentRunResult } from './types';

export const EXPERIMENT_PEFT_COMMAND =
  'accelerate launch --config_file accelerate_config.yaml experiment_peft.py --dir .';

/** A GoRA or GeLoRA configuration as PEFT LoraConfig fields: one studio run's ranks, with the method's scale. */
export interface PeftRankPattern {
  method: string;
  /** The studio run the ranks come from: the configuration's chosen rate, its lowest finished seed. */
  source: { lr: number; seed: number; adapter: string };
  /** The scale rule the fields reproduce, in words. */
  scale: string;
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  /** Full module paths (PEFT matches a path exactly, or as the end of a module name). */
  target_modules: string[];
  rank_pattern: Record<string, number>;
  alpha_pattern: Record<string, number>;
  note?: string;
}

/** A configuration PEFT cannot train as the studio did, and why (the script fails its runs with this reason). */
export interface UnsupportedPattern {
  method: string;
  unsupported: string;
}

export type RankPatterns = Record<string, PeftRankPattern | UnsupportedPattern>;

/**
 * GoRA's B starts from the accumulated gradient in the studio; PEFT's LoraConfig has no such initialisation, so
 * on the cluster GoRA is its ranks and scales only, with B at zero like LoRA.
 */
export const GORA_INIT_NOTE =
  "PEFT trains GoRA's ranks and scales only: GoRA's gradient-based initialisation of B is not reproduced (B starts at zero).";

/** experiment_peft.py, accelerate_config.yaml and rank_patterns.json for an experiment's folder. */
export function experimentPeftFiles(results: ExperimentResults): Record<string, string> {
  return {
    'experiment_peft.py': experimentPeftPython({
      experimentName: results.experiment.name,
      command: EXPERIMENT_PEFT_COMMAND,
      targets: { gpt2: familyTargets('gpt2'), llama: familyTargets('llama') },
      referenceParams: results.referenceParams,
      budgetTolerance: BUDGET_TOLERANCE,
      minPeft: { ...MIN_PEFT },
      goraInitNote: GORA_INIT_NOTE,
    }),
    'accelerate_config.yaml': experimentAccelerateConfig(),
    'rank_patterns.json': `${JSON.stringify(rankPatterns(results), null, 2)}\n`,
  };
}

/** The target names the studio resolves [] and all-linear to, per family (engine/methods.ts resolveTargets). */
function familyTargets(family: ModelSpec['family']): { default: string[]; all_linear: string[] } {
  // Both read the family alone.
  const spec = { family } as ModelSpec;
  return { default: defaultTargets(spec), all_linear: allLinearTargets(spec) };
}

// ------------------------------------------------------------------ rank patterns

/** Every rank-allocating configuration (GoRA, GeLoRA) by name: its PEFT fields, or why PEFT cannot train it. */
export function rankPatterns(results: ExperimentResults): RankPatterns {
  const out: RankPatterns = {};
  for (const m of results.experiment.methods)
    if (methodDescriptor(m.method).allocatesRanks) out[m.name] = rankPatternOf(results, m);
  return out;
}

/** The run whose ranks stand for a configuration: at its chosen rate (summary.bestLr), the lowest finished seed. */
export function chosenRun(results: ExperimentResults, name: string): ExperimentRunResult | undefined {
  const summary = results.summary.find((s) => s.name === name);
  if (!summary) return undefined;
  return results.runs
    .filter((r) => r.name === name && r.lr === summary.bestLr && r.status === 'done')
    .sort((a, b) => a.seed - b.seed)[0];
}

function rankPatternOf(results: ExperimentResults, m: ExperimentMethod): PeftRankPattern | UnsupportedPattern {
  const { values } = resolveMethodOptions(m.method, m.rank, m.options as OptionValues);
  if (values.structure === 'gralora') {
    return {
      method: m.method,
      unsupported:
        "its ranks go to GraLoRA blocks, one rank per module, and PEFT's GraloraConfig has one r for every module (no rank_pattern)",
    };
  }
  const run = chosenRun(results, m.name);
  if (!run || Object.keys(run.ranks).length === 0) {
    return {
      method: m.method,
      unsupported: 'no finished studio run of this configuration to take its per-module ranks from',
    };
  }
  // PEFT matches pattern keys against module names inside the base model: no base_model.model. prefix.
  const rankPattern = Object.fromEntries(Object.entries(run.ranks).map(([path, r]) => [stripPeftPrefix(path), r]));
  const fields = (scale: string, useRslora: boolean, alphaPattern: Record<string, number>) => ({
    method: m.method,
    source: { lr: run.lr, seed: run.seed, adapter: run.adapter },
    scale,
    r: m.rank,
    lora_alpha: m.alpha,
    use_rslora: useRslora,
    target_modules: Object.keys(rankPattern).sort(),
    rank_pattern: rankPattern,
    alpha_pattern: alphaPattern,
  });
  if (methodDescriptor(m.method).recipe!.allocation === 'gora') {
    // GoRA's scale is alpha/sqrt(r_l) per module (gora/config.ts goraScale): PEFT's rsLoRA rule at each module's r.
    return { ...fields('alpha/sqrt(r) per module: use_rslora, lora_alpha = alpha', true, {}), note: GORA_INIT_NOTE };
  }
  // GeLoRA's scale is one s for every module (gelora/config.ts geloraScale): alpha/r_ref, or 32 with paper32.
  // PEFT computes alpha_l / r_l without rsLoRA, so alpha_l = s * r_l.
  const paper = values.geloraScale === 'paper32';
  const s = geloraScale({ scaleMode: paper ? 'paper32' : 'uniform', alpha: m.alpha, rankRef: m.rank });
  const alphaPattern = Object.fromEntries(Object.entries(rankPattern).map(([path, r]) => [path, exact(s * r)]));
  const rule = paper ? 's = 32' : `s = alpha/r_ref = ${m.alpha}/${m.rank}`;
  return fields(`${rule} for every module: alpha_pattern = s * r`, false, alphaPattern);
}

/** Drops the last-bit noise of a product (16/12 * 3 = 4.000000000000001 -> 4): these are config values. */
function exact(x: number): number {
  return Number(x.toPrecision(15));
}

// ------------------------------------------------------------------ accelerate

/**
 * accelerate_config.yaml: the single-run export's config (worker/snippets.ts), with this script's launch line, 8
 * processes, and mixed precision off (the script chooses its dtype itself, --bf16). Throws if that config no longer
 * has a line this rewrites, rather than writing a config that says something else.
 */
export function experimentAccelerateConfig(): string {
  const replacements: [RegExp, string][] = [
    [/^# accelerate launch .*$/m, `# ${EXPERIMENT_PEFT_COMMAND}`],
    [
      /^# One machine, one process per GPU.*$/m,
      '# One machine, one process per GPU: each process trains whole runs of the grid (no gradients are exchanged).',
    ],
    [
      /^# or override it: .*$/m,
      '# Set num_processes to your GPU count, or override it: accelerate launch --num_processes 8 ...',
    ],
    [/^num_processes: \d+$/m, 'num_processes: 8  # your GPU count'],
    [/^# bf16 needs .*$/m, '# experiment_peft.py chooses the dtype itself (--bf16 loads the base model in bfloat16).'],
    [/^mixed_precision: .*$/m, "mixed_precision: 'no'"],
  ];
  let text = accelerateConfig();
  for (const [pattern, line] of replacements) {
    if (!pattern.test(text)) throw new Error(`accelerateConfig() has no line matching ${pattern}`);
    text = text.replace(pattern, line);
  }
  return text;
}
