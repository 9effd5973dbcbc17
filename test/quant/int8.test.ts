/**
 * int8 row quantization (src/quant/int8.ts) against bitsandbytes' pure-PyTorch backend run on torch
 * (test/fixtures/bnb-torch) and a straightforward reference written here.
 */
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../../src/gpu/half';
import {
  dequantizeInt8Rows,
  int8Code,
  int8RowScales,
  int8RowStatistics,
  quantizeInt8Rows,
  roundHalfEven,
  toFloat16Array,
} from '../../src/quant/int8';
import { dequantizeLayout, INT8_DEQUANT, packLayout } from '../../src/quant/layout';
import { bytesOf, caseInput, f32Of, torchCases } from './bnb-torch-cases';

const f = Math.fround;

/** torch.round written out: the nearest integer, exact halves to the even one. */
function halfEven(x: number): number {
  const fl = Math.floor(x);
  const d = x - fl;
  if (d < 0.5) return fl;
  if (d > 0.5) return fl + 1;
  return fl % 2 === 0 ? fl : fl + 1;
}

function reference(data: Float32Array, rows: number, cols: number) {
  const w16 = Array.from(data, (v) => f16BitsToF32(f32ToF16Bits(v)));
  const scb: number[] = [];
  const codes: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = w16.slice(r * cols, (r + 1) * cols);
    const m = Math.max(...row.map(Math.abs));
    scb.push(m);
    const s = f(f(1 / m) * 127);
    for (const v of row) codes.push(m === 0 ? 0 : halfEven(f(v * s)));
  }
  return { scb, codes };
}

function values(n: number, seed: number, scale: number): Float32Array {
  let a = seed;
  return Float32Array.from({ length: n }, () => {
    a = (a * 1103515245 + 12345) % 2147483648;
    return (a / 1073741824 - 1) * scale;
  });
}

describe('int8 against bitsandbytes on torch (test/fixtures/bnb-torch)', () => {
  for (const c of torchCases.int8) {
    it(`[${c.rows}, ${c.cols}] ${c.dtype}`, () => {
      const input = f32Of(c.input);
      expect(Array.from(input)).toEqual(Array.from(caseInput(c)));
      const q = quantizeInt8Rows(input, c.rows, c.cols);
      expect(new Uint8Array(q.codes.buffer)).toEqual(bytesOf(c.codes));
      expect(Array.from(q.scale)).toEqual(Array.from(f32Of(c.scb)));
      expect(Array.from(dequantizeInt8Rows(q))).toEqual(Array.from(f32Of(c.dequantized)));
    });
  }
});

describe('int8 rows', () => {
  it('matches the reference on random rows of several sizes, from f32 values cast to f16 first', () => {
    for (const [rows, cols] of [
      [1, 1],
      [3, 5],
      [17, 64],
      [64, 33],
    ]) {
      const x = values(rows * cols, rows * 31 + cols, 0.7);
      const q = quantizeInt8Rows(x, rows, cols);
      const ref = reference(x, rows, cols);
      expect(Array.from(q.codes)).toEqual(ref.codes);
      expect(Array.from(q.scale)).toEqual(ref.scb);
    }
  });

  it('halves round to even (torch.round) and the row absmax maps to ±127', () => {
    // absmax 127: fround(fround(1/127) * 127) is exactly 1, so the values themselves are rounded.
    const row = Float32Array.from([127, 2.5, 3.5, -2.5, 0.5, 1.5, -0.5, -127]);
    expect(int8RowScales(Float32Array.from([127]))[0]).toBe(1);
    expect(Array.from(quantizeInt8Rows(row, 1, 8).codes)).toEqual([127, 2, 4, -2, 0, 2, 0, -127]);
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999998, 2.5000002].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, 2, 3]);
  });

  it('a zero row gets SCB 0 and codes 0, and dequantizes to 0', () => {
    const q = quantizeInt8Rows(Float32Array.from([0, 0, 0, 1, -2, 0.5]), 2, 3);
    expect(Array.from(q.scale)).toEqual([0, 2]);
    expect(Array.from(q.codes)).toEqual([0, 0, 0, 64, -127, 32]);
    expect(Array.from(dequantizeInt8Rows(q)).slice(0, 3)).toEqual([0, 0, 0]);
  });

  it('values beyond float16’s range are an error naming the row', () => {
    expect(() => quantizeInt8Rows(Float32Array.from([1, 2, 70000, 3]), 2, 2, { what: 'w' })).toThrow(
      /w: row 1 .*70000.*float16/,
    );
  });

  it('dequantization is fround(fround(code·SCB)·f32(1/127)), and the packed layout reads the same', () => {
    const x = values(40 * 24, 3, 2);
    for (const rounding of ['f32', 'bf16', 'f16'] as const) {
      const q = quantizeInt8Rows(x, 40, 24, { rounding });
      const out = dequantizeInt8Rows(q);
      if (rounding === 'f32') expect(out[5]).toBe(f(f(q.codes[5] * q.scale[0]) * INT8_DEQUANT));
      expect(Array.from(dequantizeLayout(packLayout(q)))).toEqual(Array.from(out));
    }
    expect(INT8_DEQUANT).toBe(f(7.874015718698502e-3));
  });

  it('the host/GPU split: int8RowStatistics’ factors on the f16 values give quantizeInt8Rows’ codes', () => {
    const x = values(9 * 50, 7, 1.3);
    const stats = int8RowStatistics(x, 9, 50);
    const x16 = toFloat16Array(x);
    const codes = Int8Array.from(x16, (v, i) => int8Code(v, stats.factor[Math.floor(i / 50)]));
    const q = quantizeInt8Rows(x, 9, 50);
    expect(codes).toEqual(q.codes);
    expect(stats.scale).toEqual(q.scale);
  });
});
