/**
 * `npm run bench`: matmul GFLOP/s and LoRA training tokens/s, ours side by side with jax-js and
 * TensorFlow.js on the same Dawn adapter in the same process. A readable report goes to stdout
 * (JSON lines with --json); progress goes to stderr. docs/BENCHMARKS.md describes the method and results.
 */
import { cpus, loadavg } from 'node:os';
import { num, ratio, table } from '../bench/format';
import {
  benchMatmulShape,
  llmShapes,
  type BStorage,
  ours,
  peerMatmulImpls,
  squareShape,
  type MatmulImpl,
  type MatmulResult,
  type MatmulShape,
} from '../bench/matmul';
import { isWrong, MAX_REL_ERROR, peakGflops } from '../bench/matmul-check';
import { exposeNavigatorGpu, packageVersion } from '../bench/node-env';
import { loadJax, PEER_IDS, type PeerId } from '../bench/peers';
import { profileTrainStep } from '../bench/profile';
import { benchDefaults, type TimingOptions } from '../bench/timing';
import { measureLoraMemory, MODEL_SHAPES, QLORA_GOALS_GIB, QLORA_SHAPES, type MemoryReport } from '../bench/memory';
import { modelFlopsUtilization as mfu } from '../bench/flops';
import { benchMethod, methodConfigs, type MemoryCategory, type MethodBenchResult } from '../bench/methods';
import { benchTrain, loraStepConfig, type TrainBenchResult } from '../bench/train';
import { loadModelDir } from '../engine/load-model';
import { Gpu } from '../gpu/gpu';
import { nodeDevice, nodeGpuInstance } from '../gpu/node-device';
import { nodeDir } from '../model/formats/node-source';
import { ModelWeights, type TensorSource } from '../model/weights';
import type { ModelSpec } from '../model/config';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import { generatedModel } from '../bench/generated-model';
import { describeTune, tuneMatmul, type TuneResult } from '../kernels/matmul-tune';
import { choiceLabel } from '../kernels/matmul-plan';
import { helpText, parseOptions, type OptionSpec } from './args';
import { nodeTuneCache } from './tune-cache';

const SECTIONS = ['matmul', 'train', 'jax-lora', 'methods', 'memory', 'profile'] as const;
/** The methods the methods section runs (one configuration each, src/bench/methods.ts). */
const BENCH_METHODS = [...new Set(methodConfigs(1, 1, 1, 0).map((c) => c.options.method))];

const OPTS: Record<string, OptionSpec> = {
  json: { kind: 'flag', help: 'print JSON lines instead of tables' },
  large: { kind: 'flag', help: 'add 4096³ to the square matmul sizes' },
  sizes: {
    kind: 'list',
    help: 'square matmul sizes, comma-separated (default 256,512,1024 on a software adapter, up to 2048 otherwise)',
  },
  sections: {
    kind: 'list',
    help: `what to run: ${SECTIONS.join(', ')} (methods: every method's step, MFU and memory; memory: a LoRA run's GPU memory on SmolLM2-135M and Qwen2.5-0.5B shapes, and QLoRA's on ${Object.keys(QLORA_SHAPES).join(', ')}, allocated, not run; profile: per-kernel time of one training step)`,
    default: ['matmul', 'train', 'jax-lora', 'methods'],
  },
  peers: { kind: 'list', help: 'peer libraries to measure beside ours: jax, tf, or none', default: ['jax', 'tf'] },
  model: { kind: 'string', help: 'model folder for the training bench', default: 'public/demo/model' },
  batch: { kind: 'int', help: 'training batch (default 4 on a software adapter, 16 otherwise)' },
  'seq-len': { kind: 'int', help: 'training sequence length (default 64 on a software adapter, 256 otherwise)' },
  shapes: {
    kind: 'list',
    help: `methods section: also models of these shapes with weights generated in memory (${Object.keys(MODEL_SHAPES).join(', ')}; bf16 like their checkpoints), or none; default SmolLM2-135M on a hardware adapter, none on a software one (a 135M step takes minutes there)`,
  },
  methods: { kind: 'list', help: `methods section: which methods to run (${BENCH_METHODS.join(', ')}; default all)` },
  'memory-models': {
    kind: 'list',
    help: `memory section: only these model shapes (${[...Object.keys(MODEL_SHAPES), ...Object.keys(QLORA_SHAPES)].join(', ')}; default all). A software adapter keeps every buffer in host memory and does not give it back: one 3B model per process, and one --memory-weights, fits a 24 GiB machine`,
  },
  'memory-weights': {
    kind: 'list',
    help: 'memory section: only these base weight storages (f32, bf16, int8, nf4; default all)',
  },
  retune: {
    kind: 'flag',
    help: 'measure the matmul kernels again (the autotune at load), even on a software adapter, instead of using the cached choice',
  },
  steps: {
    kind: 'int',
    help: 'timed training steps, after 1 warm-up step on a software adapter (2 otherwise); default 2 on a software adapter, 20 otherwise',
  },
};

interface BenchOptions {
  json: boolean;
  large: boolean;
  sizes: number[];
  sections: string[];
  peers: PeerId[];
  model: string;
  batch?: number;
  seq?: number;
  steps?: number;
  shapes?: string[];
  methods?: string[];
  memoryModels?: string[];
  memoryWeights?: string[];
  retune: boolean;
}

const log = (msg: string) => process.stderr.write(msg + '\n');
const emit = (line: string) => process.stdout.write(line + '\n');

export async function runBench(args: string[]): Promise<void> {
  if (args.includes('--help')) {
    emit(
      helpText(
        'bench',
        'Matmul and LoRA training throughput, ours beside jax-js and TensorFlow.js on the same adapter.',
        OPTS,
      ),
    );
    return;
  }
  const o = parseOptions('bench', args, OPTS);
  const sections = o.sections as string[];
  for (const s of sections) {
    if (!(SECTIONS as readonly string[]).includes(s))
      throw new Error(`bench: unknown section "${s}" (choose from ${SECTIONS.join(', ')})`);
  }
  const peers = (o.peers as string[]).filter((p) => p !== 'none');
  for (const p of peers) {
    if (!(PEER_IDS as readonly string[]).includes(p))
      throw new Error(`bench: unknown peer "${p}" (choose from ${PEER_IDS.join(', ')}, none)`);
  }
  const methods = o.methods as string[] | undefined;
  for (const m of methods ?? []) {
    if (!(BENCH_METHODS as readonly string[]).includes(m))
      throw new Error(`bench: unknown method "${m}" (choose from ${BENCH_METHODS.join(', ')})`);
  }
  const memoryModels = o['memory-models'] as string[] | undefined;
  for (const m of memoryModels ?? []) {
    if (!(m in MODEL_SHAPES) && !(m in QLORA_SHAPES))
      throw new Error(
        `bench: unknown --memory-models shape "${m}" (choose from ${[...Object.keys(MODEL_SHAPES), ...Object.keys(QLORA_SHAPES)].join(', ')})`,
      );
  }
  const memoryWeights = o['memory-weights'] as string[] | undefined;
  for (const w of memoryWeights ?? []) {
    if (!['f32', 'bf16', 'int8', 'nf4'].includes(w))
      throw new Error(`bench: unknown --memory-weights storage "${w}" (choose from f32, bf16, int8, nf4)`);
  }
  const sizes = ((o.sizes as string[] | undefined) ?? []).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`bench: --sizes must be positive integers (got "${s}")`);
    return n;
  });
  // Peers print notices with console.log; stdout belongs to the results.
  const consoleLog = console.log;
  console.log = (...xs: unknown[]) => console.error(...xs);
  try {
    await bench({
      json: o.json === true,
      large: o.large === true,
      sizes,
      sections,
      peers: peers as PeerId[],
      memoryModels,
      memoryWeights,
      model: o.model as string,
      batch: o.batch as number | undefined,
      seq: o['seq-len'] as number | undefined,
      steps: o.steps as number | undefined,
      shapes: (o.shapes as string[] | undefined)?.filter((s) => s !== 'none'),
      methods,
      retune: o.retune === true,
    });
  } finally {
    console.log = consoleLog;
  }
}

async function bench(o: BenchOptions): Promise<void> {
  const started = performance.now();
  const record = (kind: string, obj: object) => o.json && emit(JSON.stringify({ kind, ...obj }));
  const handle = await nodeDevice();
  const gpu = new Gpu(handle);
  // The peers find WebGPU through navigator.gpu: the same Dawn instance, so the same adapter and driver.
  exposeNavigatorGpu(await nodeGpuInstance());
  const software = handle.adapter.software;
  const adapterName = [handle.adapter.vendor, handle.adapter.architecture, handle.adapter.description]
    .filter(Boolean)
    .join(' / ');
  const env = {
    date: new Date().toISOString(),
    adapter: adapterName,
    software,
    cpus: cpus().length,
    // Other processes compete for the CPU a software renderer runs on.
    loadAverage1m: round2(loadavg()[0]),
    node: process.version,
    dawn: await packageVersion('webgpu'),
    jax: await packageVersion('@jax-js/jax'),
    tfjs: await packageVersion('@tensorflow/tfjs-backend-webgpu'),
  };
  record('env', env);
  if (!o.json) {
    emit(`LoRA Studio bench, ${env.date}`);
    emit(
      `adapter: ${adapterName}${software ? ' (software renderer: absolute numbers say nothing about real GPUs)' : ''}`,
    );
    emit(`host: ${env.cpus} CPU cores (load average ${env.loadAverage1m} at start), Node ${env.node}`);
    emit(`versions: webgpu (Dawn) ${env.dawn}, @jax-js/jax ${env.jax}, @tensorflow/tfjs-backend-webgpu ${env.tfjs}`);
  }

  // The same autotune a training run does at load: every "ours" below runs the kernels it picked.
  const tune = await tuneMatmul(gpu, { cache: nodeTuneCache(), force: o.retune });
  record('tune', tune);
  if (!o.json) emit(tuneReport(tune));

  const peak = o.sections.includes('matmul') ? await matmulSection(gpu, software, o, record) : null;
  if (['train', 'jax-lora', 'profile'].some((s) => o.sections.includes(s)))
    await trainSection(gpu, software, o, record);
  if (o.sections.includes('methods')) await methodsSection(gpu, software, o, peak, record);
  if (o.sections.includes('memory')) await memorySection(gpu, o, record);

  gpu.checkErrors('bench');
  const seconds = Math.round((performance.now() - started) / 1000);
  record('done', { seconds, loadAverage1m: round2(loadavg()[0]) });
  if (!o.json) emit(`\nbench took ${seconds} s (load average ${round2(loadavg()[0])} at the end)`);
}

type Recorder = (kind: string, obj: object) => void;

/** Returns our best matmul GFLOP/s of the run: the peak MFU is measured against. */
async function matmulSection(gpu: Gpu, software: boolean, o: BenchOptions, record: Recorder): Promise<number | null> {
  const peers = await peerMatmulImpls(o.peers);
  for (const { peer, name, error } of peers.unavailable) {
    log(`bench: ${name} is unavailable: ${error}`);
    record('peer-unavailable', { peer, error });
  }
  const impls: MatmulImpl[] = [ours(gpu), ...peers.impls];
  const squares = o.sizes.length ? [...o.sizes] : software ? [256, 512, 1024] : [256, 512, 1024, 2048];
  if (o.large && !squares.includes(4096)) squares.push(4096);
  const shapes: MatmulShape[] = [...squares.map(squareShape), ...llmShapes()];
  const { timing } = benchDefaults(software);
  const results: MatmulResult[] = [];
  for (const s of shapes) {
    log(`matmul ${s.label} (${s.M}x${s.K}x${s.N}): ${impls.map((i) => i.name).join(', ')}...`);
    for (const r of await benchMatmulShape(impls, s, timing)) {
      log(
        r.error
          ? `  ${r.impl} failed: ${r.error}`
          : `  ${r.impl}: ${num(r.gflops)} GFLOP/s (${num(r.msPerMatmul)} ms per product, ${r.reps} per trial, median of ${r.trials})`,
      );
      results.push(r);
      record('matmul', r);
    }
  }
  if (!o.json)
    emit(
      '\n' +
        matmulTable(
          shapes,
          impls.map((i) => i.name),
          results,
        ),
    );
  await storedWeightSection(gpu, software, timing, record, o.json);
  return peakGflops(results.filter((r) => r.impl === 'ours'));
}

/**
 * x·Wᵀ with W stored as a frozen weight: bf16 (what checkpoints ship), NF4 and int8 (dequantized inside the
 * B-operand read), same shapes, same adapter, same run; the ratios are the quantized storage's speed against bf16.
 */
async function storedWeightSection(
  gpu: Gpu,
  software: boolean,
  timing: TimingOptions,
  record: Recorder,
  json: boolean,
): Promise<void> {
  const storages: BStorage[] = ['bf16', 'nf4', 'int8'];
  const impls = storages.map((st) => ours(gpu, st));
  // SmolLM2-135M's projections, and Llama-3.2-1B's (d 2048, MLP 8192) on a hardware adapter.
  const T = software ? 128 : 512;
  const shapes: MatmulShape[] = llmShapes(T).filter((x) => x.label.startsWith('x·Wᵀ'));
  if (!software)
    shapes.push(
      { label: 'Llama-3.2-1B q_proj', M: T, K: 2048, N: 2048, transB: true },
      { label: 'Llama-3.2-1B up_proj', M: T, K: 2048, N: 8192, transB: true },
    );
  const results: MatmulResult[] = [];
  for (const s of shapes) {
    log(`matmul, stored weights ${s.label} (${s.M}x${s.K}x${s.N}): ${storages.join(', ')}...`);
    for (const r of await benchMatmulShape(impls, s, timing)) {
      log(r.error ? `  ${r.impl} failed: ${r.error}` : `  ${r.impl}: ${num(r.gflops)} GFLOP/s`);
      results.push(r);
      record('matmul-stored', r);
    }
  }
  if (json) return;
  const header = ['x·Wᵀ, W stored as (GFLOP/s)', 'M x K x N', ...storages, 'nf4 / bf16', 'int8 / bf16'];
  const rows = shapes.map((s) => {
    const of = (st: BStorage) => results.find((r) => r.shape === s.label && r.impl === ours(gpu, st).name);
    const cell = (r: MatmulResult | undefined) =>
      !r || r.error ? 'failed' : isWrong(r) ? `${num(r.gflops)} WRONG` : num(r.gflops);
    const bf16 = of('bf16')?.gflops ?? NaN;
    return [
      s.label,
      `${s.M} x ${s.K} x ${s.N}`,
      ...storages.map((st) => cell(of(st))),
      ratio(of('nf4')?.gflops ?? NaN, bf16),
      ratio(of('int8')?.gflops ?? NaN, bf16),
    ];
  });
  emit(
    '\n' +
      table(
        header,
        rows,
        header.map((_, i) => i > 1),
      ) +
      '\nThe same kernel the training graph picked; the quantized weights are dequantized inside its B-operand reads (the goal: nf4 at least 0.8x bf16).',
  );
}

/** The methods on the --model folder, then on each generated model shape (--shapes). */
async function methodsSection(
  gpu: Gpu,
  software: boolean,
  o: BenchOptions,
  peak: number | null,
  record: Recorder,
): Promise<void> {
  const folder = await loadModelDir(await nodeDir(o.model));
  const models: { name: string; spec: ModelSpec; source: TensorSource; tokenizer: TextTokenizer }[] = [folder];
  for (const shape of o.shapes ?? (software ? [] : ['SmolLM2-135M'])) models.push(generatedModel(shape));
  const d = benchDefaults(software);
  for (const model of models) {
    log(`methods: ${model.name}: uploading weights...`);
    const mark = gpu.mark();
    // Adapters train over the weights as the checkpoint stores them; full fine-tuning (run last) trains its own f32 copy.
    const weights = await ModelWeights.upload(gpu, model.spec, model.source);
    const configs = methodConfigs(o.batch ?? d.batch, o.seq ?? d.seq, o.steps ?? d.steps, d.warmupSteps).filter(
      (c) => !o.methods || o.methods.includes(c.options.method),
    );
    const results: MethodBenchResult[] = [];
    for (const c of configs) {
      log(
        `methods: ${model.name}, ${c.label}, batch ${c.batch} x seq ${c.seq}, ${c.warmupSteps} + ${c.steps} steps...`,
      );
      const full = c.options.method === 'full';
      const runWeights = full ? await ModelWeights.upload(gpu, model.spec, model.source, { storage: 'f32' }) : weights;
      const r = await benchMethod(gpu, runWeights, model.tokenizer, c);
      if (full && runWeights !== weights) await gpu.freeTensors(runWeights.allTensors());
      log(
        r.error
          ? `  failed: ${r.error}`
          : `  ${num(r.tokensPerSecond)} tokens/s, ${num(r.msPerStep)} ms/step, preparation ${num(r.preparationMs)} ms`,
      );
      results.push(r);
      record('method', { model: model.name, ...r, mfu: mfu(r, peak) });
    }
    await gpu.freeSince(mark);
    if (!o.json) emit('\n' + methodsTable(`${model.name}, weights ${weights.storageSummary()}`, results, peak));
  }
}

async function memorySection(gpu: Gpu, o: BenchOptions, record: Recorder): Promise<void> {
  const reports: MemoryReport[] = [];
  // bf16 (as both checkpoints ship) and f32 weights without recomputation, then bf16 with the MLP recomputed and
  // with whole blocks recomputed.
  const variants = [
    ['bf16', 'none'],
    ['f32', 'none'],
    ['bf16', 'mlp'],
    ['bf16', 'block'],
  ] as const;
  const chosen = (model: string) => !o.memoryModels || o.memoryModels.includes(model);
  const stored = (weights: string) => !o.memoryWeights || o.memoryWeights.includes(weights);
  for (const model of Object.keys(MODEL_SHAPES).filter(chosen)) {
    for (const [weights, recompute] of variants.filter(([w]) => stored(w))) {
      for (const seq of [256, 512]) {
        log(
          `memory: LoRA r8 q,v on ${model} shapes, ${weights} weights, recompute ${recompute}, batch 1 x seq ${seq} (allocated, not run)...`,
        );
        const r = await measureLoraMemory(gpu, model, { batch: 1, seq, rank: 8, targets: [], weights, recompute });
        if (r.error) log(`  failed: ${r.error}`);
        reports.push(r);
        record('memory', r);
      }
    }
  }
  const qlora = await qloraMemory(gpu, record, Object.keys(QLORA_SHAPES).filter(chosen), stored);
  if (o.json) return;
  const gib = (b: number) => (b / 2 ** 30).toFixed(3);
  const categories: MemoryCategory[] = ['weights', 'adapters', 'gradients', 'optimizer', 'activations', 'scratch'];
  if (reports.length > 0) {
    const header = [
      'GPU memory of a LoRA run (GiB)',
      'base weights',
      'recompute',
      'batch x seq',
      ...categories,
      'total',
    ];
    const rows = reports.map((r) => [
      `${r.model}, LoRA r${r.rank} ${r.targets || 'q,v'}`,
      r.weights,
      r.recompute,
      `${r.batch} x ${r.seq}`,
      ...(r.error ? [`failed: ${r.error}`] : [...categories.map((c) => gib(r.bytes[c])), gib(r.total)]),
    ]);
    emit(
      '\n' +
        table(
          header,
          rows,
          header.map((_, i) => i > 3),
        ) +
        '\nbf16: the base matrices kept as the checkpoints store them (the default); f32: widened. recompute mlp: one set of MLP buffers, rebuilt per block in the backward pass; block: one residual per block and one set of every other block buffer, each block re-run in the backward pass. Activations = everything the training graph keeps for the backward pass, logits included.',
    );
  }
  if (qlora.length > 0) emit('\n' + qloraTable(qlora, categories));
}

function methodsTable(modelName: string, results: MethodBenchResult[], peak: number | null): string {
  const lora = results.find((r) => r.method === 'lora' && !r.error);
  const mib = (b: number) => (b / 2 ** 20).toFixed(2);
  const categories: MemoryCategory[] = ['weights', 'adapters', 'gradients', 'optimizer', 'activations', 'scratch'];
  const header = [
    `Training per method (${modelName})`,
    'batch x seq',
    'trainable',
    'prep ms',
    'ms/step',
    'tokens/s',
    'vs LoRA step',
    'MFU',
    ...categories.map((c) => `${c} MiB`),
    'peak MiB',
  ];
  const rows = results.map((r) => {
    const head = [r.label, `${r.batch} x ${r.seq}`];
    if (r.error) return [...head, `failed: ${r.error}`];
    const m = mfu(r, peak);
    return [
      ...head,
      r.trainableParams.toLocaleString('en'),
      num(r.preparationMs),
      num(r.msPerStep),
      num(r.tokensPerSecond),
      lora ? `${(r.msPerStep / lora.msPerStep).toFixed(2)}x` : '-',
      m === null ? '-' : `${(m * 100).toFixed(1)}%`,
      ...categories.map((c) => mib(r.memory[c])),
      mib(r.peakBytes),
    ];
  });
  const notes = [
    `MFU = tokens/s x model FLOPs per token / our best matmul GFLOP/s in this run (${peak ? num(peak) : 'not measured: run the matmul section'}).`,
    'Model FLOPs per token: 2 x linear params (+ LM head) + attention, x3 for full fine-tuning, x2 for adapters (no weight gradients).',
    "prep ms: the method's preparation phase (GoRA's gradient accumulation and init, GeLoRA's hidden states and TwoNN).",
    "Memory: the run's own buffers after its last step by category (weights are the shared base model); peak includes preparation.",
  ];
  return (
    table(
      header,
      rows,
      header.map((_, i) => i > 1),
    ) +
    '\n' +
    notes.join('\n')
  );
}

async function trainSection(gpu: Gpu, software: boolean, o: BenchOptions, record: Recorder): Promise<void> {
  const model = await loadModelDir(await nodeDir(o.model));
  const weights = await ModelWeights.upload(gpu, model.spec, model.source);
  log(`model: ${model.name} (${model.spec.layers} layers, hidden ${model.spec.hidden}, vocab ${model.spec.vocabSize})`);
  const defaults = benchDefaults(software);
  const configs = ['q_proj,v_proj', 'all-linear'].map((targets) =>
    loraStepConfig(targets, {
      batch: o.batch ?? defaults.batch,
      seq: o.seq ?? defaults.seq,
      steps: o.steps ?? defaults.steps,
      warmupSteps: defaults.warmupSteps,
    }),
  );
  const results: TrainBenchResult[] = [];
  const report = (r: TrainBenchResult) => {
    log(r.error ? `  failed: ${r.error}` : `  ${num(r.tokensPerSecond)} tokens/s, ${num(r.msPerStep)} ms/step`);
    results.push(r);
    record('train', r);
  };
  for (const c of configs) {
    const what = `LoRA r${c.rank} ${c.label}, batch ${c.batch} x seq ${c.seq}, ${c.warmupSteps} + ${c.steps} steps`;
    if (o.sections.includes('train')) {
      log(`train ${what} (ours)...`);
      report(await benchTrain(gpu, weights, model.tokenizer, c));
    }
    if (o.sections.includes('jax-lora') && o.peers.includes('jax')) {
      log(`train ${what} (jax-js autodiff)...`);
      try {
        const { benchJaxLora } = await import('../bench/jax-lora');
        report(await benchJaxLora(await loadJax(), model.spec, model.source, c));
      } catch (e) {
        log(`bench: jax-js is unavailable: ${(e as Error).message}`);
        record('peer-unavailable', { peer: 'jax', error: (e as Error).message });
      }
    }
  }
  if (!o.json && results.length) emit('\n' + trainTable(model.name, results));

  if (o.sections.includes('profile')) {
    const c = configs[configs.length - 1];
    log(`profile: one LoRA r${c.rank} ${c.label} step, batch ${c.batch} x seq ${c.seq}, dispatch by dispatch...`);
    const times = await profileTrainStep(gpu, weights, c);
    for (const t of times) record('profile', { config: c.label, batch: c.batch, seq: c.seq, ...t });
    if (!o.json) {
      const how =
        times[0]?.source === 'timestamps'
          ? 'GPU time from timestamp queries, one submit'
          : 'each dispatch run alone, wall clock';
      emit(
        `\nOne training step (forward + loss + backward, LoRA r${c.rank} ${c.label}, ${c.batch} x ${c.seq}), ${how}:`,
      );
      emit(
        table(
          ['kernel', 'dispatches', 'ms', 'share'],
          times.map((t) => [t.kernel, String(t.dispatches), num(t.ms), `${(t.share * 100).toFixed(1)}%`]),
        ),
      );
    }
  }
}

function matmulTable(shapes: MatmulShape[], implNames: string[], results: MatmulResult[]): string {
  const peers = implNames.slice(1);
  const header = ['matmul (GFLOP/s, median)', 'M x K x N', ...implNames, ...peers.map((p) => `ours / ${p}`)];
  const rows = shapes.map((s) => {
    const of = (name: string) => results.find((r) => r.shape === s.label && r.impl === name);
    const cell = (r: MatmulResult | undefined) =>
      !r || r.error ? 'failed' : isWrong(r) ? `${num(r.gflops)} WRONG` : num(r.gflops);
    const mine = of('ours');
    return [
      s.label,
      `${s.M} x ${s.K} x ${s.N}`,
      ...implNames.map((n) => cell(of(n))),
      ...peers.map((p) => ratio(mine?.gflops ?? NaN, of(p)?.gflops ?? NaN)),
    ];
  });
  const notes = [
    'Each trial: N products (N sized to fill the trial), then the last one read back; ours records all N in one',
    `command list and one submit. WRONG: a spot-checked entry of the product is off by more than ${MAX_REL_ERROR.toExponential()} (relative).`,
  ];
  return (
    table(
      header,
      rows,
      header.map((_, i) => i > 1),
    ) +
    '\n' +
    notes.join('\n')
  );
}

function trainTable(modelName: string, results: TrainBenchResult[]): string {
  const header = [
    `LoRA training (${modelName})`,
    'impl',
    'rank',
    'batch x seq',
    'trainable',
    'setup ms',
    'ms/step',
    'tokens/s',
    'submits/step',
    'new buffers after step 0',
    'step-0 loss',
    'last loss',
  ];
  const rows = results.map((r) => {
    const head = [r.label, r.impl, String(r.rank), `${r.batch} x ${r.seq}`];
    if (r.error) return [...head, `failed: ${r.error}`];
    return [
      ...head,
      r.trainableParams.toLocaleString('en'),
      num(r.setupMs),
      num(r.msPerStep),
      num(r.tokensPerSecond),
      r.submitsPerStep === null ? '-' : num(r.submitsPerStep),
      r.buffersCreatedAfterStep0 === null ? '-' : String(r.buffersCreatedAfterStep0),
      num(r.firstLoss, 5),
      num(r.finalLoss, 5),
    ];
  });
  const notes = [
    'tokens/s counts every position of the batch x seq tokens a step processes; ms/step is the median steady-state step.',
    "step-0 loss is the base model's (LoRA B starts at 0) on the same batch: equal values mean the same model and data.",
  ];
  return (
    table(
      header,
      rows,
      header.map((_, i) => i > 2),
    ) +
    '\n' +
    notes.join('\n')
  );
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** The autotune's choice, and when it measured, ms per product of every kernel per shape class (summed over its shapes). */
function tuneReport(r: TuneResult): string {
  const lines = [describeTune(r)];
  const measured = [...new Set([...Object.keys(r.timings.wide), ...Object.keys(r.timings.narrow)])];
  if (measured.length) {
    const cell = (ms: number | null | undefined) => (ms === null ? 'WRONG' : ms === undefined ? '-' : num(ms));
    const chosen = (label: string, cls: 'wide' | 'narrow') => (choiceLabel(r.plan[cls]) === label ? ' *' : '');
    lines.push(
      table(
        ['kernel (ms per class)', 'wide', 'narrow'],
        measured.map((k) => [
          k,
          cell(r.timings.wide[k]) + chosen(k, 'wide'),
          cell(r.timings.narrow[k]) + chosen(k, 'narrow'),
        ]),
      ),
    );
    lines.push(
      '* chosen. wide: x·Wᵀ and dY·W at the tune size; narrow: x·Aᵀ (N = 16) and dA = dHᵀ·x (M = 16, K = all tokens).',
    );
  }
  return lines.join('\n') + '\n';
}

/** LoRA r16 on every linear layer of the 1-3B models, batch 1 x 512: bf16 against NF4 and int8 bases. */
async function qloraMemory(
  gpu: Gpu,
  record: Recorder,
  models: string[],
  stored: (weights: string) => boolean,
): Promise<MemoryReport[]> {
  const variants = [
    ['bf16', 'none'],
    ['bf16', 'block'],
    ['int8', 'block'],
    ['nf4', 'mlp'],
    ['nf4', 'block'],
  ] as const;
  const reports: MemoryReport[] = [];
  for (const model of models) {
    for (const [weights, recompute] of variants.filter(([w]) => stored(w))) {
      log(
        `memory: LoRA r16 all-linear on ${model} shapes, ${weights} weights, recompute ${recompute}, batch 1 x seq 512 (allocated, not run)...`,
      );
      const r = await measureLoraMemory(gpu, model, {
        batch: 1,
        seq: 512,
        rank: 16,
        targets: ['all-linear'],
        weights,
        recompute,
      });
      if (r.error) log(`  failed: ${r.error}`);
      reports.push(r);
      record('memory', r);
    }
  }
  return reports;
}

function qloraTable(reports: MemoryReport[], categories: MemoryCategory[]): string {
  const gib = (b: number) => (b / 2 ** 30).toFixed(3);
  const header = [
    'QLoRA: LoRA r16 all-linear, 1 x 512 (GiB)',
    'base weights',
    'recompute',
    ...categories,
    'total',
    'goal',
  ];
  const rows = reports.map((r) => {
    const goal = QLORA_GOALS_GIB[r.model];
    const judged = goal !== undefined && r.weights === 'nf4' && r.recompute === 'block';
    return [
      r.model,
      r.weights,
      r.recompute,
      ...(r.error ? [`failed: ${r.error}`] : [...categories.map((c) => gib(r.bytes[c])), gib(r.total)]),
      judged ? `≤ ${goal.toFixed(1)}: ${r.total / 2 ** 30 <= goal ? 'met' : 'MISSED'}` : '',
    ];
  });
  return (
    table(
      header,
      rows,
      header.map((_, i) => i > 2 && i < header.length - 1),
    ) +
    "\nnf4 / int8: the blocks' linear weights quantized (bitsandbytes NF4 with double quantization, or int8 rows); the embedding stays bf16 as the checkpoints store it. Allocated exactly as a run allocates them, not run."
  );
}
