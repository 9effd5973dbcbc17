import { describe, expect, it } from 'vitest';
import { argmax, type ArgmaxVariant } from '../../src/kernels/argmax';
import { argmaxRef } from '../../src/kernels/argmax.ref';
import { Rng } from '../../src/util/random';
import { runOnce, testGpu, validated } from '../helpers/gpu';

describe('argmax reference', () => {
  it('returns the first index of each row maximum', () => {
    const x = [1, 3, 3, -1, /* row 1 */ -5, -4, -4, -9, /* row 2 */ 2, 2, 2, 2];
    expect([...argmaxRef(x, 3, 4)]).toEqual([1, 1, 0]);
    // A strided view: rows 5 apart from offset 1, 3 columns each; the larger padding values are not part of it.
    expect([...argmaxRef([9, 0, 1, 0, 9, 9, 7, 2, 8, 9, 9], 2, 3, 1, 5)]).toEqual([1, 2]);
  });
});

const VARIANTS: ArgmaxVariant[] = ['wide', 'narrow'];

describe.each(VARIANTS)('argmax (%s)', (variant) => {
  // [rows, vocab, offset, ld]: one element, fewer columns than threads, a vocab that is not a multiple of the
  // workgroup, GPT-2's vocab, and a strided view with padding around the rows.
  const cases: [number, number, number, number][] = [[1, 1, 0, 1], [3, 7, 0, 7], [2, 1000, 0, 1000], [1, 50257, 0, 50257], [4, 37, 3, 41]];

  it('matches the reference on random rows, with ties resolved to the lowest index', async () => {
    const gpu = await testGpu();
    const rng = new Rng(17);
    await validated(gpu, async () => {
      for (const [rows, vocab, offset, ld] of cases) {
        const x = rng.normals(offset + rows * ld, 3);
        // Ties: the maximum of row 0 repeated later in the row (and once before, in row 1, a quantized row).
        if (vocab > 2) {
          let best = offset;
          for (let i = 0; i < vocab; i++) if (x[offset + i] > x[best]) best = offset + i;
          x[offset + vocab - 1] = x[best];
          x[Math.min(offset + vocab - 2, best + 1)] = x[best];
        }
        if (rows > 1) for (let i = 0; i < vocab; i++) x[offset + ld + i] = Math.round(x[offset + ld + i]);
        const t = gpu.tensorFrom(x, [x.length], 'x');
        const out = gpu.tensor([rows + 1], 'out', 'u32');
        gpu.upload(out, new Uint32Array(rows + 1).fill(12345));
        await runOnce(gpu, (l) => argmax(l, { x: { t, offset, ld }, out, rows, vocab, variant }));
        const want = [...argmaxRef(x, rows, vocab, offset, ld), 12345];
        expect([...(await gpu.readU32(out))], `rows ${rows} vocab ${vocab}`).toEqual(want);
      }
    });
  });

  it('large negative logits', async () => {
    const gpu = await testGpu();
    const x = Float32Array.from({ length: 300 }, (_, i) => -1e30 - i * 1e27);
    x[217] = -9e29;
    const t = gpu.tensorFrom(x, [300], 'x');
    const out = gpu.tensor([1], 'out', 'u32');
    await runOnce(gpu, (l) => argmax(l, { x: { t, ld: 300 }, out, rows: 1, vocab: 300, variant }));
    expect((await gpu.readU32(out))[0]).toBe(217);
  });
});

describe('argmax shape checks', () => {
  it('rejects an f32 output and a view past the end of its tensor', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([10], 'x');
    const list = gpu.list('checks');
    expect(() => argmax(list, { x: { t: x, ld: 5 }, out: gpu.tensor([2], 'out'), rows: 2, vocab: 5 })).toThrow(/u32/);
    expect(() => argmax(list, { x: { t: x, ld: 6 }, out: gpu.tensor([2], 'o', 'u32'), rows: 2, vocab: 5 })).toThrow(/reach element/);
  });
});
