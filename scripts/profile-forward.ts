// Profiles the demo model's forward list and its LoRA training list (forward + backward) kernel by kernel,
// then times each kernel family at the model's shapes in both of its variants (the barrier-free one CPU
// drivers get and the one real GPUs get), many dispatches per submit so that submit latency drops out.
// Build and run: node scripts/build-cli.mjs scripts/profile-forward.ts dist-cli/prof.mjs && node dist-cli/prof.mjs [batch] [seq]
import { Gpu, type CommandList } from '../src/gpu/gpu';
import { nodeDevice } from '../src/gpu/node-device';
import { loadModelDir } from '../src/engine/load-model';
import { nodeDir } from '../src/model/formats/node-source';
import { ModelWeights } from '../src/model/weights';
import { TransformerGraph } from '../src/model/transformer';
import { createLoraLayers } from '../src/adapters/lora/model';
import { matmul, type MatmulVariant } from '../src/kernels/matmul';
import {
  flashAttentionBackward,
  flashAttentionForward,
  type FlashAttentionVariant,
} from '../src/kernels/flash-attention';
import { rmsnormBackward, rmsnormForward, type NormVariant } from '../src/kernels/norm';

const B = Number(process.argv[2] ?? 4);
const T = Number(process.argv[3] ?? 64);
const gpu = new Gpu(await nodeDevice());
console.log(
  `adapter: ${gpu.handle.adapter.description || gpu.handle.adapter.vendor} (software: ${gpu.handle.adapter.software})`,
);
const m = await loadModelDir(await nodeDir('public/demo/model'));
const w = await ModelWeights.upload(gpu, m.spec, m.source);
const R = B * T;
const batch = {
  tokens: Uint32Array.from({ length: R }, (_, i) => (i * 7 + 3) % m.spec.vocabSize),
  targets: Int32Array.from({ length: R }, (_, i) => (i * 5 + 1) % m.spec.vocabSize),
  positions: Uint32Array.from({ length: R }, (_, i) => i % T),
  supervised: R,
};

/**
 * Median wall and CPU time of whole-list runs (one submit each, waited for). On a CPU driver the process's
 * CPU time (all driver threads) is steadier than wall time when other work shares the machine.
 */
async function timeList(list: CommandList, runs = 5): Promise<{ wall: number; cpu: number }> {
  list.run();
  await gpu.sync(); // warm-up: pipelines compiled, buffers resident
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    list.run();
    await gpu.sync();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const median = (x: number[]) => x.sort((a, b) => a - b)[Math.floor(runs / 2)];
  return { wall: median(wall), cpu: median(cpu) };
}

async function report(name: string, list: CommandList): Promise<void> {
  const t = await timeList(list);
  console.log(
    `\n${name} at ${B}x${T}: ${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU per run (median of 5), ${list.dispatchCount} dispatches`,
  );
  const prof = await list.profile();
  const rows = [...prof].sort((a, b) => b[1].ms - a[1].ms);
  for (const [k, v] of rows)
    console.log(
      `  ${k.padEnd(34)} ${v.ms.toFixed(1).padStart(8)} ms / ${String(v.count).padStart(3)}  = ${(v.ms / v.count).toFixed(2)} ms per call`,
    );
}

let t0 = performance.now();
const fwd = new TransformerGraph(gpu, w, { batch: B, seq: T, train: 'none' });
console.log(
  `forward graph built in ${(performance.now() - t0).toFixed(0)} ms (${gpu.counters.pipelinesCompiled} pipelines compiled so far)`,
);
fwd.setBatch(batch);
await report('forward', fwd.forwardList);
fwd.forwardList.run();
const [lossSum] = await gpu.read(fwd.lossSum);
console.log(`  mean loss ${(lossSum / R).toFixed(4)}`);

const targets =
  m.spec.family === 'gpt2'
    ? ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']
    : ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const adapters = createLoraLayers(gpu, m.spec, { rank: 8, alpha: 16, targets, rslora: false, lrRatioB: 1 }, 1);
t0 = performance.now();
const train = new TransformerGraph(gpu, w, { batch: B, seq: T, train: 'adapters', adapters });
console.log(
  `\ntrain graph built in ${(performance.now() - t0).toFixed(0)} ms (${gpu.counters.pipelinesCompiled} pipelines compiled so far)`,
);
train.setBatch(batch);
await report('train (forward + backward, LoRA r8 on all linears)', train.backwardList!);

// ------------------------------------------------------------------ kernel families, both variants

/** Per-call wall and CPU milliseconds of `record` (one or more dispatches), repeated `reps` times in one list. */
async function perCall(record: (list: CommandList) => void, reps = 10): Promise<string> {
  const list = gpu.list('kernel');
  for (let i = 0; i < reps; i++) record(list);
  const t = await timeList(list, 3);
  return `${(t.wall / reps).toFixed(2)} ms (CPU ${(t.cpu / reps).toFixed(2)})`;
}

const spec = m.spec;
const rand = (n: number, label: string) =>
  gpu.tensorFrom(
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5),
    [n],
    label,
  );
console.log(`\nkernels at ${B}x${T} (per call; CPU = all driver threads)`);

const inDim = spec.hidden;
const linears: [string, number, number, number, boolean, boolean][] = [
  // name, M, N, K, transA, transB
  ['q/o proj x·Wᵀ', R, spec.heads * spec.headDim, inDim, false, true],
  ['gate/up x·Wᵀ', R, spec.intermediate, inDim, false, true],
  ['down x·Wᵀ', R, inDim, spec.intermediate, false, true],
  ['lm head x·Wᵀ', R, spec.vocabSize, inDim, false, true],
  ['down dx = dy·W', R, spec.intermediate, inDim, false, false],
  ['LoRA x·Aᵀ (r 8)', R, 8, inDim, false, true],
  ['LoRA dB = dyᵀ·h', inDim, 8, R, true, false],
];
const mmVariants: MatmulVariant[] = ['register-vec4', 'register', 'tiled'];
for (const [name, M, N, K, transA, transB] of linears) {
  const a = rand(M * K, 'a'),
    b = rand(K * N, 'b'),
    c = gpu.tensor([M * N], 'c');
  const cols: string[] = [];
  for (const variant of mmVariants) {
    cols.push(
      `${variant} ${await perCall((l) =>
        matmul(l, {
          a: { t: a, ld: transA ? M : K },
          b: { t: b, ld: transB ? K : N },
          c: { t: c, ld: N },
          M,
          N,
          K,
          transA,
          transB,
          variant,
        }),
      )}`,
    );
  }
  console.log(`  matmul ${name.padEnd(18)} ${M}x${N}x${K}: ${cols.join(' | ')}`);
}

const hd = spec.headDim;
const qkvW = (spec.heads + 2 * spec.kvHeads) * hd;
const qkv = rand(R * qkvW, 'qkv'),
  dqkv = gpu.tensor([R * qkvW], 'dqkv');
const att = gpu.tensor([R * spec.heads * hd], 'att'),
  datt = rand(R * spec.heads * hd, 'datt');
const lse = gpu.tensor([B * spec.heads * T], 'lse'),
  delta = gpu.tensor([B * spec.heads * T], 'delta');
const views = (t: typeof qkv) => ({
  q: { t, ld: qkvW, offset: 0 },
  k: { t, ld: qkvW, offset: spec.heads * hd },
  v: { t, ld: qkvW, offset: (spec.heads + spec.kvHeads) * hd },
});
const shape = { batch: B, seq: T, heads: spec.heads, kvHeads: spec.kvHeads, headDim: hd, scale: 1 / Math.sqrt(hd) };
for (const variant of ['thread', 'workgroup'] as FlashAttentionVariant[]) {
  const out = { t: att, ld: spec.heads * hd };
  const fwd = await perCall((l) => flashAttentionForward(l, { ...views(qkv), out, lse, ...shape, variant }));
  const bwd = await perCall((l) => {
    const d = views(dqkv);
    flashAttentionBackward(l, {
      ...views(qkv),
      out,
      lse,
      dout: { t: datt, ld: spec.heads * hd },
      dq: d.q,
      dk: d.k,
      dv: d.v,
      delta,
      ...shape,
      variant,
    });
  });
  console.log(`  attention ${variant.padEnd(9)}: forward ${fwd} | backward ${bwd}`);
}

const x = rand(R * inDim, 'x'),
  dy = rand(R * inDim, 'dy'),
  y = gpu.tensor([R * inDim], 'y'),
  dx = gpu.tensor([R * inDim], 'dx');
const weight = rand(inDim, 'w'),
  rstd = gpu.tensor([R], 'rstd');
for (const variant of ['thread', 'workgroup'] as NormVariant[]) {
  const fwd = await perCall((l) =>
    rmsnormForward(l, { x: { t: x }, out: { t: y }, weight, rstd, rows: R, width: inDim, eps: 1e-5, variant }),
  );
  const bwd = await perCall((l) =>
    rmsnormBackward(l, {
      dout: { t: dy },
      x: { t: x },
      weight,
      rstd,
      dx: { t: dx },
      rows: R,
      width: inDim,
      accumulate: false,
      variant,
    }),
  );
  console.log(`  rmsnorm ${variant.padEnd(9)}: forward ${fwd} | backward ${bwd}`);
}
gpu.checkErrors('profile');
process.exit(0);
