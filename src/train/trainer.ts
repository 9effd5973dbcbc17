/**
 * One training step = one command buffer: forward, loss, backward, per-tensor gradient norms, global clip
 * factor and AdamW, all recorded once. Per step only the batch and the optimizer hyperparameters are
 * written (queue.writeBuffer); metrics come back through a ring of staging buffers, so reading step N's
 * loss never stalls the submission of step N+1.
 */
import type { Trainable } from '../model/adapter';
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { adamw, ADAMW_HP } from '../kernels/adamw';
import { clipFactor, sumSquares } from '../kernels/reduce';
import type { TransformerGraph } from '../model/transformer';
import { learningRate, type ScheduleOptions } from './schedule';

export interface OptimizerOptions extends ScheduleOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** 0 disables clipping. */
  maxGradNorm: number;
}

export const DEFAULT_OPTIMIZER: Omit<OptimizerOptions, 'lr' | 'totalSteps'> = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
  maxGradNorm: 1,
  warmupSteps: 0,
  minRatio: 0,
};

export interface StepMetrics {
  step: number;
  /** Mean next-token cross-entropy over the batch's supervised tokens. */
  loss: number;
  supervised: number;
  lr: number;
  gradNorm: number;
  /** Per-trainable gradient L2 norms, in `trainer.trainables` order. */
  gradNorms: Float32Array;
}

/** A trainable's optimizer state on the CPU: enough to continue training exactly where it stopped. */
/**
 * A method's own work in every step (AdaLoRA's importance scores and rank masks): `record` is appended after the
 * optimizer update; `beforeStep` runs on the host before a step is submitted (queue writes only, no readback).
 */
export interface StepWork {
  record?(list: CommandList, optimizer: { state: Tensor; clipIndex: number }): void;
  beforeStep?(step: number): void;
  /**
   * Tensors the method updates every step beside the trainables (AdaLoRA's importance EMAs and mask): a checkpoint
   * carries them (as `method:<name>` entries without moments), so a resumed run continues exactly.
   */
  state?: { name: string; tensor: Tensor }[];
  /** Called when a run continues from a checkpoint at `step`, after its state tensors are restored. */
  resumed?(step: number): void;
}

/** The prefix of a checkpoint entry that holds a method's step state, not a trainable. */
export const METHOD_STATE_PREFIX = 'method:';

export interface TrainableState {
  name: string;
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

const STATE_NORM = 0;
const STATE_CLIP = 1;
const RING = 3;

interface Slot {
  staging: GPUBuffer;
  busy: Promise<void> | null;
}

export class Trainer {
  readonly trainables: Trainable[];
  private readonly hp: Tensor;
  private readonly state: Tensor;
  private readonly sq: Tensor;
  private readonly list: CommandList;
  private readonly ring: Slot[] = [];
  private readonly moments: { m: Tensor; v: Tensor }[] = [];
  private stepIndex = 0;

  constructor(
    private readonly gpu: Gpu,
    private readonly graph: TransformerGraph,
    readonly options: OptimizerOptions,
    private readonly work: StepWork = {},
  ) {
    if (!graph.backwardList) throw new Error('Trainer needs a graph built with train = adapters or full');
    this.trainables = graph.trainables;
    if (this.trainables.length === 0)
      throw new Error('Nothing to train: no trainable tensors (check --targets and --method).');
    const n = this.trainables.length;
    this.hp = gpu.tensor([8], 'adamw.hp');
    this.state = gpu.tensor([4], 'optimizer.state');
    this.sq = gpu.tensor([n], 'grad.sumsq');
    const list = (this.list = gpu.list('step'));
    list.append(graph.backwardList);
    this.trainables.forEach((t, i) => sumSquares(list, { x: t.grad, n: t.grad.size, out: this.sq, outIndex: i }));
    clipFactor(list, {
      sq: this.sq,
      count: n,
      state: this.state,
      normIndex: STATE_NORM,
      clipIndex: STATE_CLIP,
      maxNorm: options.maxGradNorm,
    });
    for (const t of this.trainables) {
      const m = gpu.tensor(t.param.shape, `${t.name}.adam_m`);
      const v = gpu.tensor(t.param.shape, `${t.name}.adam_v`);
      this.moments.push({ m, v });
      adamw(list, {
        param: t.param,
        grad: t.grad,
        m,
        v,
        n: t.param.size,
        hp: this.hp,
        state: this.state,
        clipIndex: STATE_CLIP,
        lrScale: t.lrScale,
        applyDecay: t.decay,
      });
    }
    work.record?.(list, { state: this.state, clipIndex: STATE_CLIP });
    const bytes = 4 * (1 + 2 + n);
    for (let i = 0; i < RING; i++) {
      this.ring.push({
        staging: gpu.createBuffer(bytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `metrics.${i}`),
        busy: null,
      });
    }
  }

  get step(): number {
    return this.stepIndex;
  }

  /**
   * Parameters and AdamW moments of every trainable, and the method's step state, after the steps submitted so far
   * (one readback).
   */
  async capture(): Promise<TrainableState[]> {
    const extra = this.work.state ?? [];
    const tensors = this.trainables.flatMap((t, i) => [t.param, this.moments[i].m, this.moments[i].v]);
    const data = await this.gpu.readMany([...tensors, ...extra.map((s) => s.tensor)]);
    const trainables = this.trainables.map((t, i) => ({
      name: t.name,
      param: data[3 * i],
      m: data[3 * i + 1],
      v: data[3 * i + 2],
    }));
    const method = extra.map((s, i) => ({
      name: `${METHOD_STATE_PREFIX}${s.name}`,
      param: data[tensors.length + i],
      m: new Float32Array(0),
      v: new Float32Array(0),
    }));
    return [...trainables, ...method];
  }

  /** Continues from a captured state: the next submit is step `step` (its learning rate and bias corrections). */
  restore(step: number, saved: TrainableState[]): void {
    const state = saved.filter((s) => !s.name.startsWith(METHOD_STATE_PREFIX));
    const methodState = new Map(
      saved.filter((s) => s.name.startsWith(METHOD_STATE_PREFIX)).map((s) => [s.name, s.param]),
    );
    for (const { name, tensor } of this.work.state ?? []) {
      const data = methodState.get(`${METHOD_STATE_PREFIX}${name}`);
      if (!data || data.length !== tensor.size)
        throw new Error(`The checkpoint has no state for ${name}: it belongs to a different run configuration.`);
      this.gpu.upload(tensor, data);
    }
    const byName = new Map(state.map((s) => [s.name, s]));
    this.trainables.forEach((t, i) => {
      const s = byName.get(t.name);
      if (!s)
        throw new Error(`The checkpoint has no state for ${t.name}: it belongs to a different run configuration.`);
      if (s.param.length !== t.param.size || s.m.length !== t.param.size || s.v.length !== t.param.size) {
        throw new Error(`The checkpoint's ${t.name} has ${s.param.length} values; this run's has ${t.param.size}.`);
      }
      this.gpu.upload(t.param, s.param);
      this.gpu.upload(this.moments[i].m, s.m);
      this.gpu.upload(this.moments[i].v, s.v);
    });
    if (byName.size !== this.trainables.length)
      throw new Error('The checkpoint has tensors this run does not: it belongs to a different run configuration.');
    this.stepIndex = step;
    this.work.resumed?.(step);
  }

  /** Passes a step without an update (a batch with nothing to learn): the schedule stays on the step count. */
  skip(): void {
    this.stepIndex++;
  }

  /**
   * Submits one step and returns a promise of its metrics. Await it later (after submitting the next step)
   * to keep the GPU busy; at most RING steps may be pending.
   */
  async submit(batch: {
    tokens: Uint32Array;
    targets: Int32Array;
    positions: Uint32Array;
    supervised: number;
  }): Promise<() => Promise<StepMetrics>> {
    const step = this.stepIndex++;
    const slot = this.ring[step % RING];
    if (slot.busy) await slot.busy; // the slot's previous readback must finish before it is reused
    const o = this.options;
    const lr = learningRate(step, o);
    const hp = new Float32Array(8);
    hp[ADAMW_HP.lr] = lr;
    hp[ADAMW_HP.beta1] = o.beta1;
    hp[ADAMW_HP.beta2] = o.beta2;
    hp[ADAMW_HP.eps] = o.eps;
    hp[ADAMW_HP.weightDecay] = o.weightDecay;
    hp[ADAMW_HP.bias1] = 1 - Math.pow(o.beta1, step + 1);
    hp[ADAMW_HP.bias2] = 1 - Math.pow(o.beta2, step + 1);
    this.gpu.device.queue.writeBuffer(this.hp.buffer, 0, hp);
    this.work.beforeStep?.(step);
    this.graph.setBatch(batch);

    const enc = this.gpu.device.createCommandEncoder({ label: `step ${step}` });
    this.list.encode(enc);
    enc.copyBufferToBuffer(this.graph.lossSum.buffer, 0, slot.staging, 0, 4);
    enc.copyBufferToBuffer(this.state.buffer, 0, slot.staging, 4, 8);
    enc.copyBufferToBuffer(this.sq.buffer, 0, slot.staging, 12, 4 * this.trainables.length);
    this.gpu.submit([enc.finish()]);

    let metrics: StepMetrics | null = null;
    const n = this.trainables.length;
    slot.busy = slot.staging.mapAsync(GPUMapMode.READ).then(() => {
      const v = new Float32Array(slot.staging.getMappedRange().slice(0));
      slot.staging.unmap();
      const sumLoss = v[0];
      metrics = {
        step,
        lr,
        supervised: batch.supervised,
        loss: batch.supervised > 0 ? sumLoss / batch.supervised : NaN,
        gradNorm: v[1 + STATE_NORM],
        gradNorms: v.slice(3, 3 + n).map(Math.sqrt),
      };
    });
    const busy = slot.busy;
    return async () => {
      await busy;
      return metrics!;
    };
  }
}
