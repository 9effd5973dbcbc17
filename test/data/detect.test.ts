import { describe, expect, it } from 'vitest';
import { detectFormat } from '../../src/data/detect';

describe('detectFormat', () => {
  it('recognizes each format by its fields', () => {
    expect(detectFormat([{ text: 'a' }])).toEqual({ format: 'text', columns: { text: 'text' } });
    expect(detectFormat([{ prompt: 'p', completion: 'c' }])).toEqual({
      format: 'prompt_completion',
      columns: { prompt: 'prompt', completion: 'completion' },
    });
    expect(detectFormat([{ instruction: 'i', input: '', output: 'o' }])).toEqual({
      format: 'alpaca',
      columns: { instruction: 'instruction', input: 'input', output: 'output' },
    });
    expect(detectFormat([{ messages: [{ role: 'user', content: 'hi' }] }])).toEqual({
      format: 'chat',
      columns: { messages: 'messages' },
    });
    expect(detectFormat([{ conversations: [{ from: 'human', value: 'hi' }] }])).toEqual({
      format: 'chat',
      columns: { messages: 'conversations' },
    });
    expect(detectFormat([{ input_ids: [1, 2], labels: [1, 2] }])).toEqual({
      format: 'tokens',
      columns: { input_ids: 'input_ids', labels: 'labels' },
    });
    expect(detectFormat([{ input_ids: [1, 2] }])).toEqual({ format: 'tokens', columns: { input_ids: 'input_ids' } });
  });

  it('knows common alternative names (alpaca CSV "response", dolly "context", question/answer)', () => {
    expect(detectFormat([{ instruction: 'i', input: '', response: 'r', id: '1' }]).columns).toEqual({
      instruction: 'instruction',
      input: 'input',
      output: 'response',
    });
    expect(detectFormat([{ instruction: 'i', context: 'c', response: 'r' }]).columns.input).toBe('context');
    expect(detectFormat([{ question: 'q', answer: 'a' }])).toEqual({
      format: 'prompt_completion',
      columns: { prompt: 'question', completion: 'answer' },
    });
  });

  it('alpaca input is optional, and found even when only some rows have it', () => {
    const rows = [
      { instruction: 'i', output: 'o' },
      { instruction: 'i', output: 'o' },
      { instruction: 'i', input: 'x', output: 'o' },
    ];
    expect(detectFormat(rows).columns).toEqual({ instruction: 'instruction', input: 'input', output: 'output' });
    expect(detectFormat([{ instruction: 'i', output: 'o' }]).columns).toEqual({
      instruction: 'instruction',
      output: 'output',
    });
  });

  it('is not fooled by a few broken rows', () => {
    const rows = [{ text: 'a' }, { text: 'b' }, { oops: 1 }];
    expect(detectFormat(rows).format).toBe('text');
  });

  it('takes the user column mapping, inferring the format from the roles named', () => {
    const rows = [{ q: 'what?', a: 'that', text: 'distractor' }];
    expect(detectFormat(rows, { columns: { prompt: 'q', completion: 'a' } })).toEqual({
      format: 'prompt_completion',
      columns: { prompt: 'q', completion: 'a' },
    });
    expect(detectFormat(rows, { format: 'text', columns: { text: 'a' } })).toEqual({
      format: 'text',
      columns: { text: 'a' },
    });
    // A forced format fills unnamed roles from the usual names.
    expect(detectFormat([{ body: 'x', text: 'y' }], { format: 'text' })).toEqual({
      format: 'text',
      columns: { text: 'text' },
    });
  });

  it('lists the fields found and the formats supported when nothing matches', () => {
    expect(() => detectFormat([{ foo: 1, bar: 'x' }])).toThrow(
      /^no supported dataset format matches the fields found \(foo, bar\); supported formats: tokens \{input_ids, labels\?\}; chat .*; alpaca \{instruction, input\?, output\}; prompt_completion \{prompt, completion\}; text \{text\}\. Map your fields with columns/,
    );
  });

  it('names a mapped column that does not exist, and a forced format that lacks a field', () => {
    expect(() => detectFormat([{ a: 1 }], { columns: { text: 'body' } })).toThrow(
      'column "body" (given for text) is not in the records; fields found: a',
    );
    expect(() => detectFormat([{ instruction: 'x' }], { format: 'alpaca' })).toThrow(
      /^format "alpaca" \{instruction, input\?, output\} needs a field for output; fields found: instruction; name them with columns, e.g. columns: \{ output: "your_field" \}/,
    );
  });
});
