import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { alpacaPrompt, loadDataset, type Example, type TextTokenizer } from '../../src/data/index';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { EOS, FakeTokenizer } from './fake-tokenizer';

const M = -100;

function fixture(path: string) {
  return { name: path.split('/').pop()!, bytes: new Uint8Array(readFileSync(`test/fixtures/datasets/${path}`)) };
}

function inline(name: string, text: string) {
  return { name, bytes: new TextEncoder().encode(text) };
}

function realTokenizer(name: string): TextTokenizer {
  const dir = `test/fixtures/tokenizers/${name}`;
  const json = JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8'));
  const config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8'));
  return loadTokenizer(json, config);
}

function supervisedText(tok: TextTokenizer, ex: Example): string {
  return tok.decode(ex.labels.filter((l) => l !== M));
}

describe('loadDataset on the fixtures (fake tokenizer)', () => {
  const tok = new FakeTokenizer();

  it('c4 JSONL: text; seqLen splits long documents instead of dropping text', async () => {
    const whole = await loadDataset(fixture('c4_text_jsonl/c4_demo.jsonl'), tok);
    expect(whole.format).toBe('text');
    expect(whole.examples).toHaveLength(100);
    expect(whole.stats).toEqual({
      rows: 100,
      skipped: 0,
      truncated: 0,
      dropped: 0,
      tokens: expect.any(Number),
      assistantTurns: 0,
      emptyTurns: 0,
    });
    expect(whole.stats.tokens).toBe(whole.examples.reduce((n, e) => n + e.inputIds.length, 0));

    const split = await loadDataset(fixture('c4_text_jsonl/c4_demo.jsonl'), tok, { seqLen: 512 });
    expect(split.examples.length).toBeGreaterThan(100);
    expect(split.examples.every((e) => e.inputIds.length <= 512)).toBe(true);
    expect(split.stats.truncated).toBe(0);
    // Every token survives except one-token tails, which have nothing to predict.
    expect(whole.stats.tokens - split.stats.tokens).toBeLessThan(100);
    expect(split.warnings.some((w) => /^c4_demo\.jsonl: split \d+ document\(s\) longer than 512 tokens/.test(w))).toBe(
      true,
    );
  });

  it('tinyshakespeare: one example per blank-line-separated passage', async () => {
    const { format, examples } = await loadDataset(fixture('tinyshakespeare/input.txt'), tok);
    expect(format).toBe('text');
    expect(tok.decode(examples[0].inputIds).startsWith('<s>First Citizen:\nBefore we proceed')).toBe(true);
  });

  it('handmade alpaca CSV ("response" column): prompt masked, output + EOS supervised', async () => {
    const ds = await loadDataset(fixture('alpaca_handmade/alpaca.csv'), tok);
    expect(ds.format).toBe('alpaca');
    expect(ds.columns).toEqual({ instruction: 'instruction', input: 'input', output: 'response' });
    expect(ds.examples).toHaveLength(6);
    expect(tok.decode(ds.examples[1].inputIds)).toBe(
      `<s>${alpacaPrompt('Translate the sentence into French.', 'The cat sleeps on the sofa.')}Le chat dort sur le canap<unk>.</s>`,
    );
    expect(supervisedText(tok, ds.examples[0])).toBe('Jupiter is the largest planet in the solar system.</s>');
  });

  it('alpaca with seqLen and right truncation: truncation is counted, answers cut off entirely are dropped', async () => {
    const ds = await loadDataset(fixture('alpaca_handmade/alpaca.json'), tok, { seqLen: 200, truncation: 'right' });
    expect(ds.stats.truncated).toBe(4); // the Alpaca preamble alone is over 150 characters
    // Two prompts (with their input) fill all 200 tokens: nothing of their answer is left.
    expect(ds.stats.dropped).toBe(2);
    expect(ds.examples).toHaveLength(2);
    expect(ds.examples.every((e) => e.inputIds.length === 200)).toBe(true);
    expect(ds.warnings).toContain('alpaca.json: truncated 4 example(s) longer than 200 tokens (right)');
    expect(ds.warnings).toContain(
      'alpaca.json: dropped 2 example(s) with no supervised token left after truncation to 200 tokens',
    );
    // Keeping the answer (the default) keeps all four, each ending with its whole answer and EOS.
    const kept = await loadDataset(fixture('alpaca_handmade/alpaca.json'), tok, { seqLen: 200 });
    expect(kept.stats).toMatchObject({ truncated: 4, dropped: 0 });
    const raw = JSON.parse(readFileSync('test/fixtures/datasets/alpaca_handmade/alpaca.json', 'utf8'));
    kept.examples.forEach((ex, i) =>
      expect(supervisedText(tok, ex)).toBe(`${raw[i].output.replace('é', '<unk>')}</s>`),
    );
  });

  it('kto chat JSON (role/content) with the fallback template', async () => {
    const ds = await loadDataset(fixture('chat_messages/kto_en_demo.json'), tok);
    expect(ds.format).toBe('chat');
    expect(ds.examples).toHaveLength(100);
    const text = tok.decode(ds.examples[0].inputIds);
    expect(text.startsWith('<s><|user|>\nThe Federal Trade Commission')).toBe(true);
    expect(supervisedText(tok, ds.examples[0]).startsWith('Ooh ooh ah ah!')).toBe(true);
    expect(supervisedText(tok, ds.examples[0]).endsWith('</s>')).toBe(true);
  });

  it('LLaMA-Factory v1 chat JSONL (content parts)', async () => {
    const ds = await loadDataset(fixture('chat_messages/v1_sft_demo.jsonl'), tok);
    expect(ds.format).toBe('chat');
    expect(ds.examples).toHaveLength(50);
    expect(supervisedText(tok, ds.examples[0])).toBe(
      'Hello! I am {{name}}, an AI assistant developed by {{author}}. How can I assist you today?</s>',
    );
  });

  it('verl GSM8K Parquet: auto-detect lists the fields; a column mapping reaches struct members', async () => {
    const file = fixture('gsm8k_parquet_verl/test.parquet');
    await expect(loadDataset(file, tok)).rejects.toThrow(
      /^test\.parquet: no supported dataset format matches the fields found \(data_source, agent_name, prompt, ability, reward_model\.ground_truth, .*extra_info\.question/,
    );
    const ds = await loadDataset(file, tok, {
      columns: { prompt: 'extra_info.question', completion: 'extra_info.answer' },
    });
    expect(ds.format).toBe('prompt_completion');
    expect(ds.examples).toHaveLength(1319);
    expect(supervisedText(tok, ds.examples[0]).endsWith('#### 18</s>')).toBe(true);

    // Its "prompt" column is a chat without an assistant turn: nothing to learn from.
    await expect(loadDataset(file, tok, { format: 'chat', columns: { messages: 'prompt' } })).rejects.toThrow(
      /^test\.parquet: no usable examples \(test\.parquet: skipped 1319 examples with no supervised token/,
    );
  });
});

describe('loadDataset errors and warnings name the file', () => {
  const tok = new FakeTokenizer();

  it('malformed JSONL lines are skipped, counted and reported', async () => {
    const ds = await loadDataset(inline('mixed.jsonl', '{"text": "a b"}\n{broken\n{"text": "c d"}\n'), tok);
    expect(ds.examples).toHaveLength(2);
    expect(ds.stats).toMatchObject({ rows: 2, skipped: 1 });
    expect(ds.warnings[0]).toMatch(/^mixed\.jsonl: skipped 1 malformed line: line 2 /);
  });

  it('unknown fields, ids out of range, empty files', async () => {
    await expect(loadDataset(inline('odd.jsonl', '{"foo": 1}\n'), tok)).rejects.toThrow(
      /^odd\.jsonl: no supported dataset format matches the fields found \(foo\); supported formats: /,
    );
    const bad = `{"input_ids": [1, 2]}\n{"input_ids": [3, ${tok.vocabSize + 5}]}\n`;
    await expect(loadDataset(inline('ids.jsonl', bad), tok)).rejects.toThrow(
      `ids.jsonl: row 1: input_ids[1] = ${tok.vocabSize + 5} is not a token id in [0, ${tok.vocabSize})`,
    );
    await expect(loadDataset(inline('empty.txt', '\n\n  \n'), tok)).rejects.toThrow(
      'empty.txt: no records found (the file is empty)',
    );
    // A CSV with its header and nothing under it is not "empty": the message says what it holds.
    await expect(loadDataset(inline('header.csv', 'instruction,output\n'), tok)).rejects.toThrow(
      'header.csv: the header row (instruction, output) has no data rows under it',
    );
    await expect(loadDataset(inline('ragged.csv', 'instruction,output\na,b,c\n'), tok)).rejects.toThrow(
      /^ragged\.csv: none of its 1 data row has the header's 2 fields \(instruction, output\): row 1 /,
    );
    await expect(loadDataset(inline('x.jsonl', '{"text": "a"}\n'), tok, { seqLen: 1 })).rejects.toThrow(
      'seqLen must be an integer >= 2, got 1',
    );
  });

  it('pre-tokenized rows keep their labels', async () => {
    const ds = await loadDataset(inline('t.jsonl', `{"input_ids": [5, 6, 7], "labels": [-100, -100, ${EOS}]}\n`), tok);
    expect(ds.format).toBe('tokens');
    // Loaded examples are views into the dataset's token arena.
    expect(ds.examples.map((e) => ({ inputIds: Array.from(e.inputIds), labels: Array.from(e.labels) }))).toEqual([
      { inputIds: [5, 6, 7], labels: [M, M, EOS] },
    ]);
  });
});

describe('loadDataset with real tokenizers', () => {
  it('Llama 2 (SentencePiece): alpaca tokens equal the joined text, BOS masked, output + </s> supervised', async () => {
    const tok = realTokenizer('llama2');
    const ds = await loadDataset(fixture('alpaca_handmade/alpaca.json'), tok);
    expect(ds.examples).toHaveLength(4);
    ds.examples.forEach((ex, i) => {
      const raw = JSON.parse(readFileSync('test/fixtures/datasets/alpaca_handmade/alpaca.json', 'utf8'))[i];
      const prompt = alpacaPrompt(raw.instruction, raw.input);
      expect(Array.from(ex.inputIds)).toEqual([tok.bosId, ...tok.encode(prompt + raw.output), tok.eosId]);
      expect(ex.labels[0]).toBe(M);
      expect(supervisedText(tok, ex)).toBe(`${raw.output}</s>`);
    });
  });

  it('chat templates (Qwen2.5, Llama 2): only assistant turns and their end markers are supervised', async () => {
    const tok = realTokenizer('qwen2.5');
    expect(tok.chatTemplate).not.toBeNull();
    const messages = [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: 'It is 4.' },
      { role: 'user', content: 'And 3 + 3?' },
      { role: 'assistant', content: 'It is 6.' },
    ];
    const ds = await loadDataset(inline('chat.jsonl', JSON.stringify({ messages }) + '\n'), tok);
    const [ex] = ds.examples;
    expect(tok.decode(ex.inputIds)).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\nIt is 4.<|im_end|>\n' +
        '<|im_start|>user\nAnd 3 + 3?<|im_end|>\n<|im_start|>assistant\nIt is 6.<|im_end|>\n',
    );
    expect(supervisedText(tok, ex)).toBe('It is 4.<|im_end|>\nIt is 6.<|im_end|>\n');

    const llama = realTokenizer('llama2');
    const [lx] = (await loadDataset(inline('chat.jsonl', JSON.stringify({ messages }) + '\n'), llama)).examples;
    // Llama 2's template writes <s> before every turn (unsupervised) and " </s>" after each answer.
    expect(llama.decode(lx.inputIds)).toBe(
      '<s> [INST] What is 2 + 2? [/INST] It is 4. </s><s> [INST] And 3 + 3? [/INST] It is 6. </s>',
    );
    const supervised = lx.labels.filter((l) => l !== M);
    expect(supervised.filter((l) => l === llama.eosId)).toHaveLength(2);
    expect(llama.decode(supervised, { skipSpecial: true })).toBe('It is 4.  It is 6. '); // " It is 4. " per turn, SentencePiece's first space dropped

    const kto = await loadDataset(fixture('chat_messages/kto_en_demo.json'), tok);
    expect(kto.examples).toHaveLength(100);
    expect(kto.stats.skipped).toBe(0);
  });
});
