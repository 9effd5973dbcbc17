/** Per-kernel GPU time from timestamp queries: every dispatch of a list is timed, in one submit. */
import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul';
import { scale } from '../../src/kernels/elementwise';
import { testGpu } from '../helpers/gpu';

describe('CommandList.profileTimestamps', () => {
  it('times every dispatch by kernel name, or says the adapter cannot', async () => {
    const gpu = await testGpu();
    // One heavy product (512 x 512 x 256: 67M multiply-adds) between two tiny scales (64 elements each), so the
    // time of each kernel differs from the others' by orders of magnitude: a profiler that pairs a dispatch with
    // another dispatch's timestamps, or drops one, gives the wrong kernel the product's time.
    const a = gpu.tensor([512, 256], 'a');
    const b = gpu.tensor([512, 256], 'b');
    const c = gpu.tensor([512, 512], 'c');
    const small = gpu.tensor([64], 'small');
    const copyDst = gpu.tensor([64], 'copyDst');
    const list = gpu.list('profiled');
    scale(list, { x: small, n: small.size, alpha: 2 });
    list.copy(small, copyDst);
    matmul(list, {
      a: { t: a, ld: 256 },
      b: { t: b, ld: 256 },
      c: { t: c, ld: 512 },
      M: 512,
      N: 512,
      K: 256,
      transB: true,
      splitK: 1,
    });
    list.clear(copyDst);
    scale(list, { x: small, n: small.size, alpha: 0.5 });

    // What the list dispatches, by name and count (profile() runs every command alone; copies and clears are
    // named by kind there and have no timestamps).
    const expected = new Map<string, number>();
    for (const [name, t] of await list.profile()) if (name !== 'copy' && name !== 'clear') expected.set(name, t.count);
    const matmulName = [...expected.keys()].find((k) => k.startsWith('matmul.'));
    expect(matmulName, 'the list dispatches a matmul kernel').toBeDefined();
    expect(expected.get('elementwise.scale')).toBe(2);
    expect(expected.size).toBe(2);

    const t0 = performance.now();
    const times = await list.profileTimestamps();
    const wallMs = performance.now() - t0;
    gpu.checkErrors('profile');
    if (!gpu.handle.features.timestamps) {
      expect(times).toBeNull();
      return;
    }
    // Named as dispatched: the same kernels, each counted as often as it was recorded.
    expect(new Map([...times!].map(([k, t]) => [k, t.count]))).toEqual(expected);
    for (const [k, t] of times!) expect(Number.isFinite(t.ms), `${k}: ${t.ms} ms`).toBe(true);
    // The times are GPU time inside the one submit that profileTimestamps waited for, in milliseconds: their sum
    // is positive and fits in the wall-clock time of the call (a nanosecond/millisecond mix-up is off by 1e3-1e6).
    const total = [...times!.values()].reduce((s, t) => s + t.ms, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThanOrEqual(wallMs + 1);
    // The product is ~1e6 times the work of a 64-element scale; it dominates the list's time (the two scales
    // together take less than the product, by a wide margin on any device).
    const mm = times!.get(matmulName!)!.ms;
    const sc = times!.get('elementwise.scale')!.ms;
    expect(mm, `matmul ${mm} ms vs the two scales ${sc} ms`).toBeGreaterThan(sc);
    expect(mm).toBeGreaterThan(total / 2);
    await list.release();
  });
});
