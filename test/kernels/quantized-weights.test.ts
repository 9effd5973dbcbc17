import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu';
import type { QuantDType } from '../../src/gpu/tensor';
import { embedForward } from '../../src/kernels/embed';
import { matmul } from '../../src/kernels/matmul';
import { MATMUL_VARIANTS, needsAlignment } from '../../src/kernels/matmul-plan';
import { matmulRef } from '../../src/kernels/matmul.ref';
import { dequantizeLayout, packLayout, type OutRounding, type QuantParts } from '../../src/quant/layout';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

/**
 * The weight readers of quantized layouts (kernels/weight-storage.ts) against dequantizeLayout, on random layouts
 * with every header option: nested or plain absmax, partial blocks, several nested blocks, output rounding to
 * bf16/f16 (f16 subnormals included), transposed (GPT-2 Conv1D) storage, int8 rows of odd width.
 */
interface LayoutOptions {
  nested?: boolean;
  rounding?: OutRounding;
  transposed?: boolean;
  tiny?: boolean;
}

function randomLayout(
  rng: Rng,
  kind: 'codebook4' | 'int8Rows',
  rows: number,
  cols: number,
  o: LayoutOptions = {},
): Uint32Array {
  const n = rows * cols;
  const [sr, sc] = o.transposed ? [cols, rows] : [rows, cols];
  const scale = o.tiny ? 1e-5 : 1;
  const extra = o.transposed ? { transposedFrom: { rows, cols } } : {};
  const rounding = o.rounding ?? 'f32';
  if (kind === 'int8Rows') {
    const codes = Int8Array.from({ length: n }, () => rng.int(255) - 127);
    const scaleRows = Float32Array.from({ length: sr }, () => scale * rng.uniform(0.01, 3));
    return packLayout({ kind, rows: sr, cols: sc, codes, scale: scaleRows, rounding, ...extra });
  }
  const blocksize = 64;
  const blocks = Math.ceil(n / blocksize);
  const map = Float32Array.from({ length: 16 }, (_, i) => (i - 7) / 8 + rng.uniform(-0.05, 0.05));
  const codes = Uint8Array.from({ length: Math.ceil(n / 2) }, () => rng.int(256));
  const parts: QuantParts = o.nested
    ? {
        kind,
        n,
        codes,
        blocksize,
        absmax: Uint8Array.from({ length: blocks }, () => rng.int(256)),
        nested: {
          absmax: Float32Array.from({ length: Math.ceil(blocks / 4) }, () => scale * rng.uniform(0.5, 2)),
          map: Float32Array.from({ length: 256 }, () => rng.uniform(-1, 1)),
          blocksize: 4,
          offset: scale * rng.uniform(0.5, 1),
        },
        map,
        rounding,
        ...extra,
      }
    : {
        kind,
        n,
        codes,
        blocksize,
        absmax: Float32Array.from({ length: blocks }, () => scale * rng.uniform(0.1, 2)),
        map,
        rounding,
        ...extra,
      };
  return packLayout(parts);
}

const dtypeOf = (kind: 'codebook4' | 'int8Rows'): QuantDType => (kind === 'int8Rows' ? 'int8' : 'nf4');

async function gather(gpu: Gpu, words: Uint32Array, rows: number, cols: number, dtype: QuantDType) {
  const table = gpu.tensorWords(words, [rows, cols], 'table', dtype);
  const tokens = gpu.tensor([rows], 'tokens', 'u32');
  gpu.upload(
    tokens,
    Uint32Array.from({ length: rows }, (_, i) => i),
  );
  const out = gpu.tensor([rows * cols], 'out');
  await runOnce(gpu, (l) => embedForward(l, { tokens, table, out, rows, width: cols, vocab: rows }));
  return gpu.read(out);
}

const CASES = [
  { name: 'NF4 nested, 37 x 20 (partial last block)', kind: 'codebook4', rows: 37, cols: 20, nested: true },
  { name: 'NF4 plain absmax, 9 x 33 (odd count)', kind: 'codebook4', rows: 9, cols: 33 },
  { name: 'NF4 nested, rounded to bf16', kind: 'codebook4', rows: 16, cols: 24, nested: true, rounding: 'bf16' },
  {
    name: 'NF4 rounded to f16, subnormal values',
    kind: 'codebook4',
    rows: 12,
    cols: 16,
    rounding: 'f16',
    tiny: true,
  },
  { name: 'NF4 transposed (Conv1D), 20 x 12', kind: 'codebook4', rows: 20, cols: 12, nested: true, transposed: true },
  { name: 'int8 rows, 11 x 13 (odd width)', kind: 'int8Rows', rows: 11, cols: 13 },
  { name: 'int8 rows, 7 x 24, bf16', kind: 'int8Rows', rows: 7, cols: 24, rounding: 'bf16' },
  { name: 'int8 transposed, 8 x 12', kind: 'int8Rows', rows: 8, cols: 12, transposed: true },
] as const satisfies readonly ({
  name: string;
  kind: 'codebook4' | 'int8Rows';
  rows: number;
  cols: number;
} & LayoutOptions)[];

describe('quantized weight readers', () => {
  for (const c of CASES) {
    it(`${c.name}: the embedding gather reads exactly dequantizeLayout`, async () => {
      const gpu = await testGpu();
      const words = randomLayout(new Rng(c.rows * 31 + c.cols), c.kind, c.rows, c.cols, c as LayoutOptions);
      const want = dequantizeLayout(words);
      const got = await gather(gpu, words, c.rows, c.cols, dtypeOf(c.kind));
      expect(Array.from(got)).toEqual(Array.from(want));
      // gpu.read of a quantized tensor dequantizes on the host, the same way.
      const t = gpu.tensorWords(words, [c.rows, c.cols], 'read back', dtypeOf(c.kind));
      expect(Array.from(await gpu.read(t))).toEqual(Array.from(want));
    });
  }

  // The B operand of every matmul kernel (NF4, x·Wᵀ as the forward reads it); on the two kernels software and
  // real GPUs default to, also int8 and dY·W (the backward's layout). Each combination is a pipeline to compile,
  // which dominates the time on SwiftShader.
  for (const variant of MATMUL_VARIANTS) {
    const every = variant === 'register-vec4' || variant === 'tiled';
    it(`${variant}: B stored quantized${every ? ' (NF4 and int8, both layouts)' : ' (NF4, x·Wᵀ)'}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(5);
      for (const c of CASES) {
        // vec4 kernels need K and ld multiples of 4.
        if (needsAlignment(variant) && c.cols % 4 !== 0) continue;
        if (!every && c.kind === 'int8Rows') continue;
        const words = randomLayout(rng, c.kind, c.rows, c.cols, c as LayoutOptions);
        const w = dequantizeLayout(words);
        const tb = gpu.tensorWords(words, [c.rows, c.cols], 'w', dtypeOf(c.kind));
        for (const transB of every ? [false, true] : [true]) {
          const M = 5;
          const [K, N] = transB ? [c.cols, c.rows] : [c.rows, c.cols];
          if (needsAlignment(variant) && (K % 4 !== 0 || N % 4 !== 0)) continue;
          const a = rng.normals(M * K);
          const ta = gpu.tensorFrom(a, [a.length], 'a');
          const tc = gpu.tensor([M * N], 'c');
          await runOnce(gpu, (l) =>
            matmul(l, { a: { t: ta, ld: K }, b: { t: tb, ld: c.cols }, c: { t: tc, ld: N }, M, N, K, transB, variant }),
          );
          const want = matmulRef(a, w, null, M, N, K, { transB });
          expectClose(await gpu.read(tc), want, `${variant} ${c.name} transB=${transB}`);
        }
      }
    });
  }
});
