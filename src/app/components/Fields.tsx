/** Form fields that keep what the user types (e.g. "3e-" on the way to "3e-4") until it parses. */
import { useEffect, useRef, useState, type ReactNode } from 'react';

export function NumberField(props: {
  label: string;
  value: number;
  onChange(v: number): void;
  integer?: boolean;
  disabled?: boolean;
  hint?: string;
}) {
  const [text, setText] = useState(String(props.value));
  const committed = useRef(props.value);
  useEffect(() => {
    // Follow changes made elsewhere (a preset, a duplicate), not our own edits.
    if (props.value !== committed.current) {
      committed.current = props.value;
      setText(String(props.value));
    }
  }, [props.value]);
  const parsed = Number(text);
  const invalid = text.trim() === '' || !Number.isFinite(parsed) || (props.integer && !Number.isInteger(parsed));
  return (
    <label className={`field ${invalid ? 'invalid' : ''}`} title={props.hint}>
      <span className="field-label">{props.label}</span>
      <input
        type="text"
        inputMode={props.integer ? 'numeric' : 'decimal'}
        value={text}
        disabled={props.disabled}
        aria-invalid={invalid || undefined}
        onChange={(e) => {
          setText(e.target.value);
          const v = Number(e.target.value);
          if (e.target.value.trim() !== '' && Number.isFinite(v)) {
            committed.current = v;
            props.onChange(v);
          }
        }}
      />
    </label>
  );
}

export function SelectField<T extends string>(props: { label: string; value: T; options: [T, string][]; onChange(v: T): void; disabled?: boolean; hint?: string; wide?: boolean }) {
  return (
    <label className={`field ${props.wide ? 'wide' : ''}`} title={props.hint}>
      <span className="field-label">{props.label}</span>
      <select value={props.value} disabled={props.disabled} onChange={(e) => props.onChange(e.target.value as T)}>
        {props.options.map(([v, text]) => <option key={v} value={v}>{text}</option>)}
      </select>
    </label>
  );
}

export function Segmented<T extends string>(props: { label: string; value: T; options: [T, ReactNode][]; onChange(v: T): void }) {
  return (
    <div className="segmented" role="radiogroup" aria-label={props.label}>
      {props.options.map(([v, text]) => (
        <button key={v} role="radio" aria-checked={props.value === v} className={props.value === v ? 'on' : ''} onClick={() => props.onChange(v)}>
          {text}
        </button>
      ))}
    </div>
  );
}
