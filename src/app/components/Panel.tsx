import type { ReactNode } from 'react';

export function Panel(props: {
  id: string;
  step: number;
  title: string;
  subtitle?: ReactNode;
  actions?: ReactNode;
  children: ReactNode;
  className?: string;
}) {
  return (
    <section
      id={props.id}
      className={`panel ${props.className ?? ''}`}
      aria-labelledby={`${props.id}-title`}
      data-testid={`panel-${props.id}`}
    >
      <header className="panel-head">
        <span className="panel-step" aria-hidden>
          {props.step}
        </span>
        <div className="panel-titles">
          <h2 id={`${props.id}-title`}>{props.title}</h2>
          {props.subtitle && <p className="panel-subtitle">{props.subtitle}</p>}
        </div>
        {props.actions && <div className="panel-actions">{props.actions}</div>}
      </header>
      <div className="panel-body">{props.children}</div>
    </section>
  );
}

export function Stat(props: { label: string; value: ReactNode; hint?: string; testId?: string }) {
  return (
    <div className="stat" title={props.hint} data-testid={props.testId}>
      <div className="stat-label">{props.label}</div>
      <div className="stat-value">{props.value}</div>
    </div>
  );
}

export function ProgressBar(props: {
  value: number;
  max: number;
  label?: string;
  indeterminate?: boolean;
  testId?: string;
}) {
  const pct = props.max > 0 ? Math.min(100, (100 * props.value) / props.max) : 0;
  return (
    <div
      className={`progress ${props.indeterminate ? 'indeterminate' : ''}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={props.max}
      aria-valuenow={props.value}
      aria-label={props.label}
      data-testid={props.testId}
    >
      <div className="progress-fill" style={{ width: props.indeterminate ? undefined : `${pct}%` }} />
    </div>
  );
}

export function Alert(props: {
  kind: 'error' | 'warning' | 'info';
  title?: string;
  children: ReactNode;
  testId?: string;
}) {
  return (
    <div
      className={`alert alert-${props.kind}`}
      role={props.kind === 'error' ? 'alert' : 'status'}
      data-testid={props.testId}
    >
      <span className="alert-icon" aria-hidden>
        {props.kind === 'error' ? '⚠' : props.kind === 'warning' ? '!' : 'i'}
      </span>
      <div>
        {props.title && <strong className="alert-title">{props.title}</strong>}
        <div className="alert-text">{props.children}</div>
      </div>
    </div>
  );
}

/** Run colours live in app/palette.ts (a distinct colour for every run); re-exported for the panels. */
export { runColor } from '../palette';
