/** Form fields that keep what the user types (e.g. "3e-" on the way to "3e-4") until it parses. */
import { createContext, useContext, useEffect, useRef, useState, type ReactNode } from 'react';

/**
 * Where a form hears that a field's text does not parse (the run card: Start waits for it). A field that
 * goes away counts as valid again.
 */
export const FieldValidity = createContext<((field: string, valid: boolean) => void) | null>(null);

function useReportValidity(label: string, valid: boolean) {
  const report = useContext(FieldValidity);
  useEffect(() => {
    if (!report || valid) return;
    report(label, false);
    return () => report(label, true);
  }, [report, label, valid]);
}

/** The text of a number input: kept as typed while it does not parse, following outside changes of the value. */
function useNumberText(value: number | undefined) {
  const [text, setText] = useState(value === undefined ? '' : String(value));
  const committed = useRef(value);
  useEffect(() => {
    // Follow changes made elsewhere (a preset, a duplicate), not our own edits.
    if (value !== committed.current) {
      committed.current = value;
      setText(value === undefined ? '' : String(value));
    }
  }, [value]);
  return { text, setText, commit: (v: number | undefined) => (committed.current = v) };
}

/** Labels are small caps; symbols (r_ref, γ, k) must keep their case. */
const labelClass = (label: string) => `field-label ${/^(r_\w+|γ|k)$/.test(label) ? 'symbol' : ''}`;

function NumberInput(props: {
  label: string;
  text: string;
  invalid: boolean;
  integer?: boolean;
  disabled?: boolean;
  hint?: string;
  placeholder?: string;
  /** Spans two columns of a form grid. */
  wide?: boolean;
  /** A line under the input (what the value amounts to: "effective batch = 4 × 2 = 8"). */
  note?: string;
  onText(text: string): void;
}) {
  // A disabled field is not used by the run, whatever its text.
  useReportValidity(props.label, !props.invalid || props.disabled === true);
  return (
    <label className={`field ${props.wide ? 'wide' : ''} ${props.invalid ? 'invalid' : ''}`} title={props.hint}>
      <span className={labelClass(props.label)}>{props.label}</span>
      <input
        type="text"
        inputMode={props.integer ? 'numeric' : 'decimal'}
        value={props.text}
        placeholder={props.placeholder}
        disabled={props.disabled}
        aria-invalid={props.invalid || undefined}
        // The note is not part of the field's name.
        aria-label={props.note ? props.label : undefined}
        onChange={(e) => props.onText(e.target.value)}
      />
      {props.note && <span className="field-note">{props.note}</span>}
    </label>
  );
}

const parses = (text: string, integer?: boolean) => {
  const v = Number(text);
  return text.trim() !== '' && Number.isFinite(v) && (!integer || Number.isInteger(v));
};

export function NumberField(props: {
  label: string;
  value: number;
  onChange(v: number): void;
  integer?: boolean;
  disabled?: boolean;
  hint?: string;
  wide?: boolean;
  note?: string;
}) {
  const { text, setText, commit } = useNumberText(props.value);
  return (
    <NumberInput
      {...props}
      text={text}
      invalid={!parses(text, props.integer)}
      onText={(t) => {
        setText(t);
        const v = Number(t);
        if (t.trim() !== '' && Number.isFinite(v)) props.onChange(commit(v)!);
      }}
    />
  );
}

/** A number that may be left empty: the empty field means "the default", shown as the placeholder. */
export function OptionalNumberField(props: {
  label: string;
  value: number | undefined;
  defaultValue: number;
  onChange(v: number | undefined): void;
  integer?: boolean;
  disabled?: boolean;
  hint?: string;
}) {
  const { text, setText, commit } = useNumberText(props.value);
  return (
    <NumberInput
      {...props}
      text={text}
      placeholder={`${props.defaultValue} (auto)`}
      invalid={text.trim() !== '' && !parses(text, props.integer)}
      onText={(t) => {
        setText(t);
        const v = Number(t);
        if (t.trim() === '') props.onChange(commit(undefined));
        else if (Number.isFinite(v)) props.onChange(commit(v));
      }}
    />
  );
}

export function SelectField<T extends string>(props: {
  label: string;
  value: T;
  options: [T, string][];
  onChange(v: T): void;
  disabled?: boolean;
  hint?: string;
  wide?: boolean;
}) {
  return (
    <label className={`field ${props.wide ? 'wide' : ''}`} title={props.hint}>
      <span className="field-label">{props.label}</span>
      <select value={props.value} disabled={props.disabled} onChange={(e) => props.onChange(e.target.value as T)}>
        {props.options.map(([v, text]) => (
          <option key={v} value={v}>
            {text}
          </option>
        ))}
      </select>
    </label>
  );
}

export function Segmented<T extends string>(props: {
  label: string;
  value: T;
  options: [T, ReactNode][];
  onChange(v: T): void;
}) {
  return (
    <div className="segmented" role="radiogroup" aria-label={props.label}>
      {props.options.map(([v, text]) => (
        <button
          key={v}
          role="radio"
          aria-checked={props.value === v}
          className={props.value === v ? 'on' : ''}
          onClick={() => props.onChange(v)}
        >
          {text}
        </button>
      ))}
    </div>
  );
}
