/**
 * tokenizer.ggml.tokens / token_type / scores as convert_hf_to_gguf.py writes them from a tokenizer.json:
 * byte-level BPE through get_vocab_base (_set_vocab_gpt2), sentencepiece-style BPE through gguf-py's LlamaHfVocab
 * (_set_vocab_llama_hf). Ids the tokenizer lacks below config.json's vocab_size become "[PAD<id>]" (UNUSED), so the
 * token list is as long as the embedding.
 */
import { type HfTokenizer, type Json, namedToken } from './hf-tokenizer';

/** llama.cpp token types (gguf-py TokenType). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface Vocab {
  tokens: string[];
  types: Int32Array;
}

/** Tokens convert_hf_to_gguf.py treats as control tokens even when an added token is not marked special. */
function looksSpecial(token: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(token) ||
    (token.startsWith('<|') && token.endsWith('|>')) ||
    (token.startsWith('<｜') && token.endsWith('｜>')) ||
    (token.startsWith('<unused') && token.endsWith('>'))
  );
}

function checkVocabSize(tok: HfTokenizer, vocabSize: number): void {
  for (const [id, token] of tok.tokens) {
    if (id >= vocabSize) {
      throw new Error(
        `tokenizer.json has token ${JSON.stringify(token)} at id ${id}, outside config.json's vocab_size ${vocabSize} ` +
          '(the embedding has no row for it)',
      );
    }
  }
}

/** Byte-level BPE (get_vocab_base): added tokens are CONTROL when special, else USER_DEFINED; the rest NORMAL. */
export function byteLevelVocab(tok: HfTokenizer, vocabSize: number): Vocab {
  checkVocabSize(tok, vocabSize);
  const tokens: string[] = [];
  const types = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const token = tok.tokens.get(id);
    const added = tok.added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types[id] = TOKEN_TYPE.UNUSED;
    } else if (added) {
      const control = added.special || looksSpecial(token);
      // llama.cpp expects user-defined tokens pre-normalized: a sentencepiece space as a plain one.
      tokens.push(control ? token : token.replaceAll('\u2581', ' '));
      types[id] = control ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED;
    } else {
      tokens.push(token);
      types[id] = TOKEN_TYPE.NORMAL;
    }
  }
  return { tokens, types };
}

const BYTE_TOKEN = /^<0x[0-9A-Fa-f]{2}>$/;

/** Sentencepiece-style BPE (LlamaHfVocab): <0xXX> pieces are BYTE, special tokens CONTROL, other added USER_DEFINED. */
export function sentencepieceVocab(tok: HfTokenizer, vocabSize: number): Vocab & { scores: Float32Array } {
  checkVocabSize(tok, vocabSize);
  const specialTexts = new Set(
    ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token']
      .map((key) => namedToken(tok.config, key))
      .filter((t): t is string => t !== null),
  );
  for (const extra of (tok.config?.additional_special_tokens as unknown[] | undefined) ?? []) {
    const text = typeof extra === 'string' ? extra : (extra as Json | null)?.content;
    if (typeof text === 'string') specialTexts.add(text);
  }
  const scores = mergeRankScores(tok, vocabSize);
  const tokens: string[] = [];
  const types = new Int32Array(vocabSize);
  for (let id = 0; id < vocabSize; id++) {
    const token = tok.tokens.get(id);
    const added = tok.added.get(id);
    if (token === undefined) {
      tokens.push(`[PAD${id}]`);
      types[id] = TOKEN_TYPE.UNUSED;
      scores[id] = -1000;
      continue;
    }
    tokens.push(token);
    if (BYTE_TOKEN.test(token)) types[id] = TOKEN_TYPE.BYTE;
    else if (added?.special || specialTexts.has(token)) types[id] = TOKEN_TYPE.CONTROL;
    else if (added && !Object.hasOwn((tok.json.model as Json).vocab as Json, token)) {
      types[id] = TOKEN_TYPE.USER_DEFINED;
    } else types[id] = TOKEN_TYPE.NORMAL;
  }
  return { tokens, types, scores };
}

/**
 * Scores for llama.cpp's sentencepiece tokenizer, which merges the adjacent pair whose concatenation is the
 * vocabulary piece with the highest score. The token of the merge ranked r in tokenizer.json scores -r, so that
 * order is the BPE merge order and llama.cpp tokenizes as the tokenizer.json does. (LlamaHfVocab gives every
 * token -1000, which leaves llama.cpp's merges in text order rather than rank order; the tokenizer.model scores it
 * stands in for are not in a tokenizer.json.) Single characters, bytes and specials, which no merge produces,
 * score 0 (never read: llama.cpp starts from them); a longer piece no merge produces scores below every merge,
 * so that llama.cpp, which would still form it, does so last.
 */
export function mergeRankScores(tok: HfTokenizer, vocabSize: number): Float32Array {
  const model = tok.json.model as { vocab: Record<string, number>; merges?: unknown[] };
  const merges = model.merges ?? [];
  const scores = new Float32Array(vocabSize);
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (id < vocabSize && Array.from(piece).length > 1 && !BYTE_TOKEN.test(piece)) scores[id] = -merges.length;
  }
  const scored = new Set<number>();
  merges.forEach((merge, rank) => {
    const [left, right] = typeof merge === 'string' ? splitMerge(merge) : (merge as [string, string]);
    const id = Object.hasOwn(model.vocab, left + right) ? model.vocab[left + right] : undefined;
    if (id === undefined || scored.has(id) || id >= vocabSize) return;
    scored.add(id);
    scores[id] = rank === 0 ? 0 : -rank; // not -0
  });
  for (const id of tok.added.keys()) if (id < vocabSize) scores[id] = 0;
  return scores;
}

/** "left right" -> [left, right]; sentencepiece pieces use "▁", never a plain space. */
function splitMerge(merge: string): [string, string] {
  const space = merge.indexOf(' ');
  return [merge.slice(0, space), merge.slice(space + 1)];
}
