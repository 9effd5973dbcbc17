import { describe, expect, it } from 'vitest';
import { NF4_MIDPOINTS, quantize4bit } from '../../src/quant/bnb4';
import { quantizeInt8Rows } from '../../src/quant/int8';
import { packLayout, type OutRounding } from '../../src/quant/layout';
import { storeWeight } from '../../src/quant/store';
import { Rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';

/**
 * Quantization at load on the GPU (quant/store.ts + shaders/quantize.wgsl) against the host reference of
 * bitsandbytes' algorithm (quant/bnb4.ts, quant/int8.ts): identical words, codes and statistics, on awkward sizes.
 */
function values(rng: Rng, n: number, ties = false): Float32Array {
  const v = rng.normals(n, 0.05);
  if (ties) {
    // Blocks whose absmax is exactly 1 and values on the NF4 midpoints: an exact tie goes to the lower code.
    for (let b = 0; b * 64 < n; b += 2) {
      v[b * 64] = 1;
      for (let k = 1; k < 16 && b * 64 + k < n; k++) v[b * 64 + k] = NF4_MIDPOINTS[k - 1];
    }
  }
  return v;
}

function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

const SHAPES: [number, number][] = [
  [1, 7], // one partial block, odd count
  [3, 21], // 63 values: a partial block only
  [5, 64], // whole blocks
  [37, 29], // 1073 values: 16 full blocks and a partial one
  [300, 230], // 69000 values: 1079 blocks, more than 4 nested blocks of 256
];

describe('quantization on the GPU', () => {
  for (const [rows, cols] of SHAPES) {
    for (const rounding of ['f32', 'bf16'] as OutRounding[]) {
      it(`NF4 ${rows} x ${cols}, ${rounding}: the same words as bitsandbytes' algorithm on the host`, async () => {
        const gpu = await testGpu();
        const data = values(new Rng(rows * cols), rows * cols, true);
        const t = await storeWeight(gpu, data, [rows, cols], 'w', 'nf4', {
          sourceDtype: rounding === 'f32' ? 'f32' : 'bf16',
        });
        const want = packLayout(quantize4bit(data, { rounding }));
        expect(Array.from(await gpu.readWords(t))).toEqual(Array.from(want));
        await gpu.freeTensors([t]);
      });
    }
  }

  it('NF4 of a GPT-2 Conv1D weight quantizes its transpose, as bitsandbytes stores it', async () => {
    const gpu = await testGpu();
    const [rows, cols] = [29, 37];
    const data = values(new Rng(9), rows * cols);
    const t = await storeWeight(gpu, data, [rows, cols], 'w', 'nf4', { conv1d: true });
    const want = packLayout({ ...quantize4bit(transpose(data, rows, cols)), transposedFrom: { rows, cols } });
    expect(Array.from(await gpu.readWords(t))).toEqual(Array.from(want));
  });

  for (const [rows, cols] of SHAPES) {
    it(`int8 ${rows} x ${cols}: the same codes and row scales as the host`, async () => {
      const gpu = await testGpu();
      const data = values(new Rng(rows + cols), rows * cols);
      data[0] = 0.5 / 127; // a half-way code: round half to even
      const t = await storeWeight(gpu, data, [rows, cols], 'w', 'int8');
      const want = packLayout(quantizeInt8Rows(data, rows, cols));
      expect(Array.from(await gpu.readWords(t))).toEqual(Array.from(want));
    });
  }

  it('a value that is not finite is refused, naming the tensor', async () => {
    const gpu = await testGpu();
    const data = values(new Rng(2), 128);
    data[70] = Number.NaN;
    await expect(storeWeight(gpu, data, [2, 64], 'model.layers.0.mlp.up_proj.weight', 'nf4')).rejects.toThrow(
      /^model\.layers\.0\.mlp\.up_proj\.weight: .*value 70 is NaN/,
    );
    data[70] = 1e6; // beyond float16, which bitsandbytes casts to before int8 quantization
    await expect(storeWeight(gpu, data, [2, 64], 'w.int8', 'int8')).rejects.toThrow(/^w\.int8: .*float16/);
  });

  it('a zero block and a zero row quantize like the host', async () => {
    const gpu = await testGpu();
    const data = new Float32Array(4 * 64);
    data.set(values(new Rng(1), 64), 128);
    const nf4 = await storeWeight(gpu, data, [4, 64], 'w', 'nf4');
    expect(Array.from(await gpu.readWords(nf4))).toEqual(Array.from(packLayout(quantize4bit(data))));
    const int8 = await storeWeight(gpu, data, [4, 64], 'w', 'int8');
    expect(Array.from(await gpu.readWords(int8))).toEqual(Array.from(packLayout(quantizeInt8Rows(data, 4, 64))));
  });
});
