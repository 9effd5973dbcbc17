/** One method configuration of an experiment draft: name, method, rank or "match budget", alpha, targets, rates, options. */
import type { OptionValues } from '../../adapters/options';
import { resolveMethodOptions } from '../../adapters/registry';
import { defaultLrGrid } from '../../experiment/plan';
import type { ExperimentMethod } from '../../experiment/types';
import type { MethodExtras, MethodId, RunConfig } from '../../worker/protocol';
import { allocatesRanks, METHOD_OPTIONS } from '../methods';
import { CheckField, NumberListField, TextField } from './ExperimentFields';
import { NumberField, SelectField } from './Fields';
import { MethodOptions } from './MethodOptions';

/** Full fine-tuning has no adapter budget to match: experiments compare adapters. */
const EXPERIMENT_METHODS = METHOD_OPTIONS.filter(([id]) => id !== 'full');

type TargetChoice = 'qv' | 'all-linear' | 'custom';

function targetChoice(targets: string[]): TargetChoice {
  if (targets.length === 0) return 'qv';
  return targets.length === 1 && targets[0] === 'all-linear' ? 'all-linear' : 'custom';
}

/**
 * MethodOptions edits a run's method options; a configuration is shaped like one for it (only the method, rank,
 * alpha and options are read).
 */
function asRunConfig(m: ExperimentMethod): RunConfig {
  return {
    id: m.name,
    name: m.name,
    method: m.method,
    rank: m.rank,
    alpha: m.alpha,
    targets: targetChoice(m.targets) === 'all-linear' ? 'all-linear' : 'qv',
    lr: 0,
    steps: 1,
    batch: 1,
    seq: 2,
    warmupSteps: 0,
    valExamples: 0,
    evalEvery: 0,
    seed: 0,
    extras: m.options as MethodExtras,
  };
}

/** The options that still apply after a method change (the others would be refused as not applying). */
function optionsFor(method: MethodId, rank: number, options: ExperimentMethod['options']): ExperimentMethod['options'] {
  const given = options as OptionValues;
  const { applicable } = resolveMethodOptions(method, rank, given);
  const kept: Record<string, unknown> = {};
  for (const o of applicable) if (given[o.key] !== undefined) kept[o.key] = given[o.key];
  return kept as ExperimentMethod['options'];
}

export function ExperimentMethodRow(props: {
  config: ExperimentMethod;
  /** The rank budget matching gives it on the loaded model (null: no model, or its rank is given). */
  matchedRank: number | null;
  family: 'gpt2' | string | undefined;
  /** Rates: its own grid (per configuration), or the shared one (the field is not shown). */
  ownRates: boolean;
  canRemove: boolean;
  set(m: ExperimentMethod): void;
  remove(): void;
}) {
  const m = props.config;
  const set = (patch: Partial<ExperimentMethod>) => props.set({ ...m, ...patch });
  const choice = targetChoice(m.targets);
  const targetOptions: [TargetChoice, string][] = [
    ['qv', props.family === 'gpt2' ? 'c_attn (PEFT default)' : 'q, v (PEFT default)'],
    ['all-linear', 'All linear layers'],
    ...(choice === 'custom' ? [['custom', m.targets.join(', ')] as [TargetChoice, string]] : []),
  ];
  const rankLabel = allocatesRanks(m.method) ? 'r_ref' : 'Rank';
  return (
    <fieldset className="experiment-method" aria-label={`Configuration ${m.name}`} data-testid="experiment-method">
      <div className="run-form">
        <TextField
          label="Name"
          value={m.name}
          onChange={(name) => set({ name })}
          hint="Letters, digits, '.', '_' or '-': it names the runs' folders and the report's rows"
        />
        <SelectField
          wide
          label="Method"
          value={m.method}
          options={EXPERIMENT_METHODS}
          onChange={(method: MethodId) =>
            set({
              method,
              options: optionsFor(method, m.rank, m.options),
              ...(props.ownRates ? { lrs: defaultLrGrid(method) } : {}),
            })
          }
        />
        {m.rankMatched ? (
          <div className="field" title="Chosen so its trainable parameters match the reference LoRA's">
            <span className="field-label">{rankLabel}</span>
            <span className="field-static" data-testid="matched-rank">
              {props.matchedRank ?? '–'} (matched)
            </span>
          </div>
        ) : (
          <NumberField label={rankLabel} value={m.rank} integer onChange={(rank) => set({ rank })} />
        )}
        <CheckField
          label="Match budget"
          checked={m.rankMatched}
          onChange={(rankMatched) => set({ rankMatched, rank: rankMatched ? m.rank : (props.matchedRank ?? m.rank) })}
          hint="Choose the rank whose trainable parameters come closest to the reference LoRA's"
        />
        <NumberField label="Alpha" value={m.alpha} onChange={(alpha) => set({ alpha })} />
        <SelectField
          wide
          label="Targets"
          value={choice}
          options={targetOptions}
          onChange={(t) => t !== 'custom' && set({ targets: t === 'all-linear' ? ['all-linear'] : [] })}
        />
        {props.ownRates && (
          <NumberListField
            label="Learning rates"
            value={m.lrs ?? []}
            onChange={(lrs) => set({ lrs })}
            hint={`Peak rates to try, comma-separated (default for ${m.method}: ${defaultLrGrid(m.method).join(', ')})`}
          />
        )}
        <div className="experiment-method-buttons">
          <button
            className="btn btn-ghost btn-sm"
            disabled={!props.canRemove}
            onClick={props.remove}
            aria-label={`Remove configuration ${m.name}`}
          >
            Remove
          </button>
        </div>
      </div>
      <MethodOptions
        config={asRunConfig(m)}
        set={(p) => {
          if (p.extras) set({ options: p.extras as ExperimentMethod['options'] });
        }}
      />
    </fieldset>
  );
}
