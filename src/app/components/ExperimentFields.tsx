/** Fields the experiment form needs beyond Fields.tsx: a list of numbers (rates, seeds) and a short text. */
import { useContext, useEffect, useRef, useState } from 'react';
import { FieldValidity } from './Fields';

/** "1e-3, 3e-3" -> [0.001, 0.003]; null when a piece is not a number (or an integer where one is needed). */
export function parseNumberList(text: string, integer = false): number[] | null {
  const pieces = text
    .split(/[,\s]+/)
    .map((p) => p.trim())
    .filter(Boolean);
  if (pieces.length === 0) return null;
  const values = pieces.map(Number);
  return values.every((v) => Number.isFinite(v) && (!integer || Number.isInteger(v))) ? values : null;
}

const listText = (values: number[]) => values.join(', ');

/** Reports a field that does not parse to the card (Start waits for it); a field that goes away counts as valid. */
function useReportValidity(label: string, valid: boolean) {
  const report = useContext(FieldValidity);
  useEffect(() => {
    if (!report || valid) return;
    report(label, false);
    return () => report(label, true);
  }, [report, label, valid]);
}

/** Comma-separated numbers, kept as typed while they do not parse, following outside changes of the value. */
export function NumberListField(props: {
  label: string;
  value: number[];
  onChange(values: number[]): void;
  integer?: boolean;
  hint?: string;
  disabled?: boolean;
  testId?: string;
}) {
  const [text, setText] = useState(listText(props.value));
  const committed = useRef(listText(props.value));
  useEffect(() => {
    const outside = listText(props.value);
    if (outside !== committed.current) {
      committed.current = outside;
      setText(outside);
    }
  }, [props.value]);
  const parsed = parseNumberList(text, props.integer);
  const invalid = parsed === null && !props.disabled;
  useReportValidity(props.label, !invalid);
  return (
    <label className={`field wide ${invalid ? 'invalid' : ''}`} title={props.hint}>
      <span className="field-label">{props.label}</span>
      <input
        type="text"
        value={text}
        disabled={props.disabled}
        aria-invalid={invalid || undefined}
        data-testid={props.testId}
        onChange={(e) => {
          setText(e.target.value);
          const values = parseNumberList(e.target.value, props.integer);
          if (values) {
            committed.current = listText(values);
            props.onChange(values);
          }
        }}
      />
    </label>
  );
}

export function TextField(props: {
  label: string;
  value: string;
  onChange(v: string): void;
  hint?: string;
  wide?: boolean;
}) {
  return (
    <label className={`field ${props.wide ? 'wide' : ''}`} title={props.hint}>
      <span className="field-label">{props.label}</span>
      <input type="text" value={props.value} onChange={(e) => props.onChange(e.target.value)} />
    </label>
  );
}

export function CheckField(props: { label: string; checked: boolean; onChange(v: boolean): void; hint?: string }) {
  return (
    <label className="check" title={props.hint}>
      <input type="checkbox" checked={props.checked} onChange={(e) => props.onChange(e.target.checked)} />
      {props.label}
    </label>
  );
}
