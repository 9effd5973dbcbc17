/**
 * The studio's GPU device: acquiring it (with the matmul autotune before anything else runs on it), handing it to
 * jobs, and recovering when it is lost: a new device (new pipelines, tune choice and plan), the model uploaded again
 * from the files the worker still holds, the run the loss cut off queued again from its last checkpoint, and a
 * notice of what happened. The decisions are device-loss.ts's.
 */
import { requestDevice } from '../gpu/device';
import { DeviceLostError, describeLoss, LOST_GRACE_MS, lostWithin, mayBeDeviceLoss } from '../gpu/device-lost';
import { describeTune, tuneMatmul } from '../kernels/matmul-tune';
import { listScratchBytes } from '../kernels/matmul';
import { DeviceLossRecovery, type ResumePoint } from './device-loss';
import type { GpuInfo, RunCheckpointData, RunConfig } from './protocol';
import { ScopedGpu } from './scoped-gpu';
import { messageOf, type ModelState, type StudioState } from './studio-context';
import { browserTuneCache } from './tune-cache';

/** A job that failed on an error unlike a loss's still waits this long for its device's lost event. */
const OTHER_ERROR_GRACE_MS = 250;

export class StudioDevice {
  private current: ScopedGpu | null = null;
  private gpuError: string | null = null;
  /** What the UI was told about the device (the benchmark's retune updates its matmul line). */
  private gpuInfo: GpuInfo | null = null;
  private gpuInit: Promise<void> | null = null;
  private lostReason: string | null = null;
  private readonly recovery = new DeviceLossRecovery();
  /** debugLoseDevice is honoured (the page was opened with ?test-hooks). */
  private testHooks = false;

  /**
   * `reupload` queues the upload of a model whose weights were on the lost device (studio-model.ts); `requeue`
   * queues a run the loss cut off again, ahead of waiting runs, from `resume` or from step 0 (studio-runs.ts).
   */
  constructor(
    private readonly studio: StudioState,
    private readonly reupload: (model: ModelState) => void,
    private readonly requeue: (config: RunConfig, resume: RunCheckpointData | undefined) => void,
  ) {}

  /** The device jobs run on now: null before `init` and after a loss. */
  get gpu(): ScopedGpu | null {
    return this.current;
  }

  init(testHooks = false): Promise<void> {
    if (testHooks) this.testHooks = true;
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
      // The studio never destroys its device itself: 'destroyed' is the test hook, recovered like any loss.
      void handle.device.lost.then((info) => this.onDeviceLost(gpu, info));
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
   * A lost device (driver reset, GPU process crash, out of memory, the test hook) takes every buffer with it. The
   * model goes back on a new device at once, whether or not a job was running; the job on the lost device fails
   * and comes back through resumeAfterLoss; a notice follows once the model is on the new device.
   */
  private onDeviceLost(gpu: ScopedGpu, info: GPUDeviceLostInfo): void {
    if (this.current !== gpu) return;
    this.current = null;
    this.gpuInit = null;
    const reason = describeLoss(info.reason, info.message);
    this.lostReason = reason;
    this.recovery.lost(reason);
    const weightsLost: string[] = [];
    for (const [id, run] of this.studio.trained) {
      if (!run.full) continue;
      run.full = null;
      weightsLost.push(id);
    }
    this.recovery.weightsLost(weightsLost.length);
    this.studio.post({ type: 'deviceLost', reason, weightsLost });
    const model = this.studio.model;
    if (model) {
      model.weights = null;
      model.scope = null;
      this.studio.post({ type: 'model', card: model.card, ready: false, gpuBytes: 0 });
      this.reupload(model);
    }
    // Urgent jobs run in order: this one follows the upload, and precedes the run queued again after the loss.
    const loss = this.recovery.lossCount;
    this.studio.queue.push({ urgent: true, execute: () => this.announceRecovery(loss) });
  }

  /** Says what the recovery did, once the model is on the new device (nothing if the device was lost again since). */
  private async announceRecovery(loss: number): Promise<void> {
    if (loss !== this.recovery.lossCount) return; // a later loss's announcement tells the whole story
    try {
      await this.requireGpu();
    } catch {
      return; // no new device: gpuUnavailable said why
    }
    if (loss !== this.recovery.lossCount) return;
    const model = this.studio.model;
    const notice = model?.uploadError
      ? this.recovery.failed(model.uploadError)
      : this.recovery.recovered(model?.card.name ?? null);
    if (notice) this.studio.post({ type: 'deviceRecovered', ...notice });
  }

  /**
   * A run failed with `err` on `gpu`: when the device was lost, it is queued again from its last checkpoint (or
   * step 0), or failed with why not (losses too often); true then. False for any other failure.
   */
  async resumeAfterLoss(err: unknown, gpu: ScopedGpu | null, config: RunConfig, point: ResumePoint): Promise<boolean> {
    if (!gpu || !(await this.lostDuring(err, gpu))) return false;
    const plan = this.recovery.interrupted(config.name, point);
    if (plan.kind === 'stop') {
      this.studio.post({ type: 'runStatus', id: config.id, status: 'failed', message: plan.message });
      return true;
    }
    const step = plan.kind === 'resume' ? plan.step : 0;
    this.studio.post({ type: 'runResumed', id: config.id, step, message: plan.message });
    this.requeue(config, plan.kind === 'resume' ? point.checkpoint : undefined);
    return true;
  }

  /**
   * Whether `gpu` was lost: readbacks say so (DeviceLostError); a WebGPU abort may come before the lost event, so it
   * waits for it (see device-lost.ts); any other error only briefly.
   */
  private async lostDuring(err: unknown, gpu: ScopedGpu): Promise<boolean> {
    if (err instanceof DeviceLostError || this.current !== gpu) return true;
    const grace = mayBeDeviceLoss(err) ? LOST_GRACE_MS : OTHER_ERROR_GRACE_MS;
    return (await lostWithin(gpu.device, grace)) !== null;
  }

  /** The test hook (debugLoseDevice): destroys the device as a loss would; its lost event starts the recovery. */
  loseDeviceForTest(): void {
    if (!this.testHooks)
      throw new Error('debugLoseDevice is a test hook: open the studio with ?test-hooks to enable it.');
    if (!this.current) throw new Error('There is no GPU device to lose: it is still opening, or already lost.');
    this.current.device.destroy();
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
