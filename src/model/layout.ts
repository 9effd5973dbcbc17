/**
 * The linear layers of a model as adapters see them: Hugging Face module paths, shapes and where the
 * weight lives. One place that knows that Llama projections are nn.Linear [out, in] and GPT-2's are
 * Conv1D [in, out], and that GPT-2's c_attn fuses q|k|v.
 */
import type { ModelSpec } from './config';

export type LlamaModule = 'q_proj' | 'k_proj' | 'v_proj' | 'o_proj' | 'gate_proj' | 'up_proj' | 'down_proj';
export type Gpt2Module = 'attn.c_attn' | 'attn.c_proj' | 'mlp.c_fc' | 'mlp.c_proj';
export type ModuleKind = LlamaModule | Gpt2Module;

export interface LinearInfo {
  /** Full module path inside the HF model, as PEFT names it (e.g. model.layers.0.self_attn.q_proj). */
  path: string;
  layer: number;
  kind: ModuleKind;
  in: number;
  out: number;
  /** Checkpoint tensor names (canonical, without GPT-2's optional `transformer.` prefix). */
  weight: string;
  bias: string | null;
  /** GPT-2 Conv1D: the weight is stored [in, out] and y = x W. */
  conv1d: boolean;
}

export const LLAMA_MODULES: LlamaModule[] = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
];
export const GPT2_MODULES: Gpt2Module[] = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];

export function layerLinears(spec: ModelSpec, layer: number): LinearInfo[] {
  return spec.family === 'gpt2' ? gpt2Linears(spec, layer) : llamaLinears(spec, layer);
}

export function allLinears(spec: ModelSpec): LinearInfo[] {
  const out: LinearInfo[] = [];
  for (let l = 0; l < spec.layers; l++) out.push(...layerLinears(spec, l));
  return out;
}

function llamaLinears(spec: ModelSpec, l: number): LinearInfo[] {
  const d = spec.hidden;
  const q = spec.heads * spec.headDim;
  const kv = spec.kvHeads * spec.headDim;
  const ff = spec.intermediate;
  const shapes: Record<LlamaModule, [number, number, string]> = {
    q_proj: [d, q, 'self_attn'],
    k_proj: [d, kv, 'self_attn'],
    v_proj: [d, kv, 'self_attn'],
    o_proj: [q, d, 'self_attn'],
    gate_proj: [d, ff, 'mlp'],
    up_proj: [d, ff, 'mlp'],
    down_proj: [ff, d, 'mlp'],
  };
  return LLAMA_MODULES.map((kind) => {
    const [inDim, outDim, block] = shapes[kind];
    const path = `model.layers.${l}.${block}.${kind}`;
    // attention_bias puts a bias on q/k/v and, except in Qwen2, on o_proj too.
    const attnBias =
      kind === 'o_proj'
        ? spec.qkvBias && spec.modelType !== 'qwen2'
        : kind !== 'gate_proj' && kind !== 'up_proj' && kind !== 'down_proj' && spec.qkvBias;
    const hasBias = attnBias || (spec.mlpBias && block === 'mlp');
    return {
      path,
      layer: l,
      kind,
      in: inDim,
      out: outDim,
      weight: `${path}.weight`,
      bias: hasBias ? `${path}.bias` : null,
      conv1d: false,
    };
  });
}

function gpt2Linears(spec: ModelSpec, l: number): LinearInfo[] {
  const d = spec.hidden;
  const ff = spec.intermediate;
  const shapes: Record<Gpt2Module, [number, number]> = {
    'attn.c_attn': [d, 3 * d],
    'attn.c_proj': [d, d],
    'mlp.c_fc': [d, ff],
    'mlp.c_proj': [ff, d],
  };
  return GPT2_MODULES.map((kind) => {
    const [inDim, outDim] = shapes[kind];
    const base = `h.${l}.${kind}`;
    return {
      path: `transformer.${base}`,
      layer: l,
      kind,
      in: inDim,
      out: outDim,
      weight: `${base}.weight`,
      bias: `${base}.bias`,
      conv1d: true,
    };
  });
}

/**
 * PEFT's list-form target matching: a module matches target t when its path equals t or ends with "." + t.
 * So "c_proj" selects both attn.c_proj and mlp.c_proj on GPT-2.
 */
export function matchesTarget(path: string, target: string): boolean {
  return path === target || path.endsWith(`.${target}`);
}

export function defaultTargets(spec: ModelSpec): string[] {
  return spec.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

export function allLinearTargets(spec: ModelSpec): string[] {
  return spec.family === 'gpt2' ? [...GPT2_MODULES] : [...LLAMA_MODULES];
}

/** Resolves a target list to modules, with a specific error for targets the model does not have. */
export function selectTargets(spec: ModelSpec, targets: string[]): LinearInfo[] {
  const linears = allLinears(spec);
  for (const t of targets) {
    if (!linears.some((m) => matchesTarget(m.path, t))) {
      const kinds = spec.family === 'gpt2' ? GPT2_MODULES : LLAMA_MODULES;
      throw new Error(
        `Target module "${t}" does not exist in this ${spec.modelType} model; its linear layers are: ${kinds.join(', ')}.`,
      );
    }
  }
  return linears.filter((m) => targets.some((t) => matchesTarget(m.path, t)));
}
