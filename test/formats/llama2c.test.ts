import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import {
  llama2cFileSize,
  parseLlama2cHeader,
  permuteRopeRows,
  readLlama2c,
  type Llama2cHeader,
} from '../../src/model/formats/llama2c';
import { llama2cToHfFolder } from '../../src/model/formats/llama2c-hf';
import {
  openCheckpoint,
  readSafetensors,
  readSafetensorsHeader,
  type WeightStore,
} from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { nodeDir, nodeFile } from '../../src/model/formats/node-source';
import { expectedTensors, parseConfig, validateCheckpoint } from '../../src/model/config';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { Rng } from '../../src/util/random';

const DIR = 'test/fixtures/models/stories260K_llama2c';
const MODEL = `${DIR}/stories260K.bin`;
const TOKENIZER = `${DIR}/tok512.bin`;
const DEMO = 'public/demo/model';

// ---------------------------------------------------------------------------------------------
// RoPE in float64: llama2.c rotates interleaved pairs, Hugging Face rotates halves.

type Vec = Float64Array;

function ropeInterleaved(x: Vec, heads: number, hd: number, pos: number, theta = 10000): Vec {
  const out = Float64Array.from(x);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < hd / 2; i++) {
      const angle = pos * theta ** (-(2 * i) / hd);
      const [a, b] = [x[h * hd + 2 * i], x[h * hd + 2 * i + 1]];
      out[h * hd + 2 * i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * hd + 2 * i + 1] = a * Math.sin(angle) + b * Math.cos(angle);
    }
  }
  return out;
}

function ropeRotateHalf(x: Vec, heads: number, hd: number, pos: number, theta = 10000): Vec {
  const out = Float64Array.from(x);
  const half = hd / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * theta ** (-(2 * i) / hd);
      const [a, b] = [x[h * hd + i], x[h * hd + i + half]];
      out[h * hd + i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * hd + i + half] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

/** y = W x for W [rows, cols] row-major. */
function matvec(w: ArrayLike<number>, x: ArrayLike<number>, rows: number, cols: number): Vec {
  const y = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += w[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

const dot = (a: Vec, b: Vec) => a.reduce((s, v, i) => s + v * b[i], 0);

describe('RoPE permutation (float64)', () => {
  it('interleaved RoPE on original weights == rotate_half RoPE on permuted weights', () => {
    const rng = new Rng(3);
    for (const [heads, hd, cols] of [
      [3, 6, 5],
      [1, 2, 1],
      [2, 8, 7],
    ]) {
      const w = rng.normals(heads * hd * cols);
      const wp = permuteRopeRows(w, heads, hd, cols);
      const x = Float64Array.from(rng.normals(cols));
      const y = Float64Array.from(rng.normals(cols));
      for (const pos of [0, 1, 5, 37]) {
        const original = ropeInterleaved(matvec(w, x, heads * hd, cols), heads, hd, pos);
        const permuted = ropeRotateHalf(matvec(wp, x, heads * hd, cols), heads, hd, pos);
        // Elementwise: the permuted result is the original result with rows reordered the same way.
        const reordered = permuteRopeRows(Float32Array.from(original), heads, hd, 1);
        permuted.forEach((v, i) => expect(v).toBeCloseTo(reordered[i], 5));
        // Attention scores (q . k within each head) are identical.
        const k0 = ropeInterleaved(matvec(w, y, heads * hd, cols), heads, hd, 2);
        const k1 = ropeRotateHalf(matvec(wp, y, heads * hd, cols), heads, hd, 2);
        for (let h = 0; h < heads; h++) {
          const s = (v: Vec) => v.subarray(h * hd, (h + 1) * hd);
          expect(Math.abs(dot(s(original), s(k0)) - dot(s(permuted), s(k1)))).toBeLessThan(1e-9);
        }
      }
    }
  });

  it('is the HF view(heads, hd/2, 2, cols).transpose(1, 2) reshuffle', () => {
    // One head, hd = 4, one column: rows [r0, r1, r2, r3] -> [r0, r2, r1, r3].
    expect(Array.from(permuteRopeRows(Float32Array.from([10, 11, 12, 13]), 1, 4, 1))).toEqual([10, 12, 11, 13]);
    expect(() => permuteRopeRows(new Float32Array(5), 1, 4, 1)).toThrow(/permuteRopeRows/);
  });
});

// ---------------------------------------------------------------------------------------------
// The stories260K checkpoint

/** The raw llama2.c weights, read independently of the reader under test (offsets per llama2.c run.c). */
async function rawWeights(h: Llama2cHeader) {
  const bytes = await readFile(MODEL);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset + 28, bytes.byteOffset + bytes.length));
  const hs = h.dim / h.heads;
  const kvDim = h.kvHeads * hs;
  let p = 0;
  const take = (n: number) => floats.subarray(p, (p += n));
  const L = h.layers;
  return {
    embed: take(h.vocabSize * h.dim),
    rmsAtt: take(L * h.dim),
    wq: take(L * h.dim * h.dim),
    wk: take(L * kvDim * h.dim),
    wv: take(L * kvDim * h.dim),
    wo: take(L * h.dim * h.dim),
    rmsFfn: take(L * h.dim),
    w1: take(L * h.hiddenDim * h.dim),
    w2: take(L * h.dim * h.hiddenDim),
    w3: take(L * h.hiddenDim * h.dim),
    rmsFinal: take(h.dim),
    rest: floats.length - p,
  };
}

describe('llama2.c reader', () => {
  it('reads the header, spec and shapes of stories260K', async () => {
    const model = await readLlama2c(await nodeFile(MODEL));
    expect(model.header).toEqual({
      dim: 64,
      hiddenDim: 172,
      layers: 5,
      heads: 8,
      kvHeads: 4,
      vocabSize: 512,
      sharedClassifier: true,
      seqLen: 512,
    });
    expect(model.spec).toMatchObject({
      family: 'llama',
      modelType: 'llama',
      vocabSize: 512,
      hidden: 64,
      layers: 5,
      heads: 8,
      kvHeads: 4,
      headDim: 8,
      intermediate: 172,
      maxPositions: 512,
      normEps: 1e-5,
      ropeTheta: 10000,
      tieWordEmbeddings: true,
      bosTokenId: 1,
      eosTokenId: 2,
      sourceName: 'stories260K',
    });
    const shapes = Object.fromEntries(model.tensors.map((t) => [t.name, t.shape]));
    // Exactly the HF tensors the spec expects (tied: no lm_head.weight).
    expect(shapes).toEqual(Object.fromEntries(expectedTensors(model.spec).map((t) => [t.name, t.shape])));
    expect(shapes['model.layers.4.self_attn.k_proj.weight']).toEqual([32, 64]);
    expect(shapes['model.layers.0.mlp.down_proj.weight']).toEqual([64, 172]);
    expect(shapes['lm_head.weight']).toBeUndefined();
  });

  it('maps every tensor to its llama2.c weights, with q/k permuted for rotate_half', async () => {
    const model = await readLlama2c(await nodeFile(MODEL));
    const h = model.header;
    const raw = await rawWeights(h);
    expect(raw.rest).toBe(2 * h.seqLen * (h.dim / h.heads / 2)); // only the freq_cis tables remain
    const get = (name: string) => model.tensors.find((t) => t.name === name)!.data;
    const layerSlice = (all: Float32Array, l: number) =>
      all.subarray((l * all.length) / h.layers, ((l + 1) * all.length) / h.layers);
    const same = (a: Float32Array, b: Float32Array) => expect(Array.from(a)).toEqual(Array.from(b));
    same(get('model.embed_tokens.weight'), raw.embed);
    same(get('model.norm.weight'), raw.rmsFinal);
    for (let l = 0; l < h.layers; l++) {
      const p = `model.layers.${l}.`;
      same(get(`${p}input_layernorm.weight`), layerSlice(raw.rmsAtt, l));
      same(get(`${p}post_attention_layernorm.weight`), layerSlice(raw.rmsFfn, l));
      same(get(`${p}self_attn.q_proj.weight`), permuteRopeRows(layerSlice(raw.wq, l), h.heads, 8, h.dim));
      same(get(`${p}self_attn.k_proj.weight`), permuteRopeRows(layerSlice(raw.wk, l), h.kvHeads, 8, h.dim));
      same(get(`${p}self_attn.v_proj.weight`), layerSlice(raw.wv, l));
      same(get(`${p}self_attn.o_proj.weight`), layerSlice(raw.wo, l));
      same(get(`${p}mlp.gate_proj.weight`), layerSlice(raw.w1, l));
      same(get(`${p}mlp.down_proj.weight`), layerSlice(raw.w2, l));
      same(get(`${p}mlp.up_proj.weight`), layerSlice(raw.w3, l));
    }
  });

  it('rejects truncated files, newer export versions and bad headers', async () => {
    const bytes = new Uint8Array(await readFile(MODEL));
    await expect(readLlama2c(bytesSource('cut.bin', bytes.subarray(0, bytes.length - 4)))).rejects.toThrow(
      /cut\.bin is 1056536 bytes, but a version-0 llama2\.c checkpoint with header .* has 1056540/,
    );
    const v1 = new Uint8Array(64);
    new DataView(v1.buffer).setUint32(0, 0x616b3432, true);
    new DataView(v1.buffer).setInt32(4, 1, true);
    await expect(readLlama2c(bytesSource('v1.bin', v1))).rejects.toThrow(
      /v1\.bin is a llama2\.c version 1 export; only the legacy version 0/,
    );
    const header = (values: number[]) => new Uint8Array(Int32Array.from(values).buffer);
    expect(() => parseLlama2cHeader(header([64, 172, 5, 6, 4, 512, 512]), 'h.bin')).toThrow(
      /dim 64 is not a multiple of n_heads 6/,
    );
    expect(() => parseLlama2cHeader(header([64, 0, 5, 8, 4, 512, 512]), 'h.bin')).toThrow(/hidden_dim = 0/);
    // Negative vocab: unshared classifier, one more [vocab, dim] block at the end.
    const unshared = parseLlama2cHeader(header([64, 172, 5, 8, 4, -512, 512]), 'h.bin');
    expect(unshared).toMatchObject({ vocabSize: 512, sharedClassifier: false });
    expect(llama2cFileSize(unshared)).toBe(1056540 + 512 * 64 * 4);
  });
});

describe('conversion to a Hugging Face folder', () => {
  it('is deterministic and matches the committed public/demo/model', async () => {
    const { files } = await llama2cToHfFolder(
      await nodeFile(MODEL),
      new Uint8Array(await readFile(TOKENIZER)),
      'stories260K',
    );
    for (const [name, content] of Object.entries(files)) {
      const committed = await readFile(`${DEMO}/${name}`);
      const fresh = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
      expect(fresh.equals(committed), `${DEMO}/${name} is stale: rerun node scripts/convert-llama2c.mjs`).toBe(true);
    }
    const header = await readSafetensorsHeader(
      bytesSource('model.safetensors', files['model.safetensors'] as Uint8Array),
    );
    expect([...header.values()].every((t) => t.dtype === 'F32')).toBe(true);
    expect(header.has('lm_head.weight')).toBe(false);
  });

  it('has the config, tokenizer files and metadata the brief asks for', async () => {
    const config = JSON.parse(await readFile(`${DEMO}/config.json`, 'utf8'));
    expect(config).toMatchObject({
      model_type: 'llama',
      architectures: ['LlamaForCausalLM'],
      tie_word_embeddings: true,
      bos_token_id: 1,
      eos_token_id: 2,
      torch_dtype: 'float32',
      rms_norm_eps: 1e-5,
      max_position_embeddings: 512,
      rope_theta: 10000,
    });
    const tokConfig = JSON.parse(await readFile(`${DEMO}/tokenizer_config.json`, 'utf8'));
    expect(tokConfig).toMatchObject({
      bos_token: '<s>',
      eos_token: '</s>',
      add_bos_token: true,
      model_max_length: 512,
    });
    const dir = await nodeDir(DEMO);
    expect(dir.list()).toEqual(expect.arrayContaining(['README.md', 'generation_config.json', 'tokenizer.json']));
    const { tensors } = await readSafetensors(dir.file('model.safetensors')!);
    expect(tensors.size).toBe(2 + 9 * 5);
  });

  it('generates the text llama2.c documents (float64 forward, HF RoPE on converted weights)', async () => {
    const dir = await nodeDir(DEMO);
    const store = await openCheckpoint(dir);
    const spec = parseConfig(JSON.parse(await dir.text('config.json')));
    validateCheckpoint(spec, store);
    const tokenizer = loadTokenizer(
      JSON.parse(await dir.text('tokenizer.json')),
      JSON.parse(await dir.text('tokenizer_config.json')),
    );

    const hf = await hfModel(store, spec.layers);
    const ids = [1];
    for (let step = 0; step < 40; step++) ids.push(argmax(forwardLast(hf, ids, ropeRotateHalf)));
    const text = tokenizer.decode(ids, { skipSpecial: true });
    expect(text.startsWith('Once upon a time, there was a little girl named Lily.')).toBe(true);

    // And the same logits as llama2.c's own math (interleaved RoPE) on the original weights.
    const h = (await readLlama2c(await nodeFile(MODEL))).header;
    const raw = await rawWeights(h);
    const original = llama2cModel(raw, h);
    const prompt = tokenizer.encode('Zoo', { addSpecial: true });
    const a = forwardLast(hf, prompt, ropeRotateHalf);
    const b = forwardLast(original, prompt, ropeInterleaved);
    a.forEach((v, i) => expect(Math.abs(v - b[i])).toBeLessThan(1e-9));
  });
});

// ---------------------------------------------------------------------------------------------
// A float64 Llama forward pass (tied embeddings), enough for greedy decoding of a tiny model.

interface Weights {
  dim: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  layers: number;
  embed: Float32Array;
  norm: Float32Array;
  layer: {
    attNorm: Float32Array;
    wq: Float32Array;
    wk: Float32Array;
    wv: Float32Array;
    wo: Float32Array;
    ffnNorm: Float32Array;
    gate: Float32Array;
    up: Float32Array;
    down: Float32Array;
  }[];
}

async function hfModel(store: WeightStore, layers: number): Promise<Weights> {
  const embed = await store.load('model.embed_tokens.weight');
  const [vocab, dim] = store.info('model.embed_tokens.weight')!.shape;
  const layer = [];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}.`;
    const load = (n: string) => store.load(p + n);
    layer.push({
      attNorm: await load('input_layernorm.weight'),
      wq: await load('self_attn.q_proj.weight'),
      wk: await load('self_attn.k_proj.weight'),
      wv: await load('self_attn.v_proj.weight'),
      wo: await load('self_attn.o_proj.weight'),
      ffnNorm: await load('post_attention_layernorm.weight'),
      gate: await load('mlp.gate_proj.weight'),
      up: await load('mlp.up_proj.weight'),
      down: await load('mlp.down_proj.weight'),
    });
  }
  const hidden = store.info('model.layers.0.mlp.gate_proj.weight')!.shape[0];
  const kvHeads = store.info('model.layers.0.self_attn.k_proj.weight')!.shape[0] / 8;
  return {
    dim,
    hidden,
    heads: dim / 8,
    kvHeads,
    vocab,
    layers,
    embed,
    norm: await store.load('model.norm.weight'),
    layer,
  };
}

function llama2cModel(raw: Awaited<ReturnType<typeof rawWeights>>, h: Llama2cHeader): Weights {
  const per = (all: Float32Array, l: number) =>
    all.subarray((l * all.length) / h.layers, ((l + 1) * all.length) / h.layers);
  const layer = [];
  for (let l = 0; l < h.layers; l++) {
    layer.push({
      attNorm: per(raw.rmsAtt, l),
      wq: per(raw.wq, l),
      wk: per(raw.wk, l),
      wv: per(raw.wv, l),
      wo: per(raw.wo, l),
      ffnNorm: per(raw.rmsFfn, l),
      gate: per(raw.w1, l),
      up: per(raw.w3, l),
      down: per(raw.w2, l),
    });
  }
  return {
    dim: h.dim,
    hidden: h.hiddenDim,
    heads: h.heads,
    kvHeads: h.kvHeads,
    vocab: h.vocabSize,
    layers: h.layers,
    embed: raw.embed,
    norm: raw.rmsFinal,
    layer,
  };
}

function rmsnorm(x: Vec, w: Float32Array, eps = 1e-5): Vec {
  const scale = 1 / Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length + eps);
  return x.map((v, i) => v * scale * w[i]);
}

/** Logits of the last position. */
function forwardLast(m: Weights, ids: number[], rope: typeof ropeRotateHalf): Vec {
  const hd = m.dim / m.heads;
  const kvDim = m.kvHeads * hd;
  let xs = ids.map((id) => Float64Array.from(m.embed.subarray(id * m.dim, (id + 1) * m.dim)));
  for (const w of m.layer) {
    const normed = xs.map((x) => rmsnorm(x, w.attNorm));
    const q = normed.map((x, p) => rope(matvec(w.wq, x, m.dim, m.dim), m.heads, hd, p));
    const k = normed.map((x, p) => rope(matvec(w.wk, x, kvDim, m.dim), m.kvHeads, hd, p));
    const v = normed.map((x) => matvec(w.wv, x, kvDim, m.dim));
    xs = xs.map((x, t) => {
      const att = new Float64Array(m.dim);
      for (let h = 0; h < m.heads; h++) {
        const kvh = Math.floor(h / (m.heads / m.kvHeads));
        const scores = [];
        for (let s = 0; s <= t; s++) {
          let sum = 0;
          for (let i = 0; i < hd; i++) sum += q[t][h * hd + i] * k[s][kvh * hd + i];
          scores.push(sum / Math.sqrt(hd));
        }
        const max = Math.max(...scores);
        const e = scores.map((sc) => Math.exp(sc - max));
        const total = e.reduce((a, b) => a + b, 0);
        for (let s = 0; s <= t; s++)
          for (let i = 0; i < hd; i++) att[h * hd + i] += (e[s] / total) * v[s][kvh * hd + i];
      }
      const projected = matvec(w.wo, att, m.dim, m.dim);
      const x1 = x.map((val, i) => val + projected[i]);
      const n2 = rmsnorm(x1, w.ffnNorm);
      const g = matvec(w.gate, n2, m.hidden, m.dim);
      const u = matvec(w.up, n2, m.hidden, m.dim);
      const act = g.map((gv, i) => (gv / (1 + Math.exp(-gv))) * u[i]);
      const down = matvec(w.down, act, m.dim, m.hidden);
      return x1.map((val, i) => val + down[i]);
    });
  }
  return matvec(m.embed, rmsnorm(xs[xs.length - 1], m.norm), m.vocab, m.dim);
}

const argmax = (v: Vec) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
