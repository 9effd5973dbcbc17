/**
 * Hugging Face tokenizers (tokenizer.json + tokenizer_config.json) behind one small interface, using
 * @huggingface/tokenizers. Special tokens are ours to place: encode() never runs the tokenizer.json
 * post-processor, and adds BOS only when asked and the tokenizer wants one (addBos).
 */
import { Tokenizer } from '@huggingface/tokenizers';

export interface TextTokenizer {
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
  padId: number | null;
  /** tokenizer_config add_bos_token (llama default true when absent for LlamaTokenizer class), gpt2 false */
  addBos: boolean;
  /** addSpecial (default false) prepends BOS when addBos. */
  encode(text: string, opts?: { addSpecial?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecial?: boolean }): string;
  tokenToId(token: string): number | null;
  chatTemplate: string | null;
}

/** A TextTokenizer that can also name a token (for token-level views). */
export interface HfTextTokenizer extends TextTokenizer {
  idToToken(id: number): string | null;
  /** Which special tokens tokenizer_config.json names itself (a key present, even null), rather than guessed. */
  declared: { bos: boolean; eos: boolean };
}

type Json = Record<string, unknown>;

/** Tokenizer classes whose Hugging Face implementation adds BOS by default. */
const BOS_BY_DEFAULT = /^(Llama|CodeLlama|Gemma)Tokenizer(Fast)?$/;

export function loadTokenizer(tokenizerJson: object, tokenizerConfig?: object): HfTextTokenizer {
  const json = tokenizerJson as Json;
  const config = (tokenizerConfig ?? {}) as Json;
  if (json === null || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) {
    throw new Error('tokenizer.json has no model section; is it a Hugging Face tokenizer.json?');
  }
  // The library requires these keys; older or hand-written files may leave some out.
  const normalized: Json = {
    added_tokens: [],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...json,
  };
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(normalized, config);
  } catch (e) {
    throw new Error(`tokenizer.json could not be loaded: ${(e as Error).message}`);
  }
  const vocab = tokenizer.get_vocab(true);
  let vocabSize = 0; // ids run 0..max; added tokens may extend the model's vocabulary
  for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1);
  const idOf = (token: string | null): number | null =>
    token === null ? null : (tokenizer.token_to_id(token) ?? null);

  const templateBos = postProcessorBos(json.post_processor);
  const bosId = idOf(
    tokenContent(config.bos_token) ?? templateBos ?? defaultToken(config, vocab, ['<|endoftext|>', '<s>']),
  );
  const eosId = idOf(tokenContent(config.eos_token) ?? defaultToken(config, vocab, ['<|endoftext|>', '</s>']));
  const padId = idOf(tokenContent(config.pad_token));
  const addBos =
    bosId !== null &&
    (typeof config.add_bos_token === 'boolean'
      ? config.add_bos_token
      : BOS_BY_DEFAULT.test(String(config.tokenizer_class ?? '')) || templateBos !== null);
  // Without an explicit setting, keep decode(encode(x)) == x (the library would default to cleaning up).
  const cleanUp = config.clean_up_tokenization_spaces === true;

  return {
    vocabSize,
    bosId,
    eosId,
    padId,
    addBos,
    chatTemplate: chatTemplate(config.chat_template),
    encode(text, opts = {}) {
      const ids = text.length === 0 ? [] : tokenizer.encode(text, { add_special_tokens: false }).ids;
      return opts.addSpecial && addBos && bosId !== null ? [bosId, ...ids] : ids;
    },
    decode(ids, opts = {}) {
      if (ids.length === 0) return '';
      return tokenizer.decode(ids, {
        skip_special_tokens: opts.skipSpecial ?? false,
        clean_up_tokenization_spaces: cleanUp,
      });
    },
    tokenToId: (token) => idOf(token),
    idToToken: (id) => tokenizer.id_to_token(id) ?? null,
    declared: { bos: 'bos_token' in config, eos: 'eos_token' in config },
  };
}

/** A special token in tokenizer_config: a string, or an AddedToken object {content}. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string')
    return (value as Json).content as string;
  return null;
}

/**
 * With no tokenizer_config at all, fall back to the defaults of the HF tokenizer classes (GPT2Tokenizer:
 * <|endoftext|> for both; LlamaTokenizer: <s>/</s>), GPT-2's first. An explicit null in a config means "none".
 */
function defaultToken(config: Json, vocab: Map<string, number>, candidates: string[]): string | null {
  if (Object.keys(config).length > 0) return null;
  return candidates.find((token) => vocab.has(token)) ?? null;
}

/** The special token a TemplateProcessing post-processor puts first (Llama 2/3 style BOS), if any. */
function postProcessorBos(processor: unknown): string | null {
  if (!processor || typeof processor !== 'object') return null;
  const p = processor as Json;
  if (p.type === 'Sequence' && Array.isArray(p.processors)) {
    for (const inner of p.processors) {
      const found = postProcessorBos(inner);
      if (found !== null) return found;
    }
    return null;
  }
  if (p.type !== 'TemplateProcessing' || !Array.isArray(p.single)) return null;
  const first = p.single[0] as { SpecialToken?: { id?: unknown } } | undefined;
  return typeof first?.SpecialToken?.id === 'string' ? first.SpecialToken.id : null;
}

/** chat_template is a string, or a list of {name, template} (the "default" one is the chat template). */
function chatTemplate(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const named = value as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === 'default') ?? named[0];
    return typeof chosen?.template === 'string' ? chosen.template : null;
  }
  return null;
}
