/**
 * A llama2.c tokenizer (.bin: pieces and scores of a sentencepiece BPE model) as a Hugging Face
 * tokenizer.json that encodes exactly like llama2.c's encode():
 *  - normalizer: prepend "▁" (sentencepiece's dummy prefix; skipped for empty text), spaces -> "▁";
 *  - BPE model with byte_fallback (the <0x00>..<0xFF> pieces); its merges are every split of a piece
 *    into two pieces, ranked by the merged piece's score, highest first. llama2.c merges the adjacent
 *    pair whose concatenation has the best score, which is the same rule;
 *  - decoder: "▁" -> " ", byte fallback, fuse, strip the one leading space the prefix added.
 * Token ids are unchanged: <unk> = 0, <s> = 1, </s> = 2.
 */
import type { Llama2cTokenizer } from '../model/formats/llama2c';

const SPACE = '\u2581'; // "▁"
const SPECIALS = ['<unk>', '<s>', '</s>'];

/** The piece names sentencepiece uses: llama2.c's export turned "▁" into " " and wrapped BOS/EOS in newlines. */
export function hfPieces(tok: Pick<Llama2cTokenizer, 'vocab'>): string[] {
  return tok.vocab.map((piece, id) => (id < SPECIALS.length ? SPECIALS[id] : piece.replaceAll(' ', SPACE)));
}

const isByteToken = (piece: string) => /^<0x[0-9A-F]{2}>$/.test(piece);

/** BPE merges from a score-ordered vocabulary: [left, right] pairs, best merged score first. */
export function mergesFromScores(pieces: string[], scores: number[]): [string, string][] {
  const ids = new Map<string, number>();
  pieces.forEach((piece, id) => {
    if (id >= SPECIALS.length && !isByteToken(piece) && !ids.has(piece)) ids.set(piece, id);
  });
  const merges: { left: string; right: string; score: number; id: number; split: number }[] = [];
  for (const [piece, id] of ids) {
    const chars = Array.from(piece); // split by code point, as BPE does
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      if (ids.has(left) && ids.has(right)) merges.push({ left, right, score: scores[id], id, split: k });
    }
  }
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.split - b.split);
  return merges.map((m) => [m.left, m.right]);
}

/** The tokenizer.json object for a llama2.c tokenizer. */
export function llama2cToHfTokenizer(tok: Pick<Llama2cTokenizer, 'vocab' | 'scores'>): Record<string, unknown> {
  const pieces = hfPieces(tok);
  if (tok.vocab[1] !== '\n<s>\n' || tok.vocab[2] !== '\n</s>\n') {
    throw new Error('llama2.c tokenizer: expected <s> and </s> (as "\\n<s>\\n", "\\n</s>\\n") at ids 1 and 2');
  }
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => {
    if (piece in vocab)
      throw new Error(
        `llama2.c tokenizer: piece ${JSON.stringify(piece)} appears twice (ids ${vocab[piece]} and ${id})`,
      );
    vocab[piece] = id;
  });
  const special = (id: number) => ({
    id,
    content: SPECIALS[id],
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const bos = { SpecialToken: { id: '<s>', type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0), special(1), special(2)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    // Adds BOS for Hugging Face loaders that apply the post-processor (add_bos_token = true).
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        bos,
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      // "left right" strings (no piece contains a space) are read by every tokenizers version.
      merges: mergesFromScores(pieces, tok.scores).map(([left, right]) => `${left} ${right}`),
    },
  };
}

/** tokenizer_config.json to go with it. */
export function llama2cTokenizerConfig(modelMaxLength: number): Record<string, unknown> {
  const addedTokensDecoder: Record<string, unknown> = {};
  SPECIALS.forEach((content, id) => {
    addedTokensDecoder[id] = {
      content,
      lstrip: false,
      normalized: false,
      rstrip: false,
      single_word: false,
      special: true,
    };
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
