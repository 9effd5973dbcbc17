/**
 * PEFT's RankAllocator on the GPU, appended to every training step after AdamW (AdaLoraModel.update_and_allocate
 * runs after optimizer.step): importance EMAs of every A, E, B element from the step's gradient, triplet scores, the
 * budget mask over all modules, and Λ masked. The host only writes the step's schedule (config.ts allocatorStep);
 * nothing is read back until a snapshot or the export.
 *
 * The gradient is the clipped one (the Trainer's clip factor times the raw gradient): HF's Trainer clips p.grad in
 * place before optimizer.step, so the p.grad PEFT reads afterwards is clipped too.
 */
import type { CommandList, Gpu } from '../../gpu/gpu';
import type { Tensor } from '../../gpu/tensor';
import {
  adaloraApplyMask,
  adaloraIptUpdate,
  adaloraSelectMask,
  adaloraTripletScores,
  SCHEDULE,
} from '../../kernels/adalora';
import { allocatorStep, type AdaloraConfig, type AllocatorStep } from './config';
import type { AdaloraLayer } from './layer';

export class RankAllocator {
  readonly schedule: Tensor;
  readonly scores: Tensor;
  readonly mask: Tensor;
  /** Per layer: [ipt | unc] EMAs of A, E and B. */
  private readonly emas: { A: Tensor; E: Tensor; B: Tensor }[];
  readonly initBudget: number;
  readonly targetBudget: number;
  /** Whether some step computed a mask (PEFT's config.rank_pattern is set from then on). */
  masked = false;

  constructor(
    gpu: Gpu,
    readonly layers: AdaloraLayer[],
    readonly cfg: AdaloraConfig,
  ) {
    this.initBudget = layers.reduce((n, l) => n + l.rank, 0);
    this.targetBudget = cfg.targetR * layers.length;
    this.schedule = gpu.tensor([4], 'adalora.schedule', 'u32');
    this.scores = gpu.tensor([this.initBudget], 'adalora.scores');
    this.mask = gpu.tensorFrom(new Float32Array(this.initBudget).fill(1), [this.initBudget], 'adalora.mask');
    const ema = (t: Tensor, label: string) => gpu.tensor([2, ...t.shape], `${label}.ipt_ema`);
    this.emas = layers.map((l) => {
      const p = l.info.path;
      return { A: ema(l.A, `${p}.lora_A`), E: ema(l.E, `${p}.lora_E`), B: ema(l.B, `${p}.lora_B`) };
    });
  }

  /** The allocator's work, recorded once into the step's list after the optimizer. */
  record(list: CommandList, optimizer: { state: Tensor; clipIndex: number }): void {
    const { beta1, beta2 } = this.cfg;
    const common = { state: optimizer.state, clipIndex: optimizer.clipIndex, schedule: this.schedule, beta1, beta2 };
    this.layers.forEach((l, i) => {
      const e = this.emas[i];
      adaloraIptUpdate(list, { ...common, param: l.A, grad: l.dA, ema: e.A });
      adaloraIptUpdate(list, { ...common, param: l.E, grad: l.dE, ema: e.E });
      adaloraIptUpdate(list, { ...common, param: l.B, grad: l.dB, ema: e.B });
    });
    let offset = 0;
    this.layers.forEach((l, i) => {
      const e = this.emas[i];
      adaloraTripletScores(list, {
        emaA: e.A,
        emaB: e.B,
        emaE: e.E,
        scores: this.scores,
        schedule: this.schedule,
        rank: l.rank,
        inDim: l.info.in,
        outDim: l.info.out,
        offset,
      });
      offset += l.rank;
    });
    adaloraSelectMask(list, { scores: this.scores, mask: this.mask, schedule: this.schedule, total: this.initBudget });
    offset = 0;
    for (const l of this.layers) {
      adaloraApplyMask(list, { E: l.E, mask: this.mask, schedule: this.schedule, rank: l.rank, offset });
      offset += l.rank;
    }
  }

  /** The schedule of step `step` (0-based, as the step the Trainer is about to submit), written for the GPU. */
  beforeStep(gpu: Gpu, step: number): AllocatorStep {
    const s = allocatorStep(this.cfg, this.initBudget, this.targetBudget, step);
    const words = new Uint32Array(4);
    words[SCHEDULE.updateIpt] = s.updateIpt ? 1 : 0;
    words[SCHEDULE.computeMask] = s.computeMask ? 1 : 0;
    words[SCHEDULE.applyMask] = s.applyMask ? 1 : 0;
    words[SCHEDULE.k] = Math.max(0, s.k);
    gpu.upload(this.schedule, words);
    if (s.computeMask) this.masked = true;
    return s;
  }

  /** What a checkpoint carries so a resumed run allocates exactly as the uninterrupted one: the EMAs and the mask. */
  stateTensors(): { name: string; tensor: Tensor }[] {
    const out = [{ name: 'adalora.mask', tensor: this.mask }];
    this.layers.forEach((l, i) => {
      const e = this.emas[i];
      const p = l.info.path;
      out.push(
        { name: `${p}.lora_A.ipt_ema`, tensor: e.A },
        { name: `${p}.lora_E.ipt_ema`, tensor: e.E },
        { name: `${p}.lora_B.ipt_ema`, tensor: e.B },
      );
    });
    return out;
  }

  /** A run resumed at `step`: whether a step before it computed a mask follows from the schedule. */
  resumed(step: number): void {
    this.masked = false;
    for (let s = 0; s < step && !this.masked; s++)
      this.masked = allocatorStep(this.cfg, this.initBudget, this.targetBudget, s).computeMask;
  }

  /** Kept triplets per layer (the mask's ones; init_r each before the first mask). */
  async ranks(gpu: Gpu): Promise<{ mask: Float32Array; ranks: number[] }> {
    const [mask] = await gpu.readMany([this.mask]);
    let offset = 0;
    const ranks = this.layers.map((l) => {
      let n = 0;
      for (let k = 0; k < l.rank; k++) n += mask[offset + k] !== 0 ? 1 : 0;
      offset += l.rank;
      return n;
    });
    return { mask, ranks };
  }
}
