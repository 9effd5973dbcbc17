/**
 * PEFT GraLoRA adapter folders (docs/METHODS.md, GraLoRA, PEFT >= 0.19): export, import (also checkpoints of the
 * original SqueezeBits repo), and the exact conversion to a plain LoRA (§3.6) for everything the GraLoRA
 * format cannot express (it has one global r, k and hybrid_r, no rank_pattern).
 */
import type { ModelSpec } from '../../model/config';
import {
  checkPeftTargets,
  closeTo,
  configAlpha,
  exportPeftLora,
  modulesByPath,
  PEFT_BOOKKEEPING_FIELDS,
  PEFT_TARGET_FIELDS,
  refuseUnknownFields,
  stripPeftPrefix,
  unsupportedModuleMessage,
  type AdapterTensorReader,
  type ImportOptions,
  type LoraModuleWeights,
  type PeftExport,
} from '../lora/peft';
import { graloraScale } from './config';

export interface GraloraModuleWeights {
  path: string;
  in: number;
  out: number;
  /** PEFT r (the block part). */
  rank: number;
  k: number;
  hybridRank: number;
  scale: number;
  GA: Float32Array; // [k, in/k, r]
  GB: Float32Array; // [k, r, out/k]
  Ag: Float32Array; // [h, in] (empty when h = 0)
  Bg: Float32Array; // [out, h]
}

const KEY_PREFIX = 'base_model.model.';
const PEFT_DEFAULTS = { r: 32, k: 2, alpha: 64 };

/** Why these modules cannot be written in PEFT's GraLoRA format with this alpha, or null if they can. */
export function graloraFormatProblem(modules: GraloraModuleWeights[], alpha: number): string | null {
  if (modules.length === 0) return 'there are no GraLoRA modules';
  const m0 = modules[0];
  for (const m of modules) {
    if (m.rank !== m0.rank || m.k !== m0.k || m.hybridRank !== m0.hybridRank) {
      return `modules differ in r, gralora_k or hybrid_r (${m0.path}: r ${m0.rank}, k ${m0.k}, h ${m0.hybridRank}; ${m.path}: r ${m.rank}, k ${m.k}, h ${m.hybridRank}), and PEFT's GraLoRA config has one global value of each (no rank_pattern)`;
    }
    const want = graloraScale(alpha, m.rank, m.hybridRank);
    if (!closeTo(m.scale, want)) {
      return `${m.path} trains with scale ${m.scale}, but PEFT computes alpha/(r + hybrid_r) = ${alpha}/${m.rank + m.hybridRank} = ${want}`;
    }
  }
  return null;
}

/** The PEFT GraLoRA folder contents. Throws (naming the reason) when the format cannot express the adapter. */
export function exportPeftGralora(
  spec: ModelSpec,
  modules: GraloraModuleWeights[],
  opts: { alpha: number; baseModel: string },
): PeftExport {
  const problem = graloraFormatProblem(modules, opts.alpha);
  if (problem)
    throw new Error(
      `Cannot export as a PEFT GraLoRA adapter: ${problem}. Export it as a LoRA instead (exportGraloraAsLora).`,
    );
  const { rank: r, k, hybridRank: h } = modules[0];
  const tensors: PeftExport['tensors'] = [];
  for (const m of modules) {
    const key = `${KEY_PREFIX}${m.path}`;
    tensors.push({ name: `${key}.gralora_A`, shape: [k, m.in / k, r], data: m.GA });
    tensors.push({ name: `${key}.gralora_B`, shape: [k, r, m.out / k], data: m.GB });
    if (h > 0) {
      tensors.push({ name: `${key}.gralora_A_general.weight`, shape: [h, m.in], data: m.Ag });
      tensors.push({ name: `${key}.gralora_B_general.weight`, shape: [m.out, h], data: m.Bg });
    }
  }
  const config: Record<string, unknown> = {
    alpha: opts.alpha,
    base_model_name_or_path: opts.baseModel,
    bias: 'none',
    fan_in_fan_out: spec.family === 'gpt2',
    gralora_dropout: 0.0,
    gralora_k: k,
    hybrid_r: h,
    inference_mode: true,
    init_weights: true,
    layers_pattern: null,
    layers_to_transform: null,
    modules_to_save: null,
    peft_type: 'GRALORA',
    r,
    target_modules: modules.map((m) => m.path).sort(),
    task_type: 'CAUSAL_LM',
  };
  return { config, tensors };
}

/**
 * §3.6: the plain LoRA of rank R = k·r + h whose B·A equals ΔW, with the scale folded into B (scale 1).
 * A is block-diagonal in GA[n]ᵀ; B puts GB[m]'s n-th row chunk at columns n·r + m·sr of output block m.
 */
export function graloraToLora(m: GraloraModuleWeights): LoraModuleWeights {
  const { rank: r, k, hybridRank: h, scale: s } = m;
  const bi = m.in / k;
  const bo = m.out / k;
  const sr = r / k;
  const R = k * r + h;
  const A = new Float32Array(R * m.in);
  const B = new Float32Array(m.out * R);
  for (let n = 0; n < k; n++) {
    for (let i = 0; i < bi; i++)
      for (let rho = 0; rho < r; rho++) A[(n * r + rho) * m.in + n * bi + i] = m.GA[(n * bi + i) * r + rho];
  }
  for (let mm = 0; mm < k; mm++) {
    for (let n = 0; n < k; n++)
      for (let c = 0; c < sr; c++)
        for (let o = 0; o < bo; o++) {
          B[(mm * bo + o) * R + n * r + mm * sr + c] = s * m.GB[(mm * r + n * sr + c) * bo + o];
        }
  }
  for (let q = 0; q < h; q++) {
    A.set(m.Ag.subarray(q * m.in, (q + 1) * m.in), (k * r + q) * m.in);
    for (let o = 0; o < m.out; o++) B[o * R + k * r + q] = s * m.Bg[o * h + q];
  }
  return { path: m.path, rank: R, scale: 1, A, B, in: m.in, out: m.out };
}

/** Any GraLoRA adapter (mixed k, per-module ranks or scales) as an exact PEFT LoRA with scale 1 per module. */
export function exportGraloraAsLora(
  spec: ModelSpec,
  modules: GraloraModuleWeights[],
  opts: { baseModel: string },
): PeftExport {
  const lora = modules.map(graloraToLora);
  const ranks = new Set(lora.map((m) => m.rank));
  // Uniform R: alpha = R gives s = 1 from a plain config; otherwise exportPeftLora writes per-module patterns.
  const alpha = ranks.size === 1 ? lora[0].rank : 1;
  return exportPeftLora(spec, lora, { alpha, rslora: false, baseModel: opts.baseModel });
}

// ------------------------------------------------------------------ import

const A_KEY = /\.gralora_A(\.default)?$/;

/**
 * GraloraConfig fields (PEFT 0.20, and the original repo's gralora_alpha) this importer honours or that cannot
 * change a loaded adapter: dropout is off at inference, PEFT corrects fan_in_fan_out to the layer type, `bias`
 * and init_weights only matter for saving and for modules without tensors (which checkPeftTargets refuses).
 */
const GRALORA_FIELDS = new Set([
  ...PEFT_BOOKKEEPING_FIELDS,
  ...PEFT_TARGET_FIELDS,
  'r',
  'hybrid_r',
  'alpha',
  'gralora_alpha',
  'gralora_k',
  'gralora_dropout',
  'fan_in_fan_out',
  'bias',
  'init_weights',
]);

/** The tensors PEFT saves for a GraLoRA adapter itself (every key holding its prefix `gralora_`). */
export function isGraloraTensor(name: string): boolean {
  return stripPeftPrefix(name).includes('.gralora_');
}

/**
 * Reads a PEFT >= 0.19 GraLoRA folder (r = block part, alpha, scale alpha/(r + hybrid_r)), or one written by
 * the original repo (r = total rank, gralora_alpha, A's last dim r - hybrid_r): both come back in PEFT terms.
 */
export async function importPeftGralora(
  spec: ModelSpec,
  config: Record<string, unknown>,
  reader: AdapterTensorReader,
  where: string,
  opts: ImportOptions = {},
): Promise<GraloraModuleWeights[]> {
  const cfgFile = `${where}/adapter_config.json`;
  const type = String(config.peft_type ?? '');
  if (type !== 'GRALORA')
    throw new Error(`${cfgFile}: peft_type is "${type}"; this reader handles GRALORA (LoRA import is separate).`);
  refuseUnknownFields(config, GRALORA_FIELDS, cfgFile, 'GraLoRA');
  const k = Number(config.gralora_k ?? PEFT_DEFAULTS.k);
  const h = Number(config.hybrid_r ?? 0);
  const rConfig = Number(config.r ?? PEFT_DEFAULTS.r);
  if (!Number.isInteger(k) || k < 1)
    throw new Error(`${cfgFile}: gralora_k must be an integer >= 1 (got ${config.gralora_k})`);
  if (!Number.isInteger(h) || h < 0)
    throw new Error(`${cfgFile}: hybrid_r must be an integer >= 0 (got ${config.hybrid_r})`);
  // The original repo writes gralora_alpha and counts the hybrid part in r.
  const original = !('alpha' in config) && 'gralora_alpha' in config;
  const alpha = original
    ? configAlpha(config.gralora_alpha, 'gralora_alpha', cfgFile)
    : configAlpha(config.alpha ?? PEFT_DEFAULTS.alpha, 'alpha', cfgFile);
  const r = original ? rConfig - h : rConfig;
  if (!Number.isInteger(r) || r < 1) {
    throw new Error(
      `${cfgFile}: the GraLoRA part's rank is ${r} (r ${rConfig}${original ? ` - hybrid_r ${h}, original-repo convention` : ''}); it must be >= 1`,
    );
  }
  if (r % k !== 0) throw new Error(`${cfgFile}: r ${r} is not divisible by gralora_k ${k}`);
  const scale = graloraScale(alpha, r, h);

  const names = reader.names();
  if (!opts.baseWeightsApplied) {
    const other = names.find((n) => !isGraloraTensor(n));
    if (other)
      throw new Error(
        `${where}: ${other} is not a GraLoRA tensor (a whole module, a bias or token rows); loadPeftAdapter applies those, importPeftGralora alone would drop it.`,
      );
  }
  const byPath = modulesByPath(spec);
  const aNames = names.filter((n) => A_KEY.test(n));
  if (aNames.length === 0) throw new Error(`${where}/adapter_model.safetensors has no gralora_A tensors.`);
  const out: GraloraModuleWeights[] = [];
  const adapted = new Map<string, string>();
  const used = new Set<string>();
  for (const aName of aNames) {
    const modPath = stripPeftPrefix(aName).replace(A_KEY, '');
    const info = byPath.get(modPath);
    if (!info) throw new Error(unsupportedModuleMessage(spec, where, aName, modPath));
    if (adapted.has(info.path))
      throw new Error(`${where}: ${info.path} has two gralora_A tensors (${aName} is the second).`);
    adapted.set(info.path, aName);
    if (info.in % k !== 0 || info.out % k !== 0) {
      throw new Error(
        `${where}: gralora_k ${k} does not divide ${info.path} (${info.in} -> ${info.out}) (is the adapter for another model?).`,
      );
    }
    // Siblings share the stem and the optional adapter-name suffix (".default") of gralora_A.
    const match = A_KEY.exec(aName)!;
    const stem = aName.slice(0, match.index);
    const suffix = match[1] ?? '';
    const tensor = async (name: string, shape: number[]) => {
      if (!names.includes(name)) throw new Error(`${where}: ${aName} has no matching ${name}.`);
      used.add(name);
      const got = reader.info(name)!.shape;
      if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
        const conv = original ? ' (original-repo convention: r - hybrid_r)' : '';
        throw new Error(
          `${where}: ${name} has shape [${got}], expected [${shape}] for ${info.path} with r ${r}${conv}, gralora_k ${k}, hybrid_r ${h} (is the adapter for another model?).`,
        );
      }
      return reader.load(name);
    };
    const GA = await tensor(aName, [k, info.in / k, r]);
    const GB = await tensor(`${stem}.gralora_B${suffix}`, [k, r, info.out / k]);
    let Ag: Float32Array = new Float32Array(0);
    let Bg: Float32Array = new Float32Array(0);
    if (h > 0) {
      Ag = await tensor(`${stem}.gralora_A_general${suffix}.weight`, [h, info.in]);
      Bg = await tensor(`${stem}.gralora_B_general${suffix}.weight`, [info.out, h]);
    } else {
      const stray = names.find(
        (n) => n.startsWith(`${stem}.gralora_A_general`) || n.startsWith(`${stem}.gralora_B_general`),
      );
      if (stray) throw new Error(`${where}: ${stray} is a hybrid tensor, but hybrid_r is 0 in adapter_config.json.`);
    }
    out.push({ path: info.path, in: info.in, out: info.out, rank: r, k, hybridRank: h, scale, GA, GB, Ag, Bg });
  }
  // A GraLoRA tensor no module read (a B without its A, a name of another variant) is refused, never dropped.
  const unused = names.find((n) => isGraloraTensor(n) && !used.has(n));
  if (unused)
    throw new Error(
      `${where}: ${unused} belongs to no gralora_A module (a GraLoRA module is gralora_A, gralora_B and, with hybrid_r, gralora_A_general/gralora_B_general).`,
    );
  checkPeftTargets(spec, config, adapted, where, 'GraLoRA');
  return out;
}
