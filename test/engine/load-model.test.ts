/** Bad model folders get errors that name the file, the key or tensor, and what was expected. */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  isHubId,
  loadModelDataset,
  loadModelDir,
  modelNaming,
  NoTokenizerError,
  previewTokenizer,
  requireTokenizer,
} from '../../src/engine/load-model';
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
    await expect(loadModelDir(memoryDir('photos', { 'cat.png': new Uint8Array(4) }))).rejects.toThrow(
      /photos: not a model folder.*config\.json.*Found: cat\.png/s,
    );
  });

  it('names the missing weights', async () => {
    const files = await fixtureFiles();
    const noWeights = { ...files };
    delete noWeights['model.safetensors'];
    await expect(loadModelDir(memoryDir('m', noWeights))).rejects.toThrow(/m has no \*\.safetensors weights/);
  });

  it('loads a folder without tokenizer.json for pre-tokenized data, and says why text needs one', async () => {
    const files = await fixtureFiles();
    delete files['tokenizer.json'];
    const m = await loadModelDir(memoryDir('m', files));
    expect(m.noTokenizer).toBe('`m` has no tokenizer.json');
    expect(m.tokenizer.vocabSize).toBe(m.spec.vocabSize);
    expect(m.warnings.join('\n')).toMatch(
      /`m` has no tokenizer\.json: only pre-tokenized \{"input_ids"\} data.*padded with token 0/,
    );
    expect(() => m.tokenizer.encode('hi')).toThrow(NoTokenizerError);
    expect(() => m.tokenizer.decode([1])).toThrow(/`m` has no tokenizer\.json: token ids must be decoded/);
    expect(() => requireTokenizer(m, 'generate encodes the prompt')).toThrow(
      '`m` has no tokenizer.json: generate encodes the prompt; pre-tokenized {"input_ids"} data works without one',
    );
    // Pre-tokenized rows load (ids checked against config.json's vocab_size); the preview shows the ids.
    const tokens = {
      name: 'ids.jsonl',
      bytes: new TextEncoder().encode('{"input_ids":[1,2,3]}\n{"input_ids":[4,5,6,7]}\n'),
    };
    const ds = await loadModelDataset(m, tokens, { seqLen: 8 });
    expect(ds.format).toBe('tokens');
    expect(ds.examples.map((e) => Array.from(e.inputIds))).toEqual([
      [1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(previewTokenizer(m).decode([4, 5, 6])).toBe('4 5 6');
    const outOfVocab = { name: 'big.jsonl', bytes: new TextEncoder().encode('{"input_ids":[1,200]}\n') };
    await expect(loadModelDataset(m, outOfVocab)).rejects.not.toThrow(NoTokenizerError);
    // Text, prompt/completion and chat data need the tokenizer: the error names both files and what works instead.
    const expected =
      '`m` has no tokenizer.json: `data.txt` is text and must be tokenized; pre-tokenized {"input_ids"} data works without one';
    await expect(
      loadModelDataset(m, { name: 'data.txt', bytes: new TextEncoder().encode('Once upon a time.\n') }),
    ).rejects.toThrow(expected);
    const chat = JSON.stringify({
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ],
    });
    await expect(
      loadModelDataset(m, { name: 'chat.jsonl', bytes: new TextEncoder().encode(chat + '\n') }),
    ).rejects.toThrow(/`m` has no tokenizer\.json: `chat\.jsonl` is text and must be tokenized/);
  });

  it("without tokenizer.json, pads and separates packed examples with config.json's EOS, and says so", async () => {
    const files = await fixtureFiles();
    delete files['tokenizer.json'];
    const config = JSON.parse(files['config.json'] as string);
    config.eos_token_id = 7;
    const m = await loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }));
    expect(m.tokenizer).toMatchObject({ eosId: 7, padId: null, vocabSize: 100 });
    expect(m.warnings.join('\n')).toMatch(
      /padded with config\.json's eos_token_id 7, which also separates packed examples/,
    );
  });

  it("points at a slow tokenizer's files when the folder has them", async () => {
    const files: Record<string, string | Uint8Array> = {
      ...(await fixtureFiles()),
      'tokenizer.model': new Uint8Array(4),
    };
    delete files['tokenizer.json'];
    const m = await loadModelDir(memoryDir('m', files));
    expect(m.noTokenizer).toMatch(
      /has tokenizer\.model: in Python, AutoTokenizer\.from_pretrained\("m"\)\.save_pretrained\("m"\) writes tokenizer\.json/,
    );
  });

  it('rejects a config without or with an unsupported model_type, naming config.json', async () => {
    const files = await fixtureFiles();
    const config = JSON.parse(files['config.json'] as string);
    delete config.model_type;
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(
      /config\.json.*model_type/,
    );
    config.model_type = 'bert';
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(
      /bert/,
    );
  });

  it('rejects tensors shaped differently from the config, naming the tensor', async () => {
    const files = await fixtureFiles();
    const config = JSON.parse(files['config.json'] as string);
    config.n_embd = 32;
    await expect(loadModelDir(memoryDir('m', { ...files, 'config.json': JSON.stringify(config) }))).rejects.toThrow(
      /wte\.weight.*expected shape \[100, 32\], found \[100, 16\]/,
    );
  });

  it('rejects a tokenizer whose vocabulary does not fit the embedding', async () => {
    const files = await fixtureFiles();
    const gpt2Tokenizer = await readFile('test/fixtures/tokenizers/gpt2/tokenizer.json', 'utf8');
    await expect(loadModelDir(memoryDir('m', { ...files, 'tokenizer.json': gpt2Tokenizer }))).rejects.toThrow(
      /tokenizer has 50257 tokens but the model's embedding has only 100 rows/,
    );
  });
});

describe("model names: what the studio shows and what PEFT's base_model_name_or_path says", () => {
  it('a Hub id in _name_or_path is both; a local path names the model by its last part', () => {
    expect(modelNaming({ _name_or_path: 'HuggingFaceTB/SmolLM2-135M' }, { folder: 'smol' }, 'llama')).toEqual({
      name: 'HuggingFaceTB/SmolLM2-135M',
      hubId: 'HuggingFaceTB/SmolLM2-135M',
    });
    expect(modelNaming({ _name_or_path: '/home/me/models/my-llama' }, { folder: 'x' }, 'llama')).toEqual({
      name: 'my-llama',
      hubId: null,
    });
    expect(modelNaming({ _name_or_path: './ckpt/final' }, { folder: 'x' }, 'llama')).toEqual({
      name: 'final',
      hubId: null,
    });
  });

  it('without _name_or_path: the folder, and files picked one by one (no folder) the model type, never "files"', () => {
    expect(modelNaming({}, { folder: 'llama_gqa' }, 'llama')).toEqual({ name: 'llama_gqa', hubId: null });
    expect(modelNaming({}, { folder: null }, 'qwen3')).toEqual({ name: 'qwen3', hubId: null });
  });

  it('isHubId: owner/name only', () => {
    for (const id of ['gpt2/x', 'Qwen/Qwen2.5-0.5B', 'a-b_c.d/e.f-g']) expect(isHubId(id)).toBe(true);
    for (const id of ['gpt2', '/abs/path', 'rel/path/deeper', '../up', './here', 'C:\\models\\x', 'owner/'])
      expect(isHubId(id)).toBe(false);
  });

  it('a folder loaded from memory is named by its folder when config.json has no _name_or_path', async () => {
    const files = await fixtureFiles();
    const config = JSON.parse(files['config.json'] as string);
    delete config._name_or_path;
    const m = await loadModelDir(memoryDir('my-gpt2', { ...files, 'config.json': JSON.stringify(config) }));
    expect(m).toMatchObject({ name: 'my-gpt2', hubId: null });
  });
});
