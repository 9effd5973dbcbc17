/**
 * A merged model's checkpoint tensors as GGUF tensors: named for llama.cpp, laid out as the converter lays them
 * out, dimensions in ggml's order (innermost first), each with the type the converter gives it.
 */
import type { NamedTensor } from '../../model/formats/safetensors';
import type { GgufDtype } from '../merged-model';
import type { GgufArch, HParams } from './architecture';
import type { GgufTensor } from './gguf-file';
import { permuteRopeRows, transpose } from './layout';
import { llama3RopeFactors } from './rope-freqs';
import { tensorType } from './tensor-data';
import { ggufTensorName, requiredTensors } from './tensor-names';

const CONV1D = new Set(['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj']);

export function ggufTensors(
  arch: GgufArch,
  h: HParams,
  tensors: NamedTensor[],
  dtype: GgufDtype,
  modelName: string,
): GgufTensor[] {
  const blockCount = arch === 'gpt2' ? h.int('n_layer', 12) : h.int('num_hidden_layers');
  const out: GgufTensor[] = [];
  const add = (name: string, shape: number[], data: Float32Array) => {
    const ne = [...shape].reverse();
    out.push({ name, ne, type: tensorType(name, ne, dtype), data });
  };
  // Generated tensors first, as the converter's generate_extra_tensors.
  const ropeFactors = arch === 'llama' ? llama3RopeFactors(h) : null;
  if (ropeFactors) add('rope_freqs.weight', [ropeFactors.length], ropeFactors);

  const sources = new Map<string, string>();
  for (const t of tensors) {
    const mapped = ggufTensorName(arch, t.name, blockCount);
    if (!mapped) continue;
    const earlier = sources.get(mapped.gguf);
    if (earlier) throw new Error(`GGUF export: ${t.name} and ${earlier} both map to ${mapped.gguf}`);
    sources.set(mapped.gguf, t.name);
    checkShape(t);
    let data = t.data;
    let shape = t.shape;
    if (arch === 'llama' && (mapped.module === 'self_attn.q_proj' || mapped.module === 'self_attn.k_proj')) {
      const heads = mapped.module === 'self_attn.q_proj' ? h.int('num_attention_heads') : kvHeads(h);
      data = permuteRopeRows(data, shape[0], heads, t.name);
    }
    if (arch === 'gpt2' && CONV1D.has(mapped.module) && shape.length === 2) {
      data = transpose(data, shape[0], shape[1]);
      shape = [shape[1], shape[0]];
    }
    add(mapped.gguf, shape, data);
  }

  const tied = h.json.tie_word_embeddings === undefined ? arch === 'gpt2' : h.json.tie_word_embeddings === true;
  const missing = requiredTensors(arch, blockCount, tied || sources.has('output.weight'))
    .filter(([gguf]) => !sources.has(gguf))
    .map(([gguf, hf]) => `${hf} (GGUF ${gguf})`);
  if (missing.length > 0) {
    throw new Error(
      `GGUF export of ${modelName}: the model has no ${missing.slice(0, 6).join(', ')}` +
        `${missing.length > 6 ? ` and ${missing.length - 6} more` : ''}, which llama.cpp's ${arch} requires` +
        (missing[0].startsWith('lm_head') ? ' (config.json says tie_word_embeddings is false)' : ''),
    );
  }
  return out;
}

function kvHeads(h: HParams): number {
  return h.int('num_key_value_heads', h.int('num_attention_heads'));
}

function checkShape(t: NamedTensor): void {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (count !== t.data.length || t.shape.length < 1 || t.shape.length > 2) {
    throw new Error(
      `GGUF export: tensor ${t.name} has shape [${t.shape.join(', ')}] and ${t.data.length} values; ` +
        'expected a 1-D or 2-D tensor whose shape matches its data',
    );
  }
}
