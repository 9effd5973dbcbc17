/**
 * A whole training run over an engine (platform-neutral: the CLI and the browser worker share it):
 * split, batches, method, graphs compiled before step 0, pipelined steps, periodic evaluation, and a
 * stop on a non-finite loss that keeps the last good adapter (the GPU skips updates whose gradient
 * norm is not finite).
 */
import {
  padBatches,
  packBatches,
  splitTrainValidation,
  supervisedTargets,
  BatchStream,
  type Batch,
  type Example,
} from '../data/index';
import type { Gpu } from '../gpu/gpu';
import { RECOMPUTE_MODES, TransformerGraph, type Recompute } from '../model/transformer';
import type { ModelWeights } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { evaluate, type EvalResult } from '../train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer, type StepMetrics, type TrainableState } from '../train/trainer';
import { buildMethod, type MethodOptions, type MethodSnapshot, type MethodState } from './methods';
import { CLI_WORDING, nonFiniteAdvice, type RunWording } from './wording';

export interface TrainRunOptions extends MethodOptions {
  /** Optimizer steps: the schedule (warmup, cosine decay), evaluation, checkpoints and the step counter count these. */
  steps: number;
  /** Rows per micro-batch (one forward and backward pass). */
  batch: number;
  /**
   * Micro-batches per optimizer step (default 1): a step trains on batch x gradAccum rows, exactly as one batch of
   * that many (the loss is the mean over all their supervised tokens), with the memory of one micro-batch.
   */
  gradAccum?: number;
  seq: number;
  lr: number;
  warmupSteps: number;
  weightDecay: number;
  maxGradNorm: number;
  minLrRatio: number;
  validationFraction: number;
  /** Evaluate every N steps (0 = only at the end). */
  evalEvery: number;
  /** At most this many validation batches per evaluation (the rest of the split stays unused). */
  maxValidationBatches?: number;
  /** Pack examples into full rows (plain text) or pad one example per row (supervised formats). */
  packing: boolean;
  /** Activation recomputation of the training graphs (see GraphOptions.recompute); default 'none'. */
  recompute?: Recompute;
  /** Checkpoint every N steps through onCheckpoint (0 or absent: never). */
  checkpointEvery?: number;
  /**
   * Continue a run from a checkpoint of the same options: the method is rebuilt (its preparation is
   * deterministic), the state restored, and the batch stream advanced past the steps already done.
   */
  resume?: RunCheckpoint;
  /** Messages name the CLI's flags or the studio's fields (default: the CLI's). */
  wording?: RunWording;
  /**
   * Held-out sets measured once with the final adapter, every batch of each (an experiment's whole validation and
   * test splits), on the training graph: results in TrainRunResult.heldOut by name.
   */
  heldOut?: Record<string, Batch[]>;
}

/** Examples already split (an experiment's split, the same for every run), instead of a split by the run's seed. */
export interface PresplitExamples {
  train: Example[];
  validation: Example[];
}

/** Everything a run needs to continue after a reload or a lost GPU: the steps done and the optimizer state. */
export interface RunCheckpoint {
  /** Steps completed; training continues at this step. */
  step: number;
  state: TrainableState[];
  /**
   * FNV-1a over the token ids of every batch trained before `step` (TrainRunResult.batchHash's fold): when given,
   * a resumed run checks that its batch stream reproduces them, so the batches it trains next are the ones the
   * interrupted run would have seen.
   */
  batchHash?: string;
}

export interface StepReport extends StepMetrics {
  /** Supervised tokens per second over the step's micro-batches. */
  tokensPerSecond: number;
  elapsedMs: number;
  /** Gradient L2 norm of each transformer block's trainables (index = layer), before clipping. */
  layerGradNorms: number[];
}

/** Which block each trainable belongs to (-1: embeddings, final norm, LM head), from its module path. */
export function trainableLayers(names: string[]): number[] {
  return names.map((n) => {
    const m = /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  });
}

function groupNorms(norms: Float32Array, layerOf: number[], layers: number): number[] {
  const sq = new Array<number>(layers).fill(0);
  norms.forEach((g, i) => {
    if (layerOf[i] >= 0) sq[layerOf[i]] += g * g;
  });
  return sq.map(Math.sqrt);
}

export interface TrainRunCallbacks {
  /** A method's preparation phase (GoRA's gradients, GeLoRA's hidden states) and graph building. */
  onPrepare?(p: { phase: string; done: number; total: number }): void;
  /** The method is built (ranks allocated, adapters initialized): its analysis is final. */
  onMethod?(state: MethodState): void;
  onStep?(m: StepReport): void;
  /** Something the user should know before the run's numbers are trusted (e.g. a split too small). */
  onWarning?(message: string): void;
  /** A batch without a single supervised token: the step is skipped (no update), and counted. */
  onSkip?(step: number): void;
  onEval?(step: number, r: EvalResult): void;
  /** A snapshot of what the method changes while training (MethodState.snapshot), at each evaluation and the end. */
  onSnapshot?(s: MethodSnapshot): void;
  /** Polled between steps. */
  shouldStop?(): boolean;
  /** Called every `checkpointEvery` steps with the state to resume from (not after the last step). */
  onCheckpoint?(c: RunCheckpoint): void | Promise<void>;
}

export interface TrainRunResult {
  state: MethodState;
  steps: number;
  finalEval: EvalResult | null;
  initialEval: EvalResult | null;
  stopReason: 'done' | 'non-finite' | 'stopped';
  message: string | null;
  /** GPU buffers created and queue submits after step 0 (the budget is 0 buffers, <= 10 submits per step). */
  buffersCreatedAfterStep0: number;
  submitsPerStep: number;
  trainExamples: number;
  validationExamples: number;
  /** Steps whose batch had no supervised token, so no update was made. */
  skippedBatches: number;
  /** The held-out examples (for metrics beyond the loss, such as exact match). */
  validation: Example[];
  /** FNV-1a over every training batch's token ids in step order: equal runs saw equal batches (paired designs). */
  batchHash: string;
  /** The final adapter's loss on each of TrainRunOptions.heldOut. */
  heldOut: Record<string, EvalResult>;
}

/** FNV-1a (32-bit) folded over token ids: a cheap fingerprint of the batches a run trained on. */
export function foldHash(hash: number, tokens: Uint32Array): number {
  let h = hash;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    for (let b = 0; b < 32; b += 8) h = Math.imul(h ^ ((t >>> b) & 0xff), 0x01000193);
  }
  return h >>> 0;
}
export const FNV_OFFSET = 0x811c9dc5;

/** A folded hash as TrainRunResult.batchHash writes it. */
const hashText = (h: number) => h.toString(16).padStart(8, '0');

export function validateTrainOptions(o: TrainRunOptions): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be an integer >= 1 (got ${v})`);
  };
  positiveInt('steps', o.steps);
  positiveInt('batch', o.batch);
  positiveInt('grad-accum', o.gradAccum ?? 1);
  positiveInt('seq-len', o.seq);
  if (o.recompute !== undefined && !RECOMPUTE_MODES.includes(o.recompute)) {
    throw new Error(`--recompute must be one of ${RECOMPUTE_MODES.join(', ')} (got "${o.recompute}")`);
  }
  if (!(o.lr > 0)) throw new Error(`--lr must be positive (got ${o.lr})`);
  if (!(o.validationFraction >= 0 && o.validationFraction < 1))
    throw new Error(`--val-fraction must be in [0, 1) (got ${o.validationFraction})`);
}

export async function trainRun(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  examples: Example[] | PresplitExamples,
  o: TrainRunOptions,
  cb: TrainRunCallbacks = {},
): Promise<TrainRunResult> {
  validateTrainOptions(o);
  const spec = weights.spec;
  if (o.seq > spec.maxPositions)
    throw new Error(`--seq-len ${o.seq} exceeds the model's maximum of ${spec.maxPositions} positions`);
  const split = Array.isArray(examples) ? splitBySeed(examples, o) : examples;
  const total = split.train.length + split.validation.length;
  if (total === 0) throw new Error('The dataset has no usable examples.');
  const wording = o.wording ?? CLI_WORDING;
  if (split.train.length === 0)
    throw new Error(`No training examples left after the validation split; lower ${wording.validation}.`);
  if (!split.train.some((ex) => supervisedTargets(ex) > 0)) {
    throw new Error(
      `No training example has a supervised token (every label is -100), so there is nothing to learn. Check the dataset's labels or format.`,
    );
  }
  const gradAccum = o.gradAccum ?? 1;
  const small = smallSplitWarning(total, split.train.length, split.validation.length, o.batch * gradAccum, wording);
  if (small) cb.onWarning?.(small);
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const shape = { batch: o.batch, seq: o.seq, padId };
  const streamOptions = {
    ...shape,
    separatorId: tokenizer.eosId,
    shuffle: true,
    seed: o.seed,
    mode: o.packing ? ('pack' as const) : ('pad' as const),
  };
  const stream = new BatchStream(split.train, streamOptions);
  const validation: Batch[] = (
    split.validation.length
      ? o.packing
        ? packBatches(split.validation, { ...shape, separatorId: tokenizer.eosId })
        : padBatches(split.validation, shape)
      : []
  ).slice(0, o.maxValidationBatches ?? Infinity);

  // Everything is allocated and every pipeline compiled here, before step 0. A preparation phase reads
  // the training batches in training order from its own copy of the stream.
  const prepStream = new BatchStream(split.train, streamOptions);
  const state = await buildMethod(gpu, weights, o, {
    nextBatch: () => prepStream.next(),
    shape: { batch: o.batch, seq: o.seq, recompute: o.recompute },
    padId,
    totalSteps: o.steps,
    gradAccum,
    onProgress: cb.onPrepare,
  });
  gpu.checkErrors('method preparation');
  state.analysis.training = { batch: o.batch, gradAccum, effectiveBatch: o.batch * gradAccum };
  cb.onMethod?.(state);
  cb.onPrepare?.({ phase: 'Building the training graph and compiling kernels', done: 0, total: 1 });
  const graph = new TransformerGraph(gpu, weights, {
    batch: o.batch,
    seq: o.seq,
    train: state.train,
    adapters: state.adapters,
    recompute: o.recompute,
  });
  // Validation runs the training graph's forward list between steps (every step recomputes its forward), so a
  // run holds one set of activations, not two.
  const evalGraph = validation.length ? graph : null;
  const trainer = new Trainer(
    gpu,
    graph,
    {
      ...DEFAULT_OPTIMIZER,
      lr: o.lr,
      totalSteps: o.steps,
      warmupSteps: o.warmupSteps,
      weightDecay: o.weightDecay,
      maxGradNorm: o.maxGradNorm,
      minRatio: o.minLrRatio,
      gradAccum,
    },
    state.training,
  );
  // A bind or pipeline the GPU rejected while the graph was recorded would make every step's numbers meaningless.
  gpu.checkErrors('Building the training graph');
  const layerOf = trainableLayers(trainer.trainables.map((t) => t.name));
  // What the method changes while it trains (AdaLoRA's ranks, DoRA's magnitudes), at each evaluation and the end.
  const takeSnapshot = async (step: number) => {
    if (!state.snapshot) return;
    const snap = await state.snapshot(step);
    state.analysis.timeline = [...(state.analysis.timeline ?? []).filter((s) => s.step !== step), snap];
    cb.onSnapshot?.(snap);
  };
  const runEval = async (step: number) => {
    await takeSnapshot(step);
    if (!evalGraph) return null;
    const r = await evaluate(gpu, evalGraph, validation);
    cb.onEval?.(step, r);
    return r;
  };
  if (evalGraph && !o.resume) cb.onPrepare?.({ phase: 'Measuring the starting validation loss', done: 0, total: 1 });
  let firstStep = 0;
  let batchHash = FNV_OFFSET;
  if (o.resume) {
    if (!(o.resume.step >= 0 && o.resume.step <= o.steps))
      throw new Error(`The checkpoint is at step ${o.resume.step}; this run has ${o.steps} steps.`);
    trainer.restore(o.resume.step, o.resume.state);
    // The stream is in micro-batches: gradAccum of them per step done.
    for (let i = 0; i < o.resume.step * gradAccum; i++) batchHash = foldHash(batchHash, stream.next().tokens);
    if (o.resume.batchHash !== undefined && o.resume.batchHash !== hashText(batchHash)) {
      throw new Error(
        `The batches before step ${o.resume.step} are not the ones the checkpoint's run trained on (the data, its ` +
          `tokenization or the batch settings differ), so this run cannot continue it exactly.`,
      );
    }
    firstStep = o.resume.step;
  }
  const initialEval = o.resume ? null : await runEval(0);

  let stopReason: TrainRunResult['stopReason'] = 'done';
  let message: string | null = null;
  let buffersAfterStep0 = 0;
  let submitsAfterStep0 = 0;
  let steps = firstStep;
  let skippedBatches = 0;
  const t0 = performance.now();
  let pending: { wait: () => Promise<StepMetrics>; tokens: number; start: number } | null = null;
  let lastDone = t0;
  const drain = async (): Promise<boolean> => {
    if (!pending) return true;
    const m = await pending.wait();
    // Errors delivered asynchronously (browsers) arrive by the time the step's metrics do: its loss is not reported.
    gpu.checkErrors(`Training step ${m.step}`);
    const now = performance.now();
    const report: StepReport = {
      ...m,
      tokensPerSecond: pending.tokens / Math.max(1e-6, (now - lastDone) / 1000),
      elapsedMs: now - t0,
      layerGradNorms: groupNorms(m.gradNorms, layerOf, spec.layers),
    };
    lastDone = now;
    pending = null;
    steps = Math.max(steps, m.step + 1);
    cb.onStep?.(report);
    if (!Number.isFinite(m.loss) || !Number.isFinite(m.gradNorm)) {
      stopReason = 'non-finite';
      message = `Step ${m.step}: the ${Number.isFinite(m.loss) ? 'gradient norm' : 'loss'} is ${Number.isFinite(m.loss) ? m.gradNorm : m.loss}; training stopped and the adapter from the last good step is kept. ${nonFiniteAdvice(wording)}`;
      return false;
    }
    return true;
  };
  for (let step = firstStep; step < o.steps; step++) {
    if (cb.shouldStop?.()) {
      stopReason = 'stopped';
      break;
    }
    // The step's micro-batches in stream order: together, one batch of batch x gradAccum rows.
    const micro = Array.from({ length: gradAccum }, () => stream.next());
    for (const b of micro) batchHash = foldHash(batchHash, b.tokens);
    const supervised = micro.reduce((s, b) => s + b.supervised, 0);
    if (supervised === 0) {
      // 0 supervised tokens would make the mean loss 0/0: no update, but the step (and its learning rate) passes.
      trainer.skip();
      skippedBatches++;
      steps = Math.max(steps, step + 1);
      cb.onSkip?.(step);
    } else {
      const before = { buffers: gpu.counters.buffersCreated, submits: gpu.counters.submits };
      const wait = await trainer.submit(micro);
      // Dawn reports a rejected command buffer synchronously at submit: an array check, no stall.
      gpu.checkErrors(`Training step ${step}`);
      // Read the previous step's metrics while this one runs.
      const ok = await drain();
      if (step > firstStep) {
        buffersAfterStep0 += gpu.counters.buffersCreated - before.buffers;
        submitsAfterStep0 += gpu.counters.submits - before.submits;
      }
      if (!ok) break;
      pending = { wait, tokens: supervised, start: performance.now() };
    }
    if (o.evalEvery > 0 && step > 0 && step % o.evalEvery === 0) {
      if (!(await drain())) break;
      await runEval(step);
    }
    if (o.checkpointEvery && cb.onCheckpoint && (step + 1) % o.checkpointEvery === 0 && step + 1 < o.steps) {
      if (!(await drain())) break;
      const captured = await trainer.capture();
      gpu.checkErrors(`Checkpoint after step ${steps}`);
      await cb.onCheckpoint({ step: steps, state: captured, batchHash: hashText(batchHash) });
    }
  }
  if (pending) await drain();
  await gpu.sync();
  // After a non-finite step the adapter is the last good one (the GPU skipped the bad updates): evaluate it too.
  const finalEval = await runEval(steps);
  const heldOut: Record<string, EvalResult> = {};
  for (const [name, batches] of Object.entries(o.heldOut ?? {})) heldOut[name] = await evaluate(gpu, graph, batches);
  return {
    state,
    steps,
    initialEval,
    finalEval,
    stopReason,
    message,
    buffersCreatedAfterStep0: buffersAfterStep0,
    submitsPerStep: steps - firstStep > 1 ? submitsAfterStep0 / (steps - firstStep - 1) : 1,
    trainExamples: split.train.length,
    skippedBatches,
    validationExamples: split.validation.length,
    validation: split.validation,
    batchHash: hashText(batchHash),
    heldOut,
  };
}

function splitBySeed(examples: Example[], o: TrainRunOptions): PresplitExamples {
  return o.validationFraction > 0 && examples.length >= 2
    ? splitTrainValidation(examples, o.validationFraction, o.seed)
    : { train: examples, validation: [] };
}

/**
 * A split too small to mean much: fewer training examples than one batch (every step repeats them), or a
 * validation loss measured on one or two examples.
 */
export function smallSplitWarning(
  total: number,
  train: number,
  validation: number,
  batch: number,
  w: RunWording,
): string | null {
  const problems: string[] = [];
  if (train < batch)
    problems.push(
      `${train} training example${train === 1 ? '' : 's'} for batches of ${batch}, so every step repeats them`,
    );
  if (validation > 0 && validation < 3)
    problems.push(
      `a validation loss measured on only ${validation} example${validation === 1 ? '' : 's'} (${w.validation})`,
    );
  if (problems.length === 0) return null;
  return `The dataset is small for this run: ${total} examples give ${problems.join(', and ')}. Its losses say little about the method.`;
}
