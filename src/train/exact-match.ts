/**
 * Exact-match accuracy on supervised examples (prompt/completion, Alpaca, chat, labelled input_ids): the prompt
 * is every token before the first supervised one; the reference is the supervised span; the model's greedy
 * continuation (as many tokens as the reference, stopping at EOS) must decode to the same text, trimmed.
 * Plain text has no reference answers, so it has no exact match (null).
 */
import type { LinearAdapter } from '../model/adapter';
import { IGNORE_INDEX, type Example } from '../data/types';
import type { Gpu } from '../gpu/gpu';
import { Generator } from '../model/generate';
import type { ModelWeights } from '../model/weights';
import type { TextTokenizer } from '../tokenizer/tokenizer';

export interface ExactMatchResult {
  /** Fraction of the examples answered exactly. */
  accuracy: number;
  correct: number;
  total: number;
}

/** An example's prompt and reference answer, or null when it supervises nothing or everything. */
export function promptAndAnswer(ex: Example, eosId: number | null): { prompt: number[]; answer: number[] } | null {
  const first = ex.labels.findIndex((l) => l !== IGNORE_INDEX);
  if (first <= 0) return null;
  let end = first;
  while (end < ex.labels.length && ex.labels[end] !== IGNORE_INDEX) end++;
  const answer = Array.from(ex.inputIds.slice(first, end)).filter((id) => id !== eosId);
  return answer.length ? { prompt: Array.from(ex.inputIds.slice(0, first)), answer } : null;
}

export async function exactMatch(
  gpu: Gpu,
  weights: ModelWeights,
  tokenizer: TextTokenizer,
  examples: Example[],
  opts: {
    adapters?: Map<string, LinearAdapter>;
    limit?: number;
    onProgress?: (done: number, total: number) => void;
  } = {},
): Promise<ExactMatchResult | null> {
  const pairs = examples
    .map((e) => promptAndAnswer(e, tokenizer.eosId))
    .filter((p) => p !== null)
    .slice(0, opts.limit ?? 32);
  if (pairs.length === 0) return null;
  const mark = gpu.mark();
  try {
    // The longest prompt + answer sizes the KV cache once for every example.
    const longest = pairs.reduce((m, p) => Math.max(m, p.prompt.length + p.answer.length), 1);
    const generator = new Generator(gpu, weights, opts.adapters, {
      maxPositions: Math.min(longest, weights.spec.maxPositions),
    });
    const text = (ids: number[]) => tokenizer.decode(ids, { skipSpecial: true }).trim();
    let correct = 0;
    for (const [i, { prompt, answer }] of pairs.entries()) {
      const out = await generator.greedy(prompt, { maxNewTokens: answer.length, stopId: tokenizer.eosId });
      if (text(out) === text(answer)) correct++;
      opts.onProgress?.(i + 1, pairs.length);
    }
    return { accuracy: correct / pairs.length, correct, total: pairs.length };
  } finally {
    // The decoder (its cache and graphs) is this evaluation's only.
    await gpu.freeSince(mark);
  }
}
