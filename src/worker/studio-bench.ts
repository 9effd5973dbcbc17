/**
 * The studio's benchmark: bench.ts on the loaded model as a GPU job, every buffer it made freed afterwards.
 */
import { runStudioBench } from './bench';
import type { BufferScope, ScopedGpu } from './scoped-gpu';
import type { ModelState, StudioState } from './studio-context';
import type { StudioDevice } from './studio-device';

export class StudioBench {
  constructor(
    private readonly studio: StudioState,
    private readonly device: StudioDevice,
  ) {}

  /**
   * What `npm run bench` measures (matmul GFLOP/s and the LoRA step beside jax-js and TensorFlow.js, every method's
   * training step, per-kernel time), in this tab (bench.ts). A GPU job queued behind waiting runs, so it never shares
   * the GPU with training.
   */
  runBench(): void {
    const model = this.studio.model;
    if (!model)
      return this.studio.post({
        type: 'error',
        scope: 'bench',
        message: 'Load a model (or the demo) before running the benchmark.',
      });
    this.studio.post({ type: 'benchProgress', stage: 'Waiting for the GPU' });
    this.studio.queue.push({ urgent: false, execute: () => this.bench(model) });
  }

  private async bench(model: ModelState): Promise<void> {
    let gpu: ScopedGpu | null = null;
    let scope: BufferScope | null = null;
    let mark: ReadonlySet<GPUBuffer> | null = null;
    try {
      if (this.studio.model !== model) throw new Error('Another model was loaded meanwhile; run the benchmark again.');
      gpu = await this.device.requireGpu();
      scope = gpu.open('bench');
      mark = gpu.mark();
      const result = await runStudioBench(gpu, model.loaded, model.card.maxPositions, {
        stage: (stage) => this.studio.post({ type: 'benchProgress', stage }),
        partial: (partial) => this.studio.post({ type: 'benchPartial', result: partial }),
      });
      this.studio.post({ type: 'benchResult', result });
      if (result.tune) this.device.matmulRetuned(result.tune.summary, gpu);
    } catch (err) {
      this.studio.post({ type: 'error', scope: 'bench', message: this.device.failure(err, gpu) });
    } finally {
      if (gpu) {
        try {
          if (mark) await gpu.freeSince(mark);
        } catch {
          // A lost device: release() below still drops the buffers.
        }
        if (scope) await gpu.release(scope);
      }
    }
  }
}
