/**
 * Hugging Face checkpoint names -> GGUF tensor names (gguf-py tensor_mapping.py for the llama, qwen2, qwen3 and
 * gpt2 architectures), and which names a complete checkpoint must have.
 */
import type { GgufArch } from './architecture';

/** Checkpoint buffers the converter drops: masks and cached RoPE frequencies, not weights. */
const SKIPPED = /(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/;

const LLAMA_LAYER: Record<string, string> = {
  input_layernorm: 'attn_norm',
  post_attention_layernorm: 'ffn_norm',
  'self_attn.q_proj': 'attn_q',
  'self_attn.k_proj': 'attn_k',
  'self_attn.v_proj': 'attn_v',
  'self_attn.o_proj': 'attn_output',
  'mlp.gate_proj': 'ffn_gate',
  'mlp.up_proj': 'ffn_up',
  'mlp.down_proj': 'ffn_down',
};
const QWEN3_LAYER: Record<string, string> = {
  ...LLAMA_LAYER,
  'self_attn.q_norm': 'attn_q_norm',
  'self_attn.k_norm': 'attn_k_norm',
};
const GPT2_LAYER: Record<string, string> = {
  ln_1: 'attn_norm',
  'attn.c_attn': 'attn_qkv',
  'attn.c_proj': 'attn_output',
  ln_2: 'ffn_norm',
  'mlp.c_fc': 'ffn_up',
  'mlp.c_proj': 'ffn_down',
};

export interface MappedName {
  gguf: string;
  /** Block index, or null for tensors outside the blocks. */
  block: number | null;
  /** The HF module (e.g. self_attn.q_proj, attn.c_attn), for the layout transforms. */
  module: string;
}

/** The GGUF name of a checkpoint tensor; null for buffers the converter drops; an error for anything unknown. */
export function ggufTensorName(arch: GgufArch, hfName: string, blockCount: number): MappedName | null {
  if (SKIPPED.test(hfName)) return null;
  const mapped = arch === 'gpt2' ? gpt2Name(hfName) : llamaName(arch, hfName);
  if (!mapped) {
    throw new Error(
      `GGUF export: tensor ${hfName} has no GGUF name for architecture ${arch} ` +
        `(expected ${arch === 'gpt2' ? 'GPT2LMHeadModel names: transformer.wte, transformer.h.N.attn.c_attn, ...' : 'model.embed_tokens, model.layers.N.self_attn.q_proj, ..., lm_head'})`,
    );
  }
  if (mapped.block !== null && mapped.block >= blockCount) {
    throw new Error(
      `GGUF export: tensor ${hfName} is in block ${mapped.block}, but config.json has ${blockCount} blocks`,
    );
  }
  return mapped;
}

function llamaName(arch: GgufArch, name: string): MappedName | null {
  if (name === 'model.embed_tokens.weight') return { gguf: 'token_embd.weight', block: null, module: 'embed_tokens' };
  if (name === 'model.norm.weight') return { gguf: 'output_norm.weight', block: null, module: 'norm' };
  if (name === 'lm_head.weight') return { gguf: 'output.weight', block: null, module: 'lm_head' };
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(name);
  const table = arch === 'qwen3' ? QWEN3_LAYER : LLAMA_LAYER;
  const short = m && table[m[2]];
  if (!m || !short) return null;
  return { gguf: `blk.${m[1]}.${short}.${m[3]}`, block: Number(m[1]), module: m[2] };
}

function gpt2Name(name: string): MappedName | null {
  if (name === 'lm_head.weight') return { gguf: 'output.weight', block: null, module: 'lm_head' };
  const bare = name.startsWith('transformer.') ? name.slice('transformer.'.length) : name;
  if (bare === 'wte.weight') return { gguf: 'token_embd.weight', block: null, module: 'wte' };
  if (bare === 'wpe.weight') return { gguf: 'position_embd.weight', block: null, module: 'wpe' };
  const final = /^ln_f\.(weight|bias)$/.exec(bare);
  if (final) return { gguf: `output_norm.${final[1]}`, block: null, module: 'ln_f' };
  const m = /^h\.(\d+)\.(.+)\.(weight|bias)$/.exec(bare);
  const short = m && GPT2_LAYER[m[2]];
  if (!m || !short) return null;
  return { gguf: `blk.${m[1]}.${short}.${m[3]}`, block: Number(m[1]), module: m[2] };
}

/**
 * The tensors llama.cpp requires for this architecture, as [GGUF name, checkpoint name] (output.weight only when the
 * embedding is not tied).
 */
export function requiredTensors(arch: GgufArch, blockCount: number, tied: boolean): [string, string][] {
  const gpt2 = arch === 'gpt2';
  const prefix = gpt2 ? 'transformer.' : 'model.';
  const names: [string, string][] = [
    ['token_embd.weight', gpt2 ? 'transformer.wte.weight' : 'model.embed_tokens.weight'],
    ['output_norm.weight', gpt2 ? 'transformer.ln_f.weight' : 'model.norm.weight'],
  ];
  if (!tied) names.push(['output.weight', 'lm_head.weight']);
  if (gpt2)
    names.push(['position_embd.weight', 'transformer.wpe.weight'], ['output_norm.bias', 'transformer.ln_f.bias']);
  const table = gpt2 ? GPT2_LAYER : arch === 'qwen3' ? QWEN3_LAYER : LLAMA_LAYER;
  const suffixes = gpt2 ? ['weight', 'bias'] : ['weight'];
  const perBlock: [string, string][] = Object.entries(table).flatMap(([module, short]) =>
    suffixes.map((suffix): [string, string] => [`${short}.${suffix}`, `${module}.${suffix}`]),
  );
  if (arch === 'qwen2') {
    for (const module of ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj']) {
      perBlock.push([`${LLAMA_LAYER[module]}.bias`, `${module}.bias`]);
    }
  }
  const layers = gpt2 ? 'h' : 'layers';
  for (let b = 0; b < blockCount; b++) {
    for (const [gguf, hf] of perBlock) names.push([`blk.${b}.${gguf}`, `${prefix}${layers}.${b}.${hf}`]);
  }
  return names;
}
