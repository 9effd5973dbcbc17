/** Chat records reach the template as transformers passes them; what the studio does not use is said, not dropped. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataset, type Example, type TextTokenizer } from '../../src/data/index';
import { loadModelDir } from '../../src/engine/load-model';
import { nodeDir } from '../../src/model/formats/node-source';
import { loadTokenizer } from '../../src/tokenizer/tokenizer';
import { FakeTokenizer } from './fake-tokenizer';

const M = -100;
const fixture = (path: string) => ({
  name: path.split('/').pop()!,
  bytes: new Uint8Array(readFileSync(`test/fixtures/datasets/${path}`)),
});
const inline = (name: string, text: string) => ({ name, bytes: new TextEncoder().encode(text) });

function realTokenizer(name: string): TextTokenizer {
  const dir = `test/fixtures/tokenizers/${name}`;
  return loadTokenizer(
    JSON.parse(readFileSync(`${dir}/tokenizer.json`, 'utf8')),
    JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')),
  );
}

const supervisedText = (tok: TextTokenizer, ex: Example) => tok.decode(ex.labels.filter((l) => l !== M));

/** ChatML that writes content only: tool calls and reasoning render as nothing. */
const CONTENT_ONLY_TEMPLATE =
  "{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

describe('chat records with reasoning, tool calls, tool messages and tools (LLaMA-Factory reason_tool_use_demo_50)', () => {
  it("Qwen2.5's template writes the tool calls and the tools list: no assistant turn renders empty", async () => {
    const tok = realTokenizer('qwen2.5');
    const ds = await loadDataset(fixture('chat_messages/reason_tool_use_demo_50.jsonl'), tok);
    expect(ds.examples).toHaveLength(50);
    expect(ds.stats).toMatchObject({ assistantTurns: 112, emptyTurns: 0 });
    const calls = ds.examples.filter((ex) => supervisedText(tok, ex).includes('<tool_call>\n{"name": "'));
    expect(calls.length).toBeGreaterThan(20);
    // The tools list is part of the (unsupervised) system prompt.
    const first = tok.decode(ds.examples[0].inputIds);
    expect(first).toContain('<tools>');
    expect(first).toContain('"name": "get_device_asset_by_identifier"');
    expect(supervisedText(tok, ds.examples[0])).not.toContain('<tools>');
    expect(ds.warnings.filter((w) => /render empty/.test(w))).toEqual([]);
  });

  it('a template that does not write tool calls: those turns render empty, are not trained on, and are counted', async () => {
    const tok = new FakeTokenizer({ chatTemplate: CONTENT_ONLY_TEMPLATE });
    const ds = await loadDataset(fixture('chat_messages/reason_tool_use_demo_50.jsonl'), tok);
    expect(ds.stats).toMatchObject({ assistantTurns: 112, emptyTurns: 53 });
    expect(ds.warnings).toContain(
      'reason_tool_use_demo_50.jsonl: 53 of 112 assistant turns render empty with this chat template (for example tool calls or reasoning the template does not write) and are not trained on',
    );
    for (const ex of ds.examples) expect(supervisedText(tok, ex)).not.toMatch(/^<\|end\|>|<\|end\|><\|end\|>/);
    // Every supervised span is assistant text followed by its end marker.
    const total = ds.examples.reduce((n, ex) => n + (supervisedText(tok, ex).match(/<\|end\|>/g) ?? []).length, 0);
    expect(total).toBe(112 - 53);
  });

  it('the fallback layout does not train on empty assistant turns either', async () => {
    const tok = new FakeTokenizer();
    const row = {
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: '', tool_calls: [{ type: 'function', function: { name: 'f', arguments: {} } }] },
        { role: 'tool', content: '1' },
        { role: 'assistant', content: 'done' },
      ],
    };
    const ds = await loadDataset(inline('t.jsonl', JSON.stringify(row) + '\n'), tok);
    expect(ds.stats).toMatchObject({ assistantTurns: 2, emptyTurns: 1 });
    expect(supervisedText(tok, ds.examples[0])).toBe('done</s>');
  });
});

describe('fields the studio does not use are named', () => {
  it("KTO's label", async () => {
    const ds = await loadDataset(fixture('chat_messages/kto_en_demo.json'), new FakeTokenizer());
    expect(ds.unusedFields).toEqual(['label']);
    expect(ds.warnings).toContain('kto_en_demo.json: field "label" not used by the chat format (ignored)');
  });

  it('extra columns of an Alpaca CSV', async () => {
    const ds = await loadDataset(fixture('alpaca_handmade/alpaca.csv'), new FakeTokenizer());
    expect(ds.unusedFields).toEqual(['id']);
  });
});

describe('prompt/completion join', () => {
  const rows = inline('pc.jsonl', JSON.stringify({ prompt: 'Q: 2+2?', completion: 'A: 4' }) + '\n');

  it('nothing between them by default (TRL), or a space, a newline, or the chat template', async () => {
    const tok = new FakeTokenizer({ chatTemplate: CONTENT_ONLY_TEMPLATE });
    const text = async (promptJoin?: 'none' | 'space' | 'newline' | 'chat-template') => {
      const [ex] = (await loadDataset(rows, tok, promptJoin ? { promptJoin } : {})).examples;
      return [tok.decode(ex.inputIds), supervisedText(tok, ex)];
    };
    expect(await text()).toEqual(['<s>Q: 2+2?A: 4</s>', 'A: 4</s>']);
    expect(await text('space')).toEqual(['<s>Q: 2+2? A: 4</s>', 'A: 4</s>']);
    expect(await text('newline')).toEqual(['<s>Q: 2+2?\nA: 4</s>', 'A: 4</s>']);
    expect(await text('chat-template')).toEqual(['<|user|>Q: 2+2?<|end|><|assistant|>A: 4<|end|>', 'A: 4<|end|>']);
  });

  it('the chat-template join needs a template', async () => {
    await expect(loadDataset(rows, new FakeTokenizer(), { promptJoin: 'chat-template' })).rejects.toThrow(
      /needs a tokenizer with a chat template/,
    );
  });
});

describe("chat templates get the tokenizer's own special tokens (tokenizer_config.json), as apply_chat_template does", () => {
  it('tiny Llama: config.json says bos 0 / eos 1, tokenizer_config.json says <s> / </s>; the render is <s> ... </s>', async () => {
    const model = await loadModelDir(await nodeDir('test/fixtures/models/tiny-random-LlamaForCausalLM_hf'));
    expect(model.spec.bosTokenId).toBe(0);
    const tok = model.tokenizer;
    expect(tok.decode([tok.bosId!])).toBe('<s>');
    expect(tok.decode([tok.eosId!])).toBe('</s>');
    const row = {
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello' },
      ],
    };
    const [ex] = (await loadDataset(inline('c.jsonl', JSON.stringify(row) + '\n'), tok)).examples;
    expect(tok.decode(ex.inputIds)).toBe('<s> [INST] Hi [/INST] Hello </s>');
    expect(ex.labels[ex.labels.length - 1]).toBe(tok.eosId);
  });
});
