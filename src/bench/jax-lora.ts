/**
 * The peers' side of the training comparison: the same LoRA step as ours, written the way a jax-js user
 * would write it. Same Llama model and weights, same batches (the same synthetic examples through the
 * same BatchStream), same targets, rank, scale, AdamW with global-norm clipping; the loss and gradients
 * come from jax-js autodiff (valueAndGrad) of a jit-compiled forward. Step 0's loss must match ours
 * (B = 0 at initialization, so both are the base model's loss on the same batch): the table shows both.
 */
import { BatchStream, type Batch } from '../data/index';
import { resolveTargets } from '../engine/methods';
import type { ModelSpec } from '../model/config';
import { selectTargets } from '../model/layout';
import { ropeInverseFrequencies } from '../model/rope-freqs';
import type { TensorSource } from '../model/weights';
import { Rng } from '../util/random';
import type { Array as JArray } from '@jax-js/jax';
import { PEER_NAMES, type Jax } from './peers';
import { median, timeMs } from './timing';
import {
  failedTrainResult,
  syntheticExamples,
  trainResultHead,
  type TrainBenchConfig,
  type TrainBenchResult,
} from './train';

type LayerWeights = {
  ln1: JArray;
  wq: JArray;
  wk: JArray;
  wv: JArray;
  wo: JArray;
  ln2: JArray;
  wg: JArray;
  wu: JArray;
  wd: JArray;
};
type Frozen = { embed: JArray; norm: JArray; layers: LayerWeights[] };
type Lora = { A: JArray; B: JArray };
/** Keyed `${layer}.${kind}`, e.g. "0.q_proj". */
type LoraParams = { [module: string]: Lora };
type Inputs = {
  tokens: JArray;
  targets: JArray;
  mask: JArray;
  cos: JArray;
  sin: JArray;
  /** [headDim, headDim] rotate_half as a matrix. */
  rotate: JArray;
  /** [T, T] additive mask: 0 on and below the diagonal, -1e9 above. */
  causal: JArray;
};

const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8, lr: 1e-3, maxGradNorm: 1 };

export async function benchJaxLora(
  jax: Jax,
  spec: ModelSpec,
  source: TensorSource,
  c: TrainBenchConfig,
): Promise<TrainBenchResult> {
  try {
    return { ...trainResultHead(PEER_NAMES.jax, c), ...(await run(jax, spec, source, c)) };
  } catch (e) {
    return failedTrainResult(PEER_NAMES.jax, c, (e as Error).message);
  }
}

async function run(jax: Jax, spec: ModelSpec, source: TensorSource, c: TrainBenchConfig) {
  if (spec.family !== 'llama' || spec.qkvBias || spec.mlpBias || spec.qkNorm || !spec.tieWordEmbeddings) {
    throw new Error('the jax-js LoRA step covers plain Llama models with tied embeddings (no biases, no q/k norm)');
  }
  const np = jax.numpy;
  const { nn, tree } = jax;
  const t0 = performance.now();

  // ---- weights and adapter, on the jax-js WebGPU device
  const load = async (name: string, shape: number[]) =>
    np.array(new Float32Array(await source.load(name))).reshape(shape);
  const { hidden: d, heads, kvHeads, headDim, intermediate: ff, vocabSize: V } = spec;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < spec.layers; l++) {
    const p = `model.layers.${l}.`;
    layers.push({
      ln1: await load(`${p}input_layernorm.weight`, [d]),
      wq: await load(`${p}self_attn.q_proj.weight`, [heads * headDim, d]),
      wk: await load(`${p}self_attn.k_proj.weight`, [kvHeads * headDim, d]),
      wv: await load(`${p}self_attn.v_proj.weight`, [kvHeads * headDim, d]),
      wo: await load(`${p}self_attn.o_proj.weight`, [d, heads * headDim]),
      ln2: await load(`${p}post_attention_layernorm.weight`, [d]),
      wg: await load(`${p}mlp.gate_proj.weight`, [ff, d]),
      wu: await load(`${p}mlp.up_proj.weight`, [ff, d]),
      wd: await load(`${p}mlp.down_proj.weight`, [d, ff]),
    });
  }
  const frozen: Frozen = {
    embed: await load('model.embed_tokens.weight', [V, d]),
    norm: await load('model.norm.weight', [d]),
    layers,
  };

  // LoRA as PEFT initializes it: A Kaiming-uniform (bound 1/sqrt(in)), B = 0; scale alpha / r.
  const rng = new Rng(0);
  const params: LoraParams = {};
  let trainableParams = 0;
  for (const m of selectTargets(spec, resolveTargets(spec, c.targets))) {
    const bound = 1 / Math.sqrt(m.in);
    params[`${m.layer}.${m.kind}`] = {
      A: np.array(new Float32Array(rng.uniforms(c.rank * m.in, -bound, bound))).reshape([c.rank, m.in]),
      B: np.zeros([m.out, c.rank]),
    };
    trainableParams += c.rank * (m.in + m.out);
  }
  const scale = 1; // benchTrain uses alpha = rank
  let m1 = tree.map((x: JArray) => np.zerosLike(x.ref), params) as LoraParams;
  let m2 = tree.map((x: JArray) => np.zerosLike(x.ref), params) as LoraParams;
  let state = params;

  // RoPE (rotate_half) as x·cos + (x·R)·sin, R the fixed half-swap-and-negate matrix.
  const invFreq = ropeInverseFrequencies(spec);
  const half = headDim / 2;
  const rotate = new Float32Array(headDim * headDim);
  for (let j = 0; j < half; j++) {
    rotate[(j + half) * headDim + j] = -1;
    rotate[j * headDim + j + half] = 1;
  }
  const rotateArr = np.array(rotate).reshape([headDim, headDim]);
  const causal = new Float32Array(c.seq * c.seq);
  for (let i = 0; i < c.seq; i++) for (let j = i + 1; j < c.seq; j++) causal[i * c.seq + j] = -1e9;
  const causalArr = np.array(causal).reshape([c.seq, c.seq]);
  await jax.blockUntilReady([frozen, state, m1, m2, rotateArr, causalArr]);
  const setupMs = performance.now() - t0;

  // ---- the model: a Hugging Face Llama forward with LoRA on the targeted projections
  const eps = spec.normEps;
  const rmsNorm = (x: JArray, w: JArray) =>
    x.ref.div(np.sqrt(np.square(x).mean(-1, { keepdims: true }).add(eps))).mul(w);
  // y = x Wᵀ (+ s · x Aᵀ Bᵀ); takes ownership of x, w and the adapter.
  const linear = (x: JArray, w: JArray, lora: Lora | undefined) => {
    if (!lora) return np.matmul(x, w.transpose());
    const y = np.matmul(x.ref, w.transpose());
    return y.add(np.matmul(np.matmul(x, lora.A.transpose()), lora.B.transpose()).mul(scale));
  };
  const rope = (x: JArray, nHeads: number, inp: Inputs) => {
    const xs = x.reshape([c.batch * c.seq, nHeads, headDim]);
    const rotated = np.matmul(xs.ref, inp.rotate);
    return xs.mul(inp.cos).add(rotated.mul(inp.sin));
  };
  const lossFn = (p: LoraParams, f: Frozen, inp: Inputs): JArray => {
    const BT = c.batch * c.seq;
    let x = np.take(f.embed.ref, inp.tokens, 0); // [BT, d]
    f.layers.forEach((w, l) => {
      const lo = (kind: string) => p[`${l}.${kind}`];
      const h = rmsNorm(x.ref, w.ln1);
      const q = rope(linear(h.ref, w.wq, lo('q_proj')), heads, {
        ...inp,
        cos: inp.cos.ref,
        sin: inp.sin.ref,
        rotate: inp.rotate.ref,
      });
      const k = rope(linear(h.ref, w.wk, lo('k_proj')), kvHeads, {
        ...inp,
        cos: inp.cos.ref,
        sin: inp.sin.ref,
        rotate: inp.rotate.ref,
      });
      const v = linear(h, w.wv, lo('v_proj'));
      // Causal GQA attention written out (jax-js' dotProductAttention uses einsum, whose parser needs
      // Node 22's iterator helpers): query head n reads kv head n / (heads / kvHeads), as HF's repeat_kv.
      const group = heads / kvHeads;
      const qh = q.reshape([c.batch, c.seq, heads, headDim]).transpose([0, 2, 1, 3]);
      const kh = np.repeat(k.reshape([c.batch, c.seq, kvHeads, headDim]), group, 2).transpose([0, 2, 3, 1]);
      const vh = np.repeat(v.reshape([c.batch, c.seq, kvHeads, headDim]), group, 2).transpose([0, 2, 1, 3]);
      const scores = np
        .matmul(qh, kh)
        .mul(1 / Math.sqrt(headDim))
        .add(inp.causal.ref); // [B, H, T, T]
      const att = np.matmul(nn.softmax(scores, -1), vh).transpose([0, 2, 1, 3]); // [B, T, H, hd]
      x = x.add(linear(att.reshape([BT, heads * headDim]), w.wo, lo('o_proj')));
      const h2 = rmsNorm(x.ref, w.ln2);
      const g = linear(h2.ref, w.wg, lo('gate_proj'));
      const u = linear(h2, w.wu, lo('up_proj'));
      x = x.add(linear(nn.silu(g).mul(u), w.wd, lo('down_proj')));
    });
    inp.cos.dispose();
    inp.sin.dispose();
    inp.rotate.dispose();
    inp.causal.dispose();
    const logits = np.matmul(rmsNorm(x, f.norm), f.embed.transpose()); // tied LM head: [BT, V]
    const nll = nn.logSoftmax(logits).mul(nn.oneHot(inp.targets, V)).sum(-1).mul(inp.mask.ref).neg();
    return nll.sum().div(inp.mask.sum());
  };
  const jitLoss = jax.jit(lossFn);
  const valueAndGrad = jax.valueAndGrad(jitLoss);

  // AdamW with global-norm clipping, as our trainer does (weight decay 0, constant learning rate).
  const adamStep = jax.jit(
    (p: LoraParams, g: LoraParams, m: LoraParams, v: LoraParams, bias1: JArray, bias2: JArray) => {
      const sq = tree.leaves(g).map((x) => np.square((x as JArray).ref).sum());
      const norm = np.sqrt(sq.reduce((a, b) => a.add(b)));
      const clip = np.minimum(np.divide(ADAM.maxGradNorm, norm.add(1e-6)), 1);
      const gs = tree.map((x: JArray) => x.mul(clip.ref), g) as LoraParams;
      clip.dispose();
      const mNew = tree.map(
        (mi: JArray, gi: JArray) => mi.mul(ADAM.beta1).add(gi.mul(1 - ADAM.beta1)),
        m,
        tree.ref(gs),
      ) as LoraParams;
      const vNew = tree.map(
        (vi: JArray, gi: JArray) => vi.mul(ADAM.beta2).add(np.square(gi).mul(1 - ADAM.beta2)),
        v,
        gs,
      ) as LoraParams;
      const pNew = tree.map(
        (pi: JArray, mi: JArray, vi: JArray) =>
          pi.sub(
            mi
              .div(bias1.ref)
              .mul(ADAM.lr)
              .div(np.sqrt(vi.div(bias2.ref)).add(ADAM.eps)),
          ),
        p,
        tree.ref(mNew),
        tree.ref(vNew),
      ) as LoraParams;
      bias1.dispose();
      bias2.dispose();
      return { p: pNew, m: mNew, v: vNew };
    },
  );

  // ---- the same batches as benchTrain: same examples, same stream
  const totalSteps = c.warmupSteps + c.steps;
  const stream = new BatchStream(syntheticExamples(c.batch * totalSteps, c.seq, V, 1), {
    batch: c.batch,
    seq: c.seq,
    padId: 0,
    separatorId: spec.eosTokenId,
    shuffle: true,
    seed: 0,
    mode: 'pad',
  });
  const inputsFor = (b: Batch): Inputs => {
    const BT = c.batch * c.seq;
    const targets = new Int32Array(BT);
    const mask = new Float32Array(BT);
    const cos = new Float32Array(BT * headDim);
    const sin = new Float32Array(BT * headDim);
    for (let t = 0; t < BT; t++) {
      const ignored = b.targets[t] < 0;
      targets[t] = ignored ? 0 : b.targets[t];
      mask[t] = ignored ? 0 : 1;
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(b.positions[t] * invFreq[i]);
        cos[t * headDim + i] = cos[t * headDim + i + half] = Math.cos(angle);
        sin[t * headDim + i] = sin[t * headDim + i + half] = Math.sin(angle);
      }
    }
    return {
      tokens: np.array(Int32Array.from(b.tokens), { dtype: np.int32 }),
      targets: np.array(targets, { dtype: np.int32 }),
      mask: np.array(mask),
      cos: np.array(cos).reshape([BT, 1, headDim]),
      sin: np.array(sin).reshape([BT, 1, headDim]),
      rotate: rotateArr.ref,
      causal: causalArr.ref,
    };
  };

  const stepMs: number[] = [];
  const losses: number[] = [];
  for (let step = 0; step < totalSteps; step++) {
    const inputs = inputsFor(stream.next());
    let lossValue = NaN;
    const ms = await timeMs(async () => {
      const [loss, grads] = valueAndGrad(tree.ref(state), tree.ref(frozen), inputs);
      const bias1 = np.array(1 - Math.pow(ADAM.beta1, step + 1));
      const bias2 = np.array(1 - Math.pow(ADAM.beta2, step + 1));
      const next = adamStep(state, grads, m1, m2, bias1, bias2);
      state = next.p;
      m1 = next.m;
      m2 = next.v;
      await jax.blockUntilReady([state, m1, m2]);
      lossValue = (await loss.jsAsync()) as number;
    });
    if (step >= c.warmupSteps) stepMs.push(ms);
    losses.push(lossValue);
  }
  tree.dispose([state, m1, m2, frozen]);
  jitLoss.dispose();
  adamStep.dispose();
  rotateArr.dispose();
  causalArr.dispose();

  const msPerStep = median(stepMs);
  return {
    trainableParams,
    setupMs,
    msPerStep,
    tokensPerSecond: (c.batch * c.seq) / (msPerStep / 1000),
    submitsPerStep: null,
    buffersCreatedAfterStep0: null,
    firstLoss: losses[0],
    finalLoss: losses[losses.length - 1],
  };
}
