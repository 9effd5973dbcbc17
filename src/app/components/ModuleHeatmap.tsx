import { useId, useRef, useState, type KeyboardEvent } from 'react';
import type { ModuleAllocation } from '../../engine/methods';
import { cellKey, kindLabel, moduleGrid, normalize, scaleColor, textOn } from '../analysis';

/** A cell's place in the grid: layer row and module-kind column, as indices. */
interface Position {
  row: number;
  col: number;
}

/**
 * One value per adapted module on a layer (rows) x module kind (columns) grid: colour and number in each cell,
 * the module's details in the readout below, for the cell under the mouse, the focused one (Tab into the grid,
 * then the arrow keys, Home and End) or the tapped one. An ARIA grid with one tab stop; every cell says its
 * details. Cells carry data-layer/data-kind/data-value so tests can read them.
 */
export function ModuleHeatmap(props: {
  modules: ModuleAllocation[];
  value(m: ModuleAllocation): number;
  /** The number printed in the cell. */
  label(m: ModuleAllocation): string;
  /** Readout lines: "rank 8", "scale 2", ... */
  details(m: ModuleAllocation): string[];
  domain: [number, number];
  testId: string;
  ariaLabel: string;
  valueName: string;
}) {
  const grid = moduleGrid(props.modules);
  const at = (p: Position) => grid.cells.get(cellKey(grid.layers[p.row], grid.kinds[p.col]));
  const [hovered, setHovered] = useState<ModuleAllocation | null>(null);
  // The cell holding the tab stop; `selected` when the keyboard or a tap chose it (its details stay shown).
  const [cursor, setCursor] = useState<Position | null>(null);
  const [selected, setSelected] = useState(false);
  const cells = useRef(new Map<string, HTMLElement>());
  const readoutId = useId();
  const stop = cursor && at(cursor) ? cursor : firstCell(grid.layers.length, grid.kinds.length, at);
  const shown = hovered ?? (selected && stop ? (at(stop) ?? null) : null);

  // A key, a tap or a click says which cell the user means now: it wins over where the mouse happens to rest.
  const choose = (p: Position, focus: boolean) => {
    setHovered(null);
    setCursor(p);
    setSelected(true);
    if (focus) cells.current.get(`${p.row}:${p.col}`)?.focus();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (!stop) return;
    if (e.key === 'Escape') return setSelected(false);
    const next = moveFrom(stop, e.key, grid.layers.length, grid.kinds.length, at);
    if (!next) return;
    e.preventDefault();
    choose(next, true);
  };

  return (
    <div
      className="heatmap"
      data-testid={props.testId}
      aria-label={props.ariaLabel}
      role="group"
      onMouseLeave={() => setHovered(null)}
    >
      {/* Rows and headers are focusable only by script (tabIndex -1), as ARIA grids allow: the cells are the stops. */}
      <div
        className="heatmap-grid"
        role="grid"
        aria-label={props.ariaLabel}
        aria-describedby={readoutId}
        style={{ gridTemplateColumns: `auto repeat(${grid.kinds.length}, minmax(30px, 1fr))` }}
      >
        <div className="heatmap-line" role="row" tabIndex={-1}>
          <span role="columnheader" aria-label="layer" tabIndex={-1} />
          {grid.kinds.map((k) => (
            <span key={k} className="heatmap-col" title={k} role="columnheader" tabIndex={-1}>
              {kindLabel(k)}
            </span>
          ))}
        </div>
        {grid.layers.map((layer, row) => (
          <div key={layer} className="heatmap-line" role="row" tabIndex={-1}>
            <span className="heatmap-row" role="rowheader" tabIndex={-1}>
              L{layer}
            </span>
            {grid.kinds.map((kind, col) => {
              const m = at({ row, col });
              if (!m)
                return (
                  <span
                    key={kind}
                    className="heatmap-cell empty-cell"
                    role="gridcell"
                    tabIndex={-1}
                    aria-label={`layer ${layer} ${kindLabel(kind)}: not adapted`}
                  />
                );
              const t = normalize(props.value(m), props.domain);
              const text = `layer ${m.layer} ${kindLabel(m.kind)}: ${props.details(m).join(', ')}`;
              const isStop = stop?.row === row && stop.col === col;
              return (
                <span
                  key={kind}
                  ref={(el) => {
                    if (el) cells.current.set(`${row}:${col}`, el);
                    else cells.current.delete(`${row}:${col}`);
                  }}
                  className={`heatmap-cell ${shown === m ? 'hovered' : ''}`}
                  style={{ background: scaleColor(t), color: textOn(t) }}
                  data-testid={`${props.testId}-cell`}
                  data-layer={m.layer}
                  data-kind={m.kind}
                  data-value={props.value(m)}
                  role="gridcell"
                  tabIndex={isStop ? 0 : -1}
                  aria-label={text}
                  aria-selected={selected && isStop}
                  title={text}
                  onMouseEnter={() => setHovered(m)}
                  onFocus={() => {
                    setHovered(null);
                    setCursor({ row, col });
                    setSelected(true);
                  }}
                  // A tap (or a click) shows the details, and keeps them after the finger lifts.
                  onClick={() => choose({ row, col }, true)}
                  onKeyDown={onKeyDown}
                >
                  {props.label(m)}
                </span>
              );
            })}
          </div>
        ))}
      </div>
      <div className="heatmap-readout" id={readoutId} aria-live="polite">
        {shown ? (
          <>
            <code>{shown.path}</code> {props.details(shown).join(' · ')}
          </>
        ) : (
          <span className="muted">
            Hover, tap or focus a cell (Tab, then the arrow keys) for the module's {props.valueName} and details.
          </span>
        )}
      </div>
    </div>
  );
}

/** The first adapted cell, row by row: the grid's tab stop before anything was chosen. */
function firstCell(rows: number, cols: number, at: (p: Position) => unknown): Position | null {
  for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) if (at({ row, col })) return { row, col };
  return null;
}

/**
 * Where a key moves the cursor: the arrows to the nearest adapted cell that way (empty cells are skipped),
 * Home and End to the row's first and last; null for other keys or at the edge.
 */
export function moveFrom(
  from: Position,
  key: string,
  rows: number,
  cols: number,
  at: (p: Position) => unknown,
): Position | null {
  const steps: Record<string, [number, number]> = {
    ArrowUp: [-1, 0],
    ArrowDown: [1, 0],
    ArrowLeft: [0, -1],
    ArrowRight: [0, 1],
  };
  if (key === 'Home' || key === 'End') {
    const order = Array.from({ length: cols }, (_, i) => (key === 'Home' ? i : cols - 1 - i));
    const col = order.find((c) => at({ row: from.row, col: c }));
    return col === undefined || col === from.col ? null : { row: from.row, col };
  }
  const step = steps[key];
  if (!step) return null;
  for (
    let p = { row: from.row + step[0], col: from.col + step[1] };
    ;
    p = { row: p.row + step[0], col: p.col + step[1] }
  ) {
    if (p.row < 0 || p.row >= rows || p.col < 0 || p.col >= cols) return null;
    if (at(p)) return p;
  }
}

/** The colour scale's ends, as a bar. */
export function ScaleLegend({
  domain,
  format,
  name,
}: {
  domain: [number, number];
  format(v: number): string;
  name: string;
}) {
  const stops = Array.from({ length: 9 }, (_, i) => scaleColor(i / 8)).join(', ');
  return (
    <div className="scale-legend" aria-label={`${name} colour scale from ${format(domain[0])} to ${format(domain[1])}`}>
      <span className="muted">{name}</span>
      <span>{format(domain[0])}</span>
      <span className="scale-bar" style={{ background: `linear-gradient(90deg, ${stops})` }} />
      <span>{format(domain[1])}</span>
    </div>
  );
}
