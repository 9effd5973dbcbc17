/**
 * 4-bit quantization (src/quant/bnb4.ts) against (1) bitsandbytes' pure-PyTorch backend run on torch
 * (test/fixtures/bnb-torch), (2) an independent, straightforward reference written here, (3) published constants:
 * the CUDA kernel's NF4 decision thresholds and the dynamic map current torch wheels compute.
 */
import { describe, expect, it } from 'vitest';
import {
  ABSMAX_FLOOR,
  blockAbsmax,
  blockCodes4bit,
  bnb4bitBlockStats,
  code4bit,
  createDynamicMap,
  dequantize4bit,
  DYNAMIC_MAP,
  FP4_CODE,
  FP4_MIDPOINTS,
  FP4_ORDER,
  fourBitStatistics,
  meanF32,
  NF4_CODE,
  NF4_MIDPOINTS,
  packNibbles,
  quantize4bit,
  type QuantType4,
} from '../../src/quant/bnb4';
import { dequantizeLayout, packLayout, type OutRounding } from '../../src/quant/layout';
import { bytesOf, caseInput, f32Of, torchCases } from './bnb-torch-cases';

const f = Math.fround;

/** The map create_dynamic_map() gives on current PyTorch wheels, as projects that embed bitsandbytes' map print it. */
const PUBLISHED_DYNAMIC_MAP_POSITIVE = [
  5.500000384017767e-7, 3.250000190746505e-6, 7.749999895168003e-6, 2.1249998098937795e-5, 4.374999844003469e-5,
  6.625000241911039e-5, 8.874999912222847e-5, 1.5625001105945557e-4, 2.687500382307917e-4, 3.812500217463821e-4,
  4.93750034365803e-4, 6.062500760890543e-4, 7.187500596046448e-4, 8.312499849125743e-4, 9.437500848434865e-4,
  0.001281249918974936, 0.001843750011175871, 0.002406249986961484, 0.002968749962747097, 0.0035312497057020664,
  0.004093749914318323, 0.0046562496572732925, 0.0052187503315508366, 0.005781250074505806, 0.006343749817460775,
  0.006906250026077032, 0.0074687497690320015, 0.008031249977648258, 0.008593750186264515, 0.009156249463558197,
  0.009718749672174454, 0.011406250298023224, 0.014218750409781933, 0.017031250521540642, 0.019843751564621925,
  0.02265625074505806, 0.025468749925494194, 0.028281250968575478, 0.031093750149011612, 0.033906251192092896,
  0.03671875223517418, 0.039531249552965164, 0.04234374687075615, 0.04515625163912773, 0.047968748956918716, 0.05078125,
  0.053593751043081284, 0.05640624836087227, 0.05921875312924385, 0.062031250447034836, 0.06484375149011612,
  0.0676562562584877, 0.07046874612569809, 0.07328125089406967, 0.07609374821186066, 0.07890625298023224,
  0.08171875774860382, 0.08453124761581421, 0.08734375238418579, 0.09015624970197678, 0.09296875447034836,
  0.09578125923871994, 0.09859374910593033, 0.10703125596046448, 0.12109375, 0.13515624403953552, 0.14921875298023224,
  0.16328124701976776, 0.17734375596046448, 0.19140625, 0.20546874403953552, 0.21953125298023224, 0.23359374701976776,
  0.24765624105930328, 0.26171875, 0.2757812738418579, 0.28984373807907104, 0.30390626192092896, 0.3179687261581421,
  0.33203125, 0.3460937440395355, 0.36015623807907104, 0.37421876192092896, 0.3882812261581421, 0.40234375,
  0.4164062440395355, 0.43046873807907104, 0.44453126192092896, 0.4585937261581421, 0.47265625, 0.48671871423721313,
  0.500781238079071, 0.5148437023162842, 0.5289062261581421, 0.54296875, 0.5570312738418579, 0.5710937976837158,
  0.585156261920929, 0.5992187261581421, 0.61328125, 0.6273437738418579, 0.6414062976837158, 0.655468761920929,
  0.6695312261581421, 0.68359375, 0.6976562738418579, 0.7117187976837158, 0.725781261920929, 0.7398437261581421,
  0.75390625, 0.7679687738418579, 0.782031238079071, 0.796093761920929, 0.8101562261581421, 0.82421875,
  0.8382812738418579, 0.852343738079071, 0.866406261920929, 0.8804687261581421, 0.89453125, 0.9085937738418579,
  0.922656238079071, 0.936718761920929, 0.9507812261581421, 0.96484375, 0.9789062738418579, 0.992968738079071,
];
const PUBLISHED_DYNAMIC_MAP = Float32Array.from([
  ...PUBLISHED_DYNAMIC_MAP_POSITIVE.map((v) => -v).reverse(),
  0,
  ...PUBLISHED_DYNAMIC_MAP_POSITIVE,
  1,
]);

/** bitsandbytes' CUDA dQuantizeNF4 compares against these (csrc/kernels.cu), as float32 literals. */
const CUDA_NF4_THRESHOLDS = [
  -0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544, -0.23460740596055984,
  -0.13791173323988914, -0.045525018125772476, 0.03979014977812767, 0.1202552504837513, 0.2035212516784668,
  0.2920137718319893, 0.3893125355243683, 0.5016634166240692, 0.6427869200706482, 0.8614784181118011,
];

// ---------------------------------------------------------------------------------------------
// An independent reference: bitsandbytes' default backend written out plainly (linear scans, no shared helpers).

const NF4_LIST = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
].map(f);
const FP4_LIST = [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => f(v / 12));

/** Index of the first bound not below s = the number of bounds strictly below s, by a linear scan. */
function bucket(bounds: number[], s: number): number {
  let i = 0;
  while (i < bounds.length && bounds[i] < s) i++;
  return i;
}

function sortedWithOrder(code: number[]): { order: number[]; mids: number[] } {
  const order = code.map((_, i) => i).sort((a, b) => code[a] - code[b] || a - b);
  // (a + b) / 2 of two float32 is exact in float64; one rounding to float32 equals torch's fround(fround(a+b)/2).
  const mids = order.slice(0, -1).map((o, i) => f((code[o] + code[order[i + 1]]) / 2));
  return { order, mids };
}

interface RefResult {
  codes: number[];
  storedAbsmax: number[];
  absmaxCodes?: number[];
  nestedAbsmax?: number[];
  offset?: number;
}

function refBlockwise(values: number[], bs: number, bounds: number[], order: number[]) {
  const floor = f(1e-38);
  const n = values.length;
  const full = Math.floor(n / bs);
  const codes: number[] = [];
  const stored: number[] = [];
  for (let b = 0; b * bs < n; b++) {
    const block = values.slice(b * bs, (b + 1) * bs);
    const m = Math.max(0, ...block.map(Math.abs));
    const isFull = b < full;
    stored.push(isFull ? m : Math.max(m, floor));
    const recip = f(1 / Math.max(m, floor));
    for (const x of block) {
      let s = isFull ? f(x * recip) : f(x / Math.max(m, floor));
      s = Math.min(1, Math.max(-1, s));
      codes.push(order[bucket(bounds, s)]);
    }
  }
  return { codes, stored };
}

function reference(values: Float32Array, bs: number, type: QuantType4, dq: boolean): RefResult {
  const { order, mids } = sortedWithOrder(type === 'nf4' ? NF4_LIST : FP4_LIST);
  const { codes, stored } = refBlockwise(Array.from(values), bs, mids, order);
  if (!dq) return { codes, storedAbsmax: stored };
  let sum = 0;
  for (const a of stored) sum += a;
  const offset = f(f(sum) / stored.length);
  const dyn = Array.from(PUBLISHED_DYNAMIC_MAP);
  const dynMids = dyn.slice(0, -1).map((v, i) => f((v + dyn[i + 1]) / 2));
  const nested = refBlockwise(
    stored.map((a) => f(a - offset)),
    256,
    dynMids,
    dyn.map((_, i) => i),
  );
  return { codes, storedAbsmax: stored, absmaxCodes: nested.codes, nestedAbsmax: nested.stored, offset };
}

function unpack(bytes: Uint8Array, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(i & 1 ? bytes[i >> 1] & 15 : bytes[i >> 1] >> 4);
  return out;
}

/** mulberry32: deterministic test data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function normals(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()) * scale;
  return out;
}

/** Awkward data: a tie block, exact ±absmax, a zero block, -0, and a tiny block, over normal values. */
function awkward(n: number, seed: number, bs: number): Float32Array {
  const x = normals(n, seed, 0.02);
  const put = (i: number, v: number) => {
    if (i < n) x[i] = v;
  };
  // Block 0: absmax exactly 1 (reciprocal 1), values at every NF4 midpoint: each must take the lower code.
  put(0, 1);
  NF4_MIDPOINTS.forEach((m, k) => put(1 + k, m));
  // Block 1: absmax 2 (reciprocal 0.5): 2·midpoint scales to the midpoint exactly.
  put(bs, -2);
  NF4_MIDPOINTS.forEach((m, k) => put(bs + 1 + k, 2 * m));
  // Block 2: both signs at absmax.
  put(2 * bs, f(0.3));
  put(2 * bs + 1, f(-0.3));
  put(2 * bs + 2, -0);
  // Block 3: all zeros. Block 4: tiny values.
  for (let k = 0; k < bs; k++) put(3 * bs + k, 0);
  for (let k = 0; k < bs; k++) put(4 * bs + k, k % 2 ? 1e-30 : -3e-39);
  return x;
}

const SIZES = [1, 2, 3, 63, 64, 65, 127, 129, 64 * 5 + 33, 64 * 256, 64 * 256 + 1, 64 * 300 + 17];

describe('codebooks', () => {
  it('NF4 and FP4 are get_4bit_type’s float32 values; FP4 sorts with its two zeros in index order', () => {
    expect(Array.from(NF4_CODE)).toEqual(NF4_LIST);
    expect(Array.from(FP4_CODE)).toEqual(FP4_LIST);
    expect(Object.is(FP4_CODE[8], 0)).toBe(true); // Python's -0 in that list is the int 0
    expect(Array.from(FP4_ORDER).slice(6, 10)).toEqual([9, 0, 8, 1]);
    expect(FP4_MIDPOINTS[7]).toBe(0);
  });

  it('the NF4 midpoints are the CUDA kernel’s decision thresholds (as float32)', () => {
    expect(Array.from(NF4_MIDPOINTS)).toEqual(CUDA_NF4_THRESHOLDS.map(f));
  });

  it('the dynamic map is what current torch wheels compute; torch 1.13’s differs in the last bits of 42 entries', () => {
    expect(Array.from(createDynamicMap())).toEqual(Array.from(PUBLISHED_DYNAMIC_MAP));
    expect(Array.from(DYNAMIC_MAP)).toEqual(Array.from(PUBLISHED_DYNAMIC_MAP));
    const old = f32Of(torchCases.dynamic_map);
    const bits = (v: number) => new Int32Array(Float32Array.from([v]).buffer)[0];
    const ulps = Array.from(old, (v, i) => Math.abs(bits(v) - bits(DYNAMIC_MAP[i])));
    expect(ulps.filter((d) => d === 1)).toHaveLength(34);
    expect(ulps.filter((d) => d === 2)).toHaveLength(8);
    expect(ulps.filter((d) => d > 2)).toHaveLength(0);
  });
});

describe('quantize4bit against bitsandbytes on torch (test/fixtures/bnb-torch)', () => {
  for (const c of torchCases.four_bit) {
    it(`${c.quant_type} n=${c.n} blocksize ${c.blocksize} ${c.dtype}${c.double_quant ? ' double-quantized' : ''}`, () => {
      const input = c.input ? f32Of(c.input) : caseInput(c);
      expect(Array.from(input)).toEqual(Array.from(caseInput(c)));
      const rounding: OutRounding = c.dtype === 'bfloat16' ? 'bf16' : c.dtype === 'float16' ? 'f16' : 'f32';
      const q = quantize4bit(input, {
        blocksize: c.blocksize,
        quantType: c.quant_type,
        doubleQuant: c.double_quant,
        nestedMap: f32Of(torchCases.dynamic_map),
        rounding,
      });
      expect(c.codes_shape).toEqual([Math.ceil(c.n / 2), 1]);
      expect(q.codes).toEqual(bytesOf(c.codes));
      expect(Array.from(q.map)).toEqual(Array.from(f32Of(c.quant_map)));
      if (c.double_quant) {
        expect(c.absmax_dtype).toBe('torch.uint8');
        expect(q.absmax).toEqual(bytesOf(c.absmax));
        expect(Array.from(q.nested!.absmax)).toEqual(Array.from(f32Of(c.nested_absmax!)));
        expect(Array.from(q.nested!.map)).toEqual(Array.from(f32Of(c.nested_quant_map!)));
        expect(q.nested!.offset).toBe(f32Of(c.offset!)[0]);
      } else {
        expect(c.absmax_dtype).toBe('torch.float32');
        expect(Array.from(q.absmax)).toEqual(Array.from(f32Of(c.absmax)));
      }
      if (c.dequantized) expect(Array.from(dequantize4bit(q))).toEqual(Array.from(f32Of(c.dequantized)));
    });
  }
});

describe('quantize4bit against the reference written here', () => {
  for (const type of ['nf4', 'fp4'] as const) {
    for (const dq of [true, false]) {
      it(`${type}${dq ? ', double quantization' : ''}: codes and absmax on awkward sizes`, () => {
        for (const n of SIZES) {
          for (const bs of type === 'nf4' && dq ? [64, 32, 128] : [64]) {
            const x = awkward(n, n * 7 + bs, bs);
            const q = quantize4bit(x, { blocksize: bs, quantType: type, doubleQuant: dq });
            const ref = reference(x, bs, type, dq);
            const what = `${type} n=${n} bs=${bs}`;
            expect(unpack(q.codes, n), what).toEqual(ref.codes);
            if (n % 2) expect(q.codes[q.codes.length - 1] & 15, what).toBe(type === 'nf4' ? 7 : 0);
            if (dq) {
              expect(Array.from(q.absmax), what).toEqual(ref.absmaxCodes);
              expect(Array.from(q.nested!.absmax), what).toEqual(ref.nestedAbsmax);
              expect(q.nested!.offset, what).toBe(ref.offset);
            } else {
              expect(Array.from(q.absmax), what).toEqual(ref.storedAbsmax);
            }
          }
        }
      });
    }
  }

  it('ties at midpoints take the lower code, ±absmax take the end codes, zero blocks code 7', () => {
    const bs = 64;
    const x = awkward(64 * 6, 1, bs);
    const codes = unpack(quantize4bit(x, { blocksize: bs }).codes, x.length);
    expect(codes.slice(1, 16)).toEqual([...Array(15).keys()]); // midpoint i lies between codes i and i+1
    expect(codes.slice(bs + 1, bs + 16)).toEqual([...Array(15).keys()]);
    expect(codes[0]).toBe(15);
    expect(codes[bs]).toBe(0);
    expect(codes.slice(2 * bs, 2 * bs + 3)).toEqual([15, 0, 7]);
    expect(codes.slice(3 * bs, 4 * bs)).toEqual(Array(bs).fill(7));
  });

  it('a full zero block stores absmax 0; a partial one stores 1e-38 as float32 (torch clamps before storing)', () => {
    const q = quantize4bit(new Float32Array(64 + 10), { doubleQuant: false });
    expect(Array.from(q.absmax)).toEqual([0, ABSMAX_FLOOR]);
    expect(ABSMAX_FLOOR).toBeGreaterThan(0);
    expect(ABSMAX_FLOOR).toBeLessThan(1.1754943508222875e-38); // a float32 subnormal
    expect(unpack(q.codes, 74)).toEqual(Array(74).fill(7));
    expect(Array.from(dequantize4bit(q))).toEqual(Array(74).fill(0));
  });

  it('the partial last block divides by its absmax where a full block multiplies by the reciprocal', () => {
    // Find a value whose quotient and reciprocal product fall on either side of an NF4 midpoint.
    const r = rng(5);
    let found: { x: number; a: number } | null = null;
    for (let t = 0; t < 200_000 && !found; t++) {
      const a = f(0.5 + r());
      const m = NF4_MIDPOINTS[Math.floor(r() * 15)];
      const x0 = f(m * a);
      for (const x of [x0, f(x0 * (1 + 2 ** -23)), f(x0 * (1 - 2 ** -23))]) {
        if (code4bit(f(x / a), 'nf4') !== code4bit(f(x * f(1 / a)), 'nf4')) found = { x, a };
      }
    }
    expect(found).not.toBeNull();
    const { x, a } = found!;
    const data = Float32Array.from([a, x, a, x]); // n = 4 < 64: one partial block
    const codes = unpack(quantize4bit(data, { doubleQuant: false }).codes, 4);
    expect(codes[1]).toBe(code4bit(f(x / a), 'nf4'));
    const fullBlock = new Float32Array(64).fill(0);
    fullBlock[0] = a;
    fullBlock[1] = x;
    expect(unpack(quantize4bit(fullBlock, { doubleQuant: false }).codes, 64)[1]).toBe(code4bit(f(x * f(1 / a)), 'nf4'));
  });

  it('rejects values that are not finite, and block sizes bitsandbytes does not have', () => {
    expect(() => quantize4bit(Float32Array.from([1, Number.NaN]))).toThrow(/value 1 is NaN/);
    expect(() => quantize4bit(Float32Array.from([Infinity]))).toThrow(/finite/);
    expect(() => quantize4bit(new Float32Array(4), { blocksize: 48 })).toThrow(/blocksize 48.*32, 64/);
  });

  it('meanF32: the float64 sum rounded to float32, divided in float32', () => {
    expect(meanF32(Float32Array.from([1, 2, 4]))).toBe(f(7 / 3));
    expect(meanF32(Float32Array.from([f(0.1), f(0.2)]))).toBe(f(f(f(0.1) + f(0.2)) / 2));
  });
});

describe('dequantization', () => {
  it('dequantizeLayout(packLayout(parts)) equals dequantize4bit exactly', () => {
    for (const type of ['nf4', 'fp4'] as const) {
      for (const dq of [true, false]) {
        for (const rounding of ['f32', 'bf16', 'f16'] as const) {
          for (const n of [1, 65, 64 * 300 + 17]) {
            const q = quantize4bit(normals(n, n, 0.3), { quantType: type, doubleQuant: dq, rounding });
            const expected = dequantize4bit(q);
            expect(Array.from(dequantizeLayout(packLayout(q))), `${type} ${dq} ${rounding} n=${n}`).toEqual(
              Array.from(expected),
            );
          }
        }
      }
    }
  });

  it('values round to the dtype the weight had: bf16 and f16 outputs are exact in that dtype', () => {
    const x = normals(640, 3, 0.1);
    const bf = dequantize4bit(quantize4bit(x, { rounding: 'bf16' }));
    for (const v of bf) expect(new Uint32Array(Float32Array.from([v]).buffer)[0] & 0xffff).toBe(0);
  });
});

describe('the host/GPU split', () => {
  it('codes from fourBitStatistics’ scales plus its tail reproduce quantize4bit', () => {
    for (const type of ['nf4', 'fp4'] as const) {
      for (const n of SIZES) {
        const x = awkward(n, n + 11, 64);
        const s = fourBitStatistics(x, { quantType: type });
        const mids = type === 'nf4' ? NF4_MIDPOINTS : FP4_MIDPOINTS;
        const order = type === 'nf4' ? null : FP4_ORDER;
        // The GPU's computation: every element of a full block against the 15 midpoints.
        const codes = new Uint8Array(n);
        const full = s.tail ? s.tail.start : n;
        for (let i = 0; i < full; i++) {
          const sv = Math.min(1, Math.max(-1, f(x[i] * s.scale[Math.floor(i / 64)])));
          let k = 0;
          while (k < 15 && mids[k] < sv) k++;
          codes[i] = order ? order[k] : k;
        }
        const packed = packNibbles(codes, type);
        if (s.tail) packed.set(s.tail.codes, s.tail.start / 2);
        const q = quantize4bit(x, { quantType: type });
        expect(packed, `${type} n=${n}`).toEqual(q.codes);
        expect(s.absmaxCodes).toEqual(q.absmax);
        expect(s.nested).toEqual(q.nested);
        expect(s.scale.length).toBe(Math.ceil(n / 64));
        expect(s.tail === null).toBe(n % 64 === 0);
      }
    }
  });

  it('bnb4bitBlockStats from the per-block absmax the GPU computes gives the same statistics', () => {
    const x = normals(64 * 300 + 17, 9, 0.05);
    const raw = blockAbsmax(x, 64);
    const stats = bnb4bitBlockStats(raw, { n: x.length });
    const s = fourBitStatistics(x);
    expect(stats).toEqual(s.stats);
    expect(Array.from(stats.scales.reciprocals)).toEqual(Array.from(s.scale.subarray(0, 300)));
    const tail = x.subarray(300 * 64);
    expect(packNibbles(blockCodes4bit(tail, raw[300], true, 'nf4'), 'nf4')).toEqual(s.tail!.codes);
  });
});
