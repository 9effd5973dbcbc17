/**
 * Special token ids, add_bos/add_eos and chat templates as gguf-py's SpecialVocab reads them: ids from
 * tokenizer_config.json's *_token texts looked up among tokenizer.json's added tokens, then config.json's
 * *_token_id for the ones still missing; the add flags from the post-processor, overridden by tokenizer_config's
 * add_*_token; the chat template from tokenizer_config.json (or chat_template.jinja).
 */
import type { HfTokenizer, Json } from './hf-tokenizer';
import { namedToken } from './hf-tokenizer';
import { bool, type GgufMetadata, string, strings, uint32 } from './metadata-values';

/** Special token kinds SpecialVocab looks for, and the GGUF key of each (cls has none, as in gguf-py). */
const ID_KEYS: [kind: string, key: string | null][] = [
  ['bos', 'tokenizer.ggml.bos_token_id'],
  ['eos', 'tokenizer.ggml.eos_token_id'],
  ['unk', 'tokenizer.ggml.unknown_token_id'],
  ['sep', 'tokenizer.ggml.seperator_token_id'], // sic: llama.cpp's key name
  ['pad', 'tokenizer.ggml.padding_token_id'],
  ['cls', null],
  ['mask', 'tokenizer.ggml.mask_token_id'],
];
const ADD_KEYS: Record<string, string> = {
  bos: 'tokenizer.ggml.add_bos_token',
  eos: 'tokenizer.ggml.add_eos_token',
  sep: 'tokenizer.ggml.add_sep_token',
};

export interface SpecialVocabFiles {
  tokenizer: HfTokenizer;
  /** config.json */
  modelConfig: Json;
  /** chat_template.jinja, where the model folder has one (newer transformers save the template there). */
  chatTemplateJinja?: string;
  /** Ids at or beyond this are skipped (sentencepiece vocabularies pass their size, as gguf-py does). */
  nVocab?: number;
}

/** Adds the special token metadata to `out` in SpecialVocab.add_to_gguf's order (after the merges). */
export function addSpecialVocab(out: GgufMetadata, files: SpecialVocabFiles): void {
  const { tokenizer, modelConfig } = files;
  const config = tokenizer.config ? { ...tokenizer.config } : null;
  // A tokenizer with cls/sep but no bos/eos uses them in their place (SpecialVocab).
  if (config && !namedToken(config, 'bos_token') && namedToken(config, 'cls_token')) {
    config.bos_token = namedToken(config, 'cls_token');
  }
  if (config && !namedToken(config, 'eos_token') && namedToken(config, 'sep_token')) {
    config.eos_token = namedToken(config, 'sep_token');
  }

  const ids = new Map<string, number>();
  const setId = (kind: string, id: unknown) => {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || ids.has(kind)) return;
    if (files.nVocab !== undefined && id >= files.nVocab) return;
    ids.set(kind, id);
  };
  const addFlags = postProcessorAddFlags(tokenizer.json, config);
  if (config) {
    for (const [kind] of ID_KEYS) {
      const flag = config[`add_${kind}_token`];
      if (typeof flag === 'boolean') addFlags.set(kind, flag);
      const text = namedToken(config, `${kind}_token`);
      if (text === null) continue;
      // Only tokenizer.json's added tokens are searched, as gguf-py does.
      const added = [...tokenizer.added.values()].find((t) => t.content === text);
      setId(kind, added?.id);
    }
  }
  const textConfig = (modelConfig.text_config ?? null) as Json | null;
  for (const [kind] of ID_KEYS) setId(kind, modelConfig[`${kind}_token_id`] ?? textConfig?.[`${kind}_token_id`]);

  for (const [kind, id] of ids) {
    const key = ID_KEYS.find(([k]) => k === kind)?.[1];
    if (key) out.set(key, uint32(id));
  }
  for (const [kind, flag] of addFlags) if (ADD_KEYS[kind]) out.set(ADD_KEYS[kind], bool(flag));
  if (config) addChatTemplates(out, config.chat_template ?? files.chatTemplateJinja ?? null);
}

/**
 * What the post-processor adds (SpecialVocab's "crude parsing" of TemplateProcessing): BOS when the single-sequence
 * template starts with the bos (or cls) token, EOS when it ends with the eos token; RobertaProcessing adds all.
 */
function postProcessorAddFlags(json: Json, config: Json | null): Map<string, boolean> {
  const flags = new Map<string, boolean>();
  const processor = json.post_processor as Json | null | undefined;
  if (!processor) return flags;
  const processors = (Array.isArray(processor.processors) ? processor.processors : [processor]) as Json[];
  const bos = namedToken(config, 'bos_token');
  const cls = namedToken(config, 'cls_token');
  const eos = namedToken(config, 'eos_token');
  for (const p of processors) {
    if (p.type === 'RobertaProcessing') {
      for (const kind of ['bos', 'eos', 'sep']) flags.set(kind, true);
      continue;
    }
    if (p.type !== 'TemplateProcessing') continue;
    const single = (Array.isArray(p.single) ? p.single : []) as TemplatePiece[];
    const first = single.length > 1 ? single[0].SpecialToken?.id : undefined;
    const last = single.length > 1 ? single[single.length - 1].SpecialToken?.id : undefined;
    if (first) flags.set('bos', config === null || first === bos || first === cls);
    if (last) flags.set('eos', config === null || last === eos);
    const sep = pairSeparator((Array.isArray(p.pair) ? p.pair : []) as TemplatePiece[], first, last, [
      namedToken(config, 'sep_token'),
      eos,
    ]);
    if (sep !== null) flags.set('sep', sep);
  }
  return flags;
}

type TemplatePiece = { SpecialToken?: { id?: string }; Sequence?: { id?: string } };

/**
 * Whether the pair template "A [sep] B" puts a separator (sep or eos) between the sequences, as SpecialVocab reads
 * it: null when the template is not of that form.
 */
function pairSeparator(
  pair: TemplatePiece[],
  first: string | undefined,
  last: string | undefined,
  separators: (string | null)[],
): boolean | null {
  let pieces = pair;
  if (first && pieces[0]?.SpecialToken?.id === first) pieces = pieces.slice(1);
  if (last && pieces[pieces.length - 1]?.SpecialToken?.id === last) pieces = pieces.slice(0, -1);
  if (pieces.length === 0 || pieces[0].Sequence?.id !== 'A' || pieces[pieces.length - 1].Sequence?.id !== 'B') {
    return null;
  }
  const middle = pieces.slice(1, -1);
  if (middle.length === 0) return null;
  const isSeparator = (piece: TemplatePiece | undefined) => {
    const id = piece?.SpecialToken?.id;
    return id !== undefined && separators.includes(id);
  };
  return (isSeparator(middle[0]) && !last) || (middle.length === 2 && isSeparator(middle[1]));
}

/**
 * tokenizer.chat_template, and for a list of named templates (tokenizer_config's [{name, template}]) each
 * non-default one as tokenizer.chat_template.<name> plus their names in tokenizer.chat_templates.
 */
function addChatTemplates(out: GgufMetadata, value: unknown): void {
  if (typeof value === 'string') {
    out.set('tokenizer.chat_template', string(value));
    return;
  }
  if (!Array.isArray(value)) return;
  let defaultTemplate: string | null = null;
  const names: string[] = [];
  for (const choice of value as Json[]) {
    const name = String(choice?.name ?? '').replace(/[^A-Za-z0-9]/g, '_');
    const template = choice?.template;
    if (!name || typeof template !== 'string') continue;
    if (name === 'default') defaultTemplate = template;
    else {
      if (!names.includes(name)) names.push(name);
      out.set(`tokenizer.chat_template.${name}`, string(template));
    }
  }
  if (names.length > 0) out.set('tokenizer.chat_templates', strings(names));
  if (defaultTemplate !== null) out.set('tokenizer.chat_template', string(defaultTemplate));
}
