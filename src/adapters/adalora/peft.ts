/**
 * PEFT ADALORA folders, as PEFT 0.20 writes them (AdaLoraModel._get_adapter_state_dict): per module lora_A [r_m, in],
 * lora_B [out, r_m], lora_E [r_m, 1] (no `.weight`), only the triplets the final rank pattern keeps (a module pruned
 * to nothing is saved with zero-size tensors), and `rank_pattern`: module.lora_E -> init_r booleans. What it computes:
 * ΔW = B·(A ⊙ E)·lora_alpha/(init_r + 1e-5) with ranknum = init_r for every module, whatever rank it kept.
 */
import type { ModelSpec } from '../../model/config';
import {
  checkPeftTargets,
  configAlpha,
  modulesByPath,
  stripPeftPrefix,
  unsupportedModuleMessage,
  type AdapterTensorReader,
  type ImportOptions,
  type PeftExport,
} from '../lora/peft';
import { adaloraScale, type AdaloraConfig } from './config';

/** One module's triplets as trained (all init_r of them) or as a file holds them (the kept ones). */
export interface AdaloraModuleWeights {
  path: string;
  in: number;
  out: number;
  /** Triplets held: A [rank, in], E [rank], B [out, rank]. */
  rank: number;
  A: Float32Array;
  E: Float32Array;
  B: Float32Array;
}

const KEY_PREFIX = 'base_model.model.';
const ADALORA_TENSOR = /^(.*)\.lora_([AEB])(\.default)?$/;

/** The tensors PEFT saves for an AdaLoRA adapter itself. */
export function isAdaloraTensor(name: string): boolean {
  return ADALORA_TENSOR.test(stripPeftPrefix(name));
}

/**
 * A folder from trained modules (each with all init_r triplets) and the final mask (1 = kept, module after module;
 * null when no mask was ever computed: PEFT then writes every triplet and rank_pattern null).
 */
export function exportPeftAdalora(
  spec: ModelSpec,
  modules: AdaloraModuleWeights[],
  mask: Float32Array | null,
  cfg: AdaloraConfig,
  opts: { baseModel: string; targets: string[] },
): PeftExport {
  const tensors: PeftExport['tensors'] = [];
  const rankPattern: Record<string, boolean[]> = {};
  let offset = 0;
  for (const m of modules) {
    const keep = Array.from({ length: m.rank }, (_, k) => (mask ? mask[offset + k] !== 0 : true));
    offset += m.rank;
    rankPattern[`${m.path}.lora_E`] = keep;
    const kept = keep.flatMap((k, i) => (k ? [i] : []));
    const r = kept.length;
    const A = new Float32Array(r * m.in);
    const E = new Float32Array(r);
    const B = new Float32Array(m.out * r);
    kept.forEach((k, j) => {
      A.set(m.A.subarray(k * m.in, (k + 1) * m.in), j * m.in);
      E[j] = m.E[k];
      for (let o = 0; o < m.out; o++) B[o * r + j] = m.B[o * m.rank + k];
    });
    const key = `${KEY_PREFIX}${m.path}`;
    tensors.push({ name: `${key}.lora_A`, shape: [r, m.in], data: A });
    tensors.push({ name: `${key}.lora_B`, shape: [m.out, r], data: B });
    tensors.push({ name: `${key}.lora_E`, shape: [r, 1], data: E });
  }
  const config: Record<string, unknown> = {
    alpha_pattern: {},
    base_model_name_or_path: opts.baseModel,
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    bias: 'none',
    deltaT: cfg.deltaT,
    fan_in_fan_out: spec.family === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    init_r: cfg.initR,
    layers_pattern: null,
    layers_to_transform: null,
    lora_alpha: cfg.alpha,
    lora_dropout: 0.0,
    modules_to_save: null,
    orth_reg_weight: cfg.orthRegWeight,
    peft_type: 'ADALORA',
    // LoraConfig's r is unused by AdaLoRA; PEFT warns unless it is its default 8.
    r: 8,
    rank_pattern: mask ? rankPattern : null,
    target_modules: [...opts.targets].sort(),
    target_r: cfg.targetR,
    task_type: 'CAUSAL_LM',
    tfinal: cfg.tfinal,
    tinit: cfg.tinit,
    total_step: cfg.totalStep,
    use_dora: false,
    use_rslora: false,
  };
  return { config, tensors };
}

/** An ADALORA folder's modules (kept triplets; rank 0 for a module pruned to nothing) and their common scale. */
export async function importPeftAdalora(
  spec: ModelSpec,
  config: Record<string, unknown>,
  reader: AdapterTensorReader,
  where: string,
  opts: ImportOptions = {},
): Promise<{ modules: AdaloraModuleWeights[]; scale: number; initR: number }> {
  const cfgFile = `${where}/adapter_config.json`;
  const type = String(config.peft_type ?? '');
  if (type !== 'ADALORA') throw new Error(`${cfgFile}: peft_type is "${type}"; this reader handles ADALORA.`);
  if (config.use_dora) throw new Error(`${cfgFile}: use_dora is set; PEFT's AdaLoRA refuses it too.`);
  if (config.bias !== undefined && config.bias !== 'none' && !opts.baseWeightsApplied)
    throw new Error(`${cfgFile}: bias "${config.bias}" saves biases; load the folder with loadPeftAdapter.`);
  const initR = Number(config.init_r ?? 12);
  if (!Number.isInteger(initR) || initR < 1)
    throw new Error(`${cfgFile}: init_r must be a positive integer (got ${config.init_r})`);
  const alphaField = configAlpha(config.lora_alpha ?? 8, 'lora_alpha', cfgFile);
  // LoraLayer's scaling is lora_alpha (or r when alpha <= 0); SVDLinear divides by ranknum + 1e-5, ranknum = init_r.
  const scale = adaloraScale(alphaField > 0 ? alphaField : initR, initR);
  const groups = new Map<string, { A?: string; E?: string; B?: string }>();
  for (const n of reader.names()) {
    const m = ADALORA_TENSOR.exec(stripPeftPrefix(n));
    if (!m) {
      if (opts.baseWeightsApplied) continue;
      throw new Error(
        `${where}: ${n} is not an AdaLoRA tensor (lora_A, lora_E, lora_B); importPeftAdalora alone would drop it.`,
      );
    }
    const key = m[1];
    const g = groups.get(key) ?? {};
    const part = m[2] as 'A' | 'E' | 'B';
    if (g[part]) throw new Error(`${where}: ${key} has two lora_${part} tensors (${g[part]} and ${n}).`);
    g[part] = n;
    groups.set(key, g);
  }
  if (groups.size === 0) throw new Error(`${where}/adapter_model.safetensors has no AdaLoRA tensors.`);
  const rankPattern = (config.rank_pattern ?? null) as Record<string, unknown> | null;
  const byPath = modulesByPath(spec);
  const adapted = new Map<string, string>();
  const modules: AdaloraModuleWeights[] = [];
  for (const [key, g] of groups) {
    const missing = (['A', 'E', 'B'] as const).filter((p) => !g[p]);
    if (missing.length) throw new Error(`${where}: ${key} has no ${missing.map((p) => `lora_${p}`).join(', ')}.`);
    const info = byPath.get(key);
    if (!info) throw new Error(unsupportedModuleMessage(spec, where, g.A!, key));
    if (adapted.has(info.path))
      throw new Error(`${where}: ${info.path} is adapted twice (${adapted.get(info.path)}, ${g.A}).`);
    adapted.set(info.path, g.A!);
    const a = reader.info(g.A!)!.shape;
    const e = reader.info(g.E!)!.shape;
    const b = reader.info(g.B!)!.shape;
    const r = a[0];
    if (a.length !== 2 || a[1] !== info.in)
      throw new Error(
        `${where}: ${g.A} has shape [${a}], expected [r, ${info.in}] for ${info.path} (is the adapter for another model?).`,
      );
    if (e.length !== 2 || e[0] !== r || e[1] !== 1)
      throw new Error(`${where}: ${g.E} has shape [${e}], expected [${r}, 1].`);
    if (b.length !== 2 || b[0] !== info.out || b[1] !== r)
      throw new Error(`${where}: ${g.B} has shape [${b}], expected [${info.out}, ${r}].`);
    if (r > initR) throw new Error(`${where}: ${info.path} keeps ${r} triplets, more than init_r ${initR}.`);
    if (rankPattern) {
      const pattern = rankPattern[`${key}.lora_E`];
      const kept = Array.isArray(pattern) ? pattern.filter((x) => x === true || x === 1).length : null;
      if (kept === null)
        throw new Error(`${cfgFile}: rank_pattern has no entry ${key}.lora_E; PEFT could not resize this module.`);
      if (kept !== r) throw new Error(`${where}: ${info.path} holds ${r} triplets but its rank_pattern keeps ${kept}.`);
    } else if (r !== initR) {
      throw new Error(
        `${where}: ${info.path} holds ${r} triplets; without a rank_pattern PEFT expects init_r (${initR}).`,
      );
    }
    modules.push({
      path: info.path,
      in: info.in,
      out: info.out,
      rank: r,
      A: r ? await reader.load(g.A!) : new Float32Array(0),
      E: r ? await reader.load(g.E!) : new Float32Array(0),
      B: r ? await reader.load(g.B!) : new Float32Array(0),
    });
  }
  checkPeftTargets(spec, config, adapted, where, 'AdaLoRA');
  return { modules, scale, initR };
}
