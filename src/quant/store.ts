/**
 * A frozen base tensor onto the GPU in the precision its storage plan chose: f32, packed 16-bit, or quantized
 * (NF4 with double quantization, or int8 rows), exactly as bitsandbytes quantizes. The small per-block statistics
 * (absmax, their own 8-bit quantization, the scales) come from the host reference (bnb4.ts, int8.ts); the
 * per-element codes are computed on the GPU (kernels/quantize.ts), a chunk at a time, so no f32 copy of a large
 * tensor is ever resident on the GPU and the host keeps only the one tensor it is loading.
 */
import type { Gpu } from '../gpu/gpu';
import type { Tensor } from '../gpu/tensor';
import { quantizeCodes4, quantizeCodes8 } from '../kernels/quantize';
import type { WeightDType } from '../model/weights';
import { fourBitStatistics, NF4_MIDPOINTS } from './bnb4';
import { int8RowStatistics, toFloat16Array } from './int8';
import { transpose } from '../util/linalg';
import { H, packLayout, type OutRounding } from './layout';

/** bitsandbytes' default 4-bit block size. */
export const NF4_BLOCKSIZE = 64;

/** Largest chunk of a tensor quantized per dispatch (f32 elements: 64 MB of staging). */
const CHUNK_ELEMENTS = 16 * 2 ** 20;

export interface StoreOptions {
  /** The checkpoint's precision: dequantized values round to it, as bitsandbytes returns them in that dtype. */
  sourceDtype?: WeightDType;
  /** GPT-2's Conv1D weights, stored [in, out]: quantized as their transpose [out, in], as bitsandbytes does. */
  conv1d?: boolean;
}

export async function storeWeight(
  gpu: Gpu,
  data: Float32Array,
  shape: readonly number[],
  label: string,
  dtype: WeightDType,
  opts: StoreOptions = {},
): Promise<Tensor> {
  if (dtype === 'f32' || dtype === 'bf16' || dtype === 'f16') return gpu.tensorFrom(data, shape, label, dtype);
  if (shape.length !== 2) throw new Error(`${label}: only matrices are quantized, got shape [${shape.join(', ')}]`);
  const [rows, cols] = shape;
  // Stored [out, in]: Linear weights as they are, Conv1D weights transposed.
  const values = opts.conv1d ? transpose(data, rows, cols) : data;
  const [storedRows, storedCols] = opts.conv1d ? [cols, rows] : [rows, cols];
  const transposed = opts.conv1d ? { transposedFrom: { rows, cols } } : {};
  const rounding = roundingOf(opts.sourceDtype);
  if (dtype === 'int8') {
    const stats = int8RowStatistics(values, storedRows, storedCols, label);
    const codes = new Int8Array(values.length);
    const words = packLayout({
      kind: 'int8Rows',
      rows: storedRows,
      cols: storedCols,
      codes,
      scale: stats.scale,
      rounding,
      ...transposed,
    });
    const t = gpu.tensorWords(words, shape, label, 'int8');
    // bitsandbytes casts the weight to float16 before it scales it.
    await fillCodes(gpu, t, toFloat16Array(values), stats.factor, storedCols, words[H.codes], 'int8');
    return t;
  }
  if (dtype !== 'nf4') throw new Error(`${label}: weights are quantized to nf4 or int8, not ${dtype}`);
  const stats = fourBitStatistics(values, { blocksize: NF4_BLOCKSIZE, what: label });
  // The partial last block divides instead of multiplying: its codes come from the host; the GPU codes the full blocks.
  const codes = new Uint8Array(Math.ceil(values.length / 2));
  if (stats.tail) codes.set(stats.tail.codes, stats.tail.start / 2);
  const full = stats.tail ? stats.tail.start : values.length;
  const words = packLayout({
    kind: 'codebook4',
    n: values.length,
    codes,
    blocksize: NF4_BLOCKSIZE,
    absmax: stats.absmaxCodes,
    nested: stats.nested,
    map: stats.map,
    rounding,
    ...transposed,
  });
  const t = gpu.tensorWords(words, shape, label, 'nf4');
  if (full > 0) await fillCodes(gpu, t, values.subarray(0, full), stats.scale, NF4_BLOCKSIZE, words[H.codes], 'nf4');
  return t;
}

function roundingOf(dtype: WeightDType | undefined): OutRounding {
  return dtype === 'bf16' ? 'bf16' : dtype === 'f16' ? 'f16' : 'f32';
}

/**
 * Writes the codes section of `out` from `values`, a chunk at a time: chunks start on a factor group (a 4-bit
 * block, an int8 row) and on a whole output word, so each is an independent dispatch over reused staging buffers.
 */
async function fillCodes(
  gpu: Gpu,
  out: Tensor,
  values: Float32Array,
  factor: Float32Array,
  group: number,
  codesWord: number,
  dtype: 'nf4' | 'int8',
): Promise<void> {
  const perWord = dtype === 'nf4' ? 8 : 4;
  // A multiple of both the group and the elements per word (and of 4 groups, so int8 rows stay word-aligned).
  const unit = lcm(group, perWord);
  const chunk = Math.max(unit, Math.floor(CHUNK_ELEMENTS / unit) * unit);
  const n = values.length;
  const x = gpu.tensor([Math.min(n, chunk)], `${out.label}.quantize.x`);
  const f = gpu.tensor([Math.ceil(Math.min(n, chunk) / group)], `${out.label}.quantize.factor`);
  const mids = dtype === 'nf4' ? gpu.tensorFrom(NF4_MIDPOINTS, [15], `${out.label}.quantize.mids`) : null;
  try {
    for (let start = 0; start < n; start += chunk) {
      const count = Math.min(chunk, n - start);
      gpu.upload(x, values.subarray(start, start + count));
      gpu.upload(f, factor.subarray(start / group, Math.ceil((start + count) / group)));
      const args = { x, n: count, factor: f, group, out, outWord: codesWord + start / perWord };
      await gpu.runOnce('quantize', (list) =>
        mids ? quantizeCodes4(list, { ...args, mids }) : quantizeCodes8(list, args),
      );
    }
  } finally {
    await gpu.freeTensors([x, f, mids]);
  }
}

function lcm(a: number, b: number): number {
  const gcd = (p: number, q: number): number => (q === 0 ? p : gcd(q, p % q));
  return (a / gcd(a, b)) * b;
}
