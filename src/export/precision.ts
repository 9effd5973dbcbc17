/**
 * Rounding a merged weight once, from its float64 value, to the precision it is written in (round to nearest even,
 * as torch's `.to(dtype)` does). Rounding to f32 first and then to bf16 could land on a bf16 tie that the float64
 * value was not on (double rounding); the results here are f32 arrays whose values the target precision holds
 * exactly, so writing them as bf16 or f16 changes nothing more.
 */
import type { MergedDtype } from './merged-model';

/** Significant bits (with the implicit one), smallest normal exponent and largest finite value of each precision. */
const FORMATS: Record<MergedDtype, { bits: number; minExponent: number; max: number }> = {
  f32: { bits: 24, minExponent: -126, max: (2 - 2 ** -23) * 2 ** 127 },
  bf16: { bits: 8, minExponent: -126, max: (2 - 2 ** -7) * 2 ** 127 },
  f16: { bits: 11, minExponent: -14, max: 65504 },
};

const scratch = new DataView(new ArrayBuffer(8));

/** floor(log2 |x|) of a finite non-zero float64, read from its bits (Math.log2 can be off by one near powers of 2). */
function exponentOf(x: number): number {
  scratch.setFloat64(0, x);
  const biased = (scratch.getUint16(0) >>> 4) & 0x7ff;
  return biased === 0 ? Math.floor(Math.log2(Math.abs(x))) : biased - 1023;
}

/** x rounded to nearest even at `bits` significant bits, with subnormal steps below 2^minExponent; may exceed max. */
function roundSignificand(x: number, bits: number, minExponent: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const step = 2 ** (Math.max(exponentOf(x), minExponent) - bits + 1);
  const q = x / step; // exact: a power-of-two scaling
  let n = Math.round(q); // ties go up here...
  if (n - q === 0.5 && n % 2 !== 0) n -= 1; // ...and to the even neighbour in IEEE rounding
  return n * step;
}

/** One value rounded to `dtype` (infinite when it rounds past the largest finite value). */
export function roundToDtype(x: number, dtype: MergedDtype): number {
  if (dtype === 'f32') return Math.fround(x);
  const f = FORMATS[dtype];
  const r = roundSignificand(x, f.bits, f.minExponent);
  return Math.abs(r) > f.max ? Math.sign(r) * Infinity : r;
}

/**
 * `values` rounded once to `dtype`, as f32 (every bf16 and f16 value is one). A finite value that the precision
 * cannot hold is an error naming the tensor: a merged f16 model would otherwise carry infinities.
 */
export function roundedTensor(values: Float64Array | Float32Array, dtype: MergedDtype, name: string): Float32Array {
  // f32 input is already what f32 holds.
  if (dtype === 'f32' && values instanceof Float32Array) return values;
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const r = roundToDtype(values[i], dtype);
    if (!Number.isFinite(r) && Number.isFinite(values[i])) {
      const hint = dtype === 'f16' ? ' (±65504); write bf16 or f32 instead' : '';
      throw new Error(`${name}: value ${values[i]} at element ${i} is beyond ${dtype}'s range${hint}`);
    }
    out[i] = r;
  }
  return out;
}
