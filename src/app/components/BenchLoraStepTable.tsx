/** The end-to-end comparison: the same LoRA training step, ours and jax-js' autodiff version, on the same batches. */
import { num, ratio } from '../../bench/format';
import type { TrainBenchResult } from '../../bench/train';
import { WRAP_CELL } from './bench-style';

export function BenchLoraStepTable({ rows }: { rows: TrainBenchResult[] }) {
  const mine = rows.find((r) => r.impl === 'ours');
  const first = rows[0];
  return (
    <>
      <div className="table-wrap">
        <table className="table" data-testid="bench-lora-step">
          <thead>
            <tr>
              <th>
                LoRA r{first.rank} {first.label} step ({first.batch} x {first.seq})
              </th>
              <th className="num">trainable</th>
              <th
                className="num"
                title="Before step 0: graphs, buffers and pipelines for ours; the weight upload for jax-js (it compiles during its warm-up step)"
              >
                setup ms
              </th>
              <th className="num" title="Median steady-state step after the warm-up">
                ms/step
              </th>
              <th className="num" title="batch x seq tokens per second of step time">
                tokens/s
              </th>
              <th className="num" title="Our tokens/s over this row's: how many times faster our step is">
                ours speed-up
              </th>
              <th
                className="num"
                title="Base model's loss on the same first batch (LoRA B starts at 0): equal values mean the same model and data"
              >
                step-0 loss
              </th>
              <th className="num">last loss</th>
              <th className="num" title="Queue submits per step (ours only: the peers have no such counter)">
                submits/step
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr
                key={r.impl}
                data-testid="bench-lora-row"
                data-impl={r.impl}
                data-ms-per-step={r.msPerStep}
                data-tokens-per-second={r.tokensPerSecond}
                data-first-loss={r.firstLoss}
                data-error={r.error}
              >
                <td>{r.impl === 'ours' ? 'ours' : `${r.impl} (autodiff)`}</td>
                {r.error ? (
                  <td colSpan={8} className="error-text small" style={WRAP_CELL}>
                    failed: {r.error}
                  </td>
                ) : (
                  <>
                    <td className="num">{r.trainableParams.toLocaleString('en')}</td>
                    <td className="num">{num(r.setupMs)}</td>
                    <td className="num">{num(r.msPerStep)}</td>
                    <td className="num">{num(r.tokensPerSecond)}</td>
                    <td className="num">
                      {r.impl === 'ours' || !mine || mine.error ? '-' : ratio(mine.tokensPerSecond, r.tokensPerSecond)}
                    </td>
                    <td className="num">{num(r.firstLoss, 5)}</td>
                    <td className="num">{num(r.finalLoss, 5)}</td>
                    <td className="num">{r.submitsPerStep === null ? '-' : num(r.submitsPerStep)}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted small">
        The same step both ways: same Llama weights, batches, LoRA initialization and AdamW with clipping; jax-js gets
        its loss and gradients from <code>valueAndGrad(jit(loss))</code>. Equal step-0 losses mean the same model and
        data.
      </p>
    </>
  );
}
