/**
 * What the playground shows and sends: generated tokens streamed as text (no half characters, stop strings cut and
 * never flashed) and the chat prompt each source answers (the tokenizer's chat template with the generation prompt,
 * or the plain fallback layout, said as such).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { chatPrompt } from '../../src/data/chat-prompt';
import { loadTokenizer, type HfTextTokenizer } from '../../src/tokenizer/tokenizer';
import { TextStream } from '../../src/model/text-stream';

function tokenizerIn(dir: string): HfTextTokenizer {
  const read = (f: string) => JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  return loadTokenizer(read('tokenizer.json'), read('tokenizer_config.json'));
}
const qwen = tokenizerIn('test/fixtures/tokenizers/qwen2.5');
const llama = tokenizerIn('test/fixtures/models/tiny-random-LlamaForCausalLM_hf');
const demo = tokenizerIn('public/demo/model');

/** Streams `text`'s tokens after `prompt`: every visible state, and the final text. */
function stream(tok: HfTextTokenizer, prompt: string, text: string, stops: string[] = []) {
  const promptIds = tok.encode(prompt, { addSpecial: true });
  const s = new TextStream(tok, promptIds, stops);
  const shown: string[] = [];
  for (const id of tok.encode(prompt + text, { addSpecial: true }).slice(promptIds.length)) {
    const stopped = s.push(id);
    shown.push(s.visible);
    if (stopped) break;
  }
  return { shown, final: s.finish(), stop: s.stop };
}

describe('TextStream', () => {
  // Gothic letters and a rare CJK character: 4 and 3 bytes each, split across tokens by both tokenizers.
  const text = ' Café — 𐌰𐌱 龘 and ok';
  for (const [name, tok] of [
    ['byte-level BPE (Qwen2.5)', qwen],
    ['SentencePiece with byte fallback (Llama)', llama],
  ] as const) {
    it(`${name}: every state is a prefix of the text, with no replacement character; the end is the text`, () => {
      const { shown, final } = stream(tok, 'Hello', text);
      expect(final).toBe(text);
      // Multi-byte characters come in several tokens: some states hold them back.
      expect(shown.length).toBeGreaterThan(new Set(shown).size);
      for (const s of shown) {
        expect(s).not.toContain('\uFFFD');
        expect(text.startsWith(s), JSON.stringify(s)).toBe(true);
      }
      expect(shown[shown.length - 1]).toBe(text);
    });
  }

  it('stop strings: the text ends before the first one, and no part of it is ever shown', () => {
    const { shown, final, stop } = stream(qwen, 'Q:', ' fine, thanks.\nUser: and you?', ['\nUser:', 'never']);
    expect(final).toBe(' fine, thanks.');
    expect(stop).toBe('\nUser:');
    for (const s of shown) expect(s.includes('\n'), JSON.stringify(s)).toBe(false);
    // Without stop strings nothing is held back.
    expect(stream(qwen, 'Q:', ' fine.\nUser:').final).toBe(' fine.\nUser:');
  });
});

describe('chatPrompt', () => {
  const conversation = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello!' },
    { role: 'user', content: 'Who are you?' },
  ];

  it("renders the tokenizer's template with the generation prompt (ChatML), and stops at its end-of-turn token", () => {
    const p = chatPrompt(conversation, qwen);
    expect(p.layout).toBe('template');
    expect(qwen.decode(p.ids)).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n' +
        '<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n',
    );
    // Qwen2.5's EOS is <|im_end|>, the end of an assistant turn: one stop token.
    expect(p.stopIds).toEqual([qwen.tokenToId('<|im_end|>')]);
    // A base model's tokenizer (EOS <|endoftext|>) also stops at <|im_end|>.
    const base = loadTokenizer(JSON.parse(readFileSync('test/fixtures/tokenizers/qwen2.5/tokenizer.json', 'utf8')), {
      ...JSON.parse(readFileSync('test/fixtures/tokenizers/qwen2.5/tokenizer_config.json', 'utf8')),
      eos_token: '<|endoftext|>',
    });
    expect(chatPrompt(conversation, base).stopIds).toEqual([
      base.tokenToId('<|endoftext|>'),
      base.tokenToId('<|im_end|>'),
    ]);
  });

  it("Llama 2's template: BOS and [INST] written by the template; a conversation it refuses says so", () => {
    const p = chatPrompt(conversation, llama);
    const rendered = '<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Who are you? [/INST]';
    expect(p.ids).toEqual(llama.encode(rendered, { addSpecial: false }));
    expect(p.ids.filter((id) => id === llama.bosId)).toHaveLength(2);
    expect(p.stopIds).toEqual([llama.eosId]);
    expect(() => chatPrompt([{ role: 'assistant', content: 'x' }], llama)).toThrow(
      /chat template refused this conversation: Conversation roles must alternate/,
    );
  });

  it('without a template: the fallback layout chat datasets train with, EOS after past answers, stop at role headers', () => {
    expect(demo.chatTemplate).toBeNull();
    const p = chatPrompt(conversation, demo);
    expect(p.layout).toBe('fallback');
    expect(p.ids[0]).toBe(demo.bosId);
    const eosAt = p.ids.indexOf(demo.eosId!);
    expect(demo.decode(p.ids.slice(0, eosAt))).toContain('<|assistant|>\nHello!');
    expect(demo.decode(p.ids.slice(eosAt + 1), { skipSpecial: true })).toBe(
      '\n<|user|>\nWho are you?\n<|assistant|>\n',
    );
    expect(p.stopIds).toEqual([demo.eosId]);
    expect(p.stopStrings).toEqual(['<|user|>', '<|assistant|>', '<|system|>']);
  });
});
