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
  /** Plain ids, or a dataset's stored ids (Int32Array views). */
  decode(ids: number[] | Int32Array, opts?: { skipSpecial?: boolean }): string;
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
  const config = checkedConfig(tokenizerConfig);
  if (json === null || typeof json !== 'object' || typeof json.model !== 'object' || json.model === null) {
    throw new Error('tokenizer.json has no model section; is it a Hugging Face tokenizer.json?');
  }
  checkTokenIds(json);
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
    // Some components only fail when they run: run them once here, so a broken file fails now, by name, and not
    // later inside a dataset's tokenization. Pieces a small vocabulary lacks have no id (encode() refuses them).
    const probe = tokenizer.encode(PROBE_TEXT, { add_special_tokens: false }).ids.filter(Number.isInteger);
    // Added (special) tokens decode through their own path.
    const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []).slice(0, 4).map((t) => (t as Json).id);
    for (const ids of [probe, added]) if (ids.length > 0) tokenizer.decode(ids as number[], DECODE_PLAIN);
  } catch (e) {
    // The library reads both files without checking them: quote its reason, naming what it read.
    const files = tokenizerConfig ? 'tokenizer.json with its tokenizer_config.json' : 'tokenizer.json';
    throw new Error(`${files} could not be loaded: ${(e as Error).message}`);
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
      const ids = text.length === 0 ? [] : encodeIds(tokenizer, text);
      return opts.addSpecial && addBos && bosId !== null ? [bosId, ...ids] : ids;
    },
    decode(ids, opts = {}) {
      if (ids.length === 0) return '';
      return libraryCall('decode token ids', () =>
        tokenizer.decode(Array.isArray(ids) ? ids : Array.from(ids), {
          skip_special_tokens: opts.skipSpecial ?? false,
          clean_up_tokenization_spaces: cleanUp,
        }),
      );
    },
    tokenToId: (token) => idOf(token),
    idToToken: (id) => tokenizer.id_to_token(id) ?? null,
    declared: { bos: 'bos_token' in config, eos: 'eos_token' in config },
  };
}

/**
 * The library gives a piece outside the vocabulary the unk_token's id, and no id at all when the model has no
 * unk_token in its vocabulary (nor byte fallback): that text would reach the model as token 0, so it is refused.
 */
function encodeIds(tokenizer: Tokenizer, text: string): number[] {
  const { ids } = libraryCall('encode text', () => tokenizer.encode(text, { add_special_tokens: false }));
  if (ids.some((id) => !Number.isInteger(id))) {
    throw new Error(
      `tokenizer.json cannot encode ${JSON.stringify(text.slice(0, 40))}: part of it is not in the vocabulary, ` +
        'and the model has neither an unk_token in its vocabulary nor byte fallback',
    );
  }
  return ids;
}

/**
 * A library call on a tokenizer that loaded: a component that fails only on some text fails there, named, and not as
 * a TypeError from inside the library in the middle of a dataset.
 */
function libraryCall<T>(what: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw new Error(`tokenizer.json could not ${what}: ${(e as Error).message}`);
  }
}

/** Text that runs every stage of a tokenizer: words, punctuation, digits, accents, an emoji (byte fallback), lines. */
const PROBE_TEXT = 'Hello, world! 123 héllo 🙂\n  x';
const DECODE_PLAIN = { skip_special_tokens: false, clean_up_tokenization_spaces: false };

/** Far above the largest vocabularies (about 260k tokens): ids past it are damage, not a vocabulary. */
const MAX_TOKEN_ID = 1 << 24;

/**
 * The library stores each token at its id in an array and lists the vocabulary by walking that array: a string id
 * would be lost from it (and reach the model as a token), an id of 2^31 would make the walk take minutes.
 */
function checkTokenIds(json: Json): void {
  const check = (token: unknown, id: unknown, what: string) => {
    if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) >= MAX_TOKEN_ID) {
      throw new Error(
        `tokenizer.json: ${what} ${JSON.stringify(token)} has id ${JSON.stringify(id)}; token ids must be integers from 0 to ${MAX_TOKEN_ID - 1}`,
      );
    }
  };
  const vocab = (json.model as Json).vocab;
  if (vocab !== null && typeof vocab === 'object' && !Array.isArray(vocab)) {
    for (const [token, id] of Object.entries(vocab)) check(token, id, 'token');
  }
  if (Array.isArray(json.added_tokens)) {
    for (const added of json.added_tokens) {
      if (added === null || typeof added !== 'object') continue;
      const { content, id } = added as Json;
      // Its content is matched in every text encoded: anything but a string fails there, in the middle of a dataset.
      if (typeof content !== 'string') {
        throw new Error(
          `tokenizer.json: added token ${JSON.stringify(id)} has content ${JSON.stringify(content)}; it must be a string`,
        );
      }
      check(content, id, 'added token');
    }
  }
}

/**
 * tokenizer_config.json as an object, its fields read here of the types they must have: a field of another type
 * would otherwise be ignored (no BOS, no chat template) without a word.
 */
function checkedConfig(tokenizerConfig: unknown): Json {
  if (tokenizerConfig === undefined || tokenizerConfig === null) return {};
  if (typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig)) {
    const got = Array.isArray(tokenizerConfig) ? 'an array' : JSON.stringify(tokenizerConfig);
    throw new Error(`tokenizer_config.json must be a JSON object, got ${got}`);
  }
  const config = tokenizerConfig as Json;
  for (const key of ['bos_token', 'eos_token', 'pad_token']) {
    const value = config[key];
    if (value !== undefined && value !== null && tokenContent(value) === null) {
      throw new Error(
        `tokenizer_config.json: ${key} must be a token (a string or {"content": "..."}) or null, got ${JSON.stringify(value)}`,
      );
    }
  }
  for (const key of ['add_bos_token', 'clean_up_tokenization_spaces']) {
    const value = config[key];
    if (value !== undefined && value !== null && typeof value !== 'boolean') {
      throw new Error(`tokenizer_config.json: ${key} must be true or false, got ${JSON.stringify(value)}`);
    }
  }
  const template = config.chat_template;
  const noTemplate = template === undefined || template === null || (Array.isArray(template) && template.length === 0);
  if (!noTemplate && chatTemplate(template) === null) {
    throw new Error(
      `tokenizer_config.json: chat_template must be a template string or a list of {"name", "template"}, got ${JSON.stringify(template).slice(0, 80)}`,
    );
  }
  return config;
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
    const chosen = named.find((t) => t?.name === 'default') ?? named[0];
    return typeof chosen?.template === 'string' ? chosen.template : null;
  }
  return null;
}
