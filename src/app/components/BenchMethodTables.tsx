/** Every method's training step on the loaded model (speed and MFU), and the GPU memory each run held, by category. */
import { modelFlopsUtilization as mfu } from '../../bench/flops';
import { num } from '../../bench/format';
import type { MemoryCategory, MethodBenchResult } from '../../bench/methods';
import { WRAP_CELL } from './bench-style';

const CATEGORIES: MemoryCategory[] = ['weights', 'adapters', 'gradients', 'optimizer', 'activations', 'scratch'];
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(2);

export function BenchMethodTables({
  methods,
  peakGflops,
}: {
  methods: MethodBenchResult[];
  peakGflops: number | null;
}) {
  const lora = methods.find((m) => m.method === 'lora' && !m.error);
  return (
    <>
      <div className="table-wrap">
        <table className="table" data-testid="bench-methods">
          <thead>
            <tr>
              <th>Training per method</th>
              <th className="num">batch x seq</th>
              <th className="num">trainable</th>
              <th
                className="num"
                title="The method's preparation phase (GoRA's gradient accumulation, GeLoRA's hidden states)"
              >
                prep ms
              </th>
              <th className="num">ms/step</th>
              <th className="num">tokens/s</th>
              <th className="num">vs LoRA step</th>
              <th className="num" title="tokens/s x model FLOPs per token / our best matmul GFLOP/s above">
                MFU
              </th>
            </tr>
          </thead>
          <tbody>
            {methods.map((m) => {
              const u = mfu(m, peakGflops);
              return (
                <tr
                  key={m.label}
                  data-testid="bench-method-row"
                  data-ms-per-step={m.msPerStep}
                  data-tokens-per-second={m.tokensPerSecond}
                >
                  <td>{m.label}</td>
                  <td className="num">
                    {m.batch} x {m.seq}
                  </td>
                  {m.error ? (
                    <td colSpan={6} className="error-text small" style={WRAP_CELL}>
                      failed: {m.error}
                    </td>
                  ) : (
                    <>
                      <td className="num">{m.trainableParams.toLocaleString('en')}</td>
                      <td className="num">{num(m.preparationMs)}</td>
                      <td className="num">{num(m.msPerStep)}</td>
                      <td className="num">{num(m.tokensPerSecond)}</td>
                      <td className="num">{lora ? `${(m.msPerStep / lora.msPerStep).toFixed(2)}x` : '-'}</td>
                      <td className="num">{u === null ? '-' : `${(u * 100).toFixed(1)}%`}</td>
                    </>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <div className="table-wrap">
        <table className="table" data-testid="bench-memory">
          <thead>
            <tr>
              <th>GPU memory per method (MiB)</th>
              {CATEGORIES.map((c) => (
                <th key={c} className="num">
                  {c}
                </th>
              ))}
              <th className="num" title="The most the run held at once, base weights and preparation included">
                peak
              </th>
            </tr>
          </thead>
          <tbody>
            {methods.map((m) => (
              <tr key={m.label} data-testid="bench-memory-row">
                <td>{m.label}</td>
                {CATEGORIES.map((c) => (
                  <td key={c} className="num">
                    {mib(m.memory[c])}
                  </td>
                ))}
                <td className="num">{mib(m.peakBytes)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="muted small">
        MFU = tokens/s x model FLOPs per token / our best matmul GFLOP/s above (
        {peakGflops ? num(peakGflops) : 'not measured'}). Model FLOPs per token: 2 x linear params (+ LM head) +
        attention, x3 for full fine-tuning, x2 for adapters. Memory: each run's own buffers after its last step (weights
        are the shared base model); peak includes preparation.
      </p>
    </>
  );
}
