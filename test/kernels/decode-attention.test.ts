import { describe, expect, it } from 'vitest';
import { attentionForwardRef } from '../../src/kernels/attention.ref';
import { cacheStore, decodeAttention, type DecodeAttentionVariant } from '../../src/kernels/decode-attention';
import { cacheStoreRef, decodeAttentionRef, type DecodeAttentionDims } from '../../src/kernels/decode-attention.ref';
import type { Gpu } from '../../src/gpu/gpu';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu, validated } from '../helpers/gpu';

/** Copies columns [col, col + width) of a strided matrix into a dense one. */
function slice(
  src: ArrayLike<number>,
  rows: number,
  offset: number,
  ld: number,
  col: number,
  width: number,
): Float64Array {
  const out = new Float64Array(rows * width);
  for (let r = 0; r < rows; r++) for (let c = 0; c < width; c++) out[r * width + c] = src[offset + r * ld + col + c];
  return out;
}

function u32Tensor(gpu: Gpu, values: number[], label: string) {
  const t = gpu.tensor([values.length], label, 'u32');
  gpu.upload(t, Uint32Array.from(values));
  return t;
}

describe('decode attention reference', () => {
  it('a query at position i over a cache of keys 0..i equals row i of causal attention', () => {
    const rng = new Rng(3);
    const T = 9,
      H = 6,
      KVH = 2,
      HD = 5;
    const q = rng.normals(T * H * HD),
      k = rng.normals(T * KVH * HD),
      v = rng.normals(T * KVH * HD);
    const full = attentionForwardRef(q, k, v, {
      batch: 1,
      seq: T,
      heads: H,
      kvHeads: KVH,
      headDim: HD,
      scale: 0.45,
    }).out;
    const positions = Array.from({ length: T }, (_, i) => i);
    const dec = decodeAttentionRef(q, k, v, positions, {
      rows: T,
      heads: H,
      kvHeads: KVH,
      headDim: HD,
      keyRows: T,
      scale: 0.45,
    });
    expectClose(dec, full, 'decode vs causal', { atol: 1e-12, rtol: 1e-12 });
  });

  it('cacheStoreRef drops rows past the cache', () => {
    const cache = [1, 1, 2, 2, 3, 3];
    expect([...cacheStoreRef(cache, [7, 8, 9, 9], [1, 3], 2, 2, 3)]).toEqual([1, 1, 7, 8, 3, 3]);
  });
});

/**
 * One case: q rows as a column slice of a fused q|k|v buffer (offset, padding), the cache as one tensor of k|v
 * rows with padding, out as a strided view over sentinels. The new rows' k|v are stored first, then attended.
 */
async function checkCase(
  gpu: Gpu,
  rng: Rng,
  d: Omit<DecodeAttentionDims, 'rows'>,
  positions: number[],
  variant: DecodeAttentionVariant,
): Promise<void> {
  const rows = positions.length;
  const { heads, kvHeads, headDim, keyRows } = d;
  const label = `${variant} rows ${rows} H${heads}/${kvHeads} hd${headDim} cache ${keyRows}`;
  const qW = heads * headDim;
  const kvW = kvHeads * headDim;
  // New rows: fused q|k|v with an offset and padding columns.
  const off = 2;
  const ld = qW + 2 * kvW + 3;
  const fused = rng.normals(off + rows * ld);
  const qkv = gpu.tensorFrom(fused, [fused.length], 'qkv');
  // Cache rows: k|v plus one padding column, earlier positions filled with random keys and values.
  const cacheLd = 2 * kvW + 1;
  const cacheOff = 1;
  const cacheInit = rng.normals(cacheOff + keyRows * cacheLd);
  const cache = gpu.tensorFrom(cacheInit, [cacheInit.length], 'cache');
  const pos = u32Tensor(gpu, positions, 'positions');
  const outLd = qW + 1;
  const outInit = new Float32Array(1 + rows * outLd).fill(9);
  const out = gpu.tensorFrom(outInit, [outInit.length], 'out');
  await runOnce(gpu, (l) => {
    cacheStore(l, {
      src: { t: qkv, offset: off + qW, ld },
      dst: { t: cache, offset: cacheOff, ld: cacheLd },
      positions: pos,
      rows,
      width: 2 * kvW,
      keyRows,
    });
    decodeAttention(l, {
      q: { t: qkv, offset: off, ld },
      k: { t: cache, offset: cacheOff, ld: cacheLd },
      v: { t: cache, offset: cacheOff + kvW, ld: cacheLd },
      out: { t: out, offset: 1, ld: outLd },
      positions: pos,
      rows,
      ...d,
      variant,
    });
  });
  // Reference: the cache after the store (dense k|v rows, padding dropped), then attention.
  const before = slice(cacheInit, keyRows, cacheOff, cacheLd, 0, 2 * kvW);
  const after = cacheStoreRef(before, slice(fused, rows, off, ld, qW, 2 * kvW), positions, rows, 2 * kvW, keyRows);
  const wantCache = Float64Array.from(cacheInit);
  for (let j = 0; j < keyRows; j++)
    for (let c = 0; c < 2 * kvW; c++) wantCache[cacheOff + j * cacheLd + c] = after[j * 2 * kvW + c];
  expectClose(await gpu.read(cache), wantCache, `${label} cache`, { atol: 0, rtol: 0 });
  const k = slice(after, keyRows, 0, 2 * kvW, 0, kvW);
  const v = slice(after, keyRows, 0, 2 * kvW, kvW, kvW);
  const ref = decodeAttentionRef(slice(fused, rows, off, ld, 0, qW), k, v, positions, { rows, ...d });
  const wantOut = Float64Array.from(outInit);
  for (let r = 0; r < rows; r++) for (let c = 0; c < qW; c++) wantOut[1 + r * outLd + c] = ref[r * qW + c];
  expectClose(await gpu.read(out), wantOut, `${label} out`);
}

// Both kernels run on SwiftShader, whichever one the adapter would pick by default.
const VARIANTS: DecodeAttentionVariant[] = ['workgroup', 'thread'];

describe.each(VARIANTS)('decode attention (%s)', (variant) => {
  it('one query row against caches of awkward lengths, GQA 6 on 2 and plain MHA, odd head sizes', async () => {
    const gpu = await testGpu();
    const rng = new Rng(5);
    await validated(gpu, async () => {
      for (const [heads, kvHeads, headDim] of [
        [6, 2, 12],
        [6, 2, 20],
        [3, 3, 7],
        [4, 1, 1],
      ]) {
        // Position 0 (a single key), lengths that are not powers of two, more keys than one 64-key tile.
        for (const [keyRows, pos] of [
          [1, 0],
          [37, 36],
          [37, 20],
          [130, 129],
          [200, 64],
        ]) {
          await checkCase(
            gpu,
            rng,
            { heads, kvHeads, headDim, keyRows, scale: 1 / Math.sqrt(headDim) },
            [pos],
            variant,
          );
        }
      }
    });
  });

  it('a chunk of rows (prefill): consecutive positions see each other, padding rows are not stored', async () => {
    const gpu = await testGpu();
    const rng = new Rng(6);
    await validated(gpu, async () => {
      // Five prompt rows at 11..15 of a 29-row cache, then three padding rows at position keyRows.
      await checkCase(
        gpu,
        rng,
        { heads: 6, kvHeads: 2, headDim: 12, keyRows: 29, scale: 0.3 },
        [11, 12, 13, 14, 15, 29, 29, 29],
        variant,
      );
      // Rows in any order, a head of 256 (the largest the kernels hold), a long cache.
      await checkCase(gpu, rng, { heads: 2, kvHeads: 1, headDim: 256, keyRows: 77, scale: 0.06 }, [76, 3, 40], variant);
    });
  });

  it('scores of 80 do not overflow', async () => {
    const gpu = await testGpu();
    const keyRows = 5,
      hd = 2;
    // q·k = 80 for key 3, 0 elsewhere: the output is (almost exactly) v[3].
    const q = gpu.tensorFrom(new Float32Array([8, 10]), [2], 'q');
    const kv = new Float32Array(keyRows * 2 * hd);
    kv.set([0.5, 0.5], 3 * 2 * hd);
    for (let j = 0; j < keyRows; j++) kv.set([j, -j], j * 2 * hd + hd);
    const cache = gpu.tensorFrom(kv, [kv.length], 'cache');
    const out = gpu.tensor([hd], 'out');
    const pos = u32Tensor(gpu, [4], 'positions');
    await runOnce(gpu, (l) =>
      decodeAttention(l, {
        q: { t: q, ld: hd },
        k: { t: cache, ld: 2 * hd },
        v: { t: cache, offset: hd, ld: 2 * hd },
        out: { t: out, ld: hd },
        positions: pos,
        rows: 1,
        heads: 1,
        kvHeads: 1,
        headDim: hd,
        keyRows,
        scale: 2,
        variant,
      }),
    );
    expectClose(await gpu.read(out), [3, -3], 'out', { atol: 1e-5, rtol: 0 });
  });
});

describe('decode attention shape checks', () => {
  it('rejects heads that are not a multiple of kvHeads, oversized heads, a non-u32 positions tensor', async () => {
    const gpu = await testGpu();
    const list = gpu.list('checks');
    const big = gpu.tensor([4096], 'big');
    const pos = gpu.tensor([1], 'pos', 'u32');
    const base = {
      q: { t: big, ld: 24 },
      k: { t: big, ld: 8 },
      v: { t: big, ld: 8 },
      out: { t: gpu.tensor([24], 'out'), ld: 24 },
      positions: pos,
      rows: 1,
      heads: 6,
      kvHeads: 2,
      headDim: 4,
      keyRows: 3,
      scale: 1,
    };
    expect(() => decodeAttention(list, { ...base, kvHeads: 4 })).toThrow(/multiple of kvHeads/);
    expect(() =>
      decodeAttention(list, {
        ...base,
        heads: 1,
        kvHeads: 1,
        headDim: 300,
        q: { t: big, ld: 300 },
        k: { t: big, ld: 300 },
        v: { t: big, ld: 300 },
        out: { t: big, ld: 300 },
      }),
    ).toThrow(/limit/);
    expect(() => decodeAttention(list, { ...base, positions: gpu.tensor([1], 'f') })).toThrow(/u32/);
    expect(() => decodeAttention(list, { ...base, out: { t: big, ld: 24 } })).toThrow(/same tensor/);
  });
});
