/**
 * 16-bit floats as the GPU stores frozen weights: two values per u32 word, element 2j in the low half
 * (WGSL's unpack2x16float order), so every adapter can read them, with or without `shader-f16`.
 * bf16 is the top half of an f32 (the format most checkpoints ship in: storing them as bf16 is lossless);
 * f16 is IEEE binary16. Conversions round to nearest even, like PyTorch's `.to(torch.bfloat16 / float16)`.
 */
export type HalfDType = 'f16' | 'bf16';

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function f32Bits(x: number): number {
  scratch[0] = x;
  return scratchBits[0];
}

function fromF32Bits(bits: number): number {
  scratchBits[0] = bits >>> 0;
  return scratch[0];
}

/** f32 -> bf16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16Bits(x: number): number {
  const bits = f32Bits(x);
  if (Number.isNaN(x)) return ((bits >>> 16) | 0x40) & 0xffff;
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  return fromF32Bits((h & 0xffff) << 16);
}

/** f32 -> IEEE binary16 bits, round to nearest even, with subnormals; beyond ±65504 rounds to ±Infinity. */
export function f32ToF16Bits(x: number): number {
  const bits = f32Bits(x);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal (or zero): the implicit 1 joins the mantissa, shifted right by 1 - e more places.
    if (e < -10) return sign;
    const m = mantissa | 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = m & ((1 << shift) - 1);
    let out = m >>> shift;
    if (rest > half || (rest === half && out & 1)) out++;
    return sign | out;
  }
  let out = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++; // may carry into the exponent: still correct
  return sign | out;
}

/** IEEE binary16 bits -> number (exact). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 31) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const toBits = { f16: f32ToF16Bits, bf16: f32ToBf16Bits } as const;
const fromBits = { f16: f16BitsToF32, bf16: bf16BitsToF32 } as const;

/** Words a packed tensor of n elements occupies (an odd count leaves the last high half zero). */
export function packedWords(n: number): number {
  return Math.ceil(n / 2);
}

/** f32 values -> packed 16-bit words. */
export function packHalf(data: ArrayLike<number>, dtype: HalfDType): Uint32Array {
  const encode = toBits[dtype];
  const out = new Uint32Array(packedWords(data.length));
  for (let i = 0; i < data.length; i += 2) {
    const lo = encode(data[i]);
    const hi = i + 1 < data.length ? encode(data[i + 1]) : 0;
    out[i >> 1] = (lo | (hi << 16)) >>> 0;
  }
  return out;
}

/** Packed 16-bit words -> n f32 values (exact). */
export function unpackHalf(words: Uint32Array, n: number, dtype: HalfDType): Float32Array {
  const decode = fromBits[dtype];
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const w = words[i >> 1];
    out[i] = decode(i & 1 ? w >>> 16 : w & 0xffff);
  }
  return out;
}

/** The values a 16-bit tensor holds after storing `data` (what the kernels' references compute with). */
export function roundToHalf(data: ArrayLike<number>, dtype: HalfDType): Float32Array {
  return unpackHalf(packHalf(data, dtype), data.length, dtype);
}

/** Index of the first value f16 cannot hold (beyond ±65504: it would become infinite), or -1. */
export function firstF16Overflow(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    if (Number.isFinite(data[i]) && !Number.isFinite(f16BitsToF32(f32ToF16Bits(data[i])))) return i;
  }
  return -1;
}
