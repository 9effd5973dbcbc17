import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';

function load(dir: string) {
  const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
  const configPath = `${dir}/tokenizer_config.json`;
  const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : undefined;
  return loadTokenizer(json, config);
}

const T = 'test/fixtures/tokenizers';
const M = 'test/fixtures/models';

const TEXTS = [
  'Hello world! Once upon a time, naïve café 123.',
  'Hello world',
  '  leading and trailing spaces  ',
  'Tabs\tand\nnew lines\n\n',
  'Unicode: 你好, мир, مرحبا, 🤗🚀, e\u0301',
  'x',
  'def f(x):\n    return x ** 2  # code',
];

// Expected facts per fixture: vocabulary size (ids 0..max), BOS/EOS/PAD, whether BOS is added, chat template.
const FIXTURES = [
  { dir: `${T}/gpt2`, vocabSize: 50257, bosId: 50256, eosId: 50256, padId: null, addBos: false, chat: false },
  { dir: `${T}/llama2`, vocabSize: 32000, bosId: 1, eosId: 2, padId: 0, addBos: true, chat: true },
  { dir: `${T}/qwen2.5`, vocabSize: 151665, bosId: null, eosId: 151645, padId: 151643, addBos: false, chat: true },
  { dir: `${T}/smollm-135m_modified`, vocabSize: 49153, bosId: 0, eosId: 0, padId: 49152, addBos: false, chat: false },
  {
    dir: `${M}/tiny-random-LlamaForCausalLM_hf`,
    vocabSize: 32000,
    bosId: 1,
    eosId: 2,
    padId: 0,
    addBos: true,
    chat: true,
  },
  { dir: 'public/demo/model', vocabSize: 512, bosId: 1, eosId: 2, padId: null, addBos: true, chat: false },
];

describe('loadTokenizer on every tokenizer fixture', () => {
  for (const f of FIXTURES) {
    it(`${f.dir}: loads, has its special tokens, round-trips text`, () => {
      const tok = load(f.dir);
      expect({
        vocabSize: tok.vocabSize,
        bosId: tok.bosId,
        eosId: tok.eosId,
        padId: tok.padId,
        addBos: tok.addBos,
      }).toEqual({
        vocabSize: f.vocabSize,
        bosId: f.bosId,
        eosId: f.eosId,
        padId: f.padId,
        addBos: f.addBos,
      });
      expect(tok.chatTemplate !== null).toBe(f.chat);
      for (const text of TEXTS) {
        const ids = tok.encode(text);
        expect(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize)).toBe(true);
        // Qwen's normalizer is NFC: "e" + combining acute comes back as "é".
        const expected = f.dir.endsWith('qwen2.5') ? text.normalize('NFC') : text;
        expect(tok.decode(ids), `${f.dir}: ${JSON.stringify(text)}`).toBe(expected);
      }
      expect(tok.encode('')).toEqual([]);
      expect(tok.decode([])).toBe('');
      // addSpecial adds BOS exactly when the tokenizer wants one.
      const plain = tok.encode('Hello world');
      const special = tok.encode('Hello world', { addSpecial: true });
      expect(special).toEqual(f.addBos ? [f.bosId, ...plain] : plain);
      expect(tok.decode(special, { skipSpecial: true })).toBe('Hello world');
    });
  }
});

it('ignores the truncation/padding baked into a tokenizer.json (smollm fixture: Fixed 192)', () => {
  const tok = load(`${T}/smollm-135m_modified`);
  const text = 'word '.repeat(300);
  const ids = tok.encode(text);
  expect(ids.length).toBe(301);
  expect(tok.decode(ids)).toBe(text);
  expect(tok.encode('hi')).toHaveLength(1);
});

describe('known token ids', () => {
  it('GPT-2', () => {
    const tok = load(`${T}/gpt2`);
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    expect(tok.encode('<|endoftext|>')).toEqual([50256]);
    expect(tok.tokenToId('<|endoftext|>')).toBe(50256);
    expect(tok.tokenToId('no such token')).toBeNull();
  });

  it('Llama 2 adds BOS 1', () => {
    const tok = load(`${T}/llama2`);
    expect(tok.encode('Hello world', { addSpecial: true })).toEqual([1, 15043, 3186]);
    expect(tok.encode('Hello world')).toEqual([15043, 3186]);
    expect(tok.tokenToId('<s>')).toBe(1);
    expect(tok.decode([1, 15043, 3186, 2])).toBe('<s> Hello world</s>');
    expect(tok.decode([1, 15043, 3186, 2], { skipSpecial: true })).toBe('Hello world');
    expect(tok.chatTemplate).toContain('[INST]');
  });

  it('Qwen2.5', () => {
    const tok = load(`${T}/qwen2.5`);
    expect(tok.encode('Hello world')).toEqual([9707, 1879]);
    expect(tok.tokenToId('<|im_start|>')).toBe(151644);
    expect(tok.encode('<|im_start|>user')).toEqual([151644, 872]);
    expect(tok.chatTemplate).toContain('<|im_start|>');
  });

  it('the hand-written 100-token GPT-2 fixture (no merges, no decoder)', () => {
    const tok = load(`${M}/tiny-gpt2-vocab100_hf`);
    expect(tok.vocabSize).toBe(100);
    expect(tok.encode('Hello')).toEqual([9, 32, 39, 39, 42]);
    // No tokenizer_config: GPT2Tokenizer's default <|endoftext|> (id 0 here), though the vocabulary also has <s>, </s>.
    expect([tok.bosId, tok.eosId]).toEqual([0, 0]);
    expect(tok.tokenToId('</s>')).toBe(92);
  });
});

describe('loadTokenizer defaults', () => {
  const minimal = {
    model: { type: 'BPE', vocab: { '<s>': 0, '</s>': 1, a: 2, b: 3, ab: 4 }, merges: ['a b'], unk_token: null },
  };

  it('fills the keys the library needs and honours add_bos_token', () => {
    expect(loadTokenizer(minimal).encode('ab')).toEqual([4]);
    const withBos = loadTokenizer(minimal, { bos_token: '<s>', add_bos_token: true });
    expect(withBos.encode('ab', { addSpecial: true })).toEqual([0, 4]);
    const llamaClass = loadTokenizer(minimal, { bos_token: { content: '<s>' }, tokenizer_class: 'LlamaTokenizerFast' });
    expect(llamaClass.addBos).toBe(true);
    expect(
      loadTokenizer(minimal, { bos_token: '<s>', add_bos_token: false }).encode('ab', { addSpecial: true }),
    ).toEqual([4]);
    const chat = loadTokenizer(minimal, {
      chat_template: [
        { name: 'tool_use', template: 'T' },
        { name: 'default', template: 'D' },
      ],
    });
    expect(chat.chatTemplate).toBe('D');
  });

  it('rejects something that is not a tokenizer.json', () => {
    expect(() => loadTokenizer({ version: '1.0' })).toThrow(/tokenizer\.json has no model section/);
  });
});
