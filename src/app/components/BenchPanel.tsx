import type { BenchResult } from '../../worker/protocol';
import { formatDuration } from '../format';
import { useStudio } from '../store';
import { BenchKernelTable } from './BenchKernelTable';
import { BenchLoraStepTable } from './BenchLoraStepTable';
import { BenchMatmulTable } from './BenchMatmulTable';
import { BenchMethodTables } from './BenchMethodTables';
import { BenchTuneTable } from './BenchTuneTable';
import { Alert, Panel, ProgressBar } from './Panel';
import { clearBenchPartial, useBenchPartial } from './useBenchPartial';

export function BenchPanel() {
  const bench = useStudio((s) => s.bench);
  const hasModel = useStudio((s) => !!s.model.card);
  const gpuReady = useStudio((s) => s.gpu.status === 'ready');
  const runBench = useStudio((s) => s.runBench);
  const partial = useBenchPartial();
  // While it runs (or after it failed): this run's rows so far. Once done: the final result.
  const shown = bench.running || bench.error ? partial : (bench.result ?? partial);
  const complete = !bench.running && !bench.error && shown === bench.result;

  return (
    <Panel
      id="bench"
      step={10}
      title="Benchmark"
      subtitle={
        <>
          What <code>npm run bench</code> measures, on this tab's GPU: our matmul kernels against each other (the
          autotune), matmul GFLOP/s and one LoRA training step beside jax-js and TensorFlow.js, every method's training
          step on the loaded model (with MFU and GPU memory by category), and per-kernel time of one LoRA step.
        </>
      }
      actions={
        <button
          className="btn btn-primary"
          disabled={bench.running || !hasModel || !gpuReady}
          data-testid="bench-run"
          onClick={() => {
            clearBenchPartial();
            runBench();
          }}
          title={hasModel ? 'Waits for queued runs; the GPU is busy for a while' : 'Load a model (or the demo) first'}
        >
          {bench.running ? 'Running…' : 'Run benchmark'}
        </button>
      }
    >
      <p className="muted small">
        The peers (jax-js, TensorFlow.js' WebGPU backend) are loaded from this app when the benchmark starts and run on
        the same adapter, in the same run, as <code>npm run bench</code> does in Node. On a software adapter
        (SwiftShader, lavapipe) the settings are small and absolute numbers say nothing about a real GPU; the ratios
        between implementations still do.
      </p>
      {bench.running && (
        <div className="progress-row" data-testid="bench-progress">
          <ProgressBar value={0} max={1} indeterminate label="Benchmark progress" />
          <span className="progress-text">{bench.stage ?? 'Working'}</span>
        </div>
      )}
      {bench.error && (
        <Alert kind="error" title="Benchmark failed" testId="bench-error">
          {bench.error}
        </Alert>
      )}
      {!shown && !bench.running && !bench.error && (
        <div className="empty" data-testid="bench-empty">
          {hasModel ? 'Press "Run benchmark" to measure.' : 'Load a model (or the demo) to benchmark it.'}
        </div>
      )}
      {shown && <BenchTables result={shown} complete={complete} />}
    </Panel>
  );
}

function BenchTables({ result: r, complete }: { result: BenchResult; complete: boolean }) {
  const matmulPlan = useStudio((s) => (s.gpu.status === 'ready' ? s.gpu.info.matmul : null));
  return (
    <div className="bench-results" data-testid="bench-results" data-complete={complete}>
      <p className="muted small" data-testid="bench-adapter">
        {r.adapter}
        {r.software ? ' (software renderer)' : ''} · {r.modelName} · {complete ? 'took' : 'running for'}{' '}
        {formatDuration(r.elapsedMs)}
      </p>
      {matmulPlan && (
        <p
          className="muted small"
          data-testid="bench-matmul-plan"
          title="Chosen by timing every kernel on this adapter, when the GPU was opened or by this benchmark; remembered per adapter"
        >
          {matmulPlan}
        </p>
      )}
      {r.tune && <BenchTuneTable tune={r.tune} />}
      {r.matmul.length > 0 && <BenchMatmulTable rows={r.matmul} peers={r.peers} expected={r.matmulShapes} />}
      {r.loraStep.length > 0 && <BenchLoraStepTable rows={r.loraStep} />}
      {r.kernels && r.profile && <BenchKernelTable kernels={r.kernels} profile={r.profile} />}
      {r.methods.length > 0 && <BenchMethodTables methods={r.methods} peakGflops={r.peakGflops} />}
      {complete && !r.kernels && (
        <p className="muted small" data-testid="bench-no-kernels">
          Per-kernel time needs the adapter's 'timestamp-query' feature, which this one does not expose.
        </p>
      )}
    </div>
  );
}
