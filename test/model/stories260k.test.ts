/**
 * External truth: llama2.c documents that stories260K greedily generates "Once upon a time, there was a little
 * girl named Lily. She loved to play outside in the park..." from BOS. Both the llama2.c checkpoint read directly
 * and its Hugging Face conversion (the shipped demo) must produce it, token for token.
 */
import { describe, expect, it } from 'vitest';
import { loadModelDir } from '../../src/engine/load-model';
import { Gpu } from '../../src/gpu/gpu';
import { nodeDir } from '../../src/model/formats/node-source';
import { Generator } from '../../src/model/generate';
import { ModelWeights } from '../../src/model/weights';
import { testGpu } from '../helpers/gpu';

const DOCUMENTED = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';

async function generateFromBos(gpu: Gpu, dir: string, tokens: number) {
  const model = await loadModelDir(await nodeDir(dir));
  const weights = await ModelWeights.upload(gpu, model.spec, model.source);
  const bos = model.tokenizer.bosId!;
  const ids = await new Generator(gpu, weights).greedy([bos], { maxNewTokens: tokens, stopId: model.tokenizer.eosId });
  return { ids, text: model.tokenizer.decode(ids, { skipSpecial: true }), format: model.format };
}

describe('stories260K', () => {
  it('generates the text llama2.c documents, identically from the llama2.c file and the Hugging Face folder', async () => {
    const gpu = await testGpu();
    const direct = await generateFromBos(gpu, 'test/fixtures/models/stories260K_llama2c', 26);
    const converted = await generateFromBos(gpu, 'public/demo/model', 26);
    expect(direct.format).toBe('llama2c');
    expect(converted.format).toBe('huggingface');
    expect(direct.ids).toEqual(converted.ids);
    expect(DOCUMENTED.startsWith(direct.text) || direct.text.startsWith(DOCUMENTED)).toBe(true);
    expect(direct.text.length).toBeGreaterThan(60);
  });
});
