/**
 * One training step = one command buffer: forward, loss, backward, per-tensor gradient norms, global clip
 * factor and AdamW, all recorded once. Per step only the batch and the optimizer hyperparameters are
 * written (queue.writeBuffer); metrics come back through a ring of staging buffers, so reading step N's
 * loss never stalls the submission of step N+1. With gradient accumulation a step is still one command buffer:
 * forward and backward once per micro-batch, their gradients summed, then the norms, clip and AdamW once.
 */
import type { Trainable } from '../model/adapter';
import { mapForRead } from '../gpu/device-lost';
import type { CommandList, Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { adamw, ADAMW_HP } from '../kernels/adamw';
import { addInPlace } from '../kernels/elementwise';
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
  /**
   * Micro-batches per optimizer step (default 1): their gradients add up to the gradient of one batch of all their
   * rows (the loss is the mean over every supervised token of the step), then clipping and AdamW run once.
   */
  gradAccum?: number;
}

/** One micro-batch's inputs as the graph reads them (a Batch of the graph's shape). */
export interface StepBatch {
  tokens: Uint32Array;
  targets: Int32Array;
  positions: Uint32Array;
  supervised: number;
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
  /** Mean next-token cross-entropy over the step's supervised tokens (every micro-batch's). */
  loss: number;
  /** Supervised tokens of the step, over all its micro-batches. */
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

/**
 * Gradient accumulation's buffers and lists (gradAccum > 1), all made before step 0: the step's micro-batches are
 * written side by side and copied into the graph's inputs inside the step's command buffer (one submit per step).
 * Every micro-batch's backward writes the trainables' gradients, scaled by 1 / the step's supervised tokens; `sums`
 * keeps their running sum (the first micro-batch copies, the next ones add), and the last adds it back into the
 * gradients, so norms, clipping, AdamW and the method's step work read the whole step's gradient.
 */
interface Accumulation {
  tokens: Tensor;
  targets: Tensor;
  positions: Tensor;
  /** backward, then sums = grad */
  first: CommandList;
  /** backward, then sums += grad */
  middle: CommandList;
  /** backward, grad += sums, then the update */
  last: CommandList;
}

export class Trainer {
  readonly trainables: Trainable[];
  /** Micro-batches per optimizer step. */
  readonly gradAccum: number;
  private readonly hp: Tensor;
  private readonly state: Tensor;
  private readonly sq: Tensor;
  /** backward + update: a step of one micro-batch. */
  private readonly list: CommandList;
  private readonly accum: Accumulation | null = null;
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
    const accum = (this.gradAccum = options.gradAccum ?? 1);
    if (!Number.isInteger(accum) || accum < 1) throw new Error(`gradAccum must be an integer >= 1 (got ${accum})`);
    const n = this.trainables.length;
    this.hp = gpu.tensor([8], 'adamw.hp');
    this.state = gpu.tensor([4], 'optimizer.state');
    this.sq = gpu.tensor([n], 'grad.sumsq');
    // The update, once per optimizer step: per-tensor norms, clip factor, AdamW, the method's own work.
    const update = gpu.list('update');
    this.trainables.forEach((t, i) => sumSquares(update, { x: t.grad, n: t.grad.size, out: this.sq, outIndex: i }));
    clipFactor(update, {
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
      adamw(update, {
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
    work.record?.(update, { state: this.state, clipIndex: STATE_CLIP });
    const list = (this.list = gpu.list('step'));
    list.append(graph.backwardList);
    list.append(update);
    if (accum > 1) {
      const rows = graph.rows;
      const sums = this.trainables.map((t) => gpu.tensor(t.grad.shape, `${t.name}.grad_accum`));
      const first = gpu.list('step.first');
      const middle = gpu.list('step.middle');
      const last = gpu.list('step.last');
      for (const l of [first, middle, last]) l.append(graph.backwardList);
      this.trainables.forEach((t, i) => {
        first.copy(t.grad, sums[i]);
        addInPlace(middle, { x: sums[i], y: t.grad, n: t.grad.size });
        addInPlace(last, { x: t.grad, y: sums[i], n: t.grad.size });
      });
      last.append(update);
      this.accum = {
        tokens: gpu.tensor([accum * rows], 'accum.tokens', 'u32'),
        targets: gpu.tensor([accum * rows], 'accum.targets', 'i32'),
        positions: gpu.tensor([accum * rows], 'accum.positions', 'u32'),
        first,
        middle,
        last,
      };
    }
    // Staging: the loss sum of each micro-batch, the gradient norm and clip factor, the per-tensor norms.
    const bytes = 4 * (accum + 2 + n);
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
   * Submits one optimizer step over one batch, or over up to `gradAccum` micro-batches (their gradients summed as
   * one batch of all their rows; micro-batches without a supervised token add nothing and are left out), and
   * returns a promise of its metrics. Await it later (after submitting the next step) to keep the GPU busy; at most
   * RING steps may be pending.
   */
  async submit(batches: StepBatch | readonly StepBatch[]): Promise<() => Promise<StepMetrics>> {
    const given = Array.isArray(batches) ? (batches as readonly StepBatch[]) : [batches as StepBatch];
    if (given.length === 0 || given.length > this.gradAccum)
      throw new Error(`A step takes 1 to ${this.gradAccum} micro-batches (got ${given.length})`);
    const supervised = given.reduce((s, b) => s + b.supervised, 0);
    // Left out, a micro-batch without a supervised token changes nothing: its rows have no loss and no gradient.
    const micro = given.length === 1 ? given : given.filter((b) => b.supervised > 0);
    if (micro.length === 0) throw new Error('The step has no supervised token: skip it instead (Trainer.skip)');
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
    const queue = this.gpu.device.queue;
    queue.writeBuffer(this.hp.buffer, 0, hp);
    this.work.beforeStep?.(step);

    const enc = this.gpu.device.createCommandEncoder({ label: `step ${step}` });
    const staging = slot.staging;
    const lossBytes = 4 * this.gradAccum;
    const accum = this.accum;
    if (!accum) {
      this.graph.setBatch(micro[0]);
      this.list.encode(enc);
      enc.copyBufferToBuffer(this.graph.lossSum.buffer, 0, staging, 0, 4);
    } else {
      // Every micro-batch side by side; each is copied into the graph's inputs just before its pass.
      const R = this.graph.rows;
      micro.forEach((b, k) => {
        this.graph.checkBatch(b);
        const write = (t: Tensor, a: Uint32Array | Int32Array) =>
          queue.writeBuffer(t.buffer, 4 * k * R, a.buffer, a.byteOffset, a.byteLength);
        write(accum.tokens, b.tokens);
        write(accum.targets, b.targets);
        write(accum.positions, b.positions);
      });
      // The step's loss is the mean over all its supervised tokens: every micro-batch's gradient is scaled by 1/total.
      queue.writeBuffer(this.graph.gradScale.buffer, 0, new Float32Array([supervised > 0 ? 1 / supervised : 0]));
      const g = this.graph;
      micro.forEach((_, k) => {
        for (const [src, dst] of [
          [accum.tokens, g.tokens],
          [accum.targets, g.targets],
          [accum.positions, g.positions],
        ] as const)
          enc.copyBufferToBuffer(src.buffer, 4 * k * R, dst.buffer, 0, 4 * R);
        const m = micro.length;
        (m === 1 ? this.list : k === 0 ? accum.first : k === m - 1 ? accum.last : accum.middle).encode(enc);
        enc.copyBufferToBuffer(g.lossSum.buffer, 0, staging, 4 * k, 4);
      });
    }
    enc.copyBufferToBuffer(this.state.buffer, 0, staging, lossBytes, 8);
    enc.copyBufferToBuffer(this.sq.buffer, 0, staging, lossBytes + 8, 4 * this.trainables.length);
    this.gpu.submit([enc.finish()]);

    let metrics: StepMetrics | null = null;
    const n = this.trainables.length;
    const losses = micro.length;
    const norms = this.gradAccum; // the state and norms follow one loss slot per micro-batch
    slot.busy = mapForRead(this.gpu.device, staging).then(() => {
      const v = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      let sumLoss = 0;
      for (let k = 0; k < losses; k++) sumLoss += v[k];
      metrics = {
        step,
        lr,
        supervised,
        loss: supervised > 0 ? sumLoss / supervised : NaN,
        gradNorm: v[norms + STATE_NORM],
        gradNorms: v.slice(norms + 2, norms + 2 + n).map(Math.sqrt),
      };
    });
    const busy = slot.busy;
    // A readback that fails (a lost device) fails whoever awaits it; a step nobody waits for any more must not
    // leave an unhandled rejection behind.
    busy.catch(() => {});
    return async () => {
      await busy;
      return metrics!;
    };
  }
}
