/** Our matmul kernels timed against each other on this adapter: the autotune's table, with its choice per class. */
import { num } from '../../bench/format';
import type { BenchTune } from '../../worker/protocol';

const CLASSES = ['wide', 'narrow'] as const;

export function BenchTuneTable({ tune }: { tune: BenchTune }) {
  const labels = [...new Set(CLASSES.flatMap((c) => Object.keys(tune.timings[c])))];
  const cell = (cls: (typeof CLASSES)[number], label: string) => {
    const ms = tune.timings[cls][label];
    if (ms === undefined) return <td className="num muted">-</td>;
    if (ms === null) return <td className="num error-text">WRONG</td>;
    const chosen = tune.chosen[cls] === label;
    return (
      <td className="num" data-chosen={chosen || undefined}>
        {chosen ? <strong>{num(ms)} ✓</strong> : num(ms)}
      </td>
    );
  };
  return (
    <>
      {tune.error && (
        <p className="error-text small" data-testid="bench-tune-error">
          The kernel timing failed ({tune.error}); the default kernels stay in use.
        </p>
      )}
      {labels.length > 0 && (
        <div className="table-wrap">
          <table className="table" data-testid="bench-tune">
            <thead>
              <tr>
                <th>Our matmul kernels on this GPU</th>
                <th className="num" title={`The base model's projections: ${tune.shapes.wide}`}>
                  wide, ms
                </th>
                <th className="num" title={`LoRA's factors and their gradients: ${tune.shapes.narrow}`}>
                  narrow, ms
                </th>
              </tr>
            </thead>
            <tbody>
              {labels.map((label) => (
                <tr key={label} data-testid="bench-tune-row" data-kernel={label}>
                  <td>
                    <code>{label}</code>
                  </td>
                  {cell('wide', label)}
                  {cell('narrow', label)}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p className="muted small">
        Median ms per product, summed over each class's products (wide: {tune.shapes.wide}; narrow: {tune.shapes.narrow}
        ), measured in {num(tune.tuneMs / 1000)} s. ✓ marks the fastest correct kernel, which every run started from now
        on uses; the choice is remembered for this GPU. WRONG: a spot-checked entry of the product was off.
      </p>
    </>
  );
}
