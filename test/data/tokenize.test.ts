import { describe, expect, it } from 'vitest';
import { normalizeMessages } from '../../src/data/chat';
import type { FormatSpec } from '../../src/data/detect';
import { alpacaPrompt, encodeSegments, tokenizeRecords } from '../../src/data/tokenize';
import type { RawRecord } from '../../src/data/types';
import { BOS, EOS, FakeTokenizer, idsOf } from './fake-tokenizer';

const M = -100;
const TEXT: FormatSpec = { format: 'text', columns: { text: 'text' } };
const PC: FormatSpec = { format: 'prompt_completion', columns: { prompt: 'prompt', completion: 'completion' } };
const ALPACA: FormatSpec = {
  format: 'alpaca',
  columns: { instruction: 'instruction', input: 'input', output: 'output' },
};
const CHAT: FormatSpec = { format: 'chat', columns: { messages: 'messages' } };
const TOKENS: FormatSpec = { format: 'tokens', columns: { input_ids: 'input_ids', labels: 'labels' } };

function one(records: RawRecord[], spec: FormatSpec, tok: FakeTokenizer) {
  const result = tokenizeRecords(records, spec, tok);
  expect(result.examples).toHaveLength(1);
  return result.examples[0];
}

/** The text of the supervised labels, in order (what the model is taught to produce). */
function supervisedText(tok: FakeTokenizer, labels: number[] | Int32Array): string {
  return tok.decode(labels.filter((l) => l !== M));
}

describe('text', () => {
  it('supervises every token; BOS is prepended and masked', () => {
    const tok = new FakeTokenizer();
    const ex = one([{ text: 'Hi there' }], TEXT, tok);
    const ids = idsOf(tok, 'Hi there');
    expect(ex.inputIds).toEqual([BOS, ...ids]);
    expect(ex.labels).toEqual([M, ...ids]);
  });

  it('adds no BOS when the tokenizer does not (addBos false, or no BOS token)', () => {
    for (const tok of [new FakeTokenizer({ addBos: false }), new FakeTokenizer({ withBos: false })]) {
      const ex = one([{ text: 'abc' }], TEXT, tok);
      expect(ex.inputIds).toEqual(idsOf(tok, 'abc'));
      expect(ex.labels).toEqual(ex.inputIds);
    }
  });
});

describe('prompt/completion', () => {
  it('masks the prompt, supervises the completion and an appended EOS', () => {
    const tok = new FakeTokenizer();
    const ex = one([{ prompt: 'Q: 2+2?\nA:', completion: ' 4' }], PC, tok);
    const p = idsOf(tok, 'Q: 2+2?\nA:');
    const c = idsOf(tok, ' 4');
    expect(ex.inputIds).toEqual([BOS, ...p, ...c, EOS]);
    expect(ex.labels).toEqual([M, ...p.map(() => M), ...c, EOS]);
  });

  it('appends no EOS when the tokenizer has none', () => {
    const tok = new FakeTokenizer({ withEos: false });
    const ex = one([{ prompt: 'a', completion: 'b' }], PC, tok);
    expect(ex.inputIds).toEqual([BOS, ...idsOf(tok, 'ab')]);
    expect(ex.labels).toEqual([M, M, ...idsOf(tok, 'b')]);
  });

  it('tokenizes prompt and completion as one string; a token straddling the join is supervised', () => {
    // ":\nA" is one token: it covers the prompt's end and the completion's start.
    const tok = new FakeTokenizer({ merges: [':\nA'] });
    const ex = one([{ prompt: 'Q:\n', completion: 'A yes' }], PC, tok);
    const joined = idsOf(tok, 'Q:\nA yes');
    expect(tok.decode([joined[1]])).toBe(':\nA'); // Q, ":\nA", " ", "y", "e", "s": the merge fired
    expect(ex.inputIds).toEqual([BOS, ...joined, EOS]);
    expect(ex.labels).toEqual([M, M, ...joined.slice(1), EOS]);
  });
});

describe('alpaca', () => {
  it('uses the exact Stanford Alpaca prompts', () => {
    expect(alpacaPrompt('Sum.', '1, 2')).toBe(
      'Below is an instruction that describes a task, paired with an input that provides further context. ' +
        'Write a response that appropriately completes the request.\n\n### Instruction:\nSum.\n\n### Input:\n1, 2\n\n### Response:\n',
    );
    expect(alpacaPrompt('Say hi.', '')).toBe(
      'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
        '### Instruction:\nSay hi.\n\n### Response:\n',
    );
  });

  it('masks the templated prompt and supervises the output plus EOS', () => {
    const tok = new FakeTokenizer();
    const ex = one([{ instruction: 'Sum.', input: '1, 2', output: '3' }], ALPACA, tok);
    const prompt = idsOf(tok, alpacaPrompt('Sum.', '1, 2'));
    expect(ex.inputIds).toEqual([BOS, ...prompt, ...idsOf(tok, '3'), EOS]);
    expect(supervisedText(tok, ex.labels)).toBe('3</s>');
    expect(ex.labels.slice(0, prompt.length + 1).every((l) => l === M)).toBe(true);
  });

  it('treats a missing input column or null input as no input', () => {
    const tok = new FakeTokenizer();
    const noInput = { format: 'alpaca', columns: { instruction: 'instruction', output: 'output' } } as FormatSpec;
    const a = one([{ instruction: 'Say hi.', output: 'hi' }], noInput, tok);
    const b = one([{ instruction: 'Say hi.', input: null, output: 'hi' }], ALPACA, tok);
    expect(a).toEqual(b);
    expect(tok.decode(a.inputIds)).toBe(`<s>${alpacaPrompt('Say hi.', '')}hi</s>`);
  });
});

describe('chat', () => {
  const conversation = [
    { role: 'system', content: 'Be terse.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Bye' },
    { role: 'assistant', content: 'Ciao.' },
  ];

  it('fallback template: documented layout, assistant turns and their EOS supervised', () => {
    const tok = new FakeTokenizer();
    const ex = one([{ messages: conversation }], CHAT, tok);
    expect(tok.decode(ex.inputIds)).toBe(
      '<s><|system|>\nBe terse.\n<|user|>\nHi\n<|assistant|>\nHello!</s>\n<|user|>\nBye\n<|assistant|>\nCiao.</s>\n',
    );
    expect(supervisedText(tok, ex.labels)).toBe('Hello!</s>Ciao.</s>');
    // Each supervised label is the token at its own position (the shift happens in batches).
    ex.labels.forEach((l, i) => l !== M && expect(l).toBe(ex.inputIds[i]));
  });

  const chatml =
    "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

  it('chat template: renders with jinja, supervises exactly the assistant turns and their end markers', () => {
    const tok = new FakeTokenizer({ chatTemplate: chatml });
    const ex = one([{ messages: conversation }], CHAT, tok);
    const rendered =
      '<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
      '<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nCiao.<|im_end|>\n';
    expect(ex.inputIds).toEqual(idsOf(tok, rendered)); // no extra BOS: templates write their own
    expect(supervisedText(tok, ex.labels)).toBe('Hello!<|im_end|>\nCiao.<|im_end|>\n');
    const firstSupervised = ex.labels.findIndex((l) => l !== M);
    expect(tok.decode(ex.inputIds.slice(0, firstSupervised)).endsWith('<|im_start|>assistant\n')).toBe(true);
  });

  it('chat template: special tokens come from the tokenizer (bos_token, eos_token)', () => {
    const llamaLike =
      "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}{{ '[INST] ' + m.content + ' [/INST]' }}" +
      "{% elif m.role == 'assistant' %}{{ ' ' + m.content + ' ' + eos_token }}{% endif %}{% endfor %}";
    const tok = new FakeTokenizer({ chatTemplate: llamaLike });
    const ex = one([{ messages: conversation.slice(1, 3) }], CHAT, tok);
    expect(ex.inputIds[0]).toBe(BOS);
    expect(ex.inputIds.filter((id) => id === BOS)).toHaveLength(1);
    expect(ex.inputIds[ex.inputIds.length - 1]).toBe(EOS);
    expect(supervisedText(tok, ex.labels)).toBe(' Hello! </s>');
  });

  it('skips rows a template rejects or cannot render incrementally, with the reason', () => {
    const strict =
      "{% if messages[0].role != 'user' %}{{ raise_exception('must start with user') }}{% endif %}" + chatml;
    const result = tokenizeRecords([{ messages: conversation }], CHAT, new FakeTokenizer({ chatTemplate: strict }));
    expect(result.examples).toHaveLength(0);
    expect(result.warnings[0]).toMatch(/^skipped 1 malformed rows \(row 0: .*must start with user/);

    // Rewrites history: earlier assistant turns are dropped once a later one exists.
    const unstable =
      "{% for m in messages %}{% if m.role != 'assistant' or loop.last %}{{ m.role + ': ' + m.content + '\\n' }}{% endif %}{% endfor %}";
    const r2 = tokenizeRecords([{ messages: conversation }], CHAT, new FakeTokenizer({ chatTemplate: unstable }));
    expect(r2.warnings[0]).toContain('does not render the conversation incrementally');
  });

  it('accepts ShareGPT conversations and content parts', () => {
    expect(
      normalizeMessages([
        { from: 'human', value: 'Hi' },
        { from: 'gpt', value: 'Yo' },
      ]),
    ).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Yo' },
    ]);
    expect(
      normalizeMessages([
        {
          role: 'assistant',
          content: [
            { type: 'reasoning', value: 'hmm' },
            { type: 'text', value: 'A' },
            { type: 'text', text: 'B' },
          ],
        },
      ]),
    ).toEqual([{ role: 'assistant', content: 'AB', reasoning_content: 'hmm' }]); // reasoning parts reach the template
    expect(() => normalizeMessages([{ role: 'user' }])).toThrow('message 0 has no text content');
    expect(() => normalizeMessages('hi')).toThrow('messages must be a list');
  });

  it('counts chats with no assistant turn as unsupervised', () => {
    const result = tokenizeRecords(
      [{ messages: [{ role: 'user', content: 'Hi' }] }, { messages: [] }],
      CHAT,
      new FakeTokenizer(),
    );
    expect(result.skipped).toBe(2);
    expect(result.warnings).toEqual([
      'skipped 1 empty examples (row 1: no messages)',
      'skipped 1 examples with no supervised token (row 0: no assistant message)',
    ]);
  });
});

describe('tokens', () => {
  const tok = new FakeTokenizer();
  const V = tok.vocabSize;

  it('passes valid ids and labels through; missing labels supervise everything', () => {
    expect(one([{ input_ids: [5, 6, 7], labels: [M, 6, 7] }], TOKENS, tok)).toEqual({
      inputIds: [5, 6, 7],
      labels: [M, 6, 7],
    });
    expect(one([{ input_ids: [5, 6, 7] }], TOKENS, tok)).toEqual({ inputIds: [5, 6, 7], labels: [5, 6, 7] });
  });

  it('rejects ids outside the vocabulary or non-integers, naming the row', () => {
    const rows = [{ input_ids: [1, 2] }, { input_ids: [1, V] }];
    expect(() => tokenizeRecords(rows, TOKENS, tok)).toThrow(
      `row 1: input_ids[1] = ${V} is not a token id in [0, ${V})`,
    );
    expect(() => tokenizeRecords([{ input_ids: [1.5] }], TOKENS, tok)).toThrow(
      'row 0: input_ids[0] = 1.5 is not a token id',
    );
    expect(() => tokenizeRecords([{ input_ids: [-1] }], TOKENS, tok)).toThrow('row 0: input_ids[0] = -1');
    expect(() => tokenizeRecords([{ input_ids: 'abc' }], TOKENS, tok)).toThrow(
      'row 0: "input_ids" must be a list of token ids',
    );
  });

  it('rejects labels of the wrong length or value', () => {
    expect(() => tokenizeRecords([{ input_ids: [1, 2], labels: [1] }], TOKENS, tok)).toThrow(
      'row 0: "labels" must be a list as long as "input_ids" (2), got 1 labels',
    );
    expect(() => tokenizeRecords([{ input_ids: [1, 2], labels: [M, -5] }], TOKENS, tok)).toThrow(
      `row 0: labels[1] = -5 is neither -100 nor a token id in [0, ${V})`,
    );
  });
});

describe('skipped rows', () => {
  it('counts empty, unsupervised and malformed rows separately, with row numbers', () => {
    const tok = new FakeTokenizer();
    const rows = [{ text: 'ok' }, { text: '   ' }, { text: 42 }, { text: ['a'] }, {}, { text: 'x' }];
    const result = tokenizeRecords(rows, TEXT, tok);
    // 42 becomes the text "42"; "x" is BOS + one token: one supervised target.
    expect(result.examples.map((e) => tok.decode(e.inputIds))).toEqual(['<s>ok', '<s>42', '<s>x']);
    expect(result.skipped).toBe(3);
    expect(result.warnings).toEqual([
      'skipped 2 malformed rows (row 3: "text" is a list, expected text; row 4: "text" is missing)',
      'skipped 1 empty examples (row 1: "text" is empty)',
    ]);
  });

  it('skips a one-token text without BOS (nothing to predict) and an empty completion', () => {
    const tok = new FakeTokenizer({ addBos: false });
    expect(tokenizeRecords([{ text: 'x' }], TEXT, tok).warnings).toEqual([
      'skipped 1 examples with no supervised token (row 0: no supervised token)',
    ]);
    expect(tokenizeRecords([{ prompt: 'p', completion: '' }], PC, tok).warnings).toEqual([
      'skipped 1 empty examples (row 0: "completion" is empty)',
    ]);
  });
});

describe('encodeSegments', () => {
  it('tokenizes the joined text once and finds boundaries by prefix tokenization', () => {
    const tok = new FakeTokenizer();
    tok.encoded.length = 0;
    const ex = encodeSegments(
      tok,
      [
        { text: 'ab', supervised: false },
        { text: 'cd', supervised: true, eosAfter: true },
        { text: 'e', supervised: false },
      ],
      false,
    );
    expect(tok.encoded).toEqual(['abcde', 'ab', 'abcd']);
    expect(tok.decode(ex.inputIds)).toBe('abcd</s>e');
    expect(supervisedText(tok, ex.labels)).toBe('cd</s>');
  });
});
