import { useState } from 'react';
import type { ModuleAllocation } from '../../engine/methods';
import { cellKey, kindLabel, moduleGrid, normalize, scaleColor, textOn } from '../analysis';

/**
 * One value per adapted module on a layer (rows) x module kind (columns) grid: colour and number in each cell,
 * the module's details on hover (and in its title). Cells carry data-layer/data-kind/data-value so tests can read them.
 */
export function ModuleHeatmap(props: {
  modules: ModuleAllocation[];
  value(m: ModuleAllocation): number;
  /** The number printed in the cell. */
  label(m: ModuleAllocation): string;
  /** Tooltip lines: "rank 8", "scale 2", ... */
  details(m: ModuleAllocation): string[];
  domain: [number, number];
  testId: string;
  ariaLabel: string;
  valueName: string;
}) {
  const grid = moduleGrid(props.modules);
  const [hovered, setHovered] = useState<ModuleAllocation | null>(null);
  return (
    <div className="heatmap" data-testid={props.testId} aria-label={props.ariaLabel} role="group">
      <div
        className="heatmap-grid"
        style={{ gridTemplateColumns: `auto repeat(${grid.kinds.length}, minmax(30px, 1fr))` }}
        onMouseLeave={() => setHovered(null)}
      >
        <span />
        {grid.kinds.map((k) => (
          <span key={k} className="heatmap-col" title={k}>
            {kindLabel(k)}
          </span>
        ))}
        {grid.layers.map((layer) => (
          <Row
            key={layer}
            layer={layer}
            kinds={grid.kinds}
            cells={grid.cells}
            {...props}
            hovered={hovered}
            onHover={setHovered}
          />
        ))}
      </div>
      <div className="heatmap-readout" aria-live="polite">
        {hovered ? (
          <>
            <code>{hovered.path}</code> {props.details(hovered).join(' · ')}
          </>
        ) : (
          <span className="muted">Hover a cell for the module's {props.valueName} and details.</span>
        )}
      </div>
    </div>
  );
}

function Row(
  props: Parameters<typeof ModuleHeatmap>[0] & {
    layer: number;
    kinds: string[];
    cells: Map<string, ModuleAllocation>;
    hovered: ModuleAllocation | null;
    onHover(m: ModuleAllocation): void;
  },
) {
  return (
    <>
      <span className="heatmap-row">L{props.layer}</span>
      {props.kinds.map((kind) => {
        const m = props.cells.get(cellKey(props.layer, kind));
        if (!m) return <span key={kind} className="heatmap-cell empty-cell" aria-hidden />;
        const t = normalize(props.value(m), props.domain);
        const text = `layer ${m.layer} ${kindLabel(m.kind)}: ${props.details(m).join(', ')}`;
        return (
          <span
            key={kind}
            className={`heatmap-cell ${props.hovered === m ? 'hovered' : ''}`}
            style={{ background: scaleColor(t), color: textOn(t) }}
            data-testid={`${props.testId}-cell`}
            data-layer={m.layer}
            data-kind={m.kind}
            data-value={props.value(m)}
            aria-label={text}
            title={text}
            onMouseEnter={() => props.onHover(m)}
          >
            {props.label(m)}
          </span>
        );
      })}
    </>
  );
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
