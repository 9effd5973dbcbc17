/**
 * The base tensors a PEFT adapter file replaces besides its adapter weights (modules_to_save copies, saved
 * biases, trainable token rows), read as PEFT's set_peft_model_state_dict applies them; anything it cannot place
 * is refused by name.
 */
import type { AdapterTensorReader } from '../adapters/lora/peft';
import { stripPeftPrefix } from '../adapters/lora/peft';
import { expectedTensors, type ModelSpec } from '../model/config';
import type { BaseWeightChanges, WeightReplacement } from '../model/weights';

const TOKEN_ROWS = '.token_adapter.trainable_tokens_delta';

/** A replacement read from one tensor of the file, before tied-embedding resolution. */
interface FileReplacement {
  tensor: string;
  /** Canonical name (expectedTensors), or 'lm_head.weight' on a tied model. */
  name: string;
  /** PEFT's route: a modules_to_save copy, trainable token rows, or a plain load into the model's parameter. */
  via: 'modules_to_save' | 'tokens' | 'load';
  data: Float32Array;
  rows?: number[];
}

/**
 * The file's tensors that are not the method's own (`isOwn`), as base-weight changes, following what PEFT's
 * set_peft_model_state_dict does with each:
 *  - `<m>.token_adapter.trainable_tokens_delta`: the rows trainable_token_indices names, which it REPLACES (PEFT
 *    index_copy's them); on a tied model PEFT ties lm_head's token adapter to the embedding's, so the shared rows change;
 *  - a module under modules_to_save: PEFT trains a copy, so on a tied model lm_head (or the embedding) unties;
 *  - any other tensor named as a parameter of the model (a wrapped layer's `<m>.base_layer.<p>`; the biases
 *    bias="all" saves, GPT-2's LayerNorm biases included): loaded into that parameter (tied: the shared one).
 * Anything else is refused by name: PEFT would ignore it, or this engine cannot compute it.
 */
export async function readBaseWeightChanges(
  spec: ModelSpec,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  isOwn: (n: string) => boolean,
  wrapped: Set<string>,
  where: string,
): Promise<BaseWeightChanges> {
  const params = modelParameters(spec);
  const saved = savedModules(config, `${where}/adapter_config.json`);
  const found: FileReplacement[] = [];
  for (const tensor of store.names().filter((n) => !isOwn(n))) {
    const name = hfName(spec, stripPeftPrefix(tensor));
    const shape = store.info(tensor)!.shape;
    if (name.endsWith(TOKEN_ROWS)) {
      found.push(await tokenRows(spec, config, store, tensor, name.slice(0, -TOKEN_ROWS.length), where));
      continue;
    }
    const target = parameterOf(spec, params, name, wrapped, tensor, where);
    const want = params.get(target)!.shape;
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      throw new Error(
        `${where}: ${tensor} has shape [${shape}], but ${target} is [${want}] in this ${spec.modelType} model (is the adapter for another model?).`,
      );
    }
    const module = target.slice(0, target.lastIndexOf('.'));
    const via = !name.includes('.base_layer.') && saved.some((k) => module.endsWith(k)) ? 'modules_to_save' : 'load';
    found.push({ tensor, name: params.get(target)!.canonical, via, data: await store.load(tensor) });
  }
  return resolveTying(spec, config, found, where);
}

/** What a folder replaces, for a log line ('' when nothing): "; replaces 3 rows of model.embed_tokens.weight". */
export function describeBaseWeightChanges(c: BaseWeightChanges): string {
  if (c.replacements.length === 0 && !c.untie) return '';
  const what = c.replacements.map((r) => (r.rows ? `${r.rows.length} rows of ${r.name}` : r.name));
  const listed = what.length > 4 ? [...what.slice(0, 3), `${what.length - 3} more`] : what;
  return `; replaces ${listed.join(', ')}${c.untie ? ' (lm_head untied from the embedding)' : ''}`;
}

/** Every parameter of the model by its Hugging Face name (GPT-2 with `transformer.`), lm_head included when tied. */
function modelParameters(spec: ModelSpec): Map<string, { canonical: string; shape: number[] }> {
  const params = new Map<string, { canonical: string; shape: number[] }>();
  for (const t of expectedTensors(spec)) params.set(hfName(spec, t.name), { canonical: t.name, shape: t.shape });
  if (spec.tieWordEmbeddings)
    params.set('lm_head.weight', { canonical: 'lm_head.weight', shape: [spec.vocabSize, spec.hidden] });
  return params;
}

/** Hugging Face's name of a parameter: GPT2LMHeadModel keeps everything but lm_head under `transformer.` (files may omit it). */
function hfName(spec: ModelSpec, name: string): string {
  if (spec.family !== 'gpt2' || name.startsWith('transformer.') || name.startsWith('lm_head.')) return name;
  return `transformer.${name}`;
}

/** The model parameter (Hugging Face name) a non-adapter tensor loads into, or an error naming the tensor. */
function parameterOf(
  spec: ModelSpec,
  params: Map<string, unknown>,
  name: string,
  wrapped: Set<string>,
  tensor: string,
  where: string,
): string {
  const base = /^(.*)\.base_layer\.([^.]+)$/.exec(name);
  if (base) {
    const [, module, param] = base;
    if (!wrapped.has(module)) {
      throw new Error(
        `${where}: ${tensor} is a base_layer parameter of ${module}, which this adapter does not wrap; PEFT would not load it.`,
      );
    }
    const target = `${module}.${param}`;
    if (!params.has(target))
      throw new Error(
        `${where}: ${tensor} replaces ${target}, but ${module} has no ${param} in this ${spec.modelType} model.`,
      );
    return target;
  }
  const module = name.slice(0, name.lastIndexOf('.'));
  if (params.has(name)) {
    if (wrapped.has(module)) {
      throw new Error(
        `${where}: ${tensor} names a parameter of ${module}, which the adapter wraps (PEFT keeps its own parameters as ${module}.base_layer.*); PEFT would not load it.`,
      );
    }
    return name;
  }
  if (params.has(`${module}.weight`)) {
    throw new Error(
      `${where}: ${tensor} replaces ${name}, but ${module} has no ${name.slice(module.length + 1)} in this ${spec.modelType} model.`,
    );
  }
  throw new Error(
    `${where}: ${tensor} is neither an adapter tensor nor a parameter of this ${spec.modelType} model, so nothing would use it (is the adapter for another model?).`,
  );
}

/** modules_to_save: PEFT wraps every module whose name ends with one of these (_set_trainable's endswith). */
function savedModules(config: Record<string, unknown>, cfgFile: string): string[] {
  const v = config.modules_to_save ?? [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new Error(`${cfgFile}: modules_to_save must be a list of module names, got ${JSON.stringify(v)}`);
  return v;
}

/** The input embedding and the output layer as Hugging Face names their modules. */
function embeddingModules(spec: ModelSpec): { embed: string; head: string } {
  return { embed: spec.family === 'gpt2' ? 'transformer.wte' : 'model.embed_tokens', head: 'lm_head' };
}

/**
 * Trainable token rows for module `module`: trainable_token_indices as a list targets the input embedding; as a
 * dict, each key wraps the modules whose name ends with it (PEFT's _set_trainable).
 */
async function tokenRows(
  spec: ModelSpec,
  config: Record<string, unknown>,
  store: AdapterTensorReader,
  tensor: string,
  module: string,
  where: string,
): Promise<FileReplacement> {
  const cfgFile = `${where}/adapter_config.json`;
  const { embed, head } = embeddingModules(spec);
  const indices = config.trainable_token_indices;
  if (!isSetIndices(indices))
    throw new Error(`${where}: ${tensor} holds trainable token rows, but ${cfgFile} has no trainable_token_indices.`);
  let ids: unknown;
  if (Array.isArray(indices)) {
    if (module !== embed)
      throw new Error(
        `${where}: ${tensor} holds token rows of ${module}, but trainable_token_indices as a list applies to the input embedding ${embed}.`,
      );
    ids = indices;
  } else {
    const keys = Object.keys(indices).filter((k) => module.endsWith(k));
    if (keys.length !== 1)
      throw new Error(
        `${where}: ${tensor}: ${keys.length === 0 ? 'no key' : `several keys (${keys.join(', ')})`} of trainable_token_indices in ${cfgFile} name ${module}.`,
      );
    ids = indices[keys[0]];
    refuseUntiedTokenIndices(spec, indices, cfgFile);
  }
  if (module !== embed && !(module === head && !spec.tieWordEmbeddings)) {
    throw new Error(
      `${where}: ${tensor} holds token rows of ${module}; trainable tokens are supported on the input embedding ${embed}${spec.tieWordEmbeddings ? ' (lm_head follows it, tied)' : ' and on lm_head'}.`,
    );
  }
  const rows = tokenIds(ids, spec.vocabSize, cfgFile);
  const shape = store.info(tensor)!.shape;
  if (shape.length !== 2 || shape[0] !== rows.length || shape[1] !== spec.hidden) {
    throw new Error(
      `${where}: ${tensor} has shape [${shape}], expected [${rows.length}, ${spec.hidden}] (one row of width ${spec.hidden} per id in trainable_token_indices).`,
    );
  }
  const name = module === head ? 'lm_head.weight' : spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  return { tensor, name, via: 'tokens', data: await store.load(tensor), rows };
}

function isSetIndices(v: unknown): v is number[] | Record<string, unknown> {
  return Array.isArray(v) || (typeof v === 'object' && v !== null);
}

/**
 * On a tied model PEFT ties lm_head's token rows to the embedding's only when both use the same ids; with
 * different ids each keeps its own rows and the model unties, which this loader does not implement.
 */
function refuseUntiedTokenIndices(spec: ModelSpec, indices: Record<string, unknown>, cfgFile: string): void {
  if (!spec.tieWordEmbeddings) return;
  const { embed, head } = embeddingModules(spec);
  const forEmbed = Object.keys(indices).find((k) => embed.endsWith(k));
  const forHead = Object.keys(indices).find((k) => head.endsWith(k));
  if (forHead && JSON.stringify(indices[forHead]) !== JSON.stringify(forEmbed ? indices[forEmbed] : null)) {
    throw new Error(
      `${cfgFile}: trainable_token_indices gives the tied lm_head ("${forHead}") other ids than the embedding; PEFT then unties them, which is not supported.`,
    );
  }
}

function tokenIds(ids: unknown, vocab: number, cfgFile: string): number[] {
  if (!Array.isArray(ids) || !ids.every((i) => Number.isInteger(i) && i >= 0 && i < vocab)) {
    throw new Error(
      `${cfgFile}: trainable_token_indices must list token ids from 0 to ${vocab - 1}, got ${JSON.stringify(ids)}`,
    );
  }
  if (new Set(ids).size !== ids.length) throw new Error(`${cfgFile}: trainable_token_indices lists an id twice`);
  return ids as number[];
}

/**
 * Where each replacement lands. Untied models: its own tensor. Tied models: a plain load or token rows replace the
 * shared embedding (PEFT loads lm_head.weight into the tied parameter, and ties the token adapters); a
 * modules_to_save copy of lm_head or of the embedding unties the model (the other keeps the base tensor).
 */
function resolveTying(
  spec: ModelSpec,
  config: Record<string, unknown>,
  found: FileReplacement[],
  where: string,
): BaseWeightChanges {
  const embedName = spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  const isTiedPair = (name: string) => name === embedName || name === 'lm_head.weight';
  const untie = spec.tieWordEmbeddings && found.some((f) => f.via === 'modules_to_save' && isTiedPair(f.name));
  if (untie) {
    if (config.ensure_weight_tying === true) {
      throw new Error(
        `${where}/adapter_config.json: ensure_weight_tying with modules_to_save on a tied model makes PEFT tie the saved copies together, which is not supported.`,
      );
    }
    const rows = found.find((f) => f.via === 'tokens');
    if (rows)
      throw new Error(
        `${where}: ${rows.tensor}: trainable token rows together with a modules_to_save copy of the tied embedding or lm_head are not supported.`,
      );
  }
  const replacements: WeightReplacement[] = [];
  const byTarget = new Map<string, string>();
  // Whole tensors first, then rows (which apply on top of the base).
  for (const f of [...found.filter((x) => !x.rows), ...found.filter((x) => x.rows)]) {
    const name = spec.tieWordEmbeddings && !untie && isTiedPair(f.name) ? embedName : f.name;
    const earlier = byTarget.get(name);
    if (earlier)
      throw new Error(
        `${where}: ${earlier} and ${f.tensor} both replace ${name}${name === embedName && spec.tieWordEmbeddings ? ' (the embedding tied to lm_head)' : ''}.`,
      );
    byTarget.set(name, f.tensor);
    replacements.push({ name, data: f.data, ...(f.rows ? { rows: f.rows } : {}) });
  }
  return { replacements, untie };
}
