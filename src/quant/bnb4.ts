/**
 * bitsandbytes' 4-bit blockwise quantization (NF4 and FP4, with double quantization), reimplemented in float32
 * arithmetic exactly as its pure-PyTorch backend computes it (bitsandbytes/backends/default/ops.py: the
 * `quantize_4bit`, `quantize_blockwise`, `dequantize_blockwise` and `dequantize_4bit` kernels; functional.py:
 * `quantize_4bit`, `get_4bit_type`, `create_dynamic_map`). This is the CPU reference the GPU kernels are tested
 * against and what the `quantize` command writes; the pieces the GPU needs are exported separately
 * (`bnb4bitBlockStats`, `blockCodes4bit`, `packNibbles`, the midpoints).
 *
 * Quantizing n values in blocks of `blocksize` (the last block partial when n is not a multiple):
 *   absmax[b]  = max |x| over the block's real elements; the partial block's is clamped to f32(1e-38) as stored
 *   full block:    s = clamp(fround(x * fround(1 / max(absmax[b], f32(1e-38)))), -1, 1)   (x times the reciprocal)
 *   partial block: s = clamp(fround(x / absmax[last]), -1, 1)                            (a true division)
 *   code = the number of codebook midpoints strictly below s (torch.bucketize, right=False: a tie goes to the lower
 *          code); midpoints[i] = fround(fround(c[i] + c[i+1]) / 2) over the codebook sorted ascending; FP4 maps the
 *          sorted index back through its (stable) sort order
 *   bytes: element 2k in the high nibble, 2k+1 in the low one; odd n pads one value 0.0 (NF4 code 7)
 * Double quantization (compress_statistics):
 *   offset = fround(fround(Σ absmax, in float64) / fround(blocks))  (torch's mean; its float32 reduction order may
 *            differ from this correctly rounded sum by an ulp in rare cases)
 *   the blocks' fround(absmax - offset) are quantized the same way with the signed dynamic map (256 codes) in
 *   blocks of `nestedBlocksize`
 * Dequantization: absmax(b) = fround(fround(dynamic[acode[b]] * nested[b / nestedBlocksize]) + offset) (nested) or
 *   absmax[b]; value = round_out(fround(codebook[code] * absmax(b))), round_out rounding to the weight's dtype.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../gpu/half';
import type { Codebook4Parts, OutRounding } from './layout';

const f = Math.fround;

export type QuantType4 = 'nf4' | 'fp4';

/** bitsandbytes' valid 4-bit block sizes (functional.quantize_4bit). */
export const BLOCKSIZES_4BIT = [32, 64, 128, 256, 512, 1024, 2048, 4096] as const;

/** The smallest absmax torch clamps to before taking the reciprocal: 1e-38 as float32 (a subnormal). */
export const ABSMAX_FLOOR = f(1e-38);

/** NF4 (get_4bit_type('nf4')): the 16 float32 values, sorted, index = code. */
export const NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/**
 * FP4 (get_4bit_type('fp4')): bit patterns 0..15 (sign bit 8) of [0, 0.0625, 8, 12, 4, 6, 2, 3] and their negatives,
 * divided by 12 in float32. Python's `-0` in that list is the int 0, so code 8 is +0.0 like code 0.
 */
export const FP4_CODE = Float32Array.from(
  [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map((v) => v / 12),
);

/** Stable argsort (torch.argsort of a 16-value CPU tensor keeps equal values in index order). */
function argsort(code: Float32Array): Uint8Array {
  return Uint8Array.from([...code.keys()].sort((a, b) => code[a] - code[b] || a - b));
}

/** Midpoints between neighbours of a sorted codebook, in float32: fround(fround(a + b) / 2). */
function midpoints(sorted: ArrayLike<number>): Float32Array {
  const out = new Float32Array(sorted.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = f(f(sorted[i] + sorted[i + 1]) / 2);
  return out;
}

/** The 15 float32 boundaries NF4 codes are chosen by (the same values the CUDA kernel's dQuantizeNF4 tree compares). */
export const NF4_MIDPOINTS = midpoints(NF4_CODE);

/** FP4's codebook sorted ascending: sorted index i is code FP4_ORDER[i]. */
export const FP4_ORDER = argsort(FP4_CODE);
export const FP4_MIDPOINTS = midpoints(Array.from(FP4_ORDER, (i) => FP4_CODE[i]));

export function codebook4(quantType: QuantType4): Float32Array {
  return quantType === 'nf4' ? NF4_CODE : FP4_CODE;
}

/** The code a scaled value s (in [-1, 1]) gets: midpoints strictly below s, mapped through the sort order for FP4. */
export function code4bit(s: number, quantType: QuantType4): number {
  const mids = quantType === 'nf4' ? NF4_MIDPOINTS : FP4_MIDPOINTS;
  const index = countBelow(mids, s);
  return quantType === 'nf4' ? index : FP4_ORDER[index];
}

/** The code odd n pads its last low nibble with: the code of 0.0 (NF4 7, FP4 0). */
export function padCode4bit(quantType: QuantType4): number {
  return code4bit(0, quantType);
}

/** How many of the ascending `bounds` are strictly below s (torch.bucketize with right=False). */
function countBelow(bounds: Float32Array, s: number): number {
  let lo = 0;
  let hi = bounds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bounds[mid] < s) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const clamp1 = (x: number) => Math.max(-1, Math.min(x, 1));

/**
 * bitsandbytes' signed dynamic map (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)), 256 float32
 * values sorted ascending: for i = 0..6, the means of neighbours of torch.linspace(0.1, 1, 2^i + 1) (float32), times
 * 10^(i-6) and its negative, plus 0 and 1. torch's float32 linspace computes element k as start + step·k (end −
 * step·(steps−1−k) past the halfway point) with one rounding (a fused multiply-add), step = fround(fround(end − start)
 * / (steps − 1)). This reproduces the map current PyTorch wheels give (published in several projects that embed it,
 * see test/quant/bnb4.test.ts); builds that round twice there (Debian's torch 1.13, say) differ in the last bit of 42
 * entries. A checkpoint stores its map (nested_quant_map), and reading uses the stored one.
 */
export function createDynamicMap(): Float32Array {
  const data: number[] = [];
  const powers = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];
  for (let i = 0; i < 7; i++) {
    const steps = 2 ** i + 1;
    const bounds = linspaceF32(0.1, 1, steps);
    const scale = f(powers[i]);
    const means: number[] = [];
    for (let k = 0; k + 1 < steps; k++) means.push(f(f(bounds[k] + bounds[k + 1]) / 2));
    for (const m of means) data.push(f(scale * m));
    for (const m of means) data.push(f(-scale * m));
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** torch.linspace(start, end, steps, dtype=float32) on the CPU. */
function linspaceF32(startValue: number, endValue: number, steps: number): Float32Array {
  const start = f(startValue);
  const end = f(endValue);
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const step = f(f(end - start) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // step·k is exact in float64 and so is the sum (a few dozen bits): one rounding, as a fused multiply-add.
  for (let k = 0; k < steps; k++) out[k] = k < halfway ? f(start + step * k) : f(end - step * (steps - 1 - k));
  return out;
}

/** The signed dynamic map (computed once). */
export const DYNAMIC_MAP = createDynamicMap();
/** Its 255 float32 midpoints, which choose the 8-bit absmax codes. */
export const DYNAMIC_MIDPOINTS = midpoints(DYNAMIC_MAP);

/** Everything blockwise quantization keeps per block, and the multipliers it scales full blocks by. */
export interface BlockwiseScales {
  /** The absmax values as bitsandbytes stores them (the partial block's clamped to ABSMAX_FLOOR). */
  absmax: Float32Array;
  /** fround(1 / max(absmax[b], ABSMAX_FLOOR)) for each full block (floor(n / blocksize) of them). */
  reciprocals: Float32Array;
  /** Whether the last block is partial: its values are divided by absmax[last] instead. */
  partial: boolean;
}

/** The per-block absmax of values (over real elements only); values must be finite. */
export function blockAbsmax(values: ArrayLike<number>, blocksize: number): Float32Array {
  const blocks = Math.ceil(values.length / blocksize);
  const out = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    let m = 0;
    const end = Math.min(values.length, (b + 1) * blocksize);
    for (let i = b * blocksize; i < end; i++) {
      const a = Math.abs(values[i]);
      if (a > m) m = a;
    }
    out[b] = m;
  }
  return out;
}

/** From raw per-block absmax (max |x| over each block's real elements): what is stored and what scales. */
export function blockwiseScales(rawAbsmax: Float32Array, n: number, blocksize: number): BlockwiseScales {
  const blocks = Math.ceil(n / blocksize);
  if (rawAbsmax.length !== blocks) {
    throw new Error(
      `absmax: ${rawAbsmax.length} values for ${n} elements in blocks of ${blocksize} (${blocks} blocks)`,
    );
  }
  const full = Math.floor(n / blocksize);
  const absmax = Float32Array.from(rawAbsmax);
  const reciprocals = new Float32Array(full);
  for (let b = 0; b < full; b++) reciprocals[b] = f(1 / Math.max(absmax[b], ABSMAX_FLOOR));
  const partial = full < blocks;
  if (partial) absmax[full] = Math.max(absmax[full], ABSMAX_FLOOR);
  return { absmax, reciprocals, partial };
}

/** The scaled value of x in its block: x times the block's reciprocal (full blocks) or x / absmax (the partial one). */
function scaled(x: number, scales: BlockwiseScales, block: number): number {
  return block < scales.reciprocals.length
    ? clamp1(f(x * scales.reciprocals[block]))
    : clamp1(f(x / scales.absmax[block]));
}

/**
 * 8-bit blockwise quantization (quantize_blockwise, default backend) with the signed dynamic map, or another sorted
 * 256-entry map.
 */
export function quantizeBlockwiseDynamic(
  values: Float32Array,
  blocksize: number,
  map: Float32Array = DYNAMIC_MAP,
): { codes: Uint8Array; absmax: Float32Array } {
  checkFinite(values, 'blockwise quantization');
  const mids = map === DYNAMIC_MAP ? DYNAMIC_MIDPOINTS : midpoints(map);
  const scales = blockwiseScales(blockAbsmax(values, blocksize), values.length, blocksize);
  const codes = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    codes[i] = countBelow(mids, scaled(values[i], scales, Math.floor(i / blocksize)));
  }
  return { codes, absmax: scales.absmax };
}

/** The nested (double) quantization of a 4-bit tensor's absmax values. */
export interface NestedAbsmax {
  /** One 8-bit code per block (the stored `weight.absmax`). */
  codes: Uint8Array;
  /** One f32 per `blocksize` blocks (`weight.nested_absmax`). */
  absmax: Float32Array;
  /** The float32 mean subtracted before quantizing (`nested_offset`). */
  offset: number;
  /** The dynamic map the codes index (`weight.nested_quant_map`). */
  map: Float32Array;
  blocksize: number;
}

/** torch's float32 mean as computed here: the float64 sum rounded to float32, divided by the count in float32. */
export function meanF32(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return f(f(sum) / f(values.length));
}

/**
 * Double quantization of the stored absmax values: offset = mean, then 8-bit codes of absmax − offset with the
 * dynamic map (or `map`: the map differs in the last bit of some entries between torch builds, see createDynamicMap).
 */
export function doubleQuantize(
  absmax: Float32Array,
  nestedBlocksize = 256,
  map: Float32Array = DYNAMIC_MAP,
): NestedAbsmax {
  if (map.length !== 256) throw new Error(`nested quantization map: ${map.length} values (expected 256)`);
  const offset = meanF32(absmax);
  const centered = new Float32Array(absmax.length);
  for (let b = 0; b < absmax.length; b++) centered[b] = f(absmax[b] - offset);
  const q = quantizeBlockwiseDynamic(centered, nestedBlocksize, map);
  return { codes: q.codes, absmax: q.absmax, offset, map, blocksize: nestedBlocksize };
}

export interface Bnb4bitOptions {
  /** Values per absmax block (bitsandbytes: 32, 64, ..., 4096); default 64. */
  blocksize?: number;
  quantType?: QuantType4;
  /** Double quantization (bnb_4bit_use_double_quant / compress_statistics); default true. */
  doubleQuant?: boolean;
  /** Blocks per nested absmax; bitsandbytes always uses 256. */
  nestedBlocksize?: number;
  /** The map the absmax codes index (default DYNAMIC_MAP, what current torch builds compute). */
  nestedMap?: Float32Array;
  /** The precision dequantized values are rounded to: the weight's dtype when it was quantized; default f32. */
  rounding?: OutRounding;
  /** What errors name (the tensor); default "4-bit quantization". */
  what?: string;
}

/** A quantized 4-bit tensor: the packed layout's parts plus its quant type. */
export interface Bnb4bitQuantized extends Codebook4Parts {
  quantType: QuantType4;
}

/** Everything except the per-element codes, from the per-block absmax the GPU computes exactly. */
export interface Bnb4bitBlockStats {
  scales: BlockwiseScales;
  /** Double quantization of scales.absmax (absent without double quantization). */
  nested?: NestedAbsmax;
}

/**
 * The host half of 4-bit quantization: from the raw per-block absmax (max |x| over each block's real elements), the
 * multipliers that scale full blocks (`scales.reciprocals`), the absmax values as stored, and the double quantization.
 * The GPU then computes each element of block b < reciprocals.length as code4bit(clamp(fround(x * reciprocals[b]),
 * -1, 1)); the partial block, if any (`scales.partial`), divides instead: use blockCodes4bit on the host for it.
 */
export function bnb4bitBlockStats(
  rawAbsmax: Float32Array,
  options: { n: number; blocksize?: number; doubleQuant?: boolean; nestedBlocksize?: number; nestedMap?: Float32Array },
): Bnb4bitBlockStats {
  const blocksize = options.blocksize ?? 64;
  checkBlocksize(blocksize);
  checkFinite(rawAbsmax, 'absmax');
  const scales = blockwiseScales(rawAbsmax, options.n, blocksize);
  if (options.doubleQuant === false) return { scales };
  return { scales, nested: doubleQuantize(scales.absmax, options.nestedBlocksize ?? 256, options.nestedMap) };
}

/**
 * The codes of one block's values (unpacked, one per value), as bitsandbytes computes them: a full block multiplies
 * by fround(1 / max(absmax, 1e-38)), the partial last block divides by its (clamped) absmax. `absmax` is the block's
 * raw max |x|.
 */
export function blockCodes4bit(
  values: Float32Array,
  absmax: number,
  partial: boolean,
  quantType: QuantType4,
): Uint8Array {
  const codes = new Uint8Array(values.length);
  if (partial) {
    const am = Math.max(absmax, ABSMAX_FLOOR);
    for (let i = 0; i < values.length; i++) codes[i] = code4bit(clamp1(f(values[i] / am)), quantType);
  } else {
    const r = f(1 / Math.max(absmax, ABSMAX_FLOOR));
    for (let i = 0; i < values.length; i++) codes[i] = code4bit(clamp1(f(values[i] * r)), quantType);
  }
  return codes;
}

/** Two codes a byte, element 2k in the high nibble; an odd count pads with the code of 0.0. */
export function packNibbles(codes: Uint8Array, quantType: QuantType4): Uint8Array {
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  const pad = padCode4bit(quantType);
  for (let k = 0; k < out.length; k++) {
    const lo = 2 * k + 1 < codes.length ? codes[2 * k + 1] : pad;
    out[k] = (codes[2 * k] << 4) | lo;
  }
  return out;
}

/** What the GPU needs to quantize a 4-bit tensor, computed on the host; only the per-element codes are left. */
export interface FourBitStatistics {
  quantType: QuantType4;
  blocksize: number;
  /** The stored absmax section: u8 codes with double quantization, else the f32 absmax values. */
  absmaxCodes: Uint8Array | Float32Array;
  nested?: { absmax: Float32Array; map: Float32Array; blocksize: number; offset: number };
  /** The codebook (16 f32). */
  map: Float32Array;
  /**
   * Per block, the multiplier bitsandbytes scales by: code(x) = code4bit(clamp(fround(x * scale[b]), -1, 1)). Exact
   * for the full blocks; the partial last block divides by its absmax instead, so its codes are given in `tail`
   * (its entry here is fround(1 / absmax), which agrees except where a quotient lands next to a midpoint).
   */
  scale: Float32Array;
  /** The partial last block's packed codes (from element `start`, a block boundary, so a whole byte), or null. */
  tail: { start: number; codes: Uint8Array } | null;
  stats: Bnb4bitBlockStats;
}

/**
 * The host half of quantize4bit for a tensor's values: per-block absmax, the multipliers, the double quantization and
 * the partial last block's codes. The GPU computes the other codes as code4bit(clamp(fround(x * scale[b]), -1, 1)).
 */
export function fourBitStatistics(values: Float32Array, options: Bnb4bitOptions = {}): FourBitStatistics {
  const blocksize = options.blocksize ?? 64;
  const quantType = options.quantType ?? 'nf4';
  checkBlocksize(blocksize);
  if (quantType !== 'nf4' && quantType !== 'fp4')
    throw new Error(`4-bit quant type "${quantType}": expected nf4 or fp4`);
  checkFinite(values, options.what ?? '4-bit quantization');
  const n = values.length;
  const raw = blockAbsmax(values, blocksize);
  const stats = bnb4bitBlockStats(raw, {
    n,
    blocksize,
    doubleQuant: options.doubleQuant,
    nestedBlocksize: options.nestedBlocksize,
    nestedMap: options.nestedMap,
  });
  const scale = new Float32Array(raw.length);
  scale.set(stats.scales.reciprocals);
  let tail: FourBitStatistics['tail'] = null;
  if (stats.scales.partial) {
    const last = raw.length - 1;
    scale[last] = f(1 / stats.scales.absmax[last]);
    const start = last * blocksize;
    tail = { start, codes: packNibbles(blockCodes4bit(values.subarray(start), raw[last], true, quantType), quantType) };
  }
  const nested = stats.nested;
  return {
    quantType,
    blocksize,
    absmaxCodes: nested ? nested.codes : stats.scales.absmax,
    nested: nested
      ? { absmax: nested.absmax, map: nested.map, blocksize: nested.blocksize, offset: nested.offset }
      : undefined,
    map: codebook4(quantType),
    scale,
    tail,
    stats,
  };
}

/** bitsandbytes' quantize_4bit of a flat float32 tensor (row-major [out, in] for a Linear weight). */
export function quantize4bit(data: Float32Array, options: Bnb4bitOptions = {}): Bnb4bitQuantized {
  const s = fourBitStatistics(data, options);
  const n = data.length;
  const full = s.stats.scales.reciprocals.length * s.blocksize;
  const codes = new Uint8Array(Math.ceil(n / 2));
  const mids = s.quantType === 'nf4' ? NF4_MIDPOINTS : FP4_MIDPOINTS;
  const code = (i: number) => {
    const index = countBelow(mids, clamp1(f(data[i] * s.scale[Math.floor(i / s.blocksize)])));
    return s.quantType === 'nf4' ? index : FP4_ORDER[index];
  };
  // Full blocks hold an even number of values: whole bytes.
  for (let i = 0; i < full; i += 2) codes[i >> 1] = (code(i) << 4) | code(i + 1);
  if (s.tail) codes.set(s.tail.codes, s.tail.start >> 1);
  return {
    kind: 'codebook4',
    n,
    codes,
    blocksize: s.blocksize,
    absmax: s.absmaxCodes,
    nested: s.nested,
    map: s.map,
    rounding: options.rounding ?? 'f32',
    quantType: s.quantType,
  };
}

/** Rounds a float32 value to the output precision (round to nearest even, as torch's .to()). */
export function roundTo(x: number, rounding: OutRounding): number {
  if (rounding === 'bf16') return bf16BitsToF32(f32ToBf16Bits(x));
  if (rounding === 'f16') return f16BitsToF32(f32ToF16Bits(x));
  return x;
}

/** The per-block absmax values dequantization scales by (dequantize_blockwise of the nested codes, plus the offset). */
export function dequantizedAbsmax(p: Codebook4Parts): Float32Array {
  const blocks = Math.ceil(p.n / p.blocksize);
  if (!p.nested) {
    if (!(p.absmax instanceof Float32Array)) throw new Error('4-bit absmax without double quantization must be f32');
    return p.absmax;
  }
  const out = new Float32Array(blocks);
  const { absmax: nested, map, blocksize, offset } = p.nested;
  for (let b = 0; b < blocks; b++) {
    out[b] = f(f(map[p.absmax[b]] * nested[Math.floor(b / blocksize)]) + offset);
  }
  return out;
}

/** bitsandbytes' dequantize_4bit (default backend): codebook value times the block's absmax, rounded to the dtype. */
export function dequantize4bit(p: Codebook4Parts): Float32Array {
  const absmax = dequantizedAbsmax(p);
  const out = new Float32Array(p.n);
  for (let i = 0; i < p.n; i++) {
    const byte = p.codes[i >> 1];
    const code = i & 1 ? byte & 15 : byte >> 4;
    out[i] = roundTo(f(p.map[code] * absmax[Math.floor(i / p.blocksize)]), p.rounding);
  }
  return out;
}

function checkBlocksize(blocksize: number): void {
  if (!(BLOCKSIZES_4BIT as readonly number[]).includes(blocksize)) {
    throw new Error(
      `4-bit blocksize ${blocksize} is not supported; bitsandbytes supports ${BLOCKSIZES_4BIT.join(', ')}`,
    );
  }
}

function checkFinite(values: ArrayLike<number>, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new Error(`${what}: value ${i} is ${values[i]} (bitsandbytes' quantization needs finite values)`);
    }
  }
}
