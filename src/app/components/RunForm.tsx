import type { Recompute } from '../../model/recompute';
import type { MethodId, ModelCard, RunConfig, TargetPreset } from '../../worker/protocol';
import { allocatesRanks, gradAccumOf, METHOD_OPTIONS } from '../methods';
import { NumberField, SelectField } from './Fields';
import { MethodOptions } from './MethodOptions';
import { TRUNCATION_HINT, TRUNCATION_OPTIONS } from './RunData';

const RECOMPUTE_OPTIONS: [Recompute, string][] = [
  ['none', 'Keep all (fastest)'],
  ['mlp', 'Recompute MLP (less memory)'],
  ['block', 'Recompute blocks (least memory)'],
];

/** "effective batch = 4 × 2 = 8": the sequences an optimizer step trains on. */
export function effectiveBatchNote(batch: number, gradAccum: number): string {
  return `effective batch = ${batch} × ${gradAccum} = ${batch * gradAccum}`;
}

/** A draft's settings: method and rank, then the training loop's, then the method's own options. */
export function RunForm({
  config: c,
  card,
  set,
}: {
  config: RunConfig;
  card: ModelCard | null;
  set(p: Partial<RunConfig>): void;
}) {
  const adapter = c.method !== 'full';
  const targetOptions: [TargetPreset, string][] = [
    ['qv', card?.family === 'gpt2' ? 'c_attn (PEFT default)' : 'q, v (PEFT default)'],
    ['all-linear', 'All linear layers'],
  ];
  return (
    <>
      <div className="run-form">
        <SelectField
          wide
          label="Method"
          value={c.method}
          options={METHOD_OPTIONS}
          onChange={(method: MethodId) => set({ method })}
        />
        <NumberField
          label={allocatesRanks(c.method) ? 'r_ref' : 'Rank'}
          value={c.rank}
          integer
          disabled={!adapter}
          onChange={(rank) => set({ rank })}
          hint={
            allocatesRanks(c.method)
              ? 'The budget: ranks are allocated per module so the total matches a uniform rank-r_ref LoRA'
              : undefined
          }
        />
        <NumberField label="Alpha" value={c.alpha} disabled={!adapter} onChange={(alpha) => set({ alpha })} />
        <SelectField
          wide
          label="Targets"
          value={c.targets}
          options={targetOptions}
          disabled={!adapter}
          onChange={(targets) => set({ targets })}
        />
        <NumberField
          label="Learning rate"
          value={c.lr}
          onChange={(lr) => set({ lr })}
          hint="Peak learning rate (linear warmup, then cosine decay to 10%)"
        />
        <NumberField label="Steps" value={c.steps} integer onChange={(steps) => set({ steps })} />
        <NumberField
          label="Batch"
          value={c.batch}
          integer
          onChange={(batch) => set({ batch })}
          hint="Sequences per micro-batch (one forward and backward pass: what the GPU memory holds)"
        />
        <NumberField
          wide
          label="Gradient accumulation"
          value={gradAccumOf(c)}
          integer
          onChange={(gradAccum) => set({ gradAccum })}
          note={effectiveBatchNote(c.batch, gradAccumOf(c))}
          hint="Micro-batches per optimizer step: each step trains on Batch × this many sequences, exactly as one batch of that size, with the memory of one micro-batch"
        />
        <NumberField
          label="Seq. length"
          value={c.seq}
          integer
          onChange={(seq) => set({ seq })}
          hint="Tokens per sequence"
        />
        <SelectField
          wide
          label="Truncation"
          value={c.truncation ?? 'keep-answer'}
          options={TRUNCATION_OPTIONS}
          onChange={(truncation) => set({ truncation })}
          hint={TRUNCATION_HINT}
        />
        <NumberField
          label="Warmup"
          value={c.warmupSteps}
          integer
          onChange={(warmupSteps) => set({ warmupSteps })}
          hint="Linear warmup steps"
        />
        <NumberField
          label="Val. examples"
          value={c.valExamples}
          integer
          onChange={(valExamples) => set({ valExamples })}
          hint="Held-out examples for the validation loss (0 = none)"
        />
        <NumberField
          label="Eval every"
          value={c.evalEvery}
          integer
          onChange={(evalEvery) => set({ evalEvery })}
          hint="Validation every N steps (0 = start and end only)"
        />
        <NumberField label="Seed" value={c.seed} integer onChange={(seed) => set({ seed })} />
        <SelectField
          wide
          label="Activations"
          value={c.recompute ?? 'none'}
          options={RECOMPUTE_OPTIONS}
          onChange={(recompute) => set({ recompute })}
          hint="Recomputing each block's MLP activations in the backward pass saves their memory (the largest activations) for about 20% more compute per step; recomputing whole blocks keeps only each block's input, for about one more forward pass per step"
        />
      </div>
      {adapter && <MethodOptions config={c} set={set} />}
    </>
  );
}
