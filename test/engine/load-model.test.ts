/** Bad model folders get errors that name the file, the key or tensor, and what was expected. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { loadModelDir } from '../../src/engine/load-model';
import { memoryDir } from '../../src/model/formats/source';

const FIXTURE = 'test/fixtures/models/tiny-gpt2-vocab100_hf';

async function fixtureFiles(): Promise<Record<string, string | Uint8Array>> {
  return {
    'config.json': await readFile(`${FIXTURE}/config.json`, 'utf8'),
    'model.safetensors': new Uint8Array(await readFile(`${FIXTURE}/model.safetensors`)),
    'tokenizer.json': await readFile(`${FIXTURE}/tokenizer.json`, 'utf8'),
  };
}

describe('loadModelDir', () => {
  it('loads the fixture', async () => {
    const m = await loadModelDir(memoryDir('tiny-gpt2', await fixtureFiles()));
    expect(m.spec.family).toBe('gpt2');
    expect(m.format).toBe('huggingface');
  });

  it('explains a folder that is not a model', async () => {
    await expect(loadModelDir(memoryDir('photos', { 'cat.png': new Uint8Array(4) }))).rejects.toThrow(/photos: not a model folder.*config\.json.*Found: cat\.png/s);
  });

  it('names the missing weights and tokenizer', async () => {
    const files = await fixtureFiles();
    const noWeights = { ...files };
    delete noWeights['model.safetensors'];
    await expect(loadModelDir(memoryDir('m', noWeights))).rejects.toThrow(/m has no \*\.safetensors weights/);
    const noTokenizer = { ...files };
    delete noTokenizer['tokenizer.json'];
    await expect(loadModelDir(memoryDir('m', noTokenizer))).rejects.toThrow(/m has no tokenizer\.json/);
  });

  it('rejects a config without or with an unsupported model_type, naming config.json', async () => {
    const files = await fixtureFiles();
    const config = JSON.parse(files['config.json'] as string);
    delete config.model_type;
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(/config\.json.*model_type/);
    config.model_type = 'bert';
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(/bert/);
  });

  it('rejects tensors shaped differently from the config, naming the tensor', async () => {
    const files = await fixtureFiles();
    const config = JSON.parse(files['config.json'] as string);
    config.n_embd = 32;
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(/wte\.weight.*expected shape \[100, 32\], found \[100, 16\]/);
  });

  it('rejects a tokenizer whose vocabulary does not fit the embedding', async () => {
    const files = await fixtureFiles();
    const gpt2Tokenizer = await readFile('test/fixtures/tokenizers/gpt2/tokenizer.json', 'utf8');
    await expect(loadModelDir(memoryDir('m', { ...files, 'tokenizer.json': gpt2Tokenizer }))).rejects.toThrow(
      /tokenizer has 50257 tokens but the model's embedding has only 100 rows/,
    );
  });
});
