/**
 * test/fixtures/bnb-torch/cases.json (see its SOURCE.txt): bitsandbytes' pure-PyTorch backend run on torch, the
 * external truth for src/quant. Inputs the file leaves out (large cases) are rebuilt from its formula.
 */
import { readFileSync } from 'node:fs';
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../../src/gpu/half';

export interface TorchFourBitCase {
  n: number;
  shape: number[];
  blocksize: number;
  quant_type: 'nf4' | 'fp4';
  double_quant: boolean;
  dtype: 'float32' | 'bfloat16' | 'float16';
  seed: number;
  scale: number;
  specials?: [number, number][];
  input: string | null;
  codes: string;
  codes_shape: number[];
  absmax: string;
  absmax_dtype: string;
  quant_map: string;
  quant_state: string;
  state_keys: string[];
  dequantized: string | null;
  nested_absmax?: string;
  nested_quant_map?: string;
  offset?: string;
}

export interface TorchInt8Case {
  rows: number;
  cols: number;
  dtype: 'float32' | 'bfloat16' | 'float16';
  seed: number;
  scale: number;
  specials?: [number, number][];
  input: string;
  codes: string;
  scb: string;
  dequantized: string;
}

export interface TorchCases {
  torch: string;
  dynamic_map: string;
  four_bit: TorchFourBitCase[];
  int8: TorchInt8Case[];
}

export const torchCases: TorchCases = JSON.parse(
  readFileSync(new URL('../fixtures/bnb-torch/cases.json', import.meta.url), 'utf8'),
);

export function bytesOf(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function f32Of(hex: string): Float32Array {
  const bytes = bytesOf(hex);
  const view = new DataView(bytes.buffer);
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(4 * i, true));
}

/** The case's input as generate.py builds it: the hash formula, the specials, float32, then the case's dtype. */
export function caseInput(c: {
  n?: number;
  rows?: number;
  cols?: number;
  seed: number;
  scale: number;
  specials?: [number, number][];
  dtype: string;
}): Float32Array {
  const n = c.n ?? c.rows! * c.cols!;
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = ((i + c.seed) * 2654435761 + 40503 * c.seed) % 4294967296;
    values[i] = (h / 2147483648 - 1) * c.scale;
  }
  for (const [i, v] of c.specials ?? []) values[i] = v;
  if (c.dtype === 'bfloat16') for (let i = 0; i < n; i++) values[i] = bf16BitsToF32(f32ToBf16Bits(values[i]));
  if (c.dtype === 'float16') for (let i = 0; i < n; i++) values[i] = f16BitsToF32(f32ToF16Bits(values[i]));
  return values;
}
