import { describe, expect, it } from 'vitest';
import {
  inferSeqlen,
  loadDataset,
  NoSupervisedTokensError,
  supervisedTargets,
  truncateExample,
  type Example,
} from '../../src/data/index';
import { TokenArena } from '../../src/data/token-arena';
import { alpacaPrompt } from '../../src/data/tokenize';
import { BOS, EOS, FakeTokenizer } from './fake-tokenizer';

const M = -100;

/** BOS, `prompt` unsupervised tokens (ids 10..), `answer` supervised tokens (ids 500..). */
function example(prompt: number, answer: number): Example {
  const p = Array.from({ length: prompt }, (_, i) => 10 + i);
  const a = Array.from({ length: answer }, (_, i) => 500 + i);
  return { inputIds: [BOS, ...p, ...a], labels: [M, ...p.map(() => M), ...a] };
}

describe("inferSeqlen (LLaMA-Factory's budget split)", () => {
  it('keeps an answer shorter than half the budget whole and cuts the prompt', () => {
    expect(inferSeqlen(100, 10, 64)).toEqual({ source: 54, target: 10 });
  });
  it('keeps a prompt shorter than half whole and gives the answer the rest', () => {
    expect(inferSeqlen(10, 100, 64)).toEqual({ source: 10, target: 54 });
  });
  it('cuts both in proportion when neither fits in half', () => {
    // floor(64 * 60/100) = 38 answer tokens, the prompt gets the other 26.
    expect(inferSeqlen(40, 60, 64)).toEqual({ source: 26, target: 38 });
  });
  it('changes nothing that fits', () => {
    expect(inferSeqlen(20, 20, 64)).toEqual({ source: 20, target: 20 });
  });
});

describe('truncateExample', () => {
  it('keep-answer: the prompt loses its beginning, BOS stays, the answer is whole', () => {
    const ex = example(119, 20);
    const cut = truncateExample(ex, 64, 'keep-answer', BOS);
    expect(cut.inputIds).toHaveLength(64);
    expect(cut.inputIds[0]).toBe(BOS);
    // The last 43 prompt tokens (ids 10+76 .. 10+118), then all 20 answer tokens.
    expect(cut.inputIds.slice(1, 44)).toEqual(ex.inputIds.slice(1 + 76, 1 + 119));
    expect(cut.labels.slice(44)).toEqual(ex.labels.slice(120));
    expect(supervisedTargets(cut)).toBe(20);
  });

  it('right: a plain cut, which can leave no answer at all', () => {
    const cut = truncateExample(example(119, 20), 64, 'right', BOS);
    expect(cut.inputIds).toHaveLength(64);
    expect(supervisedTargets(cut)).toBe(0);
  });

  it('an answer longer than the budget keeps its start after a prompt that fits in half', () => {
    const cut = truncateExample(example(10, 100), 64, 'keep-answer', BOS);
    expect(cut.inputIds.slice(0, 11)).toEqual(example(10, 100).inputIds.slice(0, 11));
    expect(cut.inputIds.slice(11)).toEqual(Array.from({ length: 53 }, (_, i) => 500 + i));
  });

  it("a stored dataset's examples (Int32Array views) are cut to the same tokens, and stay Int32Array", () => {
    for (const [prompt, answer] of [
      [119, 20],
      [10, 100],
      [40, 40],
    ]) {
      const plain = example(prompt, answer);
      const stored: Example = { inputIds: Int32Array.from(plain.inputIds), labels: Int32Array.from(plain.labels) };
      for (const mode of ['keep-answer', 'right'] as const) {
        const want = truncateExample(plain, 64, mode, BOS);
        const got = truncateExample(stored, 64, mode, BOS);
        expect(got.inputIds).toBeInstanceOf(Int32Array);
        expect(got.labels).toBeInstanceOf(Int32Array);
        expect([Array.from(got.inputIds), Array.from(got.labels)]).toEqual([want.inputIds, want.labels]);
        // Into an arena: views of its one buffer, the same tokens.
        const arena = new TokenArena();
        const stored2 = truncateExample(stored, 64, mode, BOS, arena);
        const again = truncateExample(stored, 64, mode, BOS, arena);
        if (mode === 'keep-answer')
          expect((stored2.inputIds as Int32Array).buffer).toBe((again.inputIds as Int32Array).buffer);
        expect([Array.from(stored2.inputIds), Array.from(stored2.labels)]).toEqual([want.inputIds, want.labels]);
      }
    }
  });

  it('fully supervised examples (text, pre-tokenized without labels) are cut on the right', () => {
    const ex: Example = { inputIds: [1, 2, 3, 4, 5], labels: [1, 2, 3, 4, 5] };
    expect(truncateExample(ex, 3, 'keep-answer')).toEqual({ inputIds: [1, 2, 3], labels: [1, 2, 3] });
  });
});

describe('loadDataset: prompts longer than the sequence length', () => {
  const tok = new FakeTokenizer();
  // The fake tokenizer has one token per character: the Alpaca preamble alone is over 150 tokens.
  const rows = [
    { instruction: 'Name the largest planet.', input: '', output: 'Jupiter.' },
    { instruction: 'Add 2 and 3.', input: '', output: '5' },
    { instruction: 'Spell cat.', input: '', output: 'c-a-t' },
  ];
  const file = { name: 'long-prompts.json', bytes: new TextEncoder().encode(JSON.stringify(rows)) };
  const promptTokens = 1 + alpacaPrompt(rows[0].instruction, '').length;

  it('keep-answer (the default) keeps every answer and its EOS', async () => {
    expect(promptTokens).toBeGreaterThan(64);
    const ds = await loadDataset(file, tok, { seqLen: 64 });
    expect(ds.examples).toHaveLength(3);
    expect(ds.stats).toMatchObject({ truncated: 3, dropped: 0 });
    ds.examples.forEach((ex, i) => {
      expect(ex.inputIds.length).toBeLessThanOrEqual(64);
      expect(ex.inputIds[0]).toBe(BOS);
      expect(tok.decode(ex.labels.filter((l) => l !== M))).toBe(`${rows[i].output}</s>`);
      expect(tok.decode(ex.inputIds).endsWith(`### Response:\n${rows[i].output}</s>`)).toBe(true);
    });
  });

  it('right truncation loses every answer: refused with the reason and the length that would work', async () => {
    const err = await loadDataset(file, tok, { seqLen: 64, truncation: 'right' }).catch((e) => e);
    expect(err).toBeInstanceOf(NoSupervisedTokensError);
    expect(err.message).toMatch(
      /^long-prompts\.json: none of its 3 examples keeps a supervised token at 64 tokens \(truncation "right"\)/,
    );
    const prompts = rows.map((r) => 1 + alpacaPrompt(r.instruction, '').length); // BOS + the prompt
    expect(err.shortestPrompt).toBe(Math.min(...prompts));
    expect(err.message).toContain(`the shortest prompt alone is ${Math.min(...prompts)} tokens`);
  });

  it('examples left without a supervised token are dropped and counted', async () => {
    const mixed = [...rows, { instruction: 'x', input: '', output: 'y'.repeat(10) }];
    // Cut right at the end of row 0's prompt: row 0 keeps no answer; the shorter prompts keep some.
    const ds = await loadDataset({ name: 'm.json', bytes: new TextEncoder().encode(JSON.stringify(mixed)) }, tok, {
      seqLen: promptTokens,
      truncation: 'right',
    });
    expect(ds.stats.dropped).toBe(1);
    expect(ds.examples.length + ds.stats.dropped).toBe(4);
    expect(ds.examples.every((ex) => supervisedTargets(ex) > 0)).toBe(true);
    expect(
      ds.warnings.some((w) =>
        /^m\.json: dropped \d example\(s\) with no supervised token left after truncation/.test(w),
      ),
    ).toBe(true);
  });

  it('EOS closes each kept answer', async () => {
    const ds = await loadDataset(file, tok, { seqLen: 64 });
    expect(ds.examples.every((ex) => ex.inputIds[ex.inputIds.length - 1] === EOS)).toBe(true);
  });
});
