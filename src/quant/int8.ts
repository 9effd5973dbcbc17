/**
 * bitsandbytes' LLM.int8() weight quantization (Int8Params._quantize -> int8_vectorwise_quant, default backend in
 * bitsandbytes/backends/default/ops.py; int8_vectorwise_dequant in bitsandbytes/_ops.py), in float32 arithmetic:
 *   w16      = the weight cast to float16 (round to nearest even; Int8Params casts before quantizing)
 *   SCB[r]   = max_j |w16[r, j]|, as float32 (exact)
 *   scale[r] = fround(fround(1 / SCB[r]) * 127)        (`127.0 / row_stats` is reciprocal() * 127 in torch)
 *   code     = round_half_even(fround(w16 * scale[r]))  (torch.round), as int8
 *   value    = fround(fround(code * SCB[r]) * fround(1/127 = 7.874015718698502e-3))
 * A row of zeros has SCB 0: torch's 0 * inf is NaN and its int8 cast undefined (CUDA's __float2int_rn gives 0); here
 * its codes are 0, so it dequantizes to 0.
 * The checkpoint stores `weight` I8 [out, in], `SCB` F32 [out] and `weight_format` U8 [] = 0 (row-major).
 */
import { f16BitsToF32, f32ToF16Bits } from '../gpu/half';
import { INT8_DEQUANT, type Int8RowsParts, type OutRounding } from './layout';
import { roundTo } from './bnb4';

const f = Math.fround;

/** float32 -> float16 -> float32, round to nearest even (torch's .to(torch.float16)). */
export function toFloat16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** torch.round: to the nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The multipliers each row's float16 values are scaled by, from the rows' absmax (SCB, max |w16|):
 * fround(fround(1 / absmax) * 127); a zero row gets 0 (its codes are 0).
 */
export function int8RowScales(rowAbsmax: Float32Array): Float32Array {
  const out = new Float32Array(rowAbsmax.length);
  for (let r = 0; r < rowAbsmax.length; r++) out[r] = rowAbsmax[r] === 0 ? 0 : f(f(1 / rowAbsmax[r]) * 127);
  return out;
}

/** The int8 code of a float16-exact value times its row's scale. */
export function int8Code(w16: number, scale: number): number {
  return roundHalfEven(f(w16 * scale));
}

/** The per-row statistics of a weight: SCB (bitsandbytes' row absmax) and the multipliers its codes use. */
export interface Int8RowStatistics {
  /** max |float16(w)| per row, as f32: the stored SCB. */
  scale: Float32Array;
  /** int8RowScales(scale): code = round_half_even(fround(float16(w) * factor[row])). */
  factor: Float32Array;
}

/**
 * The host half of int8 quantization: SCB and the multipliers, from a row-major [rows, cols] float32 weight. The codes
 * scale the values rounded to float16 (round to nearest even) first, as bitsandbytes casts the weight before
 * quantizing: toFloat16Array gives them. Values beyond float16's range are an error (torch would make them inf and
 * the row NaN).
 */
export function int8RowStatistics(
  data: Float32Array,
  rows: number,
  cols: number,
  what = 'int8 quantization',
): Int8RowStatistics {
  if (data.length !== rows * cols) throw new Error(`${what}: ${data.length} values for [${rows}, ${cols}]`);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) {
      const a = Math.abs(data[j]);
      if (!(a <= m)) m = a; // NaN propagates
    }
    // Rounding is monotonic, so the absmax of the float16 values is the float16 of the absmax.
    const h = toFloat16(m);
    if (!Number.isFinite(h)) {
      throw new Error(
        `${what}: row ${r} has a value of magnitude ${m}, not finite in float16, which bitsandbytes casts the weight ` +
          `to before int8 quantization (float16 holds at most ±65504)`,
      );
    }
    scale[r] = h;
  }
  return { scale, factor: int8RowScales(scale) };
}

/** The values rounded to float16 (round to nearest even), as float32: what int8 codes are computed from. */
export function toFloat16Array(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = toFloat16(data[i]);
  return out;
}

/** Quantizes a row-major [rows, cols] float32 weight as bitsandbytes' Int8Params does. */
export function quantizeInt8Rows(
  data: Float32Array,
  rows: number,
  cols: number,
  options: { rounding?: OutRounding; what?: string } = {},
): Int8RowsParts {
  const { scale, factor } = int8RowStatistics(data, rows, cols, options.what);
  const codes = new Int8Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let j = r * cols; j < (r + 1) * cols; j++) codes[j] = int8Code(toFloat16(data[j]), factor[r]);
  }
  return { kind: 'int8Rows', rows, cols, codes, scale, rounding: options.rounding ?? 'f32' };
}

/** int8_vectorwise_dequant: fround(fround(code * SCB[row]) * fround(1/127)), rounded to the output precision. */
export function dequantizeInt8Rows(p: Int8RowsParts): Float32Array {
  const out = new Float32Array(p.rows * p.cols);
  for (let r = 0; r < p.rows; r++) {
    for (let j = r * p.cols; j < (r + 1) * p.cols; j++) {
      out[j] = roundTo(f(f(p.codes[j] * p.scale[r]) * INT8_DEQUANT), p.rounding);
    }
  }
  return out;
}
