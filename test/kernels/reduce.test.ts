import { describe, expect, it } from 'vitest';
import type { CommandList, Gpu } from '../../src/gpu/gpu';
import { clipFactor, sum, sumSquares } from '../../src/kernels/reduce';
import { clipFactorRef, sumRef, sumSquaresRef } from '../../src/kernels/reduce.ref';
import { Rng } from '../../src/util/random';
import { dispatched, expectClose, runOnce, testGpu, testGpuWithoutFeatures, validated } from '../helpers/gpu';

// Every kernel here sums its threads with subgroup operations on testGpu (it has subgroups) and with the
// shared-memory tree on the feature-less device: each test runs on both.
const DEVICES: [string, () => Promise<Gpu>][] = [
  ['subgroups', testGpu],
  ['no subgroups', testGpuWithoutFeatures],
];

for (const [name, device] of DEVICES)
  describe(`reduce (${name})`, () => {
    it('sum and sumSquares for n = 1, 3, 37, 1000, 4099, 70000, single- and two-stage, into one slot of out', async () => {
      const gpu = await device();
      const rng = new Rng(31);
      await validated(gpu, async () => {
        for (const n of [1, 3, 37, 1000, 4099, 70000]) {
          // x is longer than n: the tail must not be summed.
          const data = rng.normals(n + 5);
          for (let i = 0; i < data.length; i++) data[i] += 0.25;
          const x = gpu.tensorFrom(data, [data.length], 'x');
          const scratch = gpu.tensor([64], 'scratch');
          for (const withScratch of [false, true]) {
            const out = gpu.tensorFrom(new Float32Array([7, 7, 7, 7]), [4], 'out');
            await runOnce(gpu, (l) => {
              sum(l, { x, n, out, outIndex: 1, ...(withScratch ? { scratch } : {}) });
              sumSquares(l, { x, n, out, outIndex: 2, ...(withScratch ? { scratch } : {}) });
            });
            const tol = { atol: 1e-5 * Math.sqrt(n), rtol: 1e-4 };
            expectClose(
              await gpu.read(out),
              [7, sumRef(data, n), sumSquaresRef(data, n), 7],
              `n=${n} scratch=${withScratch}`,
              tol,
            );
          }
        }
      });
    });

    it('two-stage sums record two dispatches, and repeated runs give identical bits', async () => {
      const gpu = await device();
      const data = new Rng(32).normals(70000);
      const x = gpu.tensorFrom(data, [data.length], 'x');
      const out = gpu.tensor([2], 'out');
      await validated(gpu, async () => {
        const list = gpu.list('determinism');
        sumSquares(list, { x, n: data.length, out, outIndex: 0, scratch: gpu.tensor([1024], 'scratch') });
        expect(list.dispatchCount).toBe(2);
        sumSquares(list, { x, n: data.length, out, outIndex: 1 });
        expect(list.dispatchCount).toBe(3);
        const runs: Float32Array[] = [];
        for (let i = 0; i < 3; i++) {
          list.run();
          runs.push(await gpu.read(out));
        }
        expect(runs[1]).toEqual(runs[0]);
        expect(runs[2]).toEqual(runs[0]);
        expectClose(runs[0], [sumSquaresRef(data), sumSquaresRef(data)], 'sum of squares');
      });
    });

    it('clipFactor: global norm and clip factor, clipping active, inactive and disabled', async () => {
      const gpu = await device();
      const rng = new Rng(33);
      await validated(gpu, async () => {
        for (const count of [1, 37, 1030]) {
          const sqData = rng.uniforms(count, 0, 3);
          const sq = gpu.tensorFrom(sqData, [count], 'sq');
          const { norm } = clipFactorRef(sqData, count, 1);
          for (const maxNorm of [norm / 3, norm * 2, 0]) {
            const state = gpu.tensorFrom(new Float32Array([5, 5, 5, 5]), [4], 'state');
            await runOnce(gpu, (l) => clipFactor(l, { sq, count, state, normIndex: 3, clipIndex: 1, maxNorm }));
            const want = clipFactorRef(sqData, count, maxNorm);
            expectClose(await gpu.read(state), [5, want.clip, 5, want.norm], `count=${count} maxNorm=${maxNorm}`);
          }
        }
      });
    });
  });

describe('reduce', () => {
  // testGpu has subgroups on every machine these tests run on (SwiftShader included): were it to lose them,
  // both device runs above would test the tree.
  it('compiles from reduce+subgroups on a device with subgroups, from reduce without', async () => {
    for (const [device, want] of [
      [testGpu, 'reduce+subgroups'],
      [testGpuWithoutFeatures, 'reduce'],
    ] as const) {
      const gpu = await device();
      const x = gpu.tensor([5000], 'x');
      const out = gpu.tensor([2], 'out');
      const record = (l: CommandList) => {
        sum(l, { x, n: 5000, out, outIndex: 0, scratch: gpu.tensor([4], 'scratch') });
        clipFactor(l, { sq: out, count: 1, state: gpu.tensor([2], 'state'), normIndex: 0, clipIndex: 1, maxNorm: 1 });
      };
      expect(await dispatched(gpu, record)).toEqual(
        ['reduce_partials', 'reduce_single', 'clip_factor'].map((e) => `${want}.${e}`),
      );
    }
  });

  it('the clip factor reference follows torch clip_grad_norm_', () => {
    expect(clipFactorRef([9, 16], 2, 1).norm).toBe(5);
    expect(clipFactorRef([9, 16], 2, 1).clip).toBeCloseTo(1 / (5 + 1e-6), 12);
    expect(clipFactorRef([9, 16], 2, 10).clip).toBe(1);
    expect(clipFactorRef([9, 16], 2, 0).clip).toBe(1);
    expect(clipFactorRef([], 0, 1).clip).toBe(1);
  });

  it('rejects bad sizes, indices and aliasing with clear errors', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([10], 'x');
    const out = gpu.tensor([2], 'out');
    const list = gpu.list('errors');
    expect(() => sum(list, { x, n: 11, out, outIndex: 0 })).toThrow(/x \(x\)/);
    expect(() => sumSquares(list, { x, n: 10, out, outIndex: 2 })).toThrow(/out \(out\)/);
    expect(() => sum(list, { x, n: 10, out: x, outIndex: 0 })).toThrow(/same tensor/);
    expect(() => clipFactor(list, { sq: x, count: 10, state: out, normIndex: 0, clipIndex: 0, maxNorm: 1 })).toThrow(
      /normIndex/,
    );
    expect(() => clipFactor(list, { sq: x, count: 10, state: out, normIndex: 0, clipIndex: 2, maxNorm: 1 })).toThrow(
      /state \(out\)/,
    );
  });
});
