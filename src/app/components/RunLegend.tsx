import type { ReactNode } from 'react';
import './RunLegend.css';

export interface LegendEntry {
  id: string;
  name: string;
  color: string;
  /** Counts the e2e tests read (points drawn, validation points). */
  points: number;
  evals: number;
}

/** One toggle button per run (pressed: its lines are shown), then `children` (keys that are not runs). */
export function RunLegend(props: {
  entries: readonly LegendEntry[];
  hidden: ReadonlySet<string>;
  onToggle: (id: string) => void;
  children?: ReactNode;
}) {
  return (
    <div className="legend-row">
      {props.entries.map((e) => {
        const shown = !props.hidden.has(e.id);
        return (
          <button
            key={e.id}
            type="button"
            className="legend-item legend-toggle"
            aria-pressed={shown}
            title={`${shown ? 'Hide' : 'Show'} ${e.name} in the charts`}
            onClick={() => props.onToggle(e.id)}
            data-testid="loss-legend"
            data-run-id={e.id}
            data-points={e.points}
            data-evals={e.evals}
          >
            <span className="legend-line" style={{ background: e.color }} />
            <span className="legend-name">{e.name}</span>
          </button>
        );
      })}
      {props.children}
    </div>
  );
}
