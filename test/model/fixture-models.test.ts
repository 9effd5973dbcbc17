/** The Hugging Face fixtures written by the transformers library load, evaluate and train. */
import { describe, expect, it } from 'vitest';
import { createLoraLayers } from '../../src/adapters/lora/model';
import { loadModelDir } from '../../src/engine/load-model';
import { nodeDir } from '../../src/model/formats/node-source';
import { defaultTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { evaluate } from '../../src/train/evaluate';
import { DEFAULT_OPTIMIZER, Trainer } from '../../src/train/trainer';
import { testGpu } from '../helpers/gpu';
import { randomBatch } from '../helpers/tiny-models';

for (const dir of ['tiny-random-LlamaForCausalLM_hf', 'tiny-gpt2-vocab100_hf']) {
  describe(dir, () => {
    it('loads, evaluates near ln(vocab) (random weights) and LoRA training lowers the loss on a batch', async () => {
      const gpu = await testGpu();
      const model = await loadModelDir(await nodeDir(`test/fixtures/models/${dir}`));
      const weights = await ModelWeights.upload(gpu, model.spec, model.source);
      const spec = model.spec;
      const batch = randomBatch(spec, 2, 8, 5);
      const evalGraph = new TransformerGraph(gpu, weights, { batch: 2, seq: 8, train: 'none' });
      const base = await evaluate(gpu, evalGraph, [batch]);
      expect(base.tokens).toBe(batch.supervised);
      expect(Math.abs(base.loss - Math.log(spec.vocabSize))).toBeLessThan(1.5);

      const layers = createLoraLayers(gpu, spec, { rank: 4, alpha: 8, targets: defaultTargets(spec), rslora: false, lrRatioB: 1 }, 0);
      const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 8, train: 'adapters', adapters: new Map(layers) });
      const trainer = new Trainer(gpu, graph, { ...DEFAULT_OPTIMIZER, lr: 5e-2, totalSteps: 8 });
      const losses: number[] = [];
      for (let i = 0; i < 8; i++) losses.push((await (await trainer.submit(batch))()).loss);
      expect(losses[0]).toBeCloseTo(base.loss, 4); // LoRA starts as the base model (B = 0)
      expect(losses[7]).toBeLessThan(losses[0] - 0.05);
      gpu.checkErrors(dir);
    });
  });
}
