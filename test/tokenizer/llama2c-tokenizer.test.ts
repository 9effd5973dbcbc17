import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { readLlama2cTokenizer, type Llama2cTokenizer } from '../../src/model/formats/llama2c';
import { hfPieces, llama2cToHfTokenizer, mergesFromScores } from '../../src/tokenizer/llama2c-to-hf';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { Rng } from '../../src/util/random';

const TOKENIZER = 'test/fixtures/models/stories260K_llama2c/tok512.bin';

/**
 * Reference: llama2.c's encode() (run.c), transcribed. Start from the dummy prefix " " and one token
 * per code point (unknown code points fall back to their UTF-8 bytes, id = byte + 3), then repeatedly
 * merge the adjacent pair whose concatenation is the vocabulary piece with the highest score
 * (leftmost on ties), until no pair concatenates to a piece.
 */
function llama2cEncode(tok: Llama2cTokenizer, text: string, bos: boolean): number[] {
  const lookup = new Map(tok.vocab.map((piece, id) => [piece, id]));
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (text !== '') tokens.push(lookup.get(' ')!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const byte of new TextEncoder().encode(ch)) tokens.push(byte + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIndex = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(tok.vocab[tokens[i]] + tok.vocab[tokens[i + 1]]);
      if (id !== undefined && tok.scores[id] > bestScore) {
        bestScore = tok.scores[id];
        bestId = id;
        bestIndex = i;
      }
    }
    if (bestIndex === -1) break;
    tokens.splice(bestIndex, 2, bestId);
  }
  return tokens;
}

const SENTENCES = [
  'Once upon a time, there was a little girl named Lily.',
  'Hello world!',
  'Zoo',
  'She loved to play outside in the park. One day, she saw a big, red ball.',
  '"I can\'t," said Tom. "It\'s too heavy!"',
  'naïve café 123 — 你好 🤗',
  '  two  leading spaces and trailing ',
  'new\nline\ttab',
  'a',
  ' ',
  '',
];

describe('llama2.c tokenizer', async () => {
  const bytes = new Uint8Array(await readFile(TOKENIZER));
  const tok = readLlama2cTokenizer(bytes, 'tok512.bin');
  const hf = loadTokenizer(llama2cToHfTokenizer(tok));

  it('reads tok512.bin', () => {
    expect(tok.maxTokenLength).toBe(7);
    expect(tok.vocab).toHaveLength(512);
    expect(tok.vocab.slice(0, 3)).toEqual(['<unk>', '\n<s>\n', '\n</s>\n']);
    expect(tok.vocab[3]).toBe('<0x00>');
    expect(tok.vocab[258]).toBe('<0xFF>');
    expect(tok.vocab[259]).toBe(' t');
    expect(tok.scores[260]).toBe(-1);
    expect(readLlama2cTokenizer(bytes, 'tok512.bin', 512).vocab).toEqual(tok.vocab);
    expect(() => readLlama2cTokenizer(bytes.subarray(0, bytes.length - 3), 'cut.bin', 512)).toThrow(
      /cut\.bin: file ends inside token 511/,
    );
  });

  it('converts pieces to sentencepiece names and derives merges by score', () => {
    const pieces = hfPieces(tok);
    expect(pieces.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
    expect(pieces[259]).toBe('\u2581t');
    const merges = mergesFromScores(pieces, tok.scores);
    expect(merges[0]).toEqual(['\u2581', 't']); // " t" has the best score of all merged pieces
    expect(merges.every(([a, b]) => pieces.includes(a + b))).toBe(true);
    // Toy vocabulary: merged scores order the merges; every two-piece split of a piece is a merge.
    const toy = mergesFromScores(
      ['<unk>', '<s>', '</s>', 'a', 'b', 'c', 'ab', 'bc', 'abc'],
      [0, 0, 0, -9, -9, -9, -2, -1, -3],
    );
    expect(toy).toEqual([
      ['b', 'c'],
      ['a', 'b'],
      ['a', 'bc'],
      ['ab', 'c'],
    ]);
  });

  it('encodes exactly like llama2.c encode()', () => {
    for (const text of SENTENCES)
      expect(hf.encode(text), JSON.stringify(text)).toEqual(llama2cEncode(tok, text, false));
    expect(hf.encode('Once upon a time', { addSpecial: true })).toEqual(llama2cEncode(tok, 'Once upon a time', true));
    // Random strings over letters, punctuation, whitespace and characters outside the vocabulary.
    const rng = new Rng(5);
    const alphabet = [
      ...'abcdefghijklmnopqrstuvwxyzABCDELST   ,.!?\'"-\n0123456789<>|[]~%\\',
      'é',
      'ï',
      '你',
      '🤗',
      'â',
      '€',
      '™',
      '\t',
    ];
    for (let trial = 0; trial < 300; trial++) {
      const length = rng.int(30);
      let text = '';
      for (let i = 0; i < length; i++) text += alphabet[rng.int(alphabet.length)];
      if (/<\/?s>|<unk>/.test(text)) continue; // special tokens: HF splits them out, llama2.c does not
      expect(hf.encode(text), JSON.stringify(text)).toEqual(llama2cEncode(tok, text, false));
    }
  });

  it('decodes back to the text (byte fallback included)', () => {
    for (const text of SENTENCES) expect(hf.decode(hf.encode(text))).toBe(text);
    expect(hf.decode(hf.encode('Once upon a time', { addSpecial: true }), { skipSpecial: true })).toBe(
      'Once upon a time',
    );
    // Not in the vocabulary: the dummy prefix " " (id 410), then the UTF-8 bytes E4 BD A0 as <0xE4> <0xBD> <0xA0> (byte + 3).
    const space = tok.vocab.indexOf(' ');
    expect(space).toBe(410);
    expect(hf.encode('你')).toEqual([space, 0xe4 + 3, 0xbd + 3, 0xa0 + 3]);
    expect(hf.decode([space, 0xe4 + 3, 0xbd + 3, 0xa0 + 3])).toBe('你');
  });

  it('has the special tokens and ids of llama2.c', () => {
    expect(hf.tokenToId('<unk>')).toBe(0);
    expect(hf.tokenToId('<s>')).toBe(1);
    expect(hf.tokenToId('</s>')).toBe(2);
    expect(hf.tokenToId('<0x41>')).toBe(0x41 + 3);
    expect(hf.vocabSize).toBe(512);
  });
});
