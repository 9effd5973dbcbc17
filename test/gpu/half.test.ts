import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  firstF16Overflow,
  packHalf,
  roundToHalf,
  unpackHalf,
} from '../../src/gpu/half';

const isNaNBits = {
  f16: (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0,
  bf16: (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0,
};
const codecs = {
  f16: { encode: f32ToF16Bits, decode: f16BitsToF32 },
  bf16: { encode: f32ToBf16Bits, decode: bf16BitsToF32 },
} as const;

describe('16-bit float conversion', () => {
  for (const dtype of ['f16', 'bf16'] as const) {
    const { encode, decode } = codecs[dtype];

    it(`${dtype}: every non-NaN bit pattern survives decode -> encode`, () => {
      for (let h = 0; h < 65536; h++) {
        if (isNaNBits[dtype](h)) {
          expect(Number.isNaN(decode(h))).toBe(true);
          expect(isNaNBits[dtype](encode(decode(h)))).toBe(true);
          continue;
        }
        expect(encode(decode(h))).toBe(h);
      }
    });

    it(`${dtype}: halfway between neighbours rounds to the even one; just past halfway rounds up`, () => {
      // Positive finite patterns whose successor is finite too.
      for (let h = 1; h < 0x7bff; h += 97) {
        if (isNaNBits[dtype](h + 1) || !Number.isFinite(decode(h + 1))) continue;
        const lo = decode(h),
          hi = decode(h + 1);
        const mid = (lo + hi) / 2; // exact in f64; representable in f32 for both formats' neighbours
        if (Math.fround(mid) !== mid) continue;
        expect(encode(mid)).toBe(h % 2 === 0 ? h : h + 1);
        expect(encode(-mid)).toBe((h % 2 === 0 ? h : h + 1) | 0x8000);
        const past = Math.fround(mid + (hi - lo) / 64);
        if (past < hi) expect(encode(past)).toBe(h + 1);
      }
    });
  }

  it('f16: range edges (largest finite, overflow to infinity, subnormals, underflow to signed zero)', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519)).toBe(0x7bff); // below the halfway point to 65536 rounds down
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway rounds to even: infinity
    expect(f32ToF16Bits(-1e6)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16Bits(2 ** -14)).toBe(0x0400); // smallest normal
    expect(f32ToF16Bits(2 ** -26)).toBe(0x0000);
    expect(f32ToF16Bits(-(2 ** -26))).toBe(0x8000);
    expect(firstF16Overflow(Float32Array.of(1, -70000, 3))).toBe(1);
    expect(firstF16Overflow(Float32Array.of(1, Infinity, 65504))).toBe(-1);
  });

  it('bf16: keeps the f32 exponent range (1e38 stays finite) and truncates only the mantissa', () => {
    expect(bf16BitsToF32(f32ToBf16Bits(1e38))).toBeCloseTo(1e38, -36);
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(-2)).toBe(0xc000);
  });

  it('packs two values per word, element 2j in the low half, and unpacks exactly', () => {
    const data = Float32Array.of(1, -2, 0.5);
    const words = packHalf(data, 'bf16');
    expect([...words]).toEqual([(0x3f80 | (0xc000 << 16)) >>> 0, 0x3f00]);
    expect([...unpackHalf(words, 3, 'bf16')]).toEqual([1, -2, 0.5]);
    const rounded = roundToHalf(Float32Array.of(0.1, 1 / 3, 1000.7), 'f16');
    expect([...rounded]).toEqual([f16BitsToF32(f32ToF16Bits(0.1)), f16BitsToF32(f32ToF16Bits(1 / 3)), 1000.5]);
  });
});
