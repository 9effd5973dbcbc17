/** The method's own options, generated from its registry descriptor (only those that apply), and its scale rule. */
import type { MethodOption, OptionValue } from '../../adapters/options';
import { methodDescriptor, resolveMethodOptions } from '../../adapters/registry';
import type { MethodExtras, RunConfig } from '../../worker/protocol';
import { scaleRule } from '../methods';
import { NumberField, OptionalNumberField, SelectField } from './Fields';

export function MethodOptions({ config: c, set }: { config: RunConfig; set(p: Partial<RunConfig>): void }) {
  const x: Record<string, OptionValue | undefined> = { ...c.extras };
  const setExtras = (patch: Record<string, OptionValue | undefined>) =>
    set({ extras: { ...x, ...patch } as MethodExtras });
  const method = methodDescriptor(c.method);
  const { applicable, values } = resolveMethodOptions(c.method, c.rank, x);
  const fields = applicable.filter((o) => o.inForm);
  const scale = scaleRule(c);
  return (
    <div className="method-options" data-testid="method-options">
      <div className="method-options-head">
        <span className="method-options-title">{method.label}</span>
        <span className="method-note">{method.note}</span>
        <span className="scale-hint" data-testid="scale-hint" title="The scale s in y = Wx + s·B(Ax)">
          scale <strong>{scale.formula}</strong>
          {scale.value !== null && Number.isFinite(scale.value) && (
            <>
              {' '}
              = {formatScale(scale.value)}
              {scale.perModule ? ' at r_ref' : ''}
            </>
          )}
        </span>
      </div>
      {fields.length > 0 && (
        <div className="run-form">
          {fields.map((o) => (
            <OptionField
              key={o.key}
              option={o}
              given={x[o.key]}
              value={values[o.key]!}
              onChange={(v) => setExtras({ [o.key]: v })}
            />
          ))}
        </div>
      )}
    </div>
  );
}

/** One option as a field: a number (left empty for a computed default, which shows as the placeholder) or a select. */
function OptionField(props: {
  option: MethodOption;
  given: OptionValue | undefined;
  value: OptionValue;
  onChange(v: OptionValue | undefined): void;
}) {
  const { option: o, given, value, onChange } = props;
  const hint = o.hint ?? o.help.charAt(0).toUpperCase() + o.help.slice(1);
  if (o.kind === 'choice') {
    const options = o.choices!.map((v) => [v, o.choiceLabels?.[v] ?? v] as [string, string]);
    return <SelectField wide label={o.label} value={String(value)} options={options} onChange={onChange} hint={hint} />;
  }
  if (o.kind === 'flag') {
    return (
      <SelectField
        label={o.label}
        value={value ? 'on' : 'off'}
        options={[
          ['off', 'Off'],
          ['on', 'On'],
        ]}
        onChange={(v) => onChange(v === 'on')}
        hint={hint}
      />
    );
  }
  const integer = o.kind === 'int';
  if (typeof o.default === 'function') {
    return (
      <OptionalNumberField
        label={o.label}
        value={given as number | undefined}
        defaultValue={value as number}
        integer={integer}
        onChange={onChange}
        hint={hint}
      />
    );
  }
  return <NumberField label={o.label} value={value as number} integer={integer} onChange={onChange} hint={hint} />;
}

function formatScale(s: number): string {
  return Number(s.toPrecision(3)).toString();
}
