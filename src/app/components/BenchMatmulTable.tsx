/** The benchmark's matmul table: GFLOP/s of ours and each peer per shape, our ratio to each, and the spot check. */
import type { MatmulResult } from '../../bench/matmul';
import { isWrong, MAX_REL_ERROR } from '../../bench/matmul-check';
import { num, ratio } from '../../bench/format';
import type { BenchMatmulRow, BenchPeer } from '../../worker/protocol';
import { WRAP_CELL } from './bench-style';

export function BenchMatmulTable({
  rows,
  peers,
  expected,
}: {
  rows: BenchMatmulRow[];
  peers: BenchPeer[];
  expected: number;
}) {
  const of = (row: BenchMatmulRow, name: string) => row.results.find((r) => r.impl === name);
  return (
    <>
      <div className="table-wrap">
        <table className="table" data-testid="bench-matmul">
          <thead>
            <tr>
              <th>Matmul</th>
              <th className="num">M x K x N</th>
              <th className="num">ours GFLOP/s</th>
              {peers.map((p) => (
                <th key={p.id} className="num">
                  {p.name} GFLOP/s
                </th>
              ))}
              {peers.map((p) => (
                <th key={p.id} className="num" title={`Our GFLOP/s over ${p.name}'s, same shape, same run`}>
                  ours / {p.name}
                </th>
              ))}
              <th
                className="num"
                title={`Largest relative error of 64 spot-checked entries (against float64), over every implementation; above ${MAX_REL_ERROR.toExponential()} is WRONG`}
              >
                max rel. error
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row, i) => {
              const mine = of(row, 'ours');
              const measured = row.results.filter((r) => !r.error);
              return (
                <tr key={row.label} data-testid="bench-matmul-row" data-gflops={mine?.gflops}>
                  <td>{row.label}</td>
                  <td className="num">
                    {row.M} x {row.K} x {row.N}
                  </td>
                  <MatmulCell r={mine} name="ours" />
                  {peers.map((p) =>
                    p.error ? (
                      // One cell down the whole column: the peer could not start, and this is why.
                      i === 0 && (
                        <td
                          key={p.id}
                          rowSpan={rows.length}
                          className="error-text small"
                          style={{ ...WRAP_CELL, verticalAlign: 'top' }}
                          data-testid="bench-peer-unavailable"
                          data-impl={p.name}
                        >
                          {p.name} unavailable: {p.error}
                        </td>
                      )
                    ) : (
                      <MatmulCell key={p.id} r={of(row, p.name)} name={p.name} />
                    ),
                  )}
                  {peers.map((p) => (
                    <td key={p.id} className="num" data-testid="bench-matmul-ratio" data-impl={p.name}>
                      {p.error ? '-' : ratio(mine?.gflops ?? NaN, of(row, p.name)?.gflops ?? NaN)}
                    </td>
                  ))}
                  <td className="num">
                    {measured.length ? Math.max(...measured.map((r) => r.maxRelError)).toExponential(1) : '-'}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
        {rows.length < expected && (
          <p className="muted small" style={{ padding: '6px 10px', margin: 0 }} data-testid="bench-matmul-pending">
            {expected - rows.length} more shape{expected - rows.length > 1 ? 's' : ''} to measure…
          </p>
        )}
      </div>
      <p className="muted small">
        Each trial: N products (N sized to fill the trial), then the last one read back; ours records all N in one
        command list and one submit, the peers call their own matmul N times. Trials of all implementations alternate
        and the median is shown (hover a figure for ms per product). WRONG: a spot-checked entry is off by more than{' '}
        {MAX_REL_ERROR.toExponential()} (relative).
      </p>
    </>
  );
}

/** One implementation's GFLOP/s on one shape: the number (WRONG when its spot check failed) or its own error. */
function MatmulCell({ r, name }: { r: MatmulResult | undefined; name: string }) {
  if (!r)
    return (
      <td className="num muted" data-testid="bench-matmul-cell" data-impl={name}>
        -
      </td>
    );
  if (r.error) {
    return (
      <td
        className="num error-text small"
        style={WRAP_CELL}
        data-testid="bench-matmul-cell"
        data-impl={name}
        data-error={r.error}
      >
        failed: {r.error}
      </td>
    );
  }
  const wrong = isWrong(r);
  return (
    <td
      className="num"
      data-testid="bench-matmul-cell"
      data-impl={name}
      data-gflops={r.gflops}
      data-max-rel-error={r.maxRelError}
      title={`${num(r.msPerMatmul)} ms per product (${r.reps} per trial, median of ${r.trials} trials); max rel. error ${r.maxRelError.toExponential(1)}`}
    >
      {num(r.gflops)}
      {wrong && <span className="error-text"> WRONG</span>}
    </td>
  );
}
