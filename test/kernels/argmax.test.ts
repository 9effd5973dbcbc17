import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu';
import { argmax, type ArgmaxVariant } from '../../src/kernels/argmax';
import { argmaxRef } from '../../src/kernels/argmax.ref';
import { Rng } from '../../src/util/random';
import { dispatched, runOnce, testGpu, testGpuWithoutFeatures, validated } from '../helpers/gpu';

describe('argmax reference', () => {
  it('returns the first index of each row maximum', () => {
    const x = [1, 3, 3, -1, /* row 1 */ -5, -4, -4, -9, /* row 2 */ 2, 2, 2, 2];
    expect([...argmaxRef(x, 3, 4)]).toEqual([1, 1, 0]);
    // A strided view: rows 5 apart from offset 1, 3 columns each; the larger padding values are not part of it.
    expect([...argmaxRef([9, 0, 1, 0, 9, 9, 7, 2, 8, 9, 9], 2, 3, 1, 5)]).toEqual([1, 2]);
  });
});

// Wide rows merge with subgroup operations on testGpu (it has subgroups) and with the shared-memory tree on the
// feature-less device; narrow rows use the tree on both, so they run once.
const CONFIGS: { name: string; variant: ArgmaxVariant; device: () => Promise<Gpu> }[] = [
  { name: 'wide, subgroups', variant: 'wide', device: testGpu },
  { name: 'wide, no subgroups', variant: 'wide', device: testGpuWithoutFeatures },
  { name: 'narrow', variant: 'narrow', device: testGpu },
];

for (const { name, variant, device } of CONFIGS)
  describe(`argmax (${name})`, () => {
    // [rows, vocab, offset, ld]: one element, fewer columns than threads, a vocab that is not a multiple of the
    // workgroup, GPT-2's vocab, strided views with padding around the rows, and many rows of a few columns.
    const cases: [number, number, number, number][] = [
      [1, 1, 0, 1],
      [3, 7, 0, 7],
      [2, 1000, 0, 1000],
      [1, 50257, 0, 50257],
      [4, 37, 3, 41],
      [5, 130, 1, 133],
      [33, 3, 2, 5],
    ];

    it('matches the reference on random rows, with ties resolved to the lowest index', async () => {
      const gpu = await device();
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
          // A row of one repeated value: every thread and every subgroup ties.
          if (rows > 2) for (let i = 0; i < vocab; i++) x[offset + 2 * ld + i] = -1.5;
          const t = gpu.tensorFrom(x, [x.length], 'x');
          const out = gpu.tensor([rows + 1], 'out', 'u32');
          gpu.upload(out, new Uint32Array(rows + 1).fill(12345));
          await runOnce(gpu, (l) => argmax(l, { x: { t, offset, ld }, out, rows, vocab, variant }));
          const want = [...argmaxRef(x, rows, vocab, offset, ld), 12345];
          expect([...(await gpu.readU32(out))], `rows ${rows} vocab ${vocab}`).toEqual(want);
        }
      });
    });

    // 37 columns leave threads (and, with subgroups, parts of a subgroup) without an element: they must not win.
    it('large negative logits', async () => {
      const gpu = await device();
      for (const vocab of [37, 300]) {
        const x = Float32Array.from({ length: vocab }, (_, i) => -1e30 - i * 1e27);
        x[vocab - 3] = -9e29;
        const t = gpu.tensorFrom(x, [vocab], 'x');
        const out = gpu.tensor([1], 'out', 'u32');
        await runOnce(gpu, (l) => argmax(l, { x: { t, ld: vocab }, out, rows: 1, vocab, variant }));
        expect((await gpu.readU32(out))[0], `vocab ${vocab}`).toBe(vocab - 3);
      }
    });
  });

describe('argmax subgroup form', () => {
  // testGpu has subgroups on every machine these tests run on (SwiftShader included): were it to lose them,
  // both wide configurations above would test the tree.
  it('wide rows compile from argmax+subgroups on a device with subgroups, from argmax without; narrow from argmax', async () => {
    for (const [device, wide] of [
      [testGpu, 'argmax+subgroups'],
      [testGpuWithoutFeatures, 'argmax'],
    ] as const) {
      const gpu = await device();
      const x = gpu.tensor([6], 'x');
      const out = gpu.tensor([2], 'out', 'u32');
      for (const [variant, want] of [
        ['wide', wide],
        ['narrow', 'argmax'],
      ] as const) {
        expect(
          await dispatched(gpu, (l) => argmax(l, { x: { t: x, ld: 3 }, out, rows: 2, vocab: 3, variant })),
        ).toEqual([`${want}.argmax_rows`]);
      }
    }
  });
});

describe('argmax shape checks', () => {
  it('rejects an f32 output and a view past the end of its tensor', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([10], 'x');
    const list = gpu.list('checks');
    expect(() => argmax(list, { x: { t: x, ld: 5 }, out: gpu.tensor([2], 'out'), rows: 2, vocab: 5 })).toThrow(/u32/);
    expect(() => argmax(list, { x: { t: x, ld: 6 }, out: gpu.tensor([2], 'o', 'u32'), rows: 2, vocab: 5 })).toThrow(
      /reach element/,
    );
  });
});
