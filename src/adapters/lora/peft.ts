/**
 * PEFT LoRA adapter folders (docs/METHODS.md, LoRA and rsLoRA: Export): export with per-module ranks and scales that survive any
 * PEFT version, and import of adapters written by Python PEFT (rank_pattern, alpha_pattern, use_rslora), with the
 * checks every PEFT import shares: config fields that change the computation, and the modules the config wraps.
 */
import { expectedTensors, type ModelSpec } from '../../model/config';
import { allLinears, GPT2_MODULES, LLAMA_MODULES, type LinearInfo } from '../../model/layout';
import type { WeightStore } from '../../model/formats/safetensors';
import { loraScale } from './config';

export interface LoraModuleWeights {
  path: string;
  rank: number;
  scale: number;
  A: Float32Array; // [rank, in]
  B: Float32Array; // [out, rank]
  in: number;
  out: number;
}

export interface PeftExport {
  config: Record<string, unknown>;
  tensors: { name: string; shape: number[]; data: Float32Array }[];
}

const KEY_PREFIX = 'base_model.model.';

/**
 * Uniform rank and alpha/r (or alpha/√r) scale: a plain config. Anything else (per-module ranks or scales):
 * the scale is folded into B and every module gets lora_alpha = its rank, so PEFT computes s = 1 whichever
 * way it reads the patterns.
 */
export function exportPeftLora(
  spec: ModelSpec,
  modules: LoraModuleWeights[],
  opts: { alpha: number; rslora: boolean; baseModel: string },
): PeftExport {
  if (modules.length === 0) throw new Error('No LoRA modules to export');
  const ranks = new Set(modules.map((m) => m.rank));
  const uniform =
    ranks.size === 1 && modules.every((m) => closeTo(m.scale, loraScale(m.rank, opts.alpha, opts.rslora)));
  const r0 = modules[0].rank;
  const tensors: PeftExport['tensors'] = [];
  const rankPattern: Record<string, number> = {};
  const alphaPattern: Record<string, number> = {};
  for (const m of modules) {
    let B = m.B;
    if (!uniform) {
      B = m.B.map((x) => x * m.scale);
      rankPattern[m.path] = m.rank;
      alphaPattern[m.path] = m.rank;
    }
    tensors.push({ name: `${KEY_PREFIX}${m.path}.lora_A.weight`, shape: [m.rank, m.in], data: m.A });
    tensors.push({ name: `${KEY_PREFIX}${m.path}.lora_B.weight`, shape: [m.out, m.rank], data: B });
  }
  const config: Record<string, unknown> = {
    alpha_pattern: alphaPattern,
    base_model_name_or_path: opts.baseModel,
    bias: 'none',
    fan_in_fan_out: spec.family === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: uniform ? opts.alpha : r0,
    lora_dropout: 0.0,
    modules_to_save: null,
    peft_type: 'LORA',
    r: r0,
    rank_pattern: rankPattern,
    target_modules: modules.map((m) => m.path).sort(),
    task_type: 'CAUSAL_LM',
    use_dora: false,
    use_rslora: uniform ? opts.rslora : false,
  };
  return { config, tensors };
}

/** JSON as PEFT writes it: sorted keys, indent 2. */
export function peftConfigJson(config: Record<string, unknown>): string {
  return JSON.stringify(sortKeys(config), null, 2) + '\n';
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

export function closeTo(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
}

// ------------------------------------------------------------------ import

/** What import reads: an adapter_model.safetensors opened as a checkpoint store. */
export type AdapterTensorReader = Pick<WeightStore, 'names' | 'info' | 'load'>;

export interface ImportOptions {
  /**
   * The caller applies the file's tensors that are not the method's own (whole modules, biases, token rows:
   * loadPeftAdapter does). Without it such a tensor is an error: an importer never drops a tensor.
   */
  baseWeightsApplied?: boolean;
}

/** Module paths as adapter files name them; GPT-2 adapters may omit the `transformer.` prefix. */
export function modulesByPath(spec: ModelSpec): Map<string, LinearInfo> {
  const byPath = new Map<string, LinearInfo>();
  for (const info of allLinears(spec)) {
    byPath.set(info.path, info);
    if (spec.family === 'gpt2') byPath.set(info.path.replace(/^transformer\./, ''), info);
  }
  return byPath;
}

/** PEFT ≥ 0.15 get_pattern_key: the first key K (dict order) whose regex (.*\.)?(K)$ matches the module path from its start. */
export function patternKey(keys: string[], path: string): string | null {
  for (const k of keys) {
    try {
      if (new RegExp(`^(?:.*\\.)?(?:${k})$`).test(path)) return k;
    } catch {
      if (k === path) return k;
    }
  }
  return keys.includes(path) ? path : null;
}

/** A file's tensor name without PEFT's `base_model.model.` prefix (files written without it are read too). */
export function stripPeftPrefix(name: string): string {
  return name.startsWith(KEY_PREFIX) ? name.slice(KEY_PREFIX.length) : name;
}

/** The tensors PEFT saves for a LoRA adapter itself: every key holding `lora_` (get_peft_model_state_dict). */
export function isLoraTensor(name: string): boolean {
  return stripPeftPrefix(name).includes('.lora_');
}

/** PeftConfig fields of every method: bookkeeping that never changes what a loaded adapter computes. */
export const PEFT_BOOKKEEPING_FIELDS = [
  'peft_type',
  'task_type',
  'base_model_name_or_path',
  'revision',
  'inference_mode',
  'auto_mapping',
  'peft_version',
];

/** Fields that choose the wrapped modules (peftTargetSelector) and the base tensors a folder replaces (loadPeftAdapter). */
export const PEFT_TARGET_FIELDS = [
  'target_modules',
  'exclude_modules',
  'layers_to_transform',
  'layers_pattern',
  'modules_to_save',
];

/**
 * LoraConfig fields (PEFT 0.20) that this importer honours, or that cannot change what a loaded adapter computes:
 * dropout is off at inference; PEFT corrects fan_in_fan_out to the layer type (Linear false, Conv1D true) and the
 * unmerged forward x·Aᵀ·Bᵀ does not read it; `bias` only chooses what save_pretrained writes (loading applies
 * whatever bias tensors the file holds); the *_config of an initialisation is read only by that initialisation
 * (checked through init_lora_weights); megatron_core and qalora_group_size only with megatron_config/use_qalora.
 */
const LORA_FIELDS = new Set([
  ...PEFT_BOOKKEEPING_FIELDS,
  ...PEFT_TARGET_FIELDS,
  'r',
  'lora_alpha',
  'rank_pattern',
  'alpha_pattern',
  'use_rslora',
  'lora_dropout',
  'fan_in_fan_out',
  'bias',
  'init_lora_weights',
  'trainable_token_indices',
  'ensure_weight_tying',
  'loftq_config',
  'eva_config',
  'corda_config',
  'lora_ga_config',
  'megatron_core',
  'qalora_group_size',
  'runtime_config',
]);

/** LoraConfig fields that change the computation in a way this engine does not implement: refused when set. */
const LORA_FIELDS_REFUSED: Record<string, string> = {
  use_dora: 'DoRA (a magnitude vector rescales every output row) read as plain LoRA (loadPeftAdapter reads it as DoRA)',
  lora_bias: 'a bias on lora_B',
  layer_replication: 'layer replication (the model grows by repeating blocks)',
  use_qalora: 'QA-LoRA (pooled inputs)',
  target_parameters: 'LoRA on parameters (target_parameters, e.g. MoE experts)',
  alora_invocation_tokens: 'Activated LoRA (the adapter acts only from the invocation tokens on)',
  megatron_config: 'Megatron parallel layers',
  velora_config: 'VeLoRA',
  monteclora_config: 'MonteCLoRA (variational sampling)',
  use_bdlora: 'BD-LoRA (block-diagonal factors)',
  arrow_config: 'Arrow routing between adapters',
};

/**
 * init_lora_weights values after which PEFT's load computes W + s·B·A on the model's own W: the file's A and B
 * overwrite whatever the initialisation set (eva, orthogonal and mica only initialise A and B).
 */
const PLAIN_INITS: unknown[] = [true, false, 'gaussian', 'eva', 'orthogonal', 'mica'];

/** Initialisations that train against a residual of W, not W itself. */
const RESIDUAL_INITS: [RegExp, string][] = [
  [/^pissa(_niter_\d+)?$/, 'PiSSA'],
  [/^corda$/, 'CorDA'],
  [/^olora$/, 'OLoRA'],
  [/^lora_ga$/, 'LoRA-GA'],
];

/** A scale factor from adapter_config.json: a finite number (PEFT's own arithmetic fails on anything else). */
export function configAlpha(value: unknown, field: string, cfgFile: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value))
    throw new Error(`${cfgFile}: ${field} must be a number, got ${JSON.stringify(value)}`);
  return value;
}

/** Set means anything but null, false, '' or an empty list/object (how PEFT writes a field left at its default). */
export function isSet(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Refuses a set field that is not in `known`: a field this importer does not know may change the computation. */
export function refuseUnknownFields(
  config: Record<string, unknown>,
  known: Set<string>,
  cfgFile: string,
  method: string,
): void {
  for (const [field, value] of Object.entries(config)) {
    if (known.has(field) || !isSet(value)) continue;
    throw new Error(
      `${cfgFile}: field "${field}" (${JSON.stringify(value)}) is not one this ${method} importer knows, and it may change what the adapter computes; refusing rather than ignoring it.`,
    );
  }
}

/** What a LoRA config may say: everything else is refused here, naming the field (`allowed`: a variant's own fields). */
function refuseUnsupportedLoraConfig(config: Record<string, unknown>, cfgFile: string, allowed: string[] = []): void {
  for (const [field, what] of Object.entries(LORA_FIELDS_REFUSED)) {
    if (!isSet(config[field]) || allowed.includes(field)) continue;
    throw new Error(
      `${cfgFile}: ${field} is ${JSON.stringify(config[field])}: ${what} is not supported. Plain LoRA is (with rank_pattern, alpha_pattern, use_rslora, modules_to_save, trainable_token_indices and saved biases).`,
    );
  }
  refuseUnknownFields(config, new Set([...LORA_FIELDS, ...Object.keys(LORA_FIELDS_REFUSED)]), cfgFile, 'LoRA');
  const init = config.init_lora_weights ?? true;
  if (PLAIN_INITS.includes(init)) return;
  const residual = typeof init === 'string' ? RESIDUAL_INITS.find(([re]) => re.test(init)) : undefined;
  if (residual) {
    // PEFT's from_pretrained re-runs this initialisation on the base weights it is given (PiSSA: the SVD, then
    // W_res = W − U_r·S_r·V_rᵀ) and adds s·B·A to that residual; the file alone looks exactly like a plain LoRA.
    throw new Error(
      `${cfgFile}: init_lora_weights is "${init}": this ${residual[1]} adapter was saved for the residual that PEFT recomputes from the base weights at load ` +
        `(W minus its initial adapter), not for W; read as a plain LoRA it computes another model. Convert it to a plain LoRA with PEFT, ` +
        `model.save_pretrained(out_dir, path_initial_model_for_weight_conversion=<the initial adapter saved before training>), and load that folder.`,
    );
  }
  if (init === 'loftq') {
    throw new Error(
      `${cfgFile}: init_lora_weights is "loftq": PEFT replaces the base weights by their quantised form at load (LoftQ); that is not supported.`,
    );
  }
  throw new Error(
    `${cfgFile}: init_lora_weights is ${JSON.stringify(init)}, not one of ${PLAIN_INITS.map((v) => JSON.stringify(v)).join(', ')} (whose adapters are plain LoRA once loaded).`,
  );
}

/**
 * Which of the model's linear layers the config makes PEFT wrap: check_target_module_exists (exclude_modules;
 * never a module under modules_to_save; target_modules as a full-match regex, "all-linear", or names matching the
 * path or its end, then layers_to_transform/layers_pattern). Null when the config has no target_modules: then the
 * file's tensors decide.
 */
export function peftTargetSelector(
  config: Record<string, unknown>,
  cfgFile: string,
): ((path: string) => boolean) | null {
  const targets = stringsField(config, 'target_modules', cfgFile);
  if (targets === null) return null;
  const exclude = stringsField(config, 'exclude_modules', cfgFile);
  const saved = stringsField(config, 'modules_to_save', cfgFile) ?? [];
  // PEFT iterates modules_to_save: a string would be read as its characters.
  if (!Array.isArray(saved))
    throw new Error(`${cfgFile}: modules_to_save must be a list of module names, got ${JSON.stringify(saved)}`);
  const savedRes = saved.map((m) => fieldRegex(`(?:|.*\\.)(?:${m})(?:$|\\..*)`, 'modules_to_save', m, cfgFile));
  const layers = layersToTransform(config, cfgFile);
  // Read only with layers_to_transform, as PEFT does.
  const layerPatterns =
    layers !== null && config.layers_pattern
      ? (Array.isArray(config.layers_pattern) ? config.layers_pattern : [config.layers_pattern]).map((p) =>
          layerRegex(String(p), cfgFile),
        )
      : [];
  const endsWithAny = (path: string, keys: string[]) => keys.includes(path) || keys.some((k) => path.endsWith(`.${k}`));
  const excludeRe = typeof exclude === 'string' ? fieldRegex(exclude, 'exclude_modules', exclude, cfgFile) : null;
  const targetRe =
    typeof targets === 'string' && targets !== 'all-linear'
      ? fieldRegex(targets, 'target_modules', targets, cfgFile)
      : null;
  return (path) => {
    if (excludeRe ? excludeRe.test(path) : Array.isArray(exclude) && endsWithAny(path, exclude)) return false;
    if (savedRes.some((re) => re.test(path))) return false;
    if (typeof targets === 'string') return targets === 'all-linear' || targetRe!.test(path);
    if (targets.includes(path)) return true;
    if (!endsWithAny(path, targets)) return false;
    if (layers === null) return true;
    const index = layerIndex(path, layerPatterns);
    return index !== null && layers.includes(index);
  };
}

function stringsField(config: Record<string, unknown>, field: string, cfgFile: string): string | string[] | null {
  const v = config[field];
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string')))
    return v as string | string[];
  throw new Error(`${cfgFile}: ${field} must be a string or a list of strings, got ${JSON.stringify(v)}`);
}

/** Python's re.match/fullmatch pattern as a JS regex anchored at both ends; an error naming the field when JS cannot read it. */
function fieldRegex(body: string, field: string, value: string, cfgFile: string): RegExp {
  try {
    return new RegExp(`^(?:${body})$`);
  } catch (e) {
    throw new Error(
      `${cfgFile}: ${field} "${value}" is not a regular expression this importer can read (${(e as Error).message})`,
    );
  }
}

function layersToTransform(config: Record<string, unknown>, cfgFile: string): number[] | null {
  const v = config.layers_to_transform;
  if (v === undefined || v === null || (Array.isArray(v) && v.length === 0)) return null;
  const list = Array.isArray(v) ? v : [v];
  if (!list.every((x) => Number.isInteger(x)))
    throw new Error(
      `${cfgFile}: layers_to_transform must be an integer or a list of integers, got ${JSON.stringify(v)}`,
    );
  return list as number[];
}

/** A layers_pattern entry as layerIndex matches it (`.<pattern>.<digits>.`); an error naming the field when JS cannot read it. */
function layerRegex(pattern: string, cfgFile: string): RegExp {
  try {
    return new RegExp(`^.*?\\.${pattern}\\.(\\d+)\\.`);
  } catch (e) {
    throw new Error(
      `${cfgFile}: layers_pattern "${pattern}" is not a regular expression this importer can read (${(e as Error).message})`,
    );
  }
}

/** The block index in a module path as PEFT finds it: the first `.<name>.<digits>.` (or `.<pattern>.<digits>.`). */
function layerIndex(path: string, patterns: RegExp[]): number | null {
  const res = patterns.length === 0 ? [/^.*?\.[^.]*\.(\d+)\./] : patterns;
  for (const re of res) {
    const m = re.exec(path);
    if (m) return Number(m[1]);
  }
  return null;
}

/**
 * Every module the file adapts must be one the config wraps, and every wrapped module must be in the file:
 * PEFT ignores tensors of modules it does not wrap, and starts a wrapped module without tensors from its
 * initialisation (so a mismatch means another model, or another config, than the file's).
 */
export function checkPeftTargets(
  spec: ModelSpec,
  config: Record<string, unknown>,
  adapted: Map<string, string>,
  where: string,
  method: string,
): void {
  const cfgFile = `${where}/adapter_config.json`;
  const selects = peftTargetSelector(config, cfgFile);
  if (!selects) return;
  for (const [path, tensor] of adapted) {
    if (!selects(path)) {
      throw new Error(
        `${where}: ${tensor} adapts ${path}, which ${cfgFile} does not select (target_modules with exclude_modules, modules_to_save and layers_to_transform); PEFT would not load it.`,
      );
    }
  }
  for (const info of allLinears(spec)) {
    if (selects(info.path) && !adapted.has(info.path)) {
      throw new Error(
        `${where}: ${cfgFile} selects ${info.path} (target_modules), but adapter_model.safetensors has no ${method} tensors for it (is the adapter for another model?).`,
      );
    }
  }
}

/**
 * Why an adapter tensor's module cannot be adapted: a module of this model that is not one of the supported
 * linear layers (lm_head, the embedding, a norm), or a module this model does not have.
 */
export function unsupportedModuleMessage(spec: ModelSpec, where: string, tensor: string, modPath: string): string {
  const canonical = spec.family === 'gpt2' ? modPath.replace(/^transformer\./, '') : modPath;
  const isModule = canonical === 'lm_head' || expectedTensors(spec).some((t) => t.name.startsWith(`${canonical}.`));
  if (isModule) {
    const kinds = spec.family === 'gpt2' ? GPT2_MODULES : LLAMA_MODULES;
    return `${where}: adapter tensor ${tensor} adapts \`${modPath}\`, which is not among the supported target modules: ${kinds.join(', ')} (the linear layers of every block).`;
  }
  return `${where}: adapter tensor ${tensor} targets module "${modPath}", which this ${spec.modelType} model does not have (is the adapter for another model?).`;
}

const LORA_WEIGHT = /^(.*)\.lora_([AB])(\.default)?\.weight$/;

/** Why a LoRA-family tensor that is not lora_A/lora_B is refused. */
function otherLoraTensorMessage(where: string, n: string): string {
  if (n.includes('lora_magnitude_vector'))
    return `${where}: ${n} is a DoRA magnitude vector, but adapter_config.json does not set use_dora.`;
  if (n.includes('lora_embedding_'))
    return `${where}: ${n} is an embedding LoRA; only LoRA on the linear layers of the blocks is supported.`;
  if (/lora_B(\.default)?\.bias$/.test(n)) return `${where}: ${n}: LoRA with a bias on B (lora_bias) is not supported.`;
  return `${where}: ${n} is not a tensor of plain LoRA (lora_A.weight, lora_B.weight); this importer does not know what it computes.`;
}

export function importPeftLora(
  spec: ModelSpec,
  config: Record<string, unknown>,
  reader: AdapterTensorReader,
  where: string,
  opts: ImportOptions = {},
): Promise<LoraModuleWeights[]> {
  return importLoraPairs(spec, config, reader, where, opts, null);
}

/**
 * A variant of the LoRA format whose A/B pairs this reader reads (DoRA): the config fields it sets, and which of
 * the file's other LoRA-family tensors are its own (it reads those itself).
 */
export interface LoraVariant {
  fields: string[];
  ownTensor(name: string): boolean;
}

/**
 * The A/B pairs of a PEFT LoRA folder (rank_pattern, alpha_pattern, use_rslora; every module the config wraps),
 * with the config and tensor checks every LoRA-format import shares. `variant` lets a variant's own fields and
 * tensors through (its importer reads them).
 */
export async function importLoraPairs(
  spec: ModelSpec,
  config: Record<string, unknown>,
  reader: AdapterTensorReader,
  where: string,
  opts: ImportOptions,
  variant: LoraVariant | null,
): Promise<LoraModuleWeights[]> {
  const cfgFile = `${where}/adapter_config.json`;
  const type = String(config.peft_type ?? '');
  if (type !== 'LORA')
    throw new Error(`${cfgFile}: peft_type is "${type}"; this reader handles LORA (GraLoRA import is separate).`);
  refuseUnsupportedLoraConfig(config, cfgFile, variant?.fields);
  const names = reader.names();
  // Pair lora_A/lora_B by module (and adapter-name suffix); anything else is refused by name.
  const pairs = new Map<string, { A?: string; B?: string }>();
  for (const n of names) {
    if (!isLoraTensor(n)) {
      if (opts.baseWeightsApplied) continue;
      throw new Error(
        `${where}: ${n} is not a LoRA tensor (a whole module, a bias or token rows); loadPeftAdapter applies those, importPeftLora alone would drop it.`,
      );
    }
    if (variant?.ownTensor(n)) continue;
    const m = LORA_WEIGHT.exec(n);
    if (!m) throw new Error(otherLoraTensorMessage(where, n));
    const key = `${m[1]}${m[3] ?? ''}`;
    pairs.set(key, { ...pairs.get(key), [m[2]]: n });
  }
  if (pairs.size === 0) throw new Error(`${where}/adapter_model.safetensors has no lora_A tensors.`);
  const byPath = modulesByPath(spec);
  const r = Number(config.r ?? 8);
  const alpha = config.lora_alpha == null ? r : configAlpha(config.lora_alpha, 'lora_alpha', cfgFile);
  const rankPattern = (config.rank_pattern ?? {}) as Record<string, number>;
  const alphaPattern = (config.alpha_pattern ?? {}) as Record<string, number>;
  const rslora = Boolean(config.use_rslora);
  const out: LoraModuleWeights[] = [];
  const adapted = new Map<string, string>();
  for (const { A: aName, B: bName } of pairs.values()) {
    if (!aName)
      throw new Error(
        `${where}: ${bName} has no matching ${bName!.replace(/lora_B(?=(\.default)?\.weight$)/, 'lora_A')}.`,
      );
    if (!bName)
      throw new Error(
        `${where}: ${aName} has no matching ${aName.replace(/lora_A(?=(\.default)?\.weight$)/, 'lora_B')}.`,
      );
    const modPath = stripPeftPrefix(LORA_WEIGHT.exec(aName)![1]);
    const info = byPath.get(modPath);
    if (!info) throw new Error(unsupportedModuleMessage(spec, where, aName, modPath));
    if (adapted.has(info.path))
      throw new Error(`${where}: ${info.path} has two lora_A tensors (${adapted.get(info.path)} and ${aName}).`);
    adapted.set(info.path, aName);
    const aShape = reader.info(aName)!.shape;
    const bShape = reader.info(bName)!.shape;
    const rank = aShape[0];
    if (aShape.length !== 2 || aShape[1] !== info.in) {
      throw new Error(
        `${where}: ${aName} has shape [${aShape}], expected [r, ${info.in}] for ${info.path} (is the adapter for another model?).`,
      );
    }
    if (bShape.length !== 2 || bShape[0] !== info.out || bShape[1] !== rank) {
      throw new Error(`${where}: ${bName} has shape [${bShape}], expected [${info.out}, ${rank}].`);
    }
    // Rank 0 would divide alpha by 0 (PEFT refuses r <= 0 too).
    if (rank < 1) throw new Error(`${where}: ${aName} has rank 0; a LoRA module needs rank >= 1.`);
    const rk = patternKey(Object.keys(rankPattern), info.path);
    const ak = patternKey(Object.keys(alphaPattern), info.path);
    const configRank = rk !== null ? Number(rankPattern[rk]) : r;
    if (configRank !== rank) {
      throw new Error(
        `${where}: ${info.path} has rank ${rank} in the weights but ${configRank} in adapter_config.json.`,
      );
    }
    const a = ak !== null ? configAlpha(alphaPattern[ak], `alpha_pattern[${JSON.stringify(ak)}]`, cfgFile) : alpha;
    out.push({
      path: info.path,
      rank,
      scale: loraScale(rank, a, rslora),
      A: await reader.load(aName),
      B: await reader.load(bName),
      in: info.in,
      out: info.out,
    });
  }
  checkPeftTargets(spec, config, adapted, where, 'LoRA');
  return out;
}
