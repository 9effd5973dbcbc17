import type { MethodExtras, RunConfig } from '../../worker/protocol';
import {
  defaultKOf, GELORA_DEFAULTS, GELORA_MAX_SAMPLES, GORA_DEFAULTS, GORA_IMPORTANCE, METHOD_LABEL, scaleRule, structureOf,
} from '../methods';
import { NumberField, OptionalNumberField, SelectField } from './Fields';

/** What each method does before and during training, in one sentence. */
const METHOD_NOTES: Partial<Record<RunConfig['method'], string>> = {
  lora: 'Every target module gets rank r.',
  rslora: 'LoRA with the scale α/√r, which keeps updates stable at high ranks.',
  gora: 'Before step 0, accumulates the gradients of the frozen weights over N batches, gives each module a rank from its gradient importance (the total stays near the rank-r_ref budget) and starts B from the gradient (γ).',
  gralora: 'Splits each weight into k×k blocks with rank r/k each: the same parameters as LoRA r, up to k·r rank.',
  gelora: 'Before step 0, estimates the intrinsic dimension of the hidden states after every block and gives each block a rank from its growth, fitted to the rank-r_ref budget.',
};

const STRUCTURES: [NonNullable<MethodExtras['structure']>, string][] = [
  ['dense', 'Dense (B·A)'],
  ['gralora', 'GraLoRA blocks'],
];

/** The method's own options (only those that apply) and its scale rule. */
export function MethodOptions({ config: c, set }: { config: RunConfig; set(p: Partial<RunConfig>): void }) {
  const x = c.extras ?? {};
  const setExtras = (patch: Partial<MethodExtras>) => set({ extras: { ...x, ...patch } });
  const blocks = structureOf(c) === 'gralora';
  const scale = scaleRule(c);
  const hasFields = c.method === 'gora' || c.method === 'gelora' || blocks;
  return (
    <div className="method-options" data-testid="method-options">
      <div className="method-options-head">
        <span className="method-options-title">{METHOD_LABEL[c.method]}</span>
        <span className="method-note">{METHOD_NOTES[c.method]}</span>
        <span className="scale-hint" data-testid="scale-hint" title="The scale s in y = Wx + s·B(Ax)">
          scale <strong>{scale.formula}</strong>
          {scale.value !== null && Number.isFinite(scale.value) && <> = {formatScale(scale.value)}{scale.perModule ? ' at r_ref' : ''}</>}
        </span>
      </div>
      {hasFields && (
        <div className="run-form">
          {(c.method === 'gora' || c.method === 'gelora') && (
            <SelectField wide label="Structure" value={x.structure ?? 'dense'} options={STRUCTURES} onChange={(structure) => setExtras({ structure })}
              hint="The adapter the allocated ranks are given to" />
          )}
          {c.method === 'gora' && <GoraFields extras={x} setExtras={setExtras} />}
          {c.method === 'gelora' && <GeloraFields extras={x} setExtras={setExtras} />}
          {blocks && (
            <>
              <OptionalNumberField label="k" value={x.graloraK} defaultValue={defaultKOf(c)} integer onChange={(graloraK) => setExtras({ graloraK })}
                hint="Blocks per side. Empty: 2 up to a total rank of 32, 4 from 64" />
              <NumberField label="Hybrid r" value={x.hybridRank ?? 0} integer onChange={(hybridRank) => setExtras({ hybridRank })}
                hint="Rank of a plain full-width LoRA trained beside the blocks (PEFT hybrid_r; 0 = none)" />
            </>
          )}
        </div>
      )}
    </div>
  );
}

type FieldsProps = { extras: MethodExtras; setExtras(p: Partial<MethodExtras>): void };

function GoraFields({ extras: x, setExtras }: FieldsProps) {
  const importance = GORA_IMPORTANCE.map((v) => [v, v === GORA_DEFAULTS.importance ? `${v} (paper)` : v] as [string, string]);
  return (
    <>
      <NumberField label="N batches" value={x.goraSteps ?? GORA_DEFAULTS.steps} integer onChange={(goraSteps) => setExtras({ goraSteps })}
        hint="Training batches whose gradients are accumulated before step 0" />
      <NumberField label="γ" value={x.goraGamma ?? GORA_DEFAULTS.gamma} onChange={(goraGamma) => setExtras({ goraGamma })}
        hint="Size of the initial gradient step B starts from (0 = B starts at zero, like LoRA)" />
      <NumberField label="r_min" value={x.rankMin ?? GORA_DEFAULTS.rankMin} integer onChange={(rankMin) => setExtras({ rankMin })} hint="Smallest rank a module gets" />
      <NumberField label="r_max" value={x.rankMax ?? GORA_DEFAULTS.rankMax} integer onChange={(rankMax) => setExtras({ rankMax })} hint="Largest rank a module gets" />
      <SelectField wide label="Importance" value={x.goraImportance ?? GORA_DEFAULTS.importance} options={importance}
        onChange={(goraImportance) => setExtras({ goraImportance })} hint="How a module's importance is measured from W and its gradient" />
    </>
  );
}

function GeloraFields({ extras: x, setExtras }: FieldsProps) {
  const budgets: [string, string][] = [['fit', 'Fit to r_ref budget'], ['raw', 'Raw ranks (formula)']];
  return (
    <>
      <NumberField label="Samples" value={x.geloraSamples ?? GELORA_DEFAULTS.samples} integer onChange={(geloraSamples) => setExtras({ geloraSamples })}
        hint={`Hidden-state points per layer for the intrinsic dimension (3 to ${GELORA_MAX_SAMPLES}; 512 or more for stable estimates)`} />
      <SelectField wide label="Budget" value={x.geloraBudget ?? GELORA_DEFAULTS.budget} options={budgets} onChange={(geloraBudget) => setExtras({ geloraBudget })}
        hint="Raw ranks are the formula's (often 1 to 3); fit scales them to a rank-r_ref LoRA's parameter count" />
      <NumberField label="r_max" value={x.rankMax ?? GELORA_DEFAULTS.rankMax} integer onChange={(rankMax) => setExtras({ rankMax })} hint="Cap on fitted ranks" />
    </>
  );
}

function formatScale(s: number): string {
  return Number(s.toPrecision(3)).toString();
}
