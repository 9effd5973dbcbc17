/** Per-kernel GPU time from timestamp queries: every dispatch of a list is timed, in one submit. */
import { describe, expect, it } from 'vitest';
import { matmul } from '../../src/kernels/matmul';
import { scale } from '../../src/kernels/elementwise';
import { testGpu } from '../helpers/gpu';

describe('CommandList.profileTimestamps', () => {
  it('times every dispatch by kernel name, or says the adapter cannot', async () => {
    const gpu = await testGpu();
    const a = gpu.tensor([64, 64], 'a');
    const c = gpu.tensor([64, 64], 'c');
    const d = gpu.tensor([64, 64], 'd');
    const list = gpu.list('profiled');
    matmul(list, { a: { t: a, ld: 64 }, b: { t: a, ld: 64 }, c: { t: c, ld: 64 }, M: 64, N: 64, K: 64 });
    matmul(list, { a: { t: c, ld: 64 }, b: { t: a, ld: 64 }, c: { t: d, ld: 64 }, M: 64, N: 64, K: 64, beta: 1 });
    list.copy(c, a);
    scale(list, { x: c, n: c.size, alpha: 2 });
    const times = await list.profileTimestamps();
    gpu.checkErrors('profile');
    if (!gpu.handle.features.timestamps) {
      expect(times).toBeNull();
      return;
    }
    const kernels = [...times!.keys()];
    expect(kernels.some((k) => k.startsWith('matmul.'))).toBe(true);
    expect(times!.get('elementwise.scale')?.count).toBe(1);
    expect([...times!.values()].reduce((n, t) => n + t.count, 0)).toBe(3);
    for (const t of times!.values()) expect(t.ms).toBeGreaterThanOrEqual(0);
  });
});
