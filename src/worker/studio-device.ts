/**
 * The studio's GPU device: acquiring it (with the matmul autotune before anything else runs on it), handing it to
 * jobs, and recovering when it is lost.
 */
import { requestDevice } from '../gpu/device';
import { describeTune, tuneMatmul } from '../kernels/matmul-tune';
import { listScratchBytes } from '../kernels/matmul';
import type { GpuInfo } from './protocol';
import { ScopedGpu } from './scoped-gpu';
import { messageOf, type ModelState, type StudioState } from './studio-context';
import { browserTuneCache } from './tune-cache';

export class StudioDevice {
  private current: ScopedGpu | null = null;
  private gpuError: string | null = null;
  /** What the UI was told about the device (the benchmark's retune updates its matmul line). */
  private gpuInfo: GpuInfo | null = null;
  private gpuInit: Promise<void> | null = null;
  private lostReason: string | null = null;

  /** `reupload` queues the upload of a model whose weights were on the lost device (studio-model.ts). */
  constructor(
    private readonly studio: StudioState,
    private readonly reupload: (model: ModelState) => void,
  ) {}

  /** The device jobs run on now: null before `init` and after a loss. */
  get gpu(): ScopedGpu | null {
    return this.current;
  }

  init(): Promise<void> {
    this.gpuInit ??= this.acquireGpu();
    return this.gpuInit;
  }

  private async acquireGpu(): Promise<void> {
    const api = (self.navigator as Navigator).gpu;
    if (!api) {
      this.gpuError = 'This browser does not expose WebGPU (navigator.gpu is undefined).';
      this.studio.post({ type: 'gpuUnavailable', reason: this.gpuError });
      return;
    }
    try {
      const handle = await requestDevice(api);
      if (!handle) {
        this.gpuError =
          'WebGPU is present, but requestAdapter() returned no adapter: the GPU may be blocklisted or disabled.';
        this.studio.post({ type: 'gpuUnavailable', reason: this.gpuError });
        return;
      }
      const gpu = (this.current = new ScopedGpu(handle));
      this.gpuError = null;
      void handle.device.lost.then((info) => {
        if (info.reason !== 'destroyed') this.onDeviceLost(gpu, info.message || 'no reason given');
      });
      // Before anything else runs on the device: the tuned kernels serve every graph built after this.
      const tune = await tuneMatmul(gpu, { cache: browserTuneCache() });
      const limits = handle.device.limits;
      this.gpuInfo = {
        description:
          handle.adapter.description || handle.adapter.architecture || handle.adapter.vendor || 'WebGPU adapter',
        vendor: handle.adapter.vendor,
        architecture: handle.adapter.architecture,
        software: handle.adapter.software,
        f16: handle.features.f16,
        subgroups: handle.features.subgroups,
        matmul: describeTune(tune),
        splitScratchBytes: listScratchBytes(handle.device),
        maxBufferSize: limits.maxBufferSize,
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      };
      this.studio.post({ type: 'gpu', info: this.gpuInfo });
    } catch (err) {
      this.gpuError = `Could not open the GPU: ${messageOf(err)}`;
      this.studio.post({ type: 'gpuUnavailable', reason: this.gpuError });
    }
  }

  /**
   * A lost device (driver reset, GPU process crash, out of memory) takes every buffer with it. Get a new
   * device, upload the model again, and let the user re-run what failed.
   */
  private onDeviceLost(gpu: ScopedGpu, reason: string): void {
    if (this.current !== gpu) return;
    this.current = null;
    this.gpuInit = null;
    this.lostReason = reason;
    for (const run of this.studio.trained.values()) run.full = null;
    this.studio.post({
      type: 'error',
      scope: 'gpu',
      message: `The GPU device was lost (${reason}). Reconnecting and uploading the model again; re-run anything that failed.`,
    });
    const model = this.studio.model;
    if (model) {
      model.weights = null;
      model.scope = null;
      this.studio.post({ type: 'model', card: model.card, ready: false, gpuBytes: 0 });
      this.reupload(model);
    } else {
      void this.init();
    }
  }

  /** Whether the device a job started on is gone (lost, and maybe already replaced). */
  isLost(gpu: ScopedGpu): boolean {
    return this.current !== gpu;
  }

  /** Why a job failed: the device loss when the GPU it started on is gone, else its own error. */
  failure(err: unknown, gpu: ScopedGpu | null): string {
    if (gpu && this.current !== gpu)
      return `The GPU device was lost during this job (${this.lostReason ?? 'no reason given'}). Start it again, or resume it from its last checkpoint.`;
    return messageOf(err);
  }

  async requireGpu(): Promise<ScopedGpu> {
    await this.init();
    if (!this.current) throw new Error(this.gpuError ?? 'No GPU device.');
    return this.current;
  }

  /** The benchmark ran the autotune again: its choice (and the split-K scratch it implies) is the device's now. */
  matmulRetuned(matmul: string, gpu: ScopedGpu): void {
    if (this.gpuInfo)
      this.studio.post({
        type: 'gpu',
        info: (this.gpuInfo = { ...this.gpuInfo, matmul, splitScratchBytes: listScratchBytes(gpu.device) }),
      });
  }
}
