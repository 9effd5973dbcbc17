/**
 * Merged export (src/export/merge.ts): the model with a PEFT folder folded in computes what the base model with the
 * adapter computes. External truth: test/fixtures/hf-golden, folders PEFT 0.20.0 wrote and the losses it computed
 * (unmerged, float64); every merged model is written as its folder and loaded back as `eval --model` loads it.
 * Also this app's own methods, trained a few steps on tiny models, exported, merged; and the rounding to bf16/f16,
 * done once from float64.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { graloraScale } from '../src/adapters/gralora/config';
import { exportPeftGralora, type GraloraModuleWeights } from '../src/adapters/gralora/peft';
import { padBatches, type Batch, type Example } from '../src/data/index';
import { exportAdapter, loadPeftAdapter, openPeftFolder, peftFiles } from '../src/engine/export';
import { loadModelDir } from '../src/engine/load-model';
import { buildMethod, type MethodOptions } from '../src/engine/methods';
import { mergedFolderFiles, mergeModel } from '../src/export/merge';
import type { MergedModel } from '../src/export/merged-model';
import { roundedTensor, roundToDtype } from '../src/export/precision';
import { f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, bf16BitsToF32 } from '../src/gpu/half';
import type { Gpu } from '../src/gpu/gpu';
import type { LinearAdapter } from '../src/model/adapter';
import { memoryStore, openSafetensors } from '../src/model/formats/safetensors';
import { nodeDir } from '../src/model/formats/node-source';
import { bytesSource, memoryDir } from '../src/model/formats/source';
import { allLinears } from '../src/model/layout';
import { TransformerGraph } from '../src/model/transformer';
import { ModelWeights } from '../src/model/weights';
import { evaluate } from '../src/train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer } from '../src/train/trainer';
import { Rng } from '../src/util/random';
import { testGpu } from './helpers/gpu';
import { context, lossOf } from './helpers/residual-lora';
import { randomBatch, randomSource, TINY_CONFIGS, tinySpec } from './helpers/tiny-models';

const ROOT = 'test/fixtures/hf-golden';
const GOLDEN = ['golden.json', 'golden-dora.json', 'golden-adalora.json', 'golden-pissa.json'].map((f) =>
  JSON.parse(readFileSync(`${ROOT}/${f}`, 'utf8')),
);
/** A float32 engine against PEFT's float64 losses, and merged against unmerged (the brief's 1e-5 relative). */
const REL_TOL = 1e-5;

const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);

describe('rounding once from float64', () => {
  it('f32 values round to bf16 and f16 as the writer rounds them (ties to even, subnormals, overflow)', () => {
    const rng = new Rng(11);
    const bits = new Uint32Array(1);
    const f32 = new Float32Array(bits.buffer);
    const wrong: string[] = [];
    for (let n = 0; n < 60_000; n++) {
      bits[0] = (rng.int(2 ** 16) << 16) | rng.int(2 ** 16);
      // Every third value sits on a bf16 or f16 tie (low bits 1000...), where the direction matters.
      if (n % 3 === 1) bits[0] = (bits[0] & 0xffff0000) | 0x8000;
      if (n % 3 === 2) bits[0] = (bits[0] & 0xffffe000) | 0x1000;
      const x = f32[0];
      if (!Number.isFinite(x)) continue;
      if (roundToDtype(x, 'bf16') !== bf16BitsToF32(f32ToBf16Bits(x))) wrong.push(`bf16 of ${x}`);
      if (roundToDtype(x, 'f16') !== f16BitsToF32(f32ToF16Bits(x))) wrong.push(`f16 of ${x}`);
    }
    expect(wrong).toEqual([]);
  });

  it('a float64 value is rounded once: no double rounding through f32', () => {
    // 1 + 2^-8 + 2^-30: above the bf16 tie 1 + 2^-8, but f32 rounds it onto the tie, which then goes to even (1).
    const x = 1 + 2 ** -8 + 2 ** -30;
    expect(roundToDtype(x, 'bf16')).toBe(1 + 2 ** -7);
    expect(roundToDtype(Math.fround(x), 'bf16')).toBe(1);
    expect(roundedTensor(Float64Array.of(x, -x), 'bf16', 't')).toEqual(Float32Array.of(1 + 2 ** -7, -(1 + 2 ** -7)));
  });

  it('a value beyond f16 names the tensor', () => {
    expect(() => roundedTensor(Float64Array.of(1, 70000), 'f16', 'model.norm.weight')).toThrow(
      "model.norm.weight: value 70000 at element 1 is beyond f16's range (±65504); write bf16 or f32 instead",
    );
  });
});

function examples(file: string): Example[] {
  return readFileSync(`${ROOT}/${file}`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const ids: number[] = JSON.parse(line).input_ids;
      return { inputIds: ids, labels: ids };
    });
}

/** A merged model written as its folder and loaded back, as `eval --model` loads it. */
async function loadMerged(gpu: Gpu, merged: MergedModel): Promise<ModelWeights> {
  const model = await loadModelDir(memoryDir('merged', mergedFolderFiles(merged, 'f32')));
  return ModelWeights.upload(gpu, model.spec, model.source);
}

async function lossesOn(gpu: Gpu, weights: ModelWeights, data: Batch[][], adapters?: Map<string, LinearAdapter>) {
  const graph = new TransformerGraph(gpu, weights, {
    batch: data[0][0].batch,
    seq: data[0][0].seq,
    train: 'none',
    adapters,
  });
  const out = [];
  for (const batches of data) out.push((await evaluate(gpu, graph, batches)).loss);
  return out;
}

/** A GraLoRA folder (no PEFT fixture has one) with a hybrid part, on every linear layer. */
async function graloraFolder(weights: ModelWeights) {
  const rng = new Rng(3);
  const modules: GraloraModuleWeights[] = allLinears(weights.spec).map((l) => ({
    path: l.path,
    in: l.in,
    out: l.out,
    rank: 4,
    k: 2,
    hybridRank: 2,
    scale: graloraScale(8, 4, 2),
    GA: rng.normals(l.in * 4, 0.2),
    GB: rng.normals(4 * l.out, 0.2),
    Ag: rng.normals(2 * l.in, 0.2),
    Bg: rng.normals(l.out * 2, 0.2),
  }));
  const { config, tensors } = exportPeftGralora(weights.spec, modules, { alpha: 8, baseModel: 'x' });
  return { config, store: await memoryStore('adapter_model.safetensors', tensors) };
}

describe('PEFT folders merged: the merged model computes the adapter (hf-golden)', () => {
  // One Llama (GQA, untied) and GPT-2 (Conv1D, tied: its modules_to_save lm_head unties it).
  for (const m of ['llama_gqa', 'gpt2']) {
    it(`${m}: every fixture kind, rsLoRA and GraLoRA`, async () => {
      const gpu = await testGpu();
      const modelDir = `${ROOT}/models/${m}`;
      const model = await loadModelDir(await nodeDir(modelDir));
      const base = await ModelWeights.upload(gpu, model.spec, model.source);
      const configJson = readFileSync(`${modelDir}/config.json`, 'utf8');
      const files = ['data/random.jsonl', `data/${m}.jsonl`];
      const data = files.map(examples);
      const seq = Math.max(...data.flat().map((e) => e.inputIds.length));
      const batches = data.map((ex) => padBatches(ex, { batch: ex.length, seq, padId: 0 }));
      const kinds = readdirSync(`${ROOT}/adapters/${m}`).sort();
      const baseLoss = await lossesOn(gpu, base, batches);
      const errors: string[] = [];
      const check = async (kind: string, folder: Awaited<ReturnType<typeof openPeftFolder>>, golden?: number[]) => {
        const mark = gpu.mark();
        const merged = await mergeModel(gpu, base, { configJson, files: {}, adapter: { ...folder, where: kind } });
        const mergedLoss = await lossesOn(gpu, await loadMerged(gpu, merged), batches);
        // What loadPeftFolder (eval --adapter) does with the same folder.
        const loaded = await loadPeftAdapter(gpu, base.spec, folder.config, folder.store, kind, base);
        const adapterWeights = await base.withReplacements(gpu, loaded.baseWeights);
        const adapterLoss = await lossesOn(gpu, adapterWeights, batches, loaded.adapters);
        files.forEach((f, i) => {
          const vs = (what: string, want: number) => {
            if (!(rel(mergedLoss[i], want) <= REL_TOL))
              errors.push(`${kind} ${f}: merged ${mergedLoss[i]}, ${what} ${want} (${rel(mergedLoss[i], want)})`);
          };
          vs('adapter', adapterLoss[i]);
          if (golden) vs('PEFT', golden[i]);
          if (!(rel(adapterLoss[i], baseLoss[i]) > 1e-4)) errors.push(`${kind} ${f}: the adapter changes nothing`);
        });
        // An untied lm_head is a real tensor, and config.json says so.
        const config = JSON.parse(merged.configJson);
        expect(config.torch_dtype, kind).toBe('float32');
        if (loaded.baseWeights.untie) {
          expect(config.tie_word_embeddings, kind).toBe(false);
          expect(merged.tensors.map((t) => t.name)).toContain('lm_head.weight');
        }
        await gpu.freeSince(mark);
      };
      for (const kind of kinds) {
        const g = GOLDEN.map((x) => x.adapters[m]?.[kind]).find(Boolean);
        const folder = await openPeftFolder(await nodeDir(`${ROOT}/adapters/${m}/${kind}`), kind);
        await check(
          kind,
          folder,
          files.map((f) => g.losses[f].unmerged_f64),
        );
        // rsLoRA: the same tensors with scale alpha/√r (no PEFT golden: against the adapter).
        if (kind === 'lora_pattern')
          await check('rslora', { ...folder, config: { ...folder.config, use_rslora: true } });
      }
      await check('gralora', await graloraFolder(base));
      expect(errors, errors.join('\n')).toEqual([]);
      gpu.checkErrors(m);
    });
  }
});

const STEPS = 3;
/** Method, options, and whether to export the raw variant (PiSSA's default save, residual rebuilt by the merge). */
const OWN_METHODS: [string, Partial<MethodOptions>, boolean?][] = [
  ['lora', {}],
  ['rslora', {}],
  ['gora', { goraSteps: 2, rankMin: 1, rankMax: 8 }],
  ['gralora', { graloraK: 2, hybridRank: 2 }],
  ['gelora', { geloraSamples: 40, geloraPerSequence: 4 }],
  ['dora', {}],
  ['pissa', {}],
  ['pissa', {}, true],
  ['loraga', {}],
  // rank 2 of init_r 4: the allocator prunes, so the folder has a rank_pattern.
  ['adalora', { rank: 2, initR: 4, tinit: 1, tfinal: 1 }],
];

describe("this app's methods: trained, exported, merged: the merged model's loss is the adapter's", () => {
  for (const family of ['llama', 'gpt2'] as const) {
    for (const [method, extra, raw] of OWN_METHODS) {
      it(`${family}: ${method}${raw ? ' (raw export)' : ''}`, async () => {
        const gpu = await testGpu();
        const spec = tinySpec(family);
        const mark = gpu.mark();
        const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
        const options = { method, rank: 4, alpha: 8, targets: ['all-linear'], seed: 3, ...extra };
        const state = await buildMethod(gpu, weights, options, { ...context(spec), totalSteps: STEPS });
        const graph = new TransformerGraph(gpu, weights, {
          batch: 2,
          seq: 5,
          train: 'adapters',
          adapters: state.adapters,
        });
        const trainer = new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: 2e-2, totalSteps: STEPS }, state.training);
        for (let s = 0; s < STEPS; s++) await (await trainer.submit(randomBatch(spec, 2, 5, 200 + s)))();
        const files = peftFiles(await exportAdapter(gpu, spec, state, { baseModel: 'tiny', raw }));
        const config = JSON.parse(files['adapter_config.json'] as string);
        if (raw) expect(config.init_lora_weights).toBe('pissa');
        if (method === 'adalora')
          expect(Object.values(config.rank_pattern as Record<string, boolean[]>).flat()).toContain(false);
        const store = await openSafetensors(
          bytesSource('adapter_model.safetensors', files['adapter_model.safetensors'] as Uint8Array),
        );
        const merged = await mergeModel(gpu, weights, {
          configJson: JSON.stringify(TINY_CONFIGS[family]),
          files: {},
          adapter: { config, store, where: method },
        });
        const adapted = await lossOf(gpu, weights, state.adapters);
        const mergedLoss = await lossOf(gpu, await loadMerged(gpu, merged));
        expect(rel(mergedLoss, adapted)).toBeLessThan(REL_TOL);
        expect(rel(adapted, await lossOf(gpu, weights))).toBeGreaterThan(1e-4);
        await gpu.freeSince(mark);
        gpu.checkErrors(`${family} ${method}`);
      });
    }
  }
});
