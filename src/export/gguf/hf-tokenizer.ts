/**
 * What the GGUF vocabulary needs from a Hugging Face tokenizer.json: the token of every id, the added tokens, the
 * merges, and which of llama.cpp's tokenizer kinds it is.
 */
export type Json = Record<string, unknown>;

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}

export interface HfTokenizer {
  json: Json;
  /** tokenizer_config.json, or null when the model has none. */
  config: Json | null;
  /** Token text by id (byte-level BPE: the byte-to-unicode strings, e.g. "Ġthe"; sentencepiece: "▁the"). */
  tokens: Map<number, string>;
  added: Map<number, AddedToken>;
}

/**
 * llama.cpp's tokenizer kinds we write: "gpt2" (byte-level BPE with merges) and "llama" (sentencepiece-style BPE
 * with byte fallback, as Llama 2, Mistral and llama2.c tokenizers are).
 */
export type TokenizerKind = 'gpt2' | 'llama';

export function parseJsonFile(text: string, fileName: string): Json {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new Error(`${fileName} is not valid JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new Error(`${fileName} must be a JSON object`);
  }
  return value as Json;
}

export function readHfTokenizer(json: Json, config: Json | null): HfTokenizer {
  const model = json.model as Json | undefined;
  if (!model || typeof model !== 'object') throw new Error('tokenizer.json has no model section');
  if (model.type !== 'BPE') {
    throw new Error(
      `tokenizer.json: model type ${JSON.stringify(model.type)} cannot be written to GGUF here; supported: ` +
        'BPE tokenizers (byte-level as GPT-2, Llama 3, Qwen; or sentencepiece-style with byte_fallback as Llama 2)',
    );
  }
  const tokens = new Map<number, string>();
  const vocab = model.vocab;
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) {
    throw new Error(`tokenizer.json: model.vocab must be an object of token -> id (model type ${String(model.type)})`);
  }
  for (const [token, id] of Object.entries(vocab as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new Error(`tokenizer.json: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}`);
    }
    tokens.set(id, token);
  }
  const added = new Map<number, AddedToken>();
  for (const entry of (json.added_tokens as Json[] | undefined) ?? []) {
    const { id, content } = entry;
    if (typeof id !== 'number' || typeof content !== 'string') {
      throw new Error(`tokenizer.json: added token ${JSON.stringify(entry)} has no numeric id or string content`);
    }
    added.set(id, { id, content, special: entry.special === true });
    tokens.set(id, content);
  }
  return { json, config, tokens, added };
}

export function tokenizerKind(tok: HfTokenizer): TokenizerKind {
  const model = tok.json.model as Json;
  // gguf-py LlamaHfVocab's test for a sentencepiece-style BPE: byte fallback and a Sequence decoder.
  if (model.byte_fallback === true && (tok.json.decoder as Json | null)?.type === 'Sequence') return 'llama';
  if (!mentionsByteLevel(tok.json.pre_tokenizer) && !mentionsByteLevel(tok.json.decoder)) {
    throw new Error(
      'tokenizer.json: a BPE tokenizer without byte_fallback nor a ByteLevel pre-tokenizer or decoder; ' +
        'llama.cpp reads BPE vocabularies either as byte-level (GPT-2 style) or as sentencepiece-style with byte fallback',
    );
  }
  return 'gpt2';
}

function mentionsByteLevel(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  const n = node as Json;
  if (n.type === 'ByteLevel') return true;
  const children = (n.pretokenizers ?? n.decoders) as unknown[] | undefined;
  return Array.isArray(children) && children.some(mentionsByteLevel);
}

/**
 * The merges as "left right" strings. tokenizers >= 0.20 saves them as [left, right] pairs so that a piece may
 * contain a space; gguf-py writes such a space as U+0120 ("Ġ", the byte-level code of the space) to keep the
 * single-space separator unambiguous.
 */
export function mergesOf(tok: HfTokenizer): string[] {
  const merges = (tok.json.model as Json).merges;
  if (merges === undefined || merges === null) return [];
  if (!Array.isArray(merges)) throw new Error('tokenizer.json: model.merges must be a list');
  return merges.map((m, i) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') {
      return m.map((part: string) => part.replaceAll(' ', '\u0120')).join(' ');
    }
    throw new Error(`tokenizer.json: merge ${i} is ${JSON.stringify(m)}; expected "left right" or [left, right]`);
  });
}

/** A special token named in tokenizer_config.json: a string or an AddedToken object {content}. */
export function namedToken(config: Json | null, key: string): string | null {
  const value = config?.[key];
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') {
    return (value as Json).content as string;
  }
  return null;
}
