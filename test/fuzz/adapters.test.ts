/**
 * Fuzzing PEFT adapter folders through loadPeftFolder (what eval and generate run) on real base weights: the
 * hf-golden folders written by PEFT itself (LoRA with patterns, DoRA, AdaLoRA, PiSSA, modules_to_save, trainable
 * tokens, saved biases) and a GraLoRA folder, with adapter_config.json fields mutated, tensors renamed, reshaped,
 * retyped, dropped or duplicated, and header bytes mutated. Each folder loads adapters whose forward pass is finite,
 * or fails naming the folder. GPU use is small: two tiny models uploaded once, buffers freed after every case.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportPeftGralora, type GraloraModuleWeights } from '../../src/adapters/gralora/peft';
import { loadPeftFolder } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import type { Gpu } from '../../src/gpu/gpu';
import { nodeDir } from '../../src/model/formats/node-source';
import {
  decodeToF32,
  readSafetensors,
  WEIGHT_DTYPES,
  writeSafetensors,
  type Dtype,
  type NamedTensor,
  type RawTensor,
} from '../../src/model/formats/safetensors';
import { bytesSource } from '../../src/model/formats/source';
import { allLinears } from '../../src/model/layout';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import {
  applyByteMutations,
  applyJsonMutations,
  byteMutations,
  fuzz as fuzzParsers,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  jsonMutations,
  loadsOrRefuses,
  oddValues,
  recordingDir,
  expectReadsInside,
  utf8,
} from '../helpers/fuzz';
import { testGpu } from '../helpers/gpu';
import { logitsOf } from '../helpers/tiny-models';

const ROOT = 'test/fixtures/hf-golden';
const MODELS = ['llama_tied_bf16', 'gpt2'] as const;
const KINDS = [
  'lora_pattern',
  'dora',
  'adalora',
  'pissa',
  'pissa_to_lora',
  'modules_to_save_lm_head',
  'trainable_tokens',
  'bias_all',
];
const FOLDER = 'fuzzed-peft';

type AnyTensor = NamedTensor | RawTensor;

const PATTERN = Float32Array.from({ length: 7 }, (_, i) => (i - 3) / 10);

interface Folder {
  model: number;
  kind: string;
  config: Record<string, unknown>;
  tensors: AnyTensor[];
}

const DTYPE_BYTES: Partial<Record<Dtype, number>> = { F32: 4, F16: 2, BF16: 2, I32: 4, U8: 1 };

async function rawTensors(bytes: Uint8Array): Promise<RawTensor[]> {
  const { tensors } = await readSafetensors(bytesSource('adapter_model.safetensors', bytes));
  return Promise.all(
    [...tensors.values()].map(async (t) => ({
      name: t.name,
      shape: t.shape,
      dtype: t.dtype,
      bytes: await t.source.read(t.begin, t.end - t.begin),
    })),
  );
}

/** A GraLoRA folder for the model's first two linear layers (k 2, r 2, hybrid_r 1). */
function graloraFolder(model: number, spec: ModelWeights['spec']): Folder {
  const rng = new Rng(7);
  const modules: GraloraModuleWeights[] = allLinears(spec)
    .slice(0, 2)
    .map((info) => ({
      path: info.path,
      in: info.in,
      out: info.out,
      rank: 2,
      k: 2,
      hybridRank: 1,
      scale: 64 / 3,
      GA: rng.normals(info.in * 2, 0.1),
      GB: rng.normals(info.out * 2, 0.1),
      Ag: rng.normals(info.in, 0.1),
      Bg: rng.normals(info.out, 0.1),
    }));
  const folder = exportPeftGralora(spec, modules, { alpha: 64, baseModel: 'base' });
  const tensors = folder.tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: 'F32' as const,
    bytes: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
  return { model, kind: 'gralora', config: folder.config, tensors };
}

// ---------------------------------------------------------------------------------------------
// Mutations of a folder's tensors

type TensorMutation =
  | { op: 'rename'; index: number; name: string }
  | { op: 'reshape'; index: number; shape: number[] }
  | { op: 'retype'; index: number; dtype: Dtype }
  | { op: 'drop'; index: number }
  | { op: 'copy'; index: number; name: string };

/** Names an adapter file may hold, right and wrong: every suffix the importers read, on real and missing modules. */
function nameVariants(folder: Folder, paths: string[]): fc.Arbitrary<string> {
  const suffixes = [
    '.lora_A.weight',
    '.lora_B.weight',
    '.lora_A.default.weight',
    '.lora_A',
    '.lora_B',
    '.lora_E',
    '.lora_magnitude_vector',
    '.lora_embedding_A',
    '.lora_B.bias',
    '.gralora_A',
    '.gralora_B',
    '.gralora_A_general.weight',
    '.base_layer.weight',
    '.base_layer.bias',
    '.bias',
    '.weight',
    '.token_adapter.trainable_tokens_delta',
  ];
  const modules = [...paths, 'lm_head', 'model.embed_tokens', 'transformer.wte', 'model.norm', 'nowhere.q_proj', ''];
  return fc.oneof(
    fc
      .tuple(fc.constantFrom('base_model.model.', ''), fc.constantFrom(...modules), fc.constantFrom(...suffixes))
      .map(([prefix, module, suffix]) => `${prefix}${module}${suffix}`),
    fc.constantFrom(...folder.tensors.map((t) => t.name)),
    fc.string({ minLength: 1, maxLength: 6 }),
  );
}

function tensorMutations(folder: Folder, paths: string[]): fc.Arbitrary<TensorMutation[]> {
  const count = Math.max(1, folder.tensors.length);
  const index = fc.nat(count - 1);
  const name = nameVariants(folder, paths);
  const dim = fc.oneof(fc.constantFrom(0, 1, 2, 3, 4, 8, 16, 64, 192, 320), fc.nat(70));
  const mutation: fc.Arbitrary<TensorMutation> = fc.oneof(
    fc.record({ op: fc.constant('rename' as const), index, name }),
    fc.record({ op: fc.constant('reshape' as const), index, shape: fc.array(dim, { maxLength: 3 }) }),
    fc.record({ op: fc.constant('retype' as const), index, dtype: fc.constantFrom<Dtype>('F16', 'BF16', 'I32', 'U8') }),
    fc.record({ op: fc.constant('drop' as const), index }),
    fc.record({ op: fc.constant('copy' as const), index, name }),
  );
  return fc.array(mutation, { minLength: 1, maxLength: 3 });
}

/**
 * A tensor of `shape` and `dtype` holding `t`'s values (cycled, converted): finite floats stay finite, so a NaN in
 * the forward pass is the loader's doing, not the mutation's. Integer dtypes get `t`'s bytes.
 */
function refill(t: AnyTensor, shape: number[], dtype: Dtype): AnyTensor {
  const numel = shape.reduce((a, b) => a * b, 1);
  // Integer tensors have no float values: a small finite pattern stands in.
  const values = 'data' in t ? t.data : WEIGHT_DTYPES.includes(t.dtype) ? decodeToF32(t.bytes, t.dtype) : PATTERN;
  if (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') {
    const data = new Float32Array(numel).map((_, i) => (values.length ? values[i % values.length] : 0));
    return { name: t.name, shape, dtype, data };
  }
  const source = 'bytes' in t ? t.bytes : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(numel * (DTYPE_BYTES[dtype] ?? 4));
  for (let i = 0; i < bytes.length; i++) bytes[i] = source.length ? source[i % source.length] : 0;
  return { name: t.name, shape, dtype, bytes };
}

function applyTensorMutations(tensors: AnyTensor[], mutations: TensorMutation[]): AnyTensor[] {
  let out = [...tensors];
  for (const m of mutations) {
    if (out.length === 0) break;
    const i = m.index % out.length;
    const t = out[i];
    if (m.op === 'rename' || m.op === 'copy') {
      if (out.some((o) => o.name === m.name) || m.name === '__metadata__') continue;
      const renamed = { ...t, name: m.name };
      out = m.op === 'rename' ? out.map((o, j) => (j === i ? renamed : o)) : [...out, renamed];
    } else if (m.op === 'reshape') out[i] = refill(t, m.shape, t.dtype ?? 'F32');
    else if (m.op === 'retype') out[i] = refill(t, t.shape, m.dtype);
    else out = out.filter((_, j) => j !== i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

const CONFIG_KEYS = [
  'peft_type',
  'r',
  'lora_alpha',
  'alpha',
  'rank_pattern',
  'alpha_pattern',
  'use_rslora',
  'use_dora',
  'target_modules',
  'exclude_modules',
  'modules_to_save',
  'layers_to_transform',
  'layers_pattern',
  'init_lora_weights',
  'trainable_token_indices',
  'bias',
  'gralora_k',
  'hybrid_r',
  'gralora_alpha',
  'init_r',
  'lora_bias',
  'ensure_weight_tying',
];
const CONFIG_VALUES = fc.oneof(
  oddValues,
  fc.constantFrom<unknown>(
    'LORA',
    'GRALORA',
    'ADALORA',
    'IA3',
    'all-linear',
    'q_proj',
    '.*q_proj',
    '.*\\.(q|v)_proj',
    '(',
    ['q_proj', 'v_proj'],
    ['c_attn'],
    ['lm_head'],
    'lm_head',
    ['embed_tokens'],
    { q_proj: 0 },
    { '.*': 2 },
    { '(': 3 },
    { c_attn: 'x' },
    'pissa',
    'pissa_niter_4',
    'olora',
    'loftq',
    'gaussian',
    'layers',
    'h',
    [0],
    [5],
    [1, 1],
    'none',
    'all',
    'lora_only',
    { lm_head: [1, 2], embed_tokens: [1, 2] },
    [0, 319],
  ),
);

/** Loading a folder is parsing, but each loaded one also runs a forward pass on SwiftShader: 30 s before a hang. */
const fuzz: typeof fuzzParsers = (name, arbitrary, runs, check) => fuzzParsers(name, arbitrary, runs, check, 30_000);

/** Whether a config holds a number no float32 scale can carry (an alpha of 1e300). */
function beyondFloat32(value: unknown): boolean {
  if (typeof value === 'number') return Math.abs(value) > 1e30;
  if (value !== null && typeof value === 'object') return Object.values(value).some(beyondFloat32);
  return false;
}

describe('fuzz: PEFT adapter folders (loadPeftFolder on real base weights)', () => {
  let gpu: Gpu;
  const bases: ModelWeights[] = [];
  const folders: Folder[] = [];
  let modelBytes = 0;

  beforeAll(async () => {
    gpu = await testGpu();
    for (const [m, model] of MODELS.entries()) {
      const loaded = await loadModelDir(await nodeDir(`${ROOT}/models/${model}`));
      bases.push(await ModelWeights.upload(gpu, loaded.spec, loaded.source));
      modelBytes = Math.max(modelBytes, readFileSync(`${ROOT}/models/${model}/model.safetensors`).length);
      for (const kind of KINDS) {
        const dir = `${ROOT}/adapters/${model}/${kind}`;
        let bytes: Uint8Array;
        try {
          bytes = new Uint8Array(readFileSync(`${dir}/adapter_model.safetensors`));
        } catch {
          continue; // not every model has every kind
        }
        folders.push({
          model: m,
          kind,
          config: JSON.parse(readFileSync(`${dir}/adapter_config.json`, 'utf8')),
          tensors: await rawTensors(bytes),
        });
      }
      folders.push(graloraFolder(m, loaded.spec));
    }
  }, 120_000);

  /** Loads one folder; a loaded one must run a finite forward pass. Every buffer of the case is freed after. */
  /** `bytesMutated`: the file's bytes were mutated in place, so its values may be NaN or huge: any forward goes. */
  async function check(
    folder: Folder,
    config: unknown,
    weights: Uint8Array,
    bytesMutated = false,
  ): Promise<'loaded' | 'refused'> {
    const base = bases[folder.model];
    const configText = typeof config === 'string' ? config : JSON.stringify(config);
    const dir = recordingDir(FOLDER, { 'adapter_config.json': configText, 'adapter_model.safetensors': weights });
    const mark = gpu.mark();
    gpu.device.pushErrorScope('validation');
    let outcome: 'loaded' | 'refused' | Error;
    try {
      outcome = await guardAllocations(16 * (weights.length + modelBytes) + (8 << 20), () =>
        loadsOrRefuses(() => loadPeftFolder(gpu, base, dir), [FOLDER], {
          async verify(loaded) {
            const { logits } = await logitsOf(gpu, loaded.weights, loaded.adapters);
            const bad = logits.findIndex((x) => !Number.isFinite(x));
            // A scale past float32's range overflows in PEFT too: only then may the forward pass be non-finite.
            if (!bytesMutated && !beyondFloat32(config))
              expect(bad, `logit ${bad} is ${logits[bad]} (${loaded.summary})`).toBe(-1);
          },
        }),
      );
    } catch (err) {
      outcome = err as Error;
    }
    // The error scope is closed and the case's buffers freed whatever happened, before anything is reported.
    const error = await gpu.device.popErrorScope();
    await gpu.freeSince(mark);
    if (outcome instanceof Error) throw outcome;
    if (error) throw new Error(`WebGPU validation error while loading a folder: ${error.message}`);
    expectReadsInside(dir.sources);
    return outcome;
  }

  it('the unmutated folders load', { timeout: FUZZ_TIMEOUT }, async () => {
    for (const folder of folders) {
      expect(await check(folder, folder.config, writeSafetensors(folder.tensors)), folder.kind).toBe('loaded');
    }
  });

  it('mutated adapter_config.json fields', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc
      .nat(folders.length - 1)
      .chain((i) =>
        fc.tuple(fc.constant(i), jsonMutations(folders[i].config, CONFIG_KEYS, 3, { values: CONFIG_VALUES })),
      );
    const tally = await fuzz('adapters config mutated', cases, fuzzRuns(60, 0.03), ([i, mutations]) =>
      check(folders[i], applyJsonMutations(folders[i].config, mutations), writeSafetensors(folders[i].tensors)),
    );
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('renamed, reshaped, retyped, dropped and duplicated tensors', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc.nat(folders.length - 1).chain((i) => {
      const paths = allLinears(bases[folders[i].model].spec).map((l) => l.path);
      return fc.tuple(fc.constant(i), tensorMutations(folders[i], paths));
    });
    const tally = await fuzz('adapters tensors mutated', cases, fuzzRuns(60, 0.03), ([i, mutations]) =>
      check(folders[i], folders[i].config, writeSafetensors(applyTensorMutations(folders[i].tensors, mutations))),
    );
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('generated LoRA folders: ranks (0 included), patterns, targets, layer selection', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.nat(bases.length - 1).chain((model) => {
      const linears = allLinears(bases[model].spec);
      const names = [...new Set(linears.map((l) => l.path.slice(l.path.lastIndexOf('.') + 1)))];
      return fc.record({
        model: fc.constant(model),
        picks: fc.subarray(linears, { minLength: 1, maxLength: 4 }),
        ranks: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 4, maxLength: 4 }),
        r: fc.integer({ min: 0, max: 3 }),
        alpha: fc.oneof(fc.integer({ min: -2, max: 16 }), fc.constantFrom<unknown>(0.5, null, 'x', 1e300, [8])),
        alphaPattern: fc.option(fc.dictionary(fc.constantFrom(...names, '.*', '('), CONFIG_VALUES, { maxKeys: 2 }), {
          nil: undefined,
        }),
        targets: fc.option(
          fc.oneof(fc.constant('picked'), fc.constantFrom<unknown>('all-linear', '.*proj', '(', names, [names[0]], [])),
          { nil: undefined },
        ),
        layers: fc.option(fc.constantFrom<unknown>([0], [1], 0, [0, 1], 'x'), { nil: undefined }),
        layersPattern: fc.option(fc.constantFrom<unknown>('layers', 'h', '(', ['layers', 'h'], 5), { nil: undefined }),
        saved: fc.option(fc.constantFrom<unknown>(['lm_head'], 'lm_head', [], [5]), { nil: undefined }),
        rslora: fc.boolean(),
      });
    });
    const tally = await fuzz('adapters generated lora', cases, fuzzRuns(60, 0.03), (c) => {
      const rng = new Rng(3);
      const tensors: NamedTensor[] = [];
      const rankPattern: Record<string, number> = {};
      c.picks.forEach((info, i) => {
        const rank = c.ranks[i];
        if (rank !== c.r) rankPattern[info.path] = rank;
        const key = `base_model.model.${info.path}`;
        tensors.push({ name: `${key}.lora_A.weight`, shape: [rank, info.in], data: rng.normals(rank * info.in, 0.1) });
        tensors.push({
          name: `${key}.lora_B.weight`,
          shape: [info.out, rank],
          data: rng.normals(info.out * rank, 0.1),
        });
      });
      const config: Record<string, unknown> = {
        peft_type: 'LORA',
        r: c.r,
        lora_alpha: c.alpha,
        rank_pattern: rankPattern,
        alpha_pattern: c.alphaPattern ?? {},
        use_rslora: c.rslora,
        target_modules: c.targets === 'picked' ? c.picks.map((p) => p.path) : (c.targets ?? null),
        layers_to_transform: c.layers ?? null,
        layers_pattern: c.layersPattern ?? null,
        modules_to_save: c.saved ?? null,
      };
      return check({ model: c.model, kind: 'generated', config, tensors }, config, writeSafetensors(tensors));
    });
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('adapter_model.safetensors header bytes and adapter_config.json text mutated', {
    timeout: FUZZ_TIMEOUT,
  }, async () => {
    const cases = fc.nat(folders.length - 1).chain((i) => {
      const weights = writeSafetensors(folders[i].tensors);
      const headerEnd = 8 + Number(new DataView(weights.buffer).getBigUint64(0, true));
      const text = JSON.stringify(folders[i].config);
      return fc.record({
        folder: fc.constant(i),
        weights: fc.option(byteMutations(weights.length, [0, headerEnd], 2), { nil: undefined }),
        config: fc.option(byteMutations(text.length, undefined, 2), { nil: undefined }),
      });
    });
    const tally = await fuzz('adapters bytes mutated', cases, fuzzRuns(40, 0.03), (c) => {
      const folder = folders[c.folder];
      const weights = writeSafetensors(folder.tensors);
      const text = utf8(JSON.stringify(folder.config));
      const config = c.config ? new TextDecoder().decode(applyByteMutations(text, c.config)) : folder.config;
      return check(folder, config, c.weights ? applyByteMutations(weights, c.weights) : weights, !!c.weights);
    });
    expect(tally.refused).toBeGreaterThan(0);
  });
});
