/**
 * Runs an experiment's grid on one uploaded model (platform-neutral: the CLI and the studio's worker share it).
 * Every run trains on the same split; for a seed, every configuration sees the same batches in the same order
 * (the batch stream depends only on the training examples and the seed). Each run ends with its final adapter
 * measured on the whole validation and test splits, and its GPU buffers freed: the weights stay, and the Gpu's
 * pipeline cache keeps every compiled kernel for the next run.
 */
import { padBatches, type Batch, type DatasetFormat, type Example } from '../data/index';
import type { MethodState } from '../engine/methods';
import { trainRun, type StepReport, type TrainRunOptions } from '../engine/train-run';
import { CLI_WORDING, type RunWording } from '../engine/wording';
import type { Gpu } from '../gpu/gpu';
import type { ModelWeights } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import type { EvalResult } from '../train/evaluate';
import { exactMatch } from '../train/exact-match';
import { planRuns, runKey, type PlannedRun } from './plan';
import { summarize } from './summary';
import type { Experiment, ExperimentResults, ExperimentRunResult } from './types';

export interface ExperimentData {
  train: Example[];
  validation: Example[];
  test: Example[];
  format: DatasetFormat;
  /** Tokens per row: the examples are already cut to it. */
  seq: number;
}

export interface ExperimentCallbacks {
  onRunStart?(run: PlannedRun, index: number, total: number): void;
  onPrepare?(run: PlannedRun, p: { phase: string; done: number; total: number }): void;
  onStep?(run: PlannedRun, m: StepReport): void;
  onEval?(run: PlannedRun, step: number, r: EvalResult): void;
  onWarning?(run: PlannedRun, message: string): void;
  /** A run finished (or failed); `state` holds its adapters until this returns (export them here). */
  onRunDone?(result: ExperimentRunResult, state: MethodState | null): void | Promise<void>;
  shouldStop?(): boolean;
}

export interface ExperimentRunOptions {
  /** Runs already finished (a resumed experiment): they are kept and not run again. */
  done?: ExperimentRunResult[];
  wording?: RunWording;
  /** Whether test answers can be compared as text (the tokenizer decodes; the data has answers). */
  exactMatch: boolean;
  /** The reference LoRA's parameter count (budget.ts referenceParameters). */
  referenceParams: number;
  /** Whether the GPU device is gone: a run failing then stops the experiment (resumable) instead of failing the rest. */
  deviceLost?(): boolean;
}

/** The run's settings as trainRun takes them: the shared ones, the configuration's, its rate and seed. */
export function runOptions(e: Experiment, run: PlannedRun, data: ExperimentData, wording: RunWording): TrainRunOptions {
  const t = e.train;
  const m = run.config;
  return {
    ...m.options,
    method: m.method,
    rank: m.rank,
    alpha: m.alpha,
    targets: m.targets,
    seed: run.seed,
    lrRatioB: t.lrRatioB,
    steps: t.steps,
    batch: t.batch,
    gradAccum: t.gradAccum,
    seq: data.seq,
    lr: run.lr,
    warmupSteps: t.warmup,
    weightDecay: t.weightDecay,
    maxGradNorm: t.maxGradNorm,
    minLrRatio: t.minLrRatio,
    validationFraction: e.split.validation,
    evalEvery: t.evalEvery,
    packing: t.packing === 'on' || (t.packing === 'auto' && data.format === 'text'),
    recompute: t.recompute,
    wording,
  };
}

/** The held-out splits as batches of the run's shape: one example per row, as `eval` reads a file. */
export function heldOutBatches(data: ExperimentData, batch: number, padId: number): Record<string, Batch[]> {
  const shape = { batch, seq: data.seq, padId };
  return { validation: padBatches(data.validation, shape), test: padBatches(data.test, shape) };
}

export async function runExperiment(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  data: ExperimentData,
  e: Experiment,
  opts: ExperimentRunOptions,
  cb: ExperimentCallbacks = {},
): Promise<ExperimentResults | null> {
  const wording = opts.wording ?? CLI_WORDING;
  const plan = planRuns(e);
  const finished = new Map((opts.done ?? []).map((r) => [runKey(r.name, r.lr, r.seed), r]));
  const results: ExperimentRunResult[] = plan.flatMap((p) => (finished.has(p.key) ? [finished.get(p.key)!] : []));
  const padId = tokenizer.padId ?? tokenizer.eosId ?? 0;
  const heldOut = heldOutBatches(data, e.train.batch, padId);
  const splitSizes = { train: data.train.length, validation: data.validation.length, test: data.test.length };
  for (const [index, run] of plan.entries()) {
    if (finished.has(run.key)) continue;
    if (cb.shouldStop?.()) return null;
    cb.onRunStart?.(run, index, plan.length);
    const result = await runOne(gpu, weights, tokenizer, data, e, run, { ...opts, wording, heldOut }, cb);
    if (result === null) return null;
    results.push(result);
  }
  return summarize(e, results, { referenceParams: opts.referenceParams, splitSizes });
}

async function runOne(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  data: ExperimentData,
  e: Experiment,
  run: PlannedRun,
  opts: ExperimentRunOptions & { wording: RunWording; heldOut: Record<string, Batch[]> },
  cb: ExperimentCallbacks,
): Promise<ExperimentRunResult | null> {
  const options = { ...runOptions(e, run, data, opts.wording), heldOut: opts.heldOut };
  const curve: ExperimentRunResult['curve'] = [];
  const valCurve: ExperimentRunResult['valCurve'] = [];
  let supervised = 0;
  let trainMs = 0;
  const base: Omit<ExperimentRunResult, 'status'> = {
    name: run.config.name,
    method: run.config.method,
    lr: run.lr,
    seed: run.seed,
    trainableParams: 0,
    valLoss: null,
    testLoss: null,
    valTokens: 0,
    testTokens: 0,
    adapter: run.adapter,
    elapsedMs: 0,
    tokensPerSecond: 0,
    curve,
    valCurve,
    batchHash: '',
    ranks: {},
  };
  const mark = gpu.mark();
  const t0 = performance.now();
  let stopped = false;
  let state: MethodState | null = null;
  let result: ExperimentRunResult;
  try {
    // The validation split goes to trainRun only for a curve (eval_every): its end-of-run measure is heldOut's.
    const validation = e.train.evalEvery > 0 ? data.validation : [];
    const r = await trainRun(gpu, weights, tokenizer, { train: data.train, validation }, options, {
      onPrepare: (p) => cb.onPrepare?.(run, p),
      onStep: (m) => {
        curve.push({ step: m.step, loss: m.loss });
        supervised += m.supervised;
        trainMs = m.elapsedMs;
        cb.onStep?.(run, m);
      },
      onSkip: (step) => curve.push({ step, loss: null }),
      onEval: (step, ev) => {
        valCurve.push({ step, loss: ev.loss });
        cb.onEval?.(run, step, ev);
      },
      onWarning: (w) => cb.onWarning?.(run, w),
      shouldStop: () => (stopped = cb.shouldStop?.() ?? false),
    });
    if (r.stopReason === 'stopped' || stopped) return null;
    state = r.state;
    const analysis = r.state.analysis;
    const common = {
      ...base,
      trainableParams: analysis.trainableParameters,
      batchHash: r.batchHash,
      ranks: Object.fromEntries(analysis.modules.map((m) => [m.path, m.rank])),
      tokensPerSecond: trainMs > 0 ? supervised / (trainMs / 1000) : 0,
    };
    if (r.stopReason === 'non-finite') {
      result = { ...common, status: 'failed', error: r.message ?? 'the loss became non-finite' };
    } else {
      const val = r.heldOut.validation;
      const test = r.heldOut.test;
      result = {
        ...common,
        status: 'done',
        valLoss: val.loss,
        testLoss: test.loss,
        valTokens: val.tokens,
        testTokens: test.tokens,
      };
      if (opts.exactMatch && e.exactMatch > 0) {
        const em = await exactMatch(gpu, weights, tokenizer, data.test, {
          adapters: r.state.adapters,
          limit: e.exactMatch,
        });
        if (em) result.exactMatch = em.accuracy;
      }
    }
    result.elapsedMs = performance.now() - t0;
    await cb.onRunDone?.(result, state);
    return result;
  } catch (err) {
    if (opts.deviceLost?.()) throw err;
    // One configuration failing (a target the model lacks, a rank that does not fit) does not stop the others.
    result = { ...base, status: 'failed', error: (err as Error).message, elapsedMs: performance.now() - t0 };
    await cb.onRunDone?.(result, null);
    return result;
  } finally {
    // The run's activations, gradients, optimizer state and adapters: the next run allocates its own.
    await gpu.freeSince(mark);
  }
}
