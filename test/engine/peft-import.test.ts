/**
 * PEFT adapter folders load whole or not at all. External truth: test/fixtures/hf-golden (README.md there), losses
 * that the real transformers 4.51.3 + PEFT 0.20.0 compute with PeftModel.from_pretrained on five tiny models. Each
 * folder goes through the CLI's loading path (loadPeftFolder: adapters plus the base tensors the folder replaces);
 * every example runs alone in its row (no packing), as the golden contract says.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { graloraScale } from '../../src/adapters/gralora/config';
import { exportPeftGralora, type GraloraModuleWeights } from '../../src/adapters/gralora/peft';
import { importPeftLora } from '../../src/adapters/lora/peft';
import { padBatches, type Example } from '../../src/data/index';
import { loadModelDir } from '../../src/engine/load-model';
import { loadPeftAdapter, loadPeftFolder } from '../../src/engine/export';
import { parseConfig, type ModelSpec } from '../../src/model/config';
import { memoryStore, openCheckpoint, type NamedTensor } from '../../src/model/formats/safetensors';
import { nodeDir } from '../../src/model/formats/node-source';
import { allLinears } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { Decoder } from '../../src/model/decode';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { Rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';

const ROOT = 'test/fixtures/hf-golden';
const golden = JSON.parse(readFileSync(`${ROOT}/golden.json`, 'utf8'));
const MODELS = ['llama_gqa', 'llama_tied_bf16', 'qwen2', 'qwen3', 'gpt2'];
const KINDS = ['lora_pattern', 'pissa_to_lora', 'modules_to_save_lm_head', 'trainable_tokens', 'bias_all'];
/** A float32 engine against PEFT's float64 losses (README.md: "about 1e-5 relative on losses"). */
const REL_TOL = 1e-5;

function examples(file: string): Example[] {
  return readFileSync(`${ROOT}/${file}`, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const ids: number[] = JSON.parse(line).input_ids;
      return { inputIds: ids, labels: ids };
    });
}

function spec(model: string): ModelSpec {
  return parseConfig(JSON.parse(readFileSync(`${ROOT}/models/${model}/config.json`, 'utf8')), `${model}/config.json`);
}

/** An hf-golden adapter's config and tensors, to alter in memory. */
async function adapter(
  model: string,
  kind: string,
): Promise<{ config: Record<string, unknown>; tensors: NamedTensor[] }> {
  const dir = await nodeDir(`${ROOT}/adapters/${model}/${kind}`);
  const store = await openCheckpoint(dir);
  const tensors = await Promise.all(
    store.names().map(async (name) => ({ name, shape: [...store.info(name)!.shape], data: await store.load(name) })),
  );
  return { config: JSON.parse(await dir.text('adapter_config.json')), tensors };
}

const tensor = (name: string, shape: number[], seed = 1): NamedTensor => ({
  name,
  shape,
  data: new Rng(seed).normals(
    shape.reduce((a, b) => a * b, 1),
    0.1,
  ),
});

async function load(model: string, config: Record<string, unknown>, tensors: NamedTensor[]) {
  return loadPeftAdapter(
    await testGpu(),
    spec(model),
    config,
    await memoryStore('adapter_model.safetensors', tensors),
    'folder',
  );
}

describe('PEFT adapters against PEFT itself (hf-golden unmerged_f64 losses)', () => {
  for (const m of MODELS) {
    it(`${m}: ${KINDS.filter((k) => golden.adapters[m][k]).join(', ')}`, async () => {
      const gpu = await testGpu();
      const model = await loadModelDir(await nodeDir(`${ROOT}/models/${m}`));
      const base = await ModelWeights.upload(gpu, model.spec, model.source);
      const files = ['data/random.jsonl', `data/${m}.jsonl`];
      const data = files.map(examples);
      const seq = Math.max(...data.flat().map((e) => e.inputIds.length));
      const batches = data.map((ex) => padBatches(ex, { batch: ex.length, seq, padId: 0 }));
      const errors: string[] = [];
      const report: string[] = [];
      for (const kind of KINDS) {
        const g = golden.adapters[m][kind];
        if (!g) continue;
        const mark = gpu.mark();
        const loaded = await loadPeftFolder(gpu, base, await nodeDir(`${ROOT}/${g.dir}`));
        const graph = new TransformerGraph(gpu, loaded.weights, {
          batch: batches[0][0].batch,
          seq,
          train: 'none',
          adapters: loaded.adapters,
        });
        for (const [i, f] of files.entries()) {
          const r = await evaluate(gpu, graph, batches[i]);
          const want = g.losses[f];
          expect(r.tokens, `${m}/${kind} ${f} tokens`).toBe(want.tokens);
          const rel = Math.abs(r.loss - want.unmerged_f64) / want.unmerged_f64;
          report.push(`${kind} ${f}: ${rel.toExponential(1)}`);
          if (!(rel <= REL_TOL))
            errors.push(
              `${kind} on ${f}: loss ${r.loss}, PEFT ${want.unmerged_f64} (relative error ${rel.toExponential(2)})`,
            );
        }
        await gpu.freeSince(mark);
      }
      if (process.env.PEFT_IMPORT_REPORT) console.log(`${m}\n  ${report.join('\n  ')}`);
      expect(errors, errors.join('\n')).toEqual([]);
      gpu.checkErrors(m);
    });
  }
});

describe('what a folder replaces in the base model', () => {
  it('modules_to_save=["lm_head"] unties a tied model: lm_head gets the saved weight, the embedding stays the base tensor', async () => {
    const gpu = await testGpu();
    const model = await loadModelDir(await nodeDir(`${ROOT}/models/llama_tied_bf16`));
    const base = await ModelWeights.upload(gpu, model.spec, model.source);
    const loaded = await loadPeftFolder(
      gpu,
      base,
      await nodeDir(`${ROOT}/adapters/llama_tied_bf16/modules_to_save_lm_head`),
    );
    expect(loaded.baseWeights.untie).toBe(true);
    expect(loaded.weights.spec.tieWordEmbeddings).toBe(false);
    expect(base.spec.tieWordEmbeddings).toBe(true);
    expect(loaded.weights.get('model.embed_tokens.weight')).toBe(base.get('model.embed_tokens.weight'));
    expect(loaded.weights.lmHead.dtype).toBe('f32');
    const { tensors } = await adapter('llama_tied_bf16', 'modules_to_save_lm_head');
    expect(Array.from(await gpu.read(loaded.weights.lmHead))).toEqual(
      Array.from(tensors.find((t) => t.name === 'base_model.model.lm_head.weight')!.data),
    );
    expect(loaded.summary).toMatch(/replaces lm_head\.weight \(lm_head untied from the embedding\)/);
  });

  it('trainable tokens replace rows of the tied embedding (f32, exact), which lm_head shares; the base is untouched', async () => {
    const gpu = await testGpu();
    const model = await loadModelDir(await nodeDir(`${ROOT}/models/llama_tied_bf16`));
    const base = await ModelWeights.upload(gpu, model.spec, model.source);
    const before = await gpu.read(base.get('model.embed_tokens.weight'));
    const folder = `${ROOT}/adapters/llama_tied_bf16/trainable_tokens`;
    const loaded = await loadPeftFolder(gpu, base, await nodeDir(folder));
    expect(loaded.baseWeights.untie).toBe(false);
    expect(loaded.weights.lmHead).toBe(loaded.weights.get('model.embed_tokens.weight'));
    const after = await gpu.read(loaded.weights.lmHead);
    const ids: number[] = JSON.parse(readFileSync(`${folder}/adapter_config.json`, 'utf8')).trainable_token_indices;
    const { tensors } = await adapter('llama_tied_bf16', 'trainable_tokens');
    const rows = tensors[tensors.findIndex((t) => t.name.endsWith('trainable_tokens_delta'))].data;
    const d = 64;
    for (let row = 0; row < 320; row++) {
      const i = ids.indexOf(row);
      const want = i >= 0 ? rows.subarray(i * d, (i + 1) * d) : before.subarray(row * d, (row + 1) * d);
      expect(Array.from(after.subarray(row * d, (row + 1) * d)), `row ${row}`).toEqual(Array.from(want));
    }
    expect(Array.from(await gpu.read(base.get('model.embed_tokens.weight')))).toEqual(Array.from(before));
  });

  it("decoding uses the replaced weights: the KV-cache decoder's logits equal the full forward's, not the base's", async () => {
    const gpu = await testGpu();
    const model = await loadModelDir(await nodeDir(`${ROOT}/models/llama_tied_bf16`));
    const base = await ModelWeights.upload(gpu, model.spec, model.source);
    const loaded = await loadPeftFolder(
      gpu,
      base,
      await nodeDir(`${ROOT}/adapters/llama_tied_bf16/modules_to_save_lm_head`),
    );
    const prompt = examples('data/random.jsonl')[0].inputIds.slice(0, 12);
    const graph = new TransformerGraph(gpu, loaded.weights, {
      batch: 1,
      seq: prompt.length,
      train: 'none',
      adapters: loaded.adapters,
    });
    graph.setBatch({
      tokens: Uint32Array.from(prompt),
      targets: new Int32Array(prompt.length).fill(-100),
      positions: Uint32Array.from(prompt.keys()),
      supervised: 0,
    });
    graph.forwardList.run();
    const full = await gpu.read(graph.logits, (prompt.length - 1) * 320, 320);
    const decoded = async (weights: ModelWeights) => {
      const decoder = new Decoder(gpu, weights, { capacity: 16, prefillRows: 4, adapters: loaded.adapters });
      decoder.prefill(Array.from(prompt.slice(0, -1)));
      return decoder.stepLogits(prompt[prompt.length - 1]);
    };
    const maxDiff = (a: Float32Array) => Math.max(...a.map((x, i) => Math.abs(x - full[i])));
    const scale = Math.max(...full.map(Math.abs));
    expect(maxDiff(await decoded(loaded.weights)) / scale).toBeLessThan(1e-5);
    expect(maxDiff(await decoded(base)) / scale).toBeGreaterThan(1e-2);
  });

  it('a GraLoRA folder applies modules_to_save too', async () => {
    const s = spec('qwen2');
    const rng = new Rng(3);
    const modules: GraloraModuleWeights[] = allLinears(s)
      .filter((l) => l.kind === 'v_proj')
      .map((l) => ({
        path: l.path,
        in: l.in,
        out: l.out,
        rank: 4,
        k: 2,
        hybridRank: 0,
        scale: graloraScale(8, 4, 0),
        GA: rng.normals(l.in * 4, 0.1),
        GB: rng.normals(4 * l.out, 0.1),
        Ag: new Float32Array(0),
        Bg: new Float32Array(0),
      }));
    const { config, tensors } = exportPeftGralora(s, modules, { alpha: 8, baseModel: 'qwen2' });
    const head = tensor('base_model.model.lm_head.weight', [320, 64]);
    const loaded = await load('qwen2', { ...config, modules_to_save: ['lm_head'] }, [...tensors, head]);
    expect(loaded.format).toBe('gralora');
    expect(loaded.baseWeights).toEqual({ untie: true, replacements: [{ name: 'lm_head.weight', data: head.data }] });
    await expect(
      load('qwen2', config, [...tensors, tensor('base_model.model.model.layers.0.mlp.gate_proj.gralora_C', [2, 2])]),
    ).rejects.toThrow(
      /folder: base_model\.model\.model\.layers\.0\.mlp\.gate_proj\.gralora_C belongs to no gralora_A module/,
    );
    await expect(load('qwen2', { ...config, gralora_variant: 'x' }, tensors)).rejects.toThrow(
      /adapter_config\.json: field "gralora_variant" \("x"\) is not one this GraLoRA importer knows/,
    );
  });
});

describe('refused, naming the folder, the field or tensor, and what is supported', () => {
  it('default-saved PiSSA (it looks like a plain LoRA) needs the base weights to rebuild its residual', async () => {
    // loadPeftFolder passes them and reproduces PEFT (test/adapters/pissa.test.ts); the adapter alone cannot.
    const { config, tensors } = await adapter('qwen2', 'pissa');
    await expect(load('qwen2', config, tensors)).rejects.toThrow(
      /folder\/adapter_config\.json: init_lora_weights is "pissa": a default-saved PiSSA adapter needs the base weights/,
    );
  });

  it('config fields that change the computation', async () => {
    const { config, tensors } = await adapter('qwen2', 'lora_pattern');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ use_dora: true }, /folder: use_dora is true but .* has no lora_magnitude_vector/],
      [{ lora_bias: true }, /lora_bias is true: a bias on lora_B is not supported/],
      [
        {
          layer_replication: [
            [0, 2],
            [1, 2],
          ],
        },
        /layer_replication is \[\[0,2\],\[1,2\]\]: layer replication/,
      ],
      [{ use_qalora: true }, /use_qalora is true: QA-LoRA/],
      [{ target_parameters: ['mlp.experts.down_proj'] }, /target_parameters is .*LoRA on parameters/],
      [{ alora_invocation_tokens: [5, 6] }, /alora_invocation_tokens is \[5,6\]: Activated LoRA/],
      [{ megatron_config: { tp: 2 } }, /megatron_config is .*Megatron/],
      [
        { init_lora_weights: 'pissa_niter_4' },
        /init_lora_weights is "pissa_niter_4": a default-saved PiSSA adapter needs/,
      ],
      [
        { init_lora_weights: 'lora_ga' },
        /init_lora_weights is "lora_ga": this LoRA-GA adapter .*path_initial_model_for_weight_conversion/,
      ],
      [
        { init_lora_weights: 'olora' },
        /init_lora_weights is "olora": this OLoRA adapter .*path_initial_model_for_weight_conversion/,
      ],
      [{ init_lora_weights: 'corda' }, /this CorDA adapter/],
      [{ init_lora_weights: 'loftq' }, /init_lora_weights is "loftq": PEFT replaces the base weights/],
      [{ init_lora_weights: 'magic' }, /init_lora_weights is "magic", not one of true, false, "gaussian"/],
      [
        { future_variant: { on: true } },
        /field "future_variant" \(\{"on":true\}\) is not one this LoRA importer knows/,
      ],
      [
        { target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj', 'down_proj'] },
        /gate_proj\.lora_A\.weight adapts model\.layers\.0\.mlp\.gate_proj, which folder\/adapter_config\.json does not select/,
      ],
      [{ layers_to_transform: [1] }, /adapts model\.layers\.0\..*, which folder\/adapter_config\.json does not select/],
      [
        { modules_to_save: ['up_proj'] },
        /up_proj\.lora_A\.weight adapts model\.layers\.0\.mlp\.up_proj, which folder\/adapter_config\.json does not select/,
      ],
    ];
    for (const [change, message] of cases)
      await expect(load('qwen2', { ...config, ...change }, tensors), JSON.stringify(change)).rejects.toThrow(message);
    // Honoured: eva, orthogonal and mica only initialise A and B, which the file overwrites (plain LoRA once loaded);
    // a regex target_modules; fan_in_fan_out, which PEFT corrects to the layer type.
    const accepted: Record<string, unknown>[] = [
      ...['eva', 'orthogonal', 'mica', 'gaussian', false].map((init) => ({ init_lora_weights: init })),
      { target_modules: '.*\\.(q|k|v|o|gate|up|down)_proj' },
      { fan_in_fan_out: true },
      { layers_to_transform: [0, 1], layers_pattern: 'layers' },
    ];
    for (const change of accepted)
      await expect(load('qwen2', { ...config, ...change }, tensors), JSON.stringify(change)).resolves.toBeDefined();
  });

  it('a module the config selects but the file lacks (another model, or another config)', async () => {
    const { config, tensors } = await adapter('qwen2', 'lora_pattern');
    const without = tensors.filter((t) => !t.name.includes('layers.1.mlp.up_proj'));
    await expect(load('qwen2', config, without)).rejects.toThrow(
      /folder: folder\/adapter_config\.json selects model\.layers\.1\.mlp\.up_proj \(target_modules\), but adapter_model\.safetensors has no LoRA tensors for it/,
    );
  });

  it('tensors nothing would use, or that this engine cannot compute', async () => {
    const { config, tensors } = await adapter('qwen2', 'lora_pattern');
    const p = 'base_model.model.model.layers.0';
    const cases: [NamedTensor[], RegExp][] = [
      [
        [tensor('base_model.model.model.extra_head.weight', [4, 64])],
        /folder: base_model\.model\.model\.extra_head\.weight is neither an adapter tensor nor a parameter of this qwen2 model/,
      ],
      [
        [tensor(`${p}.mlp.gate_proj.lora_E`, [4, 1])],
        /folder: base_model\.model\.model\.layers\.0\.mlp\.gate_proj\.lora_E is not a tensor of plain LoRA/,
      ],
      [[tensor(`${p}.mlp.gate_proj.lora_magnitude_vector`, [160])], /lora_magnitude_vector is a DoRA magnitude vector/],
      [
        [tensor(`${p}.self_attn.q_proj.lora_B.bias`, [64])],
        /q_proj\.lora_B\.bias: LoRA with a bias on B \(lora_bias\) is not supported/,
      ],
      [
        [tensor(`${p}.self_attn.o_proj.base_layer.bias`, [64])],
        /folder: base_model\.model\.model\.layers\.0\.self_attn\.o_proj\.base_layer\.bias replaces model\.layers\.0\.self_attn\.o_proj\.bias, but model\.layers\.0\.self_attn\.o_proj has no bias/,
      ],
      [
        [tensor(`${p}.self_attn.q_proj.bias`, [64])],
        /q_proj\.bias names a parameter of model\.layers\.0\.self_attn\.q_proj, which the adapter wraps .*PEFT would not load it/,
      ],
      [
        [tensor(`${p}.input_layernorm.base_layer.weight`, [64])],
        /is a base_layer parameter of model\.layers\.0\.input_layernorm, which this adapter does not wrap/,
      ],
      [
        [tensor(`${p}.input_layernorm.weight`, [32])],
        /input_layernorm\.weight has shape \[32\], but model\.layers\.0\.input_layernorm\.weight is \[64\]/,
      ],
      [
        [tensor('base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta', [2, 64])],
        /trainable_tokens_delta holds trainable token rows, but folder\/adapter_config\.json has no trainable_token_indices/,
      ],
      [
        [
          tensor(`${p}.mlp.gate_proj.lora_A.default.weight`, [4, 64]),
          tensor(`${p}.mlp.gate_proj.lora_B.default.weight`, [160, 4]),
        ],
        /gate_proj has two lora_A tensors/,
      ],
      [
        [tensor('base_model.model.model.layers.9.mlp.gate_proj.lora_B.weight', [160, 4])],
        /layers\.9\.mlp\.gate_proj\.lora_B\.weight has no matching .*layers\.9\.mlp\.gate_proj\.lora_A\.weight/,
      ],
    ];
    for (const [extra, message] of cases)
      await expect(load('qwen2', config, [...tensors, ...extra]), extra[0].name).rejects.toThrow(message);
    // importPeftLora alone has nowhere to put a base tensor: it refuses rather than drop it.
    const head = (await adapter('qwen2', 'modules_to_save_lm_head')).tensors;
    await expect(importPeftLora(spec('qwen2'), config, await memoryStore('a', head), 'folder')).rejects.toThrow(
      /folder: base_model\.model\.lm_head\.weight is not a LoRA tensor .*loadPeftAdapter applies those/,
    );
  });

  it('LoRA on lm_head: not among the supported target modules', async () => {
    const { config, tensors } = await adapter('qwen2', 'lora_pattern');
    const lmHead = [
      tensor('base_model.model.lm_head.lora_A.weight', [4, 64]),
      tensor('base_model.model.lm_head.lora_B.weight', [320, 4]),
    ];
    await expect(
      load('qwen2', { ...config, target_modules: [...(config.target_modules as string[]), 'lm_head'] }, [
        ...tensors,
        ...lmHead,
      ]),
    ).rejects.toThrow(
      /folder: adapter tensor base_model\.model\.lm_head\.lora_A\.weight adapts `lm_head`, which is not among the supported target modules: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/,
    );
    const gpt2 = await adapter('gpt2', 'lora_pattern');
    const gptHead = [
      tensor('base_model.model.lm_head.lora_A.weight', [4, 64]),
      tensor('base_model.model.lm_head.lora_B.weight', [320, 4]),
    ];
    await expect(load('gpt2', gpt2.config, [...gpt2.tensors, ...gptHead])).rejects.toThrow(
      /adapts `lm_head`, which is not among the supported target modules: attn\.c_attn, attn\.c_proj, mlp\.c_fc, mlp\.c_proj/,
    );
  });

  it('trainable tokens: ids out of range, and a tied lm_head given other ids than the embedding', async () => {
    const { config, tensors } = await adapter('qwen2', 'trainable_tokens');
    const ids = config.trainable_token_indices as number[];
    await expect(
      load('qwen2', { ...config, trainable_token_indices: [...ids.slice(1), 320] }, tensors),
    ).rejects.toThrow(/trainable_token_indices must list token ids from 0 to 319/);
    await expect(
      load('qwen2', { ...config, trainable_token_indices: { embed_tokens: ids, lm_head: ids.slice(1) } }, tensors),
    ).rejects.toThrow(/trainable_token_indices gives the tied lm_head \("lm_head"\) other ids than the embedding/);
    await expect(
      load('qwen2', { ...config, trainable_token_indices: { embed_tokens: ids, lm_head: ids } }, tensors),
    ).resolves.toBeDefined();
    await expect(load('qwen2', { ...config, trainable_token_indices: ids.slice(1) }, tensors)).rejects.toThrow(
      /trainable_tokens_delta has shape \[46,64\], expected \[45, 64\]/,
    );
  });
});
