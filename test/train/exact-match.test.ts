/** Exact match: prompts and references from the label masks, greedy answers compared as decoded text. */
import { describe, expect, it } from 'vitest';
import { IGNORE_INDEX, type Example } from '../../src/data/types';
import { Generator } from '../../src/model/generate';
import { ModelWeights } from '../../src/model/weights';
import { exactMatch, promptAndAnswer } from '../../src/train/exact-match';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

const M = IGNORE_INDEX;

describe('exact match', () => {
  it('splits an example into the prompt before the first supervised token and the supervised span (without EOS)', () => {
    expect(promptAndAnswer({ inputIds: [1, 2, 3, 4, 9], labels: [M, M, 3, 4, 9] }, 9)).toEqual({
      prompt: [1, 2],
      answer: [3, 4],
    });
    expect(promptAndAnswer({ inputIds: [1, 2, 3], labels: [M, M, M] }, null)).toBeNull(); // nothing supervised
    expect(promptAndAnswer({ inputIds: [1, 2, 3], labels: [1, 2, 3] }, null)).toBeNull(); // plain text: no prompt
  });

  it('counts an answer right exactly when the greedy continuation decodes to the reference', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 1));
    const tokenizer = {
      vocabSize: spec.vocabSize,
      bosId: null,
      eosId: null,
      padId: 0,
      addBos: false,
      encode: () => [],
      decode: (ids: number[]) => ids.join(' '),
      tokenToId: () => null,
      chatTemplate: null,
    };
    const prompts = [
      [1, 2, 3],
      [4, 5],
      [6, 7, 8, 9],
    ];
    const generator = new Generator(gpu, weights);
    const greedy = await Promise.all(prompts.map((p) => generator.greedy(p, { maxNewTokens: 2 })));
    const example = (prompt: number[], answer: number[]): Example => ({
      inputIds: [...prompt, ...answer],
      labels: [...prompt.map(() => M), ...answer],
    });
    // Two references are the model's own answers; the third differs in its last token.
    const wrong = [greedy[2][0], (greedy[2][1] + 1) % spec.vocabSize];
    const examples = [example(prompts[0], greedy[0]), example(prompts[1], greedy[1]), example(prompts[2], wrong)];
    const r = await exactMatch(gpu, weights, tokenizer, examples);
    expect(r).toEqual({ accuracy: 2 / 3, correct: 2, total: 3 });
    expect(await exactMatch(gpu, weights, tokenizer, [{ inputIds: [1, 2, 3], labels: [1, 2, 3] }])).toBeNull();
  });
});
