/**
 * Sampling settings for decoding, their checks, and the seeded uniform numbers a sampled run draws. Pure: the
 * studio's form, the worker, the CLI and the GPU sampler (sampler.ts) share it. The filters follow transformers'
 * generate: repetition penalty, then temperature, top-k, top-p, min-p (its LogitsProcessorList order).
 */

export interface SamplingSettings {
  /** Divides the logits; 0 is greedy decoding (the argmax, no random draw). */
  temperature: number;
  /** Keeps the k largest logits (and every one tied with the k-th); 0 is off. */
  topK: number;
  /** Keeps the most likely tokens until their probability reaches top_p; 1 is off. */
  topP: number;
  /** Drops tokens less likely than min_p times the most likely one; 0 is off. */
  minP: number;
  /** transformers' repetition penalty over the prompt's and the generated tokens; 1 is off. */
  repetitionPenalty: number;
  /** The same seed, prompt and settings repeat a run exactly. */
  seed: number;
}

/** Greedy decoding: what `generate` did before sampling existed, and still does by default. */
export const GREEDY: SamplingSettings = { temperature: 0, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1, seed: 0 };

/** Settings a sampled run starts from (transformers' own defaults for top_k and top_p, a common temperature). */
export const SAMPLING_DEFAULTS: SamplingSettings = {
  temperature: 0.8,
  topK: 50,
  topP: 0.95,
  minP: 0,
  repetitionPenalty: 1,
  seed: 0,
};

/**
 * Greedy with no penalty: the decoder's argmax gives the token, exactly as before sampling existed. Greedy with a
 * penalty still needs the sampler (the argmax of the penalized logits).
 */
export function isPlainGreedy(s: SamplingSettings): boolean {
  return s.temperature === 0 && s.repetitionPenalty === 1;
}

/** What is wrong with each setting, named by `name` (the CLI's flags or the form's labels); empty when valid. */
export function samplingProblems(s: SamplingSettings, name: (key: keyof SamplingSettings) => string): string[] {
  const problems: string[] = [];
  const check = (key: keyof SamplingSettings, ok: boolean, want: string) => {
    if (!ok) problems.push(`${name(key)} must be ${want} (got ${s[key]})`);
  };
  const finite = (x: number) => Number.isFinite(x);
  check('temperature', finite(s.temperature) && s.temperature >= 0, 'a number >= 0 (0 = greedy)');
  check('topK', Number.isInteger(s.topK) && s.topK >= 0, 'an integer >= 0 (0 = off)');
  check('topP', finite(s.topP) && s.topP > 0 && s.topP <= 1, 'in (0, 1] (1 = off)');
  check('minP', finite(s.minP) && s.minP >= 0 && s.minP <= 1, 'in [0, 1] (0 = off)');
  check('repetitionPenalty', finite(s.repetitionPenalty) && s.repetitionPenalty > 0, 'a number > 0 (1 = off)');
  check('seed', Number.isInteger(s.seed) && s.seed >= 0 && s.seed <= 0xffffffff, 'an integer in [0, 4294967295]');
  return problems;
}

/** PCG's output permutation (O'Neill's pcg_hash): a bijection on 32-bit words that mixes every bit. */
function pcgHash(x: number): number {
  const state = (Math.imul(x >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> ((state >>> 28) + 4)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/**
 * The uniform number in [0, 1) that draws token `step` (0 = the first generated token) of a run with `seed`:
 * a counter-based hash, so any step's number is known without drawing the ones before. 24 bits, so the value
 * is exact in f32 and the GPU compares it with what the host computed.
 */
export function uniformAt(seed: number, step: number): number {
  return (pcgHash((seed >>> 0) ^ pcgHash(step >>> 0)) >>> 8) / 16777216;
}

/**
 * Stop strings written as one line (the CLI's --stop, the playground's field): comma-separated, with backslash
 * escapes \n (newline), \t (tab), \, (a comma inside a string) and \\ (a backslash). Empty entries are dropped.
 */
export function parseStopStrings(text: string): string[] {
  const out: string[] = [];
  let current = '';
  const escapes: Record<string, string> = { n: '\n', t: '\t', ',': ',', '\\': '\\' };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length && text[i + 1] in escapes) {
      current += escapes[text[++i]];
    } else if (c === ',') {
      out.push(current);
      current = '';
    } else current += c;
  }
  out.push(current);
  return out.filter((s) => s.length > 0);
}
