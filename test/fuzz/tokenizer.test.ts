/**
 * Fuzzing tokenizer.json and tokenizer_config.json: a byte-level BPE (GPT-2 style, hf-golden) and a sentencepiece
 * BPE with byte fallback (the llama2.c tokenizer converted), with sections, types and special tokens mutated. Each
 * pair either gives a tokenizer that encodes and decodes text (ids inside its vocabulary), or fails naming the file.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readLlama2cTokenizer } from '../../src/model/formats/llama2c';
import { llama2cToHfTokenizer } from '../../src/tokenizer/llama2c-to-hf';
import { loadTokenizer, type HfTextTokenizer } from '../../src/tokenizer/tokenizer';
import {
  applyByteMutations,
  applyJsonMutations,
  byteMutations,
  fuzz,
  FUZZ_TIMEOUT,
  fuzzRuns,
  guardAllocations,
  jsonMutations,
  loadsOrRefuses,
  namedErrorProblem,
  oddValues,
  utf8,
  type JsonPath,
} from '../helpers/fuzz';

const GOLDEN = 'test/fixtures/hf-golden/models/gpt2';
const tokenizers = [
  {
    json: JSON.parse(readFileSync(`${GOLDEN}/tokenizer.json`, 'utf8')),
    config: JSON.parse(readFileSync(`${GOLDEN}/tokenizer_config.json`, 'utf8')),
  },
  {
    json: llama2cToHfTokenizer(
      readLlama2cTokenizer(new Uint8Array(readFileSync('test/fixtures/models/stories260K_llama2c/tok512.bin'))),
    ),
    config: { add_bos_token: true, bos_token: '<s>', eos_token: '</s>', chat_template: '{{ messages }}' },
  },
];
const KEYS = [
  'model',
  'type',
  'vocab',
  'merges',
  'unk_token',
  'byte_fallback',
  'added_tokens',
  'normalizer',
  'pre_tokenizer',
  'post_processor',
  'decoder',
  'single',
  'SpecialToken',
  'id',
  'processors',
  'bos_token',
  'eos_token',
  'pad_token',
  'add_bos_token',
  'tokenizer_class',
  'chat_template',
  'content',
  'clean_up_tokenization_spaces',
];
/** Values the library dispatches on (component types), besides the generic odd ones. */
const VALUES = fc.oneof(
  oddValues,
  fc.constantFrom(
    'BPE',
    'WordPiece',
    'Unigram',
    'WordLevel',
    'ByteLevel',
    'Metaspace',
    'Sequence',
    'Split',
    'Replace',
    'Strip',
    'NFKC',
    'Fuse',
    'ByteFallback',
    'TemplateProcessing',
    'Whitespace',
    '<s>',
    '</s>',
    '<|endoftext|>',
    { type: 'Sequence', processors: [{ type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>' } }] }] },
    { type: 'TemplateProcessing', single: [{ SpecialToken: { id: 5 } }] },
    { content: 7 },
    [{ name: 'default', template: 7 }],
  ),
);
/** A few of a vocabulary's (and merge list's) entries, and every other path. */
const keepPath = (path: JsonPath) =>
  !(path[0] === 'model' && (path[1] === 'vocab' || path[1] === 'merges') && path.length > 2) ||
  (typeof path[2] === 'number' ? path[2] < 3 : ['<unk>', '<s>', 'a', '!', '\u0120'].includes(String(path[2])));

/** The library does not validate its input: the loader names the file and quotes the library's reason. */
const LIBRARY_QUOTED = / could not (be loaded|encode text|decode token ids): /;

const SAMPLES = ['Hello world', '', ' ', 'héllo 🙂 ünïcödé', '<s>x</s>', '\n\n\t', '<|endoftext|>'];

function verifyTokenizer(tok: HfTextTokenizer): void {
  for (const text of SAMPLES) {
    let ids: number[];
    try {
      ids = tok.encode(text, { addSpecial: true });
    } catch (err) {
      // Text a loaded tokenizer cannot encode is refused by name too (never turned into token 0).
      const problem = namedErrorProblem(err, ['tokenizer.json'], LIBRARY_QUOTED);
      if (problem) throw new Error(problem);
      continue;
    }
    const bad = ids.find((id) => !(Number.isInteger(id) && id >= 0 && id < tok.vocabSize));
    expect(bad, `id ${bad} from ${JSON.stringify(text)}`).toBeUndefined();
    try {
      expect(typeof tok.decode(ids)).toBe('string');
    } catch (err) {
      const problem = namedErrorProblem(err, ['tokenizer.json'], LIBRARY_QUOTED);
      if (problem) throw new Error(problem);
    }
  }
  for (const id of [tok.bosId, tok.eosId, tok.padId])
    if (id !== null) expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize).toBe(true);
}

/** What a loaded tokenizer keeps of tokenizer_config.json: its chat template and its BOS, never silently dropped. */
function verifyConfigKept(tok: HfTextTokenizer, config: unknown): void {
  if (config === null || typeof config !== 'object') return;
  const { chat_template: template, bos_token: bos } = config as Record<string, unknown>;
  if (typeof template === 'string') expect(tok.chatTemplate).toBe(template);
  const bosText = typeof bos === 'string' ? bos : (bos as { content?: unknown } | null)?.content;
  if (typeof bosText === 'string' && tok.tokenToId(bosText) !== null) expect(tok.bosId).toBe(tok.tokenToId(bosText));
}

/** `files`: what a refusal must name (the file the case mutated). */
const check = (json: unknown, config: unknown, files: string[]) =>
  guardAllocations(1 << 24, () =>
    loadsOrRefuses(() => loadTokenizer(json as object, config as object | undefined), files, {
      verify(tok) {
        verifyTokenizer(tok);
        verifyConfigKept(tok, config);
      },
      wrapped: LIBRARY_QUOTED,
    }),
  );

describe('fuzz: tokenizer.json and tokenizer_config.json', () => {
  it('mutated tokenizer.json sections', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc
      .nat(tokenizers.length - 1)
      .chain((i) =>
        fc.tuple(fc.constant(i), jsonMutations(tokenizers[i].json, KEYS, 3, { values: VALUES, keep: keepPath })),
      );
    const tally = await fuzz('tokenizer.json mutated', cases, fuzzRuns(300, 0.25), ([i, mutations]) =>
      check(applyJsonMutations(tokenizers[i].json, mutations), tokenizers[i].config, ['tokenizer.json']),
    );
    expect(tally.loaded).toBeGreaterThan(0);
    expect(tally.refused).toBeGreaterThan(0);
  });

  it('mutated tokenizer_config.json (and none at all)', { timeout: FUZZ_TIMEOUT }, async () => {
    const cases = fc.nat(tokenizers.length - 1).chain((i) =>
      fc.tuple(
        fc.constant(i),
        fc.oneof(
          jsonMutations(tokenizers[i].config, KEYS, 3, { values: VALUES }).map((m) =>
            applyJsonMutations(tokenizers[i].config, m),
          ),
          VALUES,
          fc.constant(undefined),
        ),
      ),
    );
    const tally = await fuzz('tokenizer_config.json mutated', cases, fuzzRuns(300, 0.5), ([i, config]) =>
      check(tokenizers[i].json, config, ['tokenizer_config.json']),
    );
    expect(tally.loaded).toBeGreaterThan(0);
  });

  it('tokenizer.json text with mutated bytes, parsed as the loader does', { timeout: FUZZ_TIMEOUT }, async () => {
    const text = utf8(JSON.stringify(tokenizers[0].json));
    const tally = await fuzz('tokenizer.json bytes', byteMutations(text.length), fuzzRuns(200), async (mutations) => {
      const bytes = applyByteMutations(text, mutations);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        return 'refused'; // load-model.ts refuses text that is not JSON, naming the file (test/engine)
      }
      return check(json, tokenizers[0].config, ['tokenizer.json']);
    });
    expect(tally.loaded).toBeGreaterThan(0);
  });
});
