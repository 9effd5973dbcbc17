/**
 * Llama 3.1-style RoPE scaling ("rope_type": "llama3") as llama.cpp takes it: a rope_freqs.weight tensor of
 * head_dim / 2 factors that divide the rotation frequencies (LlamaModel.generate_extra_tensors). Low frequencies
 * (wavelength beyond original_max_position_embeddings / low_freq_factor) are divided by `factor`, high ones
 * (below .../ high_freq_factor) kept, and the band between interpolated.
 */
import type { HParams } from './architecture';
import { headDim } from './architecture';
import type { Json } from './hf-tokenizer';

export function llama3RopeFactors(h: HParams): Float32Array | null {
  const rope = h.rope();
  if (rope.type !== 'llama3') return null;
  const p = rope.params as Json & Record<string, number | undefined>;
  const base = rope.theta ?? 10000;
  const dim = headDim(h);
  const factor = p.factor ?? 8;
  const low = p.low_freq_factor ?? 1;
  const high = p.high_freq_factor ?? 4;
  const oldContext = p.original_max_position_embeddings ?? 8192;
  const lowFreqWavelen = oldContext / low;
  const highFreqWavelen = oldContext / high;
  const factors = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const wavelen = (2 * Math.PI) / (1 / base ** ((2 * i) / dim));
    if (wavelen < highFreqWavelen) factors[i] = 1;
    else if (wavelen > lowFreqWavelen) factors[i] = factor;
    else {
      const smooth = (oldContext / wavelen - low) / (high - low);
      factors[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return factors;
}
