/**
 * A bitsandbytes checkpoint (config.json's quantization_config, `*-bnb-4bit` folders as transformers saves them) as
 * a TensorSource: its quantized weights upload as their own codes (`quantized`), never requantized, when the storage
 * plan keeps their precision ('auto'); any other storage reads them dequantized exactly as bitsandbytes does. The
 * other tensors (embeddings, norms, lm_head, biases) load as from any checkpoint.
 */
import { canonicalLoader, resolveTensorName, type ModelSpec } from '../model/config';
import type { WeightStore } from '../model/formats/safetensors';
import { allLinears } from '../model/layout';
import type { TensorSource } from '../model/weights';
import { bnbQuantizedWeights, parseBnbQuantizationConfig, readBnbWeight, type BnbLoadedWeight } from './bnb-format';
import { dequantizeLayout } from './layout';

export interface BnbSource {
  source: TensorSource;
  /** For the model card: e.g. "4-bit (bitsandbytes NF4, double quantization)". */
  description: string;
}

export function bnbSource(spec: ModelSpec, store: WeightStore, quantizationConfig: unknown, file: string): BnbSource {
  const config = parseBnbQuantizationConfig(quantizationConfig, file);
  const refs = bnbQuantizedWeights(store);
  if (refs.length === 0) {
    throw new Error(
      `${store.name}: ${file} says bitsandbytes ${config.bits}-bit, but no weight has a quant state (*.weight.quant_state.bitsandbytes__nf4) or an SCB`,
    );
  }
  const quantized = new Set(refs.map((r) => r.weight));
  const base = canonicalLoader(spec, store, quantized);
  const stored = (name: string) => resolveTensorName(store, name) ?? name;
  const expected = new Map(allLinears(spec).map((l) => [l.weight, l]));
  // Upload asks for a weight's layout and, when the plan changes its precision, its values: read each once.
  let last: { name: string; weight: Promise<BnbLoadedWeight> } | null = null;
  const read = (name: string): Promise<BnbLoadedWeight> => {
    if (last?.name === name) return last.weight;
    const linear = expected.get(name);
    if (!linear)
      throw new Error(`${store.name}: ${stored(name)} is quantized, but only the blocks' linear weights can be`);
    const weight = readBnbWeight(store, stored(name), { conv1d: linear.conv1d }).then((w) => {
      // bitsandbytes quantizes every weight as [out, in] (GPT-2's Conv1D ones transposed first).
      if (w.shape.length !== 2 || w.shape[0] !== linear.out || w.shape[1] !== linear.in)
        throw new Error(
          `${store.name}: ${stored(name)}'s quant state says shape [${w.shape.join(', ')}], the config needs [${linear.out}, ${linear.in}]`,
        );
      return w;
    });
    last = { name, weight };
    return weight;
  };
  const isQuantized = (name: string) => quantized.has(stored(name));
  const source: TensorSource = {
    dtype: (name) => {
      if (!isQuantized(name)) return base.dtype?.(name) ?? 'f32';
      return config.bits === 8 ? 'int8' : (config.quantType ?? 'nf4');
    },
    quantized: async (name) => {
      if (!isQuantized(name)) return null;
      const w = await read(name);
      return { words: w.layout, dtype: w.format };
    },
    load: async (name) => (isQuantized(name) ? dequantizeLayout((await read(name)).layout) : base.load(name)),
  };
  const kind =
    config.bits === 8
      ? '8-bit (bitsandbytes LLM.int8 rows)'
      : `4-bit (bitsandbytes ${(config.quantType ?? 'fp4').toUpperCase()}${config.doubleQuant ? ', double quantization' : ''})`;
  return { source, description: kind };
}
