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
import { isHalf, type DType, type Tensor } from '../gpu/tensor';

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

const cache = new Map<string, Source>();

/** The kernel source for weights stored as `dtype` (f32: the file as written). */
export function weightSource(source: Source, dtype: DType): Source {
  if (dtype === 'f32') return source;
  if (!isHalf(dtype)) throw new Error(`${source.name}: weights must be f32, f16 or bf16, got ${dtype}`);
  const key = `${source.name}.${dtype}`;
  let out = cache.get(key);
  if (!out) {
    let blocks = 0;
    const code = source.code.replace(BLOCK, (_m, name: string, binding: string) => {
      blocks++;
      return packedBlock(name, binding, dtype);
    });
    if (blocks === 0) throw new Error(`${source.name} has no weight-storage block`);
    out = { name: key, code };
    cache.set(key, out);
  }
  return out;
}

/** Throws unless t is a weight format the reader kernels accept. */
export function checkWeight(kernel: string, name: string, t: Tensor): void {
  if (t.dtype !== 'f32' && !isHalf(t.dtype))
    throw new Error(`${kernel} ${name} (${t.label}): expected f32, f16 or bf16 weights, got ${t.dtype}`);
}
