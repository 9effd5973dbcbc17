/**
 * QLoRA end to end on the GPU: bitsandbytes folders written by the quantize command load with their own codes and
 * compute exactly what the same weights dequantized compute; quantizing at load (--weights nf4) produces the very
 * words the quantize command writes; LoRA's gradients through NF4 base layers pass the finite-difference check; and
 * LoRA over an NF4 stories260K lowers held-out loss and exports an ordinary PEFT adapter.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { quantizeFolder } from '../../src/cli/quantize';
import { exportAdapter, peftFiles } from '../../src/engine/export';
import { loadModelDir } from '../../src/engine/load-model';
import { trainRun } from '../../src/engine/train-run';
import type { Gpu } from '../../src/gpu/gpu';
import { nodeDir } from '../../src/model/formats/node-source';
import { allLinears } from '../../src/model/layout';
import { ModelWeights, plannedWeightBytes, storagePlan, type WeightStorage } from '../../src/model/weights';
import { checkModelGradients, randomLora } from '../helpers/gradcheck';
import { testGpu } from '../helpers/gpu';
import { SHAKESPEARE_RUN, shakespeareExamples } from '../helpers/shakespeare';
import { logitsOf, randomSource, tinySpec } from '../helpers/tiny-models';

const GOLDEN = 'test/fixtures/hf-golden/models';

async function upload(gpu: Gpu, dir: string, storage: WeightStorage = 'auto') {
  const model = await loadModelDir(await nodeDir(dir));
  return { model, weights: await ModelWeights.upload(gpu, model.spec, model.source, { storage }) };
}

describe('QLoRA', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'lora-qlora-'));
  });

  for (const [family, to] of [
    ['llama_tied_bf16', 'nf4'],
    ['qwen2', 'nf4'],
    ['gpt2', 'nf4'],
    ['llama_gqa', 'fp4'],
    ['qwen2', 'int8'],
  ] as const) {
    it(`${family}: a ${to} bitsandbytes folder keeps its codes and evaluates exactly like its weights dequantized`, async () => {
      const gpu = await testGpu();
      const out = join(tmp, `${family}-${to}`);
      await quantizeFolder({ model: `${GOLDEN}/${family}`, to, out, blocksize: 64 });
      const kept = await upload(gpu, out);
      expect(kept.model.quantized).toMatch(
        to === 'int8' ? /8-bit/ : new RegExp(`4-bit \\(bitsandbytes ${to.toUpperCase()}`),
      );
      const linear = allLinears(kept.model.spec)[0].weight;
      expect(kept.weights.get(linear).dtype).toBe(to);
      const dequantized = await upload(gpu, out, 'f32');
      expect(dequantized.weights.get(linear).dtype).toBe('f32');
      const a = await logitsOf(gpu, kept.weights);
      const b = await logitsOf(gpu, dequantized.weights);
      expect(a.logits).toEqual(b.logits);
      expect(a.loss).toBe(b.loss);
      // Quantized, the model still computes what the original does, roughly.
      const original = await logitsOf(gpu, (await upload(gpu, `${GOLDEN}/${family}`)).weights);
      expect(Math.abs(a.loss - original.loss) / original.loss).toBeLessThan(0.1);
    });
  }

  for (const family of ['llama_tied_bf16', 'gpt2'] as const) {
    it(`${family}: --weights nf4 quantizes at load to the words the quantize command writes`, async () => {
      const gpu = await testGpu();
      const out = join(tmp, `${family}-nf4-words`);
      await quantizeFolder({ model: `${GOLDEN}/${family}`, to: 'nf4', out, blocksize: 64 });
      const written = await upload(gpu, out);
      const atLoad = await upload(gpu, `${GOLDEN}/${family}`, 'nf4');
      for (const l of allLinears(atLoad.model.spec)) {
        const mine = atLoad.weights.get(l.weight);
        expect(mine.dtype).toBe('nf4');
        expect(Array.from(await gpu.readWords(mine)), l.weight).toEqual(
          Array.from(await gpu.readWords(written.weights.get(l.weight))),
        );
      }
      // The vocabulary tensors stay as the checkpoint stores them.
      expect(atLoad.weights.lmHead.dtype).toBe(family === 'gpt2' ? 'f32' : 'bf16');
    });
  }

  for (const family of ['llama', 'gpt2'] as const) {
    for (const storage of ['nf4', 'int8'] as const) {
      it(`${family}: LoRA's gradients through ${storage} base layers pass the finite-difference check`, async () => {
        const gpu = await testGpu();
        const spec = tinySpec(family);
        const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1), { storage });
        expect(weights.get(allLinears(spec)[0].weight).dtype).toBe(storage);
        await checkModelGradients(gpu, weights, { mode: 'adapters', adapters: randomLora(gpu, spec) });
      });
    }
  }

  for (const storage of ['nf4', 'int8'] as const) {
    it(`the weight estimate (model card, run budget) counts ${storage} bytes as they are allocated`, async () => {
      const gpu = await testGpu();
      for (const family of ['llama', 'gpt2'] as const) {
        const spec = tinySpec(family);
        const source = randomSource(spec, 1);
        const planned = plannedWeightBytes(spec, storagePlan(spec, source, storage));
        expect(planned.dtypes).toContain(storage);
        const weights = await ModelWeights.upload(gpu, spec, source, { storage });
        const tensors = weights.allTensors();
        const allocated = tensors.reduce((n, t) => n + t.buffer.size, 0);
        // Buffers round up to 16 bytes.
        expect(allocated).toBeGreaterThanOrEqual(planned.bytes);
        expect(allocated - planned.bytes).toBeLessThan(16 * tensors.length);
      }
    });
  }

  it('LoRA over an NF4 stories260K lowers held-out loss and exports an ordinary PEFT LoRA', async () => {
    const gpu = await testGpu();
    const { model, weights } = await upload(gpu, 'public/demo/model', 'nf4');
    expect(weights.storageSummary()).toMatch(/^f32 .* \+ nf4|nf4/);
    const examples = await shakespeareExamples(model.tokenizer);
    const result = await trainRun(gpu, weights, model.tokenizer, examples, SHAKESPEARE_RUN);
    expect(result.stopReason).toBe('done');
    expect(result.finalEval!.loss).toBeLessThan(result.initialEval!.loss - 0.05);
    expect(result.buffersCreatedAfterStep0).toBe(0);
    const files = peftFiles(await exportAdapter(gpu, model.spec, result.state, { baseModel: 'stories260K' }));
    const config = JSON.parse(files['adapter_config.json'] as string);
    expect(config.peft_type).toBe('LORA');
    expect(JSON.stringify(config)).not.toMatch(/quant/);
  });
});
