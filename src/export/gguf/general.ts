/**
 * general.* metadata as the converter writes it: the model's name and size label (gguf-py Metadata), and
 * generation_config.json's sampling settings as general.sampling.* (llama.cpp's tools take them as defaults).
 */
import type { Json } from './hf-tokenizer';
import { float32, type GgufMetadata, int32, string } from './metadata-values';

/** generation_config.json key -> general.sampling.* key and type (gguf-py Metadata.load). */
const SAMPLING: [from: string[], key: string, type: 'int32' | 'float32'][] = [
  [['top_k'], 'top_k', 'int32'],
  [['top_p'], 'top_p', 'float32'],
  [['min_p'], 'min_p', 'float32'],
  [['xtc_probability'], 'xtc_probability', 'float32'],
  [['xtc_threshold'], 'xtc_threshold', 'float32'],
  [['temperature'], 'temp', 'float32'],
  [['penalty_last_n'], 'penalty_last_n', 'int32'],
  [['penalty_repeat', 'repetition_penalty'], 'penalty_repeat', 'float32'],
  [['mirostat'], 'mirostat', 'int32'],
  [['mirostat_tau'], 'mirostat_tau', 'float32'],
  [['mirostat_eta'], 'mirostat_eta', 'float32'],
];

export function addGeneralMetadata(
  out: GgufMetadata,
  opts: { name: string; parameterCount: number; generationConfig: Json | null },
): void {
  out.set('general.type', string('model'));
  for (const [from, key, type] of SAMPLING) {
    const value = from.map((k) => opts.generationConfig?.[k]).find((v) => typeof v === 'number');
    if (typeof value !== 'number') continue;
    if (type === 'int32' && !Number.isInteger(value)) continue;
    out.set(`general.sampling.${key}`, type === 'int32' ? int32(value) : float32(value));
  }
  out.set('general.name', string(opts.name));
  out.set('general.size_label', string(sizeLabel(opts.parameterCount)));
}

/** gguf-py model_weight_count_rounded_notation(min_digits=2): 260K, 1.2M, 135M, 7.6B. */
export function sizeLabel(count: number): string {
  const [scaled, suffix] =
    count > 1e12
      ? [count * 1e-12, 'T']
      : count > 1e9
        ? [count * 1e-9, 'B']
        : count > 1e6
          ? [count * 1e-6, 'M']
          : [count * 1e-3, 'K'];
  const digits = String(Math.round(scaled)).replace(/^0+/, '').length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}
