/**
 * How a quantized frozen matrix lies on the GPU: one u32 array, a 16-word header, then its sections. One
 * binding per weight, like the f32 and 16-bit formats, so every kernel that reads weights through
 * kernels/weight-storage.ts reads these too (the WGSL readers there mirror `dequantizeLayout` below).
 *
 * kind 4-bit codebook (NF4 or FP4, bitsandbytes' layout, so a bnb-4bit checkpoint uploads its bytes as they are):
 *   codes      byte k holds elements 2k (high nibble) and 2k+1 (low nibble); bytes little-endian within words
 *   absmax     nested: one u8 code per block (4 per word); else one f32 per block
 *   nested     f32 scale per `nestedBlocksize` blocks (nested only)
 *   map        16 f32: the codebook
 *   nestedMap  256 f32: the signed dynamic map the absmax codes index (nested only)
 *   value(i) = round_out(map[code(i)] * absmax(i / blocksize)),
 *   absmax(b) = nested ? fround(fround(nestedMap[acode(b)] * nested[b / nestedBlocksize]) + offset) : absmax[b]
 * kind int8 rows (symmetric, per output row):
 *   codes      one i8 per element, row-major [rows, cols], 4 per word
 *   absmax     f32 scale per row (bitsandbytes' SCB)
 *   value(i) = fround(fround(code(i) * scale[i / cols]) * INT8_DEQUANT)
 * round_out rounds to the precision the weight had when it was quantized (bf16/f16), as bitsandbytes'
 * dequantization returns it in that dtype; f32 leaves it.
 * transposed (flags bit 3): the stored values are the transpose [C, R] of the logical tensor [R, C] (GPT-2's
 * Conv1D weights, which bitsandbytes quantizes as [out, in]); logical element i = r·C + c reads stored c·R + r.
 */
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from '../gpu/half';
import type { QuantFormat } from '../gpu/tensor';

export const HEADER_WORDS = 16;

export const QUANT_KIND = { codebook4: 1, int8Rows: 2 } as const;
export type QuantKind = keyof typeof QUANT_KIND;

/** Precision the dequantized values are rounded to (header flags bits 1..2). */
export const OUT_ROUNDING = { f32: 0, bf16: 1, f16: 2 } as const;
export type OutRounding = keyof typeof OUT_ROUNDING;

/** Header word indices. */
export const H = {
  kind: 0,
  n: 1,
  cols: 2,
  blocksize: 3,
  nestedBlocksize: 4,
  flags: 5,
  offset: 6,
  codes: 7,
  absmax: 8,
  nested: 9,
  map: 10,
  nestedMap: 11,
  /** Transposed layouts: the logical tensor's [rows, cols]. */
  logicalRows: 12,
  logicalCols: 13,
  /** The layout's length in words (buffers round up: this says where it ends). */
  words: 14,
} as const;

/** bitsandbytes' 1/127 in float32: int8 dequantization multiplies by it (int8_vectorwise_dequant). */
export const INT8_DEQUANT = Math.fround(7.874015718698502e-3);

export interface Codebook4Parts {
  kind: 'codebook4';
  n: number;
  /** (n + 1) / 2 bytes, bitsandbytes' packing. */
  codes: Uint8Array;
  blocksize: number;
  /** Nested: one u8 code per block; else one f32 per block. */
  absmax: Uint8Array | Float32Array;
  nested?: { absmax: Float32Array; map: Float32Array; blocksize: number; offset: number };
  map: Float32Array;
  rounding: OutRounding;
}

export interface Int8RowsParts {
  kind: 'int8Rows';
  rows: number;
  cols: number;
  /** rows * cols signed codes. */
  codes: Int8Array;
  /** f32 per row. */
  scale: Float32Array;
  rounding: OutRounding;
}

/** The stored values are the transpose of the logical [rows, cols] tensor (see the file comment). */
export type QuantParts = (Codebook4Parts | Int8RowsParts) & { transposedFrom?: { rows: number; cols: number } };

const words = (bytes: number) => Math.ceil(bytes / 4);
const powerOfTwo = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

/** The packed GPU words of a quantized matrix. */
export function packLayout(p: QuantParts): Uint32Array {
  const sections: { bytes: Uint8Array; at: number }[] = [];
  const header = new Uint32Array(HEADER_WORDS);
  let at = HEADER_WORDS;
  const place = (data: ArrayBufferView, slot: number) => {
    header[slot] = at;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    sections.push({ bytes, at });
    at += words(bytes.byteLength);
  };
  header[H.flags] = OUT_ROUNDING[p.rounding] << 1;
  if (p.transposedFrom) {
    header[H.flags] |= 8;
    header[H.logicalRows] = p.transposedFrom.rows;
    header[H.logicalCols] = p.transposedFrom.cols;
  }
  if (p.kind === 'codebook4') {
    if (p.codes.length !== Math.ceil(p.n / 2))
      throw new Error(`4-bit codes: ${p.codes.length} bytes for ${p.n} values`);
    const blocks = Math.ceil(p.n / p.blocksize);
    if (p.absmax.length !== blocks) throw new Error(`4-bit absmax: ${p.absmax.length} values for ${blocks} blocks`);
    if (p.map.length !== 16) throw new Error(`4-bit codebook: ${p.map.length} values (expected 16)`);
    header[H.kind] = QUANT_KIND.codebook4;
    header[H.n] = p.n;
    header[H.cols] = 0;
    // The GPU readers shift by the block sizes (bitsandbytes' are powers of two) and decode 4 values of one block.
    if (!powerOfTwo(p.blocksize) || p.blocksize < 4)
      throw new Error(`4-bit blocksize ${p.blocksize}: expected a power of two >= 4`);
    header[H.blocksize] = p.blocksize;
    place(p.codes, H.codes);
    place(p.absmax, H.absmax);
    place(p.map, H.map);
    if (p.nested) {
      if (!(p.absmax instanceof Uint8Array)) throw new Error('nested 4-bit absmax must be u8 codes');
      header[H.flags] |= 1;
      if (!powerOfTwo(p.nested.blocksize))
        throw new Error(`nested blocksize ${p.nested.blocksize}: expected a power of two`);
      header[H.nestedBlocksize] = p.nested.blocksize;
      header[H.offset] = new Uint32Array(new Float32Array([p.nested.offset]).buffer)[0];
      place(p.nested.absmax, H.nested);
      place(p.nested.map, H.nestedMap);
    } else if (!(p.absmax instanceof Float32Array)) throw new Error('plain 4-bit absmax must be f32');
  } else {
    if (p.codes.length !== p.rows * p.cols) throw new Error(`int8 codes: ${p.codes.length} for ${p.rows}x${p.cols}`);
    if (p.scale.length !== p.rows) throw new Error(`int8 scales: ${p.scale.length} for ${p.rows} rows`);
    header[H.kind] = QUANT_KIND.int8Rows;
    header[H.n] = p.rows * p.cols;
    header[H.cols] = p.cols;
    place(p.codes, H.codes);
    place(p.scale, H.absmax);
  }
  const out = new Uint32Array(at);
  header[H.words] = at;
  out.set(header);
  const bytes = new Uint8Array(out.buffer);
  for (const s of sections) bytes.set(s.bytes, s.at * 4);
  return out;
}

/** Words a layout of n elements takes: NF4 with double quantization (bitsandbytes' defaults), or int8 rows. */
export function layoutWords(kind: QuantKind, n: number, cols: number, blocksize = 64, nestedBlocksize = 256): number {
  if (kind === 'int8Rows') return HEADER_WORDS + words(n) + Math.ceil(n / cols);
  const blocks = Math.ceil(n / blocksize);
  return HEADER_WORDS + words(Math.ceil(n / 2)) + words(blocks) + 16 + Math.ceil(blocks / nestedBlocksize) + 256;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function bitsToF32(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

function roundOut(x: number, rounding: number): number {
  if (rounding === OUT_ROUNDING.bf16) return bf16BitsToF32(f32ToBf16Bits(x));
  if (rounding === OUT_ROUNDING.f16) return f16BitsToF32(f32ToF16Bits(x));
  return x;
}

/** Every element of a packed layout in logical order, as the GPU readers compute it (what they are tested against). */
export function dequantizeLayout(w: Uint32Array): Float32Array {
  const stored = dequantizeStored(w);
  if ((w[H.flags] & 8) === 0) return stored;
  const rows = w[H.logicalRows];
  const cols = w[H.logicalCols];
  const out = new Float32Array(stored.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[r * cols + c] = stored[c * rows + r];
  return out;
}

/** Every element in stored order. */
function dequantizeStored(w: Uint32Array): Float32Array {
  const n = w[H.n];
  const out = new Float32Array(n);
  const bytes = new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  const f32At = (word: number) => bitsToF32(w[word]);
  const rounding = (w[H.flags] >>> 1) & 3;
  if (w[H.kind] === QUANT_KIND.int8Rows) {
    const cols = w[H.cols];
    for (let i = 0; i < n; i++) {
      const code = (bytes[w[H.codes] * 4 + i] << 24) >> 24;
      const scale = f32At(w[H.absmax] + Math.floor(i / cols));
      out[i] = roundOut(Math.fround(Math.fround(code * scale) * INT8_DEQUANT), rounding);
    }
    return out;
  }
  if (w[H.kind] !== QUANT_KIND.codebook4) throw new Error(`unknown quantized layout kind ${w[H.kind]}`);
  const nested = (w[H.flags] & 1) === 1;
  const blocksize = w[H.blocksize];
  const offset = bitsToF32(w[H.offset]);
  const blocks = Math.ceil(n / blocksize);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    if (!nested) absmax[b] = f32At(w[H.absmax] + b);
    else {
      const code = bytes[w[H.absmax] * 4 + b];
      const scale = f32At(w[H.nested] + Math.floor(b / w[H.nestedBlocksize]));
      absmax[b] = Math.fround(Math.fround(f32At(w[H.nestedMap] + code) * scale) + offset);
    }
  }
  for (let i = 0; i < n; i++) {
    const byte = bytes[w[H.codes] * 4 + (i >> 1)];
    const code = i & 1 ? byte & 15 : byte >> 4;
    out[i] = roundOut(Math.fround(f32At(w[H.map] + code) * absmax[Math.floor(i / blocksize)]), rounding);
  }
  return out;
}

/** The header options a layout's GPU readers are compiled for. */
export function quantFormat(w: Uint32Array): QuantFormat {
  const rounding = (Object.keys(OUT_ROUNDING) as OutRounding[]).find(
    (r) => OUT_ROUNDING[r] === ((w[H.flags] >>> 1) & 3),
  );
  if (!rounding) throw new Error(`quantized layout: unknown output rounding ${(w[H.flags] >>> 1) & 3}`);
  return { rounding, transposed: (w[H.flags] & 8) !== 0 };
}
