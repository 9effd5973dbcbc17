/**
 * PEFT LoRA adapter folders (METHODS.md §5.1): export with per-module ranks and scales that survive any
 * PEFT version, and import of adapters written by Python PEFT (rank_pattern, alpha_pattern, use_rslora).
 */
import type { ModelSpec } from '../../model/config';
import { allLinears, type LinearInfo } from '../../model/layout';
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
export function exportPeftLora(spec: ModelSpec, modules: LoraModuleWeights[], opts: { alpha: number; rslora: boolean; baseModel: string }): PeftExport {
  if (modules.length === 0) throw new Error('No LoRA modules to export');
  const ranks = new Set(modules.map((m) => m.rank));
  const uniform = ranks.size === 1 && modules.every((m) => closeTo(m.scale, loraScale(m.rank, opts.alpha, opts.rslora)));
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
    return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

export function closeTo(a: number, b: number): boolean {
  return Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));
}

// ------------------------------------------------------------------ import

/** What import reads: an adapter_model.safetensors opened as a checkpoint store. */
export type AdapterTensorReader = Pick<WeightStore, 'names' | 'info' | 'load'>;

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

export async function importPeftLora(spec: ModelSpec, config: Record<string, unknown>, reader: AdapterTensorReader, where: string): Promise<LoraModuleWeights[]> {
  const type = String(config.peft_type ?? '');
  if (type !== 'LORA') throw new Error(`${where}/adapter_config.json: peft_type is "${type}"; this reader handles LORA (GraLoRA import is separate).`);
  if (config.use_dora) throw new Error(`${where}: DoRA adapters (use_dora) are not supported.`);
  const names = reader.names();
  for (const n of names) {
    if (n.includes('lora_magnitude_vector')) throw new Error(`${where}: ${n} is a DoRA magnitude vector; DoRA is not supported.`);
    if (n.includes('lora_embedding_')) throw new Error(`${where}: ${n} is an embedding LoRA; only linear-layer LoRA is supported.`);
    if (/lora_B\.bias$/.test(n)) throw new Error(`${where}: ${n}: LoRA with a bias on B is not supported.`);
  }
  const strip = (n: string) => (n.startsWith(KEY_PREFIX) ? n.slice(KEY_PREFIX.length) : n);
  const byPath = modulesByPath(spec);
  const r = Number(config.r ?? 8);
  const alpha = Number(config.lora_alpha ?? r);
  const rankPattern = (config.rank_pattern ?? {}) as Record<string, number>;
  const alphaPattern = (config.alpha_pattern ?? {}) as Record<string, number>;
  const rslora = Boolean(config.use_rslora);
  const out: LoraModuleWeights[] = [];
  const aNames = names.filter((n) => /\.lora_A(\.default)?\.weight$/.test(n));
  if (aNames.length === 0) throw new Error(`${where}/adapter_model.safetensors has no lora_A tensors.`);
  for (const aName of aNames) {
    const modPath = strip(aName).replace(/\.lora_A(\.default)?\.weight$/, '');
    const info = byPath.get(modPath);
    if (!info) {
      throw new Error(`${where}: adapter tensor ${aName} targets module "${modPath}", which this ${spec.modelType} model does not have (is the adapter for another model?).`);
    }
    const bName = aName.replace(/lora_A(\.default)?\.weight$/, (m) => m.replace('lora_A', 'lora_B'));
    if (!names.includes(bName)) throw new Error(`${where}: ${aName} has no matching ${bName}.`);
    const aShape = reader.info(aName)!.shape;
    const bShape = reader.info(bName)!.shape;
    const rank = aShape[0];
    if (aShape.length !== 2 || aShape[1] !== info.in) {
      throw new Error(`${where}: ${aName} has shape [${aShape}], expected [r, ${info.in}] for ${info.path} (is the adapter for another model?).`);
    }
    if (bShape.length !== 2 || bShape[0] !== info.out || bShape[1] !== rank) {
      throw new Error(`${where}: ${bName} has shape [${bShape}], expected [${info.out}, ${rank}].`);
    }
    const rk = patternKey(Object.keys(rankPattern), info.path);
    const ak = patternKey(Object.keys(alphaPattern), info.path);
    const configRank = rk !== null ? Number(rankPattern[rk]) : r;
    if (configRank !== rank) {
      throw new Error(`${where}: ${info.path} has rank ${rank} in the weights but ${configRank} in adapter_config.json.`);
    }
    const a = ak !== null ? Number(alphaPattern[ak]) : alpha;
    out.push({ path: info.path, rank, scale: loraScale(rank, a, rslora), A: await reader.load(aName), B: await reader.load(bName), in: info.in, out: info.out });
  }
  return out;
}
