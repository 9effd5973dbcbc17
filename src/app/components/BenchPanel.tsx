import { num } from '../../bench/format';
import type { MemoryCategory } from '../../bench/methods';
import { modelFlopsUtilization as mfu } from '../../bench/flops';
import { MAX_REL_ERROR } from '../../bench/matmul';
import type { BenchResult } from '../../worker/protocol';
import { formatDuration } from '../format';
import { useStudio } from '../store';
import { Alert, Panel, ProgressBar } from './Panel';

const CATEGORIES: MemoryCategory[] = ['weights', 'adapters', 'gradients', 'optimizer', 'activations', 'scratch'];
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(2);

export function BenchPanel() {
  const bench = useStudio((s) => s.bench);
  const hasModel = useStudio((s) => !!s.model.card);
  const gpuReady = useStudio((s) => s.gpu.status === 'ready');
  const runBench = useStudio((s) => s.runBench);
  const r = bench.result;

  return (
    <Panel id="bench" step={9} title="Benchmark"
      subtitle={<>What <code>npm run bench</code> measures for this engine, on this tab's GPU: matmul GFLOP/s, every method's training step on the loaded model (with MFU and GPU memory by category), and per-kernel time of one LoRA step.</>}
      actions={
        <button className="btn btn-primary" disabled={bench.running || !hasModel || !gpuReady} onClick={runBench} data-testid="bench-run"
          title={hasModel ? 'Waits for queued runs; the GPU is busy for a while' : 'Load a model (or the demo) first'}>
          {bench.running ? 'Running…' : 'Run benchmark'}
        </button>
      }>
      <p className="muted small">
        Ours only: the peers (jax-js, TensorFlow.js) run beside it in the CLI (<code>npm run bench</code>), on the same adapter.
        On a software adapter (SwiftShader, lavapipe) the settings are small and absolute numbers say nothing about a real GPU.
      </p>
      {bench.running && (
        <div className="progress-row" data-testid="bench-progress">
          <ProgressBar value={0} max={1} indeterminate label="Benchmark progress" />
          <span className="progress-text">{bench.stage ?? 'Working'}</span>
        </div>
      )}
      {bench.error && <Alert kind="error" title="Benchmark failed" testId="bench-error">{bench.error}</Alert>}
      {!r && !bench.running && !bench.error && (
        <div className="empty" data-testid="bench-empty">{hasModel ? 'Press "Run benchmark" to measure.' : 'Load a model (or the demo) to benchmark it.'}</div>
      )}
      {r && <BenchTables result={r} />}
    </Panel>
  );
}

function BenchTables({ result: r }: { result: BenchResult }) {
  const lora = r.methods.find((m) => m.method === 'lora' && !m.error);
  return (
    <div className="bench-results" data-testid="bench-results">
      <p className="muted small" data-testid="bench-adapter">
        {r.adapter}{r.software ? ' (software renderer)' : ''} · {r.modelName} · took {formatDuration(r.elapsedMs)}
      </p>
      <div className="table-wrap">
        <table className="table" data-testid="bench-matmul">
          <thead>
            <tr>
              <th>Matmul (ours)</th>
              <th className="num">M x K x N</th>
              <th className="num">GFLOP/s</th>
              <th className="num">ms / product</th>
              <th className="num" title={`Largest relative error of spot-checked entries; above ${MAX_REL_ERROR} is wrong`}>max rel. error</th>
            </tr>
          </thead>
          <tbody>
            {r.matmul.map((m) => (
              <tr key={m.label} data-testid="bench-matmul-row" data-gflops={m.gflops}>
                <td>{m.label}</td>
                <td className="num">{m.M} x {m.K} x {m.N}</td>
                {m.error ? <td colSpan={3} className="error-text">failed: {m.error}</td> : (
                  <>
                    <td className="num">{num(m.gflops)}{m.maxRelError > MAX_REL_ERROR && <span className="error-text"> WRONG</span>}</td>
                    <td className="num">{num(m.msPerMatmul)}</td>
                    <td className="num">{m.maxRelError.toExponential(1)}</td>
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <div className="table-wrap">
        <table className="table" data-testid="bench-methods">
          <thead>
            <tr>
              <th>Training per method</th>
              <th className="num">batch x seq</th>
              <th className="num">trainable</th>
              <th className="num" title="The method's preparation phase (GoRA's gradient accumulation, GeLoRA's hidden states)">prep ms</th>
              <th className="num">ms/step</th>
              <th className="num">tokens/s</th>
              <th className="num">vs LoRA step</th>
              <th className="num" title="tokens/s x model FLOPs per token / our best matmul GFLOP/s above">MFU</th>
              {CATEGORIES.map((c) => <th key={c} className="num">{c} MiB</th>)}
              <th className="num">peak MiB</th>
            </tr>
          </thead>
          <tbody>
            {r.methods.map((m) => {
              const u = mfu(m, r.peakGflops);
              return (
                <tr key={m.label} data-testid="bench-method-row" data-ms-per-step={m.msPerStep} data-tokens-per-second={m.tokensPerSecond}>
                  <td>{m.label}</td>
                  <td className="num">{m.batch} x {m.seq}</td>
                  {m.error ? <td colSpan={7 + CATEGORIES.length} className="error-text">failed: {m.error}</td> : (
                    <>
                      <td className="num">{m.trainableParams.toLocaleString('en')}</td>
                      <td className="num">{num(m.preparationMs)}</td>
                      <td className="num">{num(m.msPerStep)}</td>
                      <td className="num">{num(m.tokensPerSecond)}</td>
                      <td className="num">{lora ? `${(m.msPerStep / lora.msPerStep).toFixed(2)}x` : '–'}</td>
                      <td className="num">{u === null ? '–' : `${(u * 100).toFixed(1)}%`}</td>
                      {CATEGORIES.map((c) => <td key={c} className="num">{mib(m.memory[c])}</td>)}
                      <td className="num">{mib(m.peakBytes)}</td>
                    </>
                  )}
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p className="muted small">
        MFU = tokens/s x model FLOPs per token / our best matmul GFLOP/s above ({r.peakGflops ? num(r.peakGflops) : 'not measured'}).
        Model FLOPs per token: 2 x linear params (+ LM head) + attention, x3 for full fine-tuning, x2 for adapters.
        Memory: each run's own buffers after its last step (weights are the shared base model); peak includes preparation.
      </p>

      {r.kernels && r.profile ? (
        <div className="table-wrap">
          <table className="table" data-testid="bench-kernels">
            <thead>
              <tr>
                <th>Kernel (one LoRA r{r.profile.rank} {r.profile.label} step, {r.profile.batch} x {r.profile.seq})</th>
                <th className="num">dispatches</th>
                <th className="num">GPU ms</th>
                <th className="num">share</th>
              </tr>
            </thead>
            <tbody>
              {r.kernels.map((k) => (
                <tr key={k.kernel} data-testid="bench-kernel-row">
                  <td><code>{k.kernel}</code></td>
                  <td className="num">{k.dispatches}</td>
                  <td className="num">{num(k.ms)}</td>
                  <td className="num">{(k.share * 100).toFixed(1)}%</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p className="muted small" data-testid="bench-no-kernels">Per-kernel time needs the adapter's 'timestamp-query' feature, which this one does not expose.</p>
      )}
    </div>
  );
}
