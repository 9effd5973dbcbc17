/**
 * The studio's benchmark: what `npm run bench` measures, on this tab's adapter, with the peers (jax-js,
 * TensorFlow.js' WebGPU backend) loaded on demand and measured beside ours in the same run. Each finished row is
 * reported at once, so the panel fills in while the rest runs. A peer that cannot start, or fails on one shape,
 * gets its error in its own cells; only our own failures end the benchmark.
 */
import { benchMatmulShape, llmShapes, ours, peerMatmulImpls, squareShape } from '../bench/matmul';
import { peakGflops } from '../bench/matmul-check';
import { benchMethod, methodConfigs } from '../bench/methods';
import { loadJax, PEER_IDS, PEER_NAMES, releaseTf } from '../bench/peers';
import { profileTrainStep } from '../bench/profile';
import { benchDefaults, type TimingOptions } from '../bench/timing';
import {
  benchTrain,
  failedTrainResult,
  loraStepConfig,
  type TrainBenchConfig,
  type TrainBenchResult,
} from '../bench/train';
import type { LoadedModel } from '../engine/load-model';
import type { Gpu } from '../gpu/gpu';
import { ModelWeights } from '../model/weights';
import { choiceLabel } from '../kernels/matmul-plan';
import { describeTune, tuneMatmul, tuneShapes, type TuneShape } from '../kernels/matmul-tune';
import type { BenchPeer, BenchResult, BenchTune } from './protocol';
import { browserTuneCache } from './tune-cache';

export interface BenchReport {
  /** What is being measured now. */
  stage(text: string): void;
  /** The result so far (the same object, grown). */
  partial(result: BenchResult): void;
}

/**
 * The CLI's defaults (benchDefaults), trimmed on a software adapter so the whole panel takes about a minute there:
 * on a CPU driver every new shape costs each library seconds of pipeline compilation, TensorFlow.js multiplies at
 * ~0.1-0.3 GFLOP/s, and jax-js' LoRA step takes seconds. So: one square size, the SmolLM2 block's shapes over 64
 * tokens instead of 512, two shorter trials, and one timed step in the comparison with jax-js (the per-method
 * table keeps the CLI's steps).
 */
export function panelSettings(software: boolean) {
  const defaults = benchDefaults(software);
  if (!software) {
    return {
      ...defaults,
      comparedSteps: defaults.steps,
      shapes: [...[256, 512, 1024, 2048].map(squareShape), ...llmShapes(512)],
    };
  }
  const timing: TimingOptions = { targetMs: 150, trials: 2, maxReps: 20, budgetMs: 1_500 };
  return { ...defaults, timing, comparedSteps: 1, shapes: [squareShape(256), ...llmShapes(64)] };
}

export async function runStudioBench(
  gpu: Gpu,
  model: LoadedModel,
  maxPositions: number,
  report: BenchReport,
): Promise<BenchResult> {
  const started = performance.now();
  const adapter = gpu.handle.adapter;
  const software = adapter.software;
  const settings = panelSettings(software);
  const { shapes } = settings;
  const result: BenchResult = {
    adapter:
      [adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' / ') || 'WebGPU adapter',
    software,
    modelName: model.name,
    tune: null,
    peers: [],
    matmulShapes: shapes.length,
    matmul: [],
    peakGflops: null,
    loraStep: [],
    methods: [],
    kernels: null,
    profile: null,
    elapsedMs: 0,
  };
  const publish = () => {
    result.elapsedMs = performance.now() - started;
    report.partial(result);
  };

  report.stage('Timing our matmul kernels against each other (the autotune at load, run again)');
  result.tune = await retune(gpu, software);
  publish();

  report.stage('Loading the peers (jax-js, TensorFlow.js)');
  const peers = await peerMatmulImpls([...PEER_IDS]);
  result.peers = PEER_IDS.map(
    (id): BenchPeer => ({
      id,
      name: PEER_NAMES[id],
      error: peers.unavailable.find((u) => u.peer === id)?.error ?? null,
    }),
  );
  publish();

  const impls = [ours(gpu), ...peers.impls];
  for (const [i, shape] of shapes.entries()) {
    report.stage(
      `Matmul ${shape.label} (${shape.M} x ${shape.K} x ${shape.N}): ${impls.map((x) => x.name).join(', ')}; ${i + 1} of ${shapes.length}`,
    );
    const results = await benchMatmulShape(impls, shape, settings.timing);
    result.matmul.push({ label: shape.label, M: shape.M, K: shape.K, N: shape.N, results });
    result.peakGflops = peakGflops(result.matmul.map((r) => r.results[0]));
    publish();
  }
  gpu.checkErrors('Matmul benchmark');
  await releaseTf(); // TensorFlow.js has no part after the matmul section

  // Its own copy of the weights: full fine-tuning (the last method) trains them in place, so they are f32.
  report.stage('Uploading a copy of the weights for the training benchmark');
  const weights = await ModelWeights.upload(gpu, model.spec, model.source, { storage: 'f32' });
  const { batch, steps, warmupSteps } = settings;
  const seq = Math.min(settings.seq, maxPositions);

  const step = loraStepConfig('all-linear', { batch, seq, steps: settings.comparedSteps, warmupSteps });
  const what = `LoRA r${step.rank} ${step.label} step, ${batch} x ${seq}, ${warmupSteps} + ${step.steps} steps`;
  report.stage(`Training the ${what} (ours)`);
  result.loraStep.push(await freeingAfter(gpu, () => benchTrain(gpu, weights, model.tokenizer, step)));
  publish();
  report.stage(`Training the ${what} (jax-js autodiff)`);
  result.loraStep.push(await jaxLoraStep(model, step, result.peers.find((p) => p.id === 'jax')?.error ?? null));
  publish();

  if (gpu.handle.features.timestamps) {
    result.profile = { label: 'all-linear', rank: 8, batch, seq };
    report.stage(`Profiling one LoRA r8 all-linear step (${batch} x ${seq}) with timestamp queries`);
    result.kernels = await freeingAfter(gpu, () =>
      profileTrainStep(gpu, weights, { ...result.profile!, targets: ['all-linear'], steps: 1, warmupSteps: 0 }),
    );
    publish();
  }

  const configs = methodConfigs(batch, seq, steps, warmupSteps);
  for (const [i, c] of configs.entries()) {
    report.stage(
      `Training ${c.label}, ${c.batch} x ${c.seq}, ${c.warmupSteps} + ${c.steps} steps (${i + 1} of ${configs.length})`,
    );
    result.methods.push(await benchMethod(gpu, weights, model.tokenizer, c));
    publish();
  }
  gpu.checkErrors('Benchmark');
  result.elapsedMs = performance.now() - started;
  return result;
}

/** jax-js' version of the step (its module loaded only now), or its row saying why it could not run. */
async function jaxLoraStep(
  model: LoadedModel,
  c: TrainBenchConfig,
  loadError: string | null,
): Promise<TrainBenchResult> {
  if (loadError) return failedTrainResult(PEER_NAMES.jax, c, loadError);
  try {
    const [{ benchJaxLora }, jax] = await Promise.all([import('../bench/jax-lora'), loadJax()]);
    return await benchJaxLora(jax, model.spec, model.source, c);
  } catch (e) {
    return failedTrainResult(PEER_NAMES.jax, c, (e as Error).message);
  }
}

/** Runs f, then frees the buffers it created, so one section's activations are gone before the next. */
async function freeingAfter<T>(gpu: Gpu, f: () => Promise<T>): Promise<T> {
  const mark = gpu.mark();
  try {
    return await f();
  } finally {
    await gpu.freeSince(mark);
  }
}

/**
 * The autotune, measured again and cached: its choice serves every run started from now on. A software adapter,
 * which is never tuned at load, gets small products and one trial per kernel: about a minute there for the
 * 20 candidates, where the full-size tune would take many.
 */
async function retune(gpu: Gpu, software: boolean): Promise<BenchTune> {
  const shapes = tuneShapes(software ? 128 : 1024);
  const r = await tuneMatmul(gpu, {
    force: true,
    cache: browserTuneCache(),
    shapes,
    ...(software ? { trials: 1 } : {}),
  });
  const words = (xs: TuneShape[]) =>
    xs.map((x) => `${x.M}x${x.K}x${x.N}${x.transA ? ' Aᵀ' : ''}${x.transB ? ' Bᵀ' : ''}`).join(', ');
  return {
    chosen: { wide: choiceLabel(r.plan.wide), narrow: choiceLabel(r.plan.narrow) },
    timings: r.timings,
    shapes: { wide: words(shapes.wide), narrow: words(shapes.narrow) },
    tuneMs: r.tuneMs,
    summary: describeTune(r),
    ...(r.error ? { error: r.error } : {}),
  };
}
