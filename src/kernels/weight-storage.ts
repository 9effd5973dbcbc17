/**
 * Kernels that read frozen weights compile once per storage format. Their WGSL declares the weight binding
 * and its reader functions between `// weight-storage:begin NAME BINDING` and `// weight-storage:end`
 * (valid f32 WGSL as written); for f16/bf16 tensors the block is swapped for readers of packed words
 * (two 16-bit values per u32, element 2j in the low half: see gpu/half.ts). The readers:
 *   readNAME(i) -> f32        element i
 *   readNAME4(i) -> vec4<f32> elements 4i .. 4i + 3
 *   countNAME4() -> u32       whole vec4s in the buffer
 * Unpacking is plain integer and f32 arithmetic, so no adapter feature (shader-f16) is needed.
 */
import type { KernelSpec } from '../gpu/gpu';
import { isHalf, isQuantized, type QuantDType, type QuantFormat, type Tensor } from '../gpu/tensor';
import { INT8_DEQUANT } from '../quant/layout';

type Source = KernelSpec['source'];

const BLOCK = /\/\/ weight-storage:begin (\w+) (\d+)\n[\s\S]*?\/\/ weight-storage:end/g;

const UNPACK = {
  f16: 'return unpack2x16float(w);',
  bf16: 'return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));',
} as const;

function packedBlock(name: string, binding: string, dtype: 'f16' | 'bf16'): string {
  const words = `${name}_words`;
  return [
    `@group(0) @binding(${binding}) var<storage, read> ${words}: array<u32>;`,
    `fn unpack${name}(w: u32) -> vec2<f32> { ${UNPACK[dtype]} }`,
    `fn read${name}(i: u32) -> f32 { return unpack${name}(${words}[i >> 1u])[i & 1u]; }`,
    `fn read${name}4(i: u32) -> vec4<f32> { return vec4<f32>(unpack${name}(${words}[2u * i]), unpack${name}(${words}[2u * i + 1u])); }`,
    `fn count${name}4() -> u32 { return arrayLength(&${words}) / 2u; }`,
  ].join('\n');
}

/**
 * Readers of a quantized weight (src/quant/layout.ts: a 16-word header, then codes, scales and codebooks), computing
 * exactly what `dequantizeLayout` computes. Each invocation reads the header (and the 16-entry codebook) into
 * private memory once, on its first read: per value only the codes and the block's scales are loaded, so a vec4
 * costs a few loads instead of thirty. Every product is rounded to f32 on its own: `keep` stops a compiler from
 * fusing a multiply and an add into one rounding (header word 15 is always 0).
 */
function quantizedBlock(name: string, binding: string, dtype: QuantDType, format: QuantFormat): string {
  const q = `${name}_q`;
  const h = `${name}_h`;
  const codebook = dtype !== 'int8';
  const common = [
    `@group(0) @binding(${binding}) var<storage, read> ${q}: array<u32>;`,
    `var<private> ${h}: array<u32, 16>;`,
    ...(codebook ? [`var<private> ${name}_map: array<f32, 16>;`] : []),
    `var<private> ${name}_ready = false;`,
    // Block sizes are powers of two (bitsandbytes' are): shifts instead of divisions, which are slow on CPU drivers.
    `var<private> ${name}_blockShift = 0u;`,
    `var<private> ${name}_nestedShift = 0u;`,
    `fn ${name}_header() {`,
    `  if (${name}_ready) { return; }`,
    `  for (var k = 0u; k < 16u; k++) { ${h}[k] = ${q}[k]; }`,
    `  ${name}_blockShift = firstTrailingBit(${h}[3]);`,
    `  ${name}_nestedShift = firstTrailingBit(${h}[4]);`,
    ...(codebook ? [`  for (var k = 0u; k < 16u; k++) { ${name}_map[k] = bitcast<f32>(${q}[${h}[10] + k]); }`] : []),
    `  ${name}_ready = true;`,
    `}`,
    `fn ${name}_f32(word: u32) -> f32 { return bitcast<f32>(${q}[word]); }`,
    `fn ${name}_keep(x: f32) -> f32 { return select(x, 0.0, ${h}[15] != 0u); }`,
    // Round to the precision the weight had when quantized (bf16 / f16, round to nearest even), as bitsandbytes returns it.
    `fn ${name}_round(x: f32) -> f32 {`,
    ...ROUND[format.rounding],
    `}`,
    `fn count${name}4() -> u32 { return ${q}[1] / 4u; }`,
    // Transposed layouts (GPT-2's Conv1D weights) store [C, R] for the logical [R, C]: element r·C + c is stored at c·R + r.
    `fn ${name}_transposed() -> bool { return ${format.transposed}; }`,
    `fn ${name}_index(i: u32) -> u32 {`,
    format.transposed ? `  return (i % ${h}[13]) * ${h}[12] + i / ${h}[13];` : '  return i;',
    `}`,
    `fn read${name}(i: u32) -> f32 { ${name}_header(); return ${name}_at(${name}_index(i)); }`,
    `fn ${name}_scalar4(e: u32) -> vec4<f32> { return vec4<f32>(read${name}(e), read${name}(e + 1u), read${name}(e + 2u), read${name}(e + 3u)); }`,
  ];
  if (!codebook) {
    return [
      ...common,
      `fn ${name}_code(i: u32) -> f32 { let w = ${q}[${h}[7] + (i >> 2u)]; return f32(bitcast<i32>(w << (24u - 8u * (i & 3u))) >> 24u); }`,
      `fn ${name}_value(code: f32, scale: f32) -> f32 { return ${name}_round(${name}_keep(${name}_keep(code * scale) * ${INT8_DEQUANT_WGSL})); }`,
      `fn ${name}_at(i: u32) -> f32 { return ${name}_value(${name}_code(i), ${name}_f32(${h}[8] + i / ${h}[2])); }`,
      `fn read${name}4(i: u32) -> vec4<f32> {`,
      `  ${name}_header();`,
      `  let e = 4u * i;`,
      `  let cols = ${h}[2];`,
      `  if (cols % 4u != 0u || ${name}_transposed()) { return ${name}_scalar4(e); }`,
      `  let scale = ${name}_f32(${h}[8] + e / cols);`,
      `  let w = bitcast<i32>(${q}[${h}[7] + i]);`,
      `  return vec4<f32>(${name}_value(f32((w << 24u) >> 24u), scale), ${name}_value(f32((w << 16u) >> 24u), scale),`,
      `                   ${name}_value(f32((w << 8u) >> 24u), scale), ${name}_value(f32(w >> 24u), scale));`,
      `}`,
    ].join('\n');
  }
  return [
    ...common,
    `fn ${name}_absmax(b: u32) -> f32 {`,
    `  if ((${h}[5] & 1u) == 0u) { return ${name}_f32(${h}[8] + b); }`,
    `  let code = (${q}[${h}[8] + (b >> 2u)] >> (8u * (b & 3u))) & 0xffu;`,
    `  let scale = ${name}_f32(${h}[9] + (b >> ${name}_nestedShift));`,
    `  return ${name}_keep(${name}_keep(${name}_f32(${h}[11] + code) * scale) + bitcast<f32>(${h}[6]));`,
    `}`,
    `fn ${name}_value(code: u32, absmax: f32) -> f32 { return ${name}_round(${name}_keep(${name}_map[code] * absmax)); }`,
    // Element 2k is the high nibble of byte k; bytes are little-endian in a word.
    `fn ${name}_at(i: u32) -> f32 {`,
    `  let byte = (${q}[${h}[7] + (i >> 3u)] >> (8u * ((i >> 1u) & 3u))) & 0xffu;`,
    `  return ${name}_value(select(byte >> 4u, byte & 15u, (i & 1u) == 1u), ${name}_absmax(i >> ${name}_blockShift));`,
    `}`,
    // Elements 4i..4i+3 are bytes 2i and 2i+1: one half of one word, in one block (blocks are multiples of 4).
    `fn read${name}4(i: u32) -> vec4<f32> {`,
    `  ${name}_header();`,
    `  if (${name}_transposed()) { return ${name}_scalar4(4u * i); }`,
    `  let half = (${q}[${h}[7] + (i >> 1u)] >> (16u * (i & 1u))) & 0xffffu;`,
    `  let absmax = ${name}_absmax((4u * i) >> ${name}_blockShift);`,
    `  return vec4<f32>(${name}_value((half >> 4u) & 15u, absmax), ${name}_value(half & 15u, absmax),`,
    `                   ${name}_value(half >> 12u, absmax), ${name}_value((half >> 8u) & 15u, absmax));`,
    `}`,
  ].join('\n');
}

/** The body of the rounding to the weight's original precision, per precision (no branch per value). */
const ROUND: Record<QuantFormat['rounding'], string[]> = {
  f32: ['  return x;'],
  bf16: ['  let b = bitcast<u32>(x);', '  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);'],
  // f16 subnormals (below 2^-14) are multiples of 2^-24; above, 13 mantissa bits go.
  f16: [
    '  if (abs(x) < 6.103515625e-5) { return round(x * 16777216.0) / 16777216.0; }',
    '  let b = bitcast<u32>(x);',
    '  return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u);',
  ],
};

/** What a weight's readers are compiled for: its dtype and, quantized, its layout's options. */
export type WeightFormat = Pick<Tensor, 'dtype' | 'quant'>;

/** INT8_DEQUANT as an exact WGSL literal. */
const INT8_DEQUANT_WGSL = `bitcast<f32>(${new Uint32Array(new Float32Array([INT8_DEQUANT]).buffer)[0]}u)`;

const cache = new Map<string, Source>();

/** The kernel source for weights stored as `dtype` (f32: the file as written). */
export function weightSource(source: Source, weight: WeightFormat): Source {
  const dtype = weight.dtype;
  if (dtype === 'f32') return source;
  if (!isHalf(dtype) && !isQuantized(dtype))
    throw new Error(`${source.name}: weights must be f32, f16, bf16, nf4, fp4 or int8, got ${dtype}`);
  // NF4 and FP4 differ only in the codebook the layout carries: one compiled variant.
  const variant = dtype === 'fp4' ? 'nf4' : dtype;
  const format: QuantFormat = weight.quant ?? { rounding: 'f32', transposed: false };
  const key = isHalf(variant)
    ? `${source.name}.${variant}`
    : `${source.name}.${variant}.${format.rounding}${format.transposed ? '.t' : ''}`;
  let out = cache.get(key);
  if (!out) {
    let blocks = 0;
    const code = source.code.replace(BLOCK, (_m, name: string, binding: string) => {
      blocks++;
      return isHalf(variant) ? packedBlock(name, binding, variant) : quantizedBlock(name, binding, variant, format);
    });
    if (blocks === 0) throw new Error(`${source.name} has no weight-storage block`);
    out = { name: key, code };
    cache.set(key, out);
  }
  return out;
}

/** Throws unless t is a weight format the reader kernels accept. */
export function checkWeight(kernel: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32' && !isHalf(t.dtype) && !isQuantized(t.dtype))
    throw new Error(
      `${kernel} ${name} (${t.label}): expected f32, f16, bf16, nf4, fp4 or int8 weights, got ${t.dtype}`,
    );
}
