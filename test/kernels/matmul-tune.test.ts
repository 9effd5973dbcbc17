import { afterEach, describe, expect, it } from 'vitest';
import { choiceLabel, matmulPlanOf, plannedKernel, setMatmulPlan } from '../../src/kernels/matmul-plan';
import { describeTune, tuneCacheKey, tuneMatmul, type TuneCache, type TuneShape } from '../../src/kernels/matmul-tune';
import { testGpu } from '../helpers/gpu';

// The tuner's mechanics, not its speed: which kernel wins on SwiftShader says nothing about a GPU.
function memoryCache(): TuneCache & { store: Map<string, string> } {
  const store = new Map<string, string>();
  return { store, get: (k) => store.get(k), set: (k, v) => void store.set(k, v) };
}

const SHAPES: Record<'wide' | 'narrow', TuneShape[]> = {
  wide: [{ M: 130, N: 132, K: 40, transB: true }],
  narrow: [{ M: 8, N: 136, K: 600, transA: true }], // K long enough to split
};
const CANDIDATES = ['tiled-128x64', 'register-vec4'] as const;

describe('matmul autotune', () => {
  afterEach(async () => setMatmulPlan((await testGpu()).device, null));

  it('measures every candidate per class (narrow ones also split along K), installs the fastest correct one, and caches it per adapter', async () => {
    const gpu = await testGpu();
    const cache = memoryCache();
    const buffersBefore = gpu.liveBytes;
    const r = await tuneMatmul(gpu, {
      cache,
      force: true,
      shapes: SHAPES,
      candidates: CANDIDATES,
      trials: 1,
      trialMs: 1,
    });
    expect(r.source).toBe('measured');
    expect(gpu.liveBytes, 'the tune frees its operands and lists').toBe(buffersBefore);
    const labels = {
      wide: ['tiled-128x64', 'register-vec4'],
      narrow: ['tiled-128x64', 'tiled-128x64+split-k', 'register-vec4', 'register-vec4+split-k'],
    };
    for (const cls of ['wide', 'narrow'] as const) {
      expect(Object.keys(r.timings[cls]).sort()).toEqual([...labels[cls]].sort());
      for (const label of labels[cls]) expect(r.timings[cls][label], `${cls} ${label}`).toBeGreaterThan(0);
      const fastest = labels[cls].reduce((a, b) => (r.timings[cls][a]! <= r.timings[cls][b]! ? a : b));
      expect(choiceLabel(r.plan[cls])).toBe(fastest);
    }
    expect(matmulPlanOf(gpu.device)).toEqual(r.plan);
    expect(plannedKernel(gpu.device, true, 512, 512, true)).toEqual(r.plan.wide);
    expect(plannedKernel(gpu.device, true, 512, 16, true)).toEqual(r.plan.narrow);
    expect([...cache.store.keys()]).toEqual([tuneCacheKey(gpu)]);
    expect(tuneCacheKey(gpu)).toContain('SwiftShader');

    // A later load recalls the plan without compiling or timing anything.
    setMatmulPlan(gpu.device, null);
    const compiled = gpu.counters.pipelinesCompiled;
    const again = await tuneMatmul(gpu, { cache, shapes: SHAPES, candidates: CANDIDATES });
    expect(again.source).toBe('cache');
    expect(again.plan).toEqual(r.plan);
    expect(again.timings).toEqual(r.timings);
    expect(gpu.counters.pipelinesCompiled).toBe(compiled);
    expect(matmulPlanOf(gpu.device)).toEqual(r.plan);
  });

  it('a software adapter keeps the register kernels untuned; unreadable cache entries are ignored', async () => {
    const gpu = await testGpu();
    const cache = memoryCache();
    cache.store.set(tuneCacheKey(gpu), '{"plan": {"wide": "warp-speed"}}');
    const r = await tuneMatmul(gpu, { cache });
    expect(r.source).toBe('untuned');
    const vec4 = { variant: 'register-vec4', splitK: false };
    expect(r.plan).toEqual({ wide: vec4, narrow: vec4 });
    // Unaligned views cannot take vec4 loads.
    expect(plannedKernel(gpu.device, true, 512, 512, false)).toEqual({ variant: 'register', splitK: false });
    const failing: TuneCache = { get: () => Promise.reject(new Error('storage disabled')), set: () => undefined };
    expect((await tuneMatmul(gpu, { cache: failing })).source).toBe('untuned');
  });

  it('a measurement that fails leaves the defaults in place, says why, and caches nothing', async () => {
    const gpu = await testGpu();
    const cache = memoryCache();
    // K = 3 cannot take vec4 loads: the candidate throws while recording.
    const shapes = { wide: [{ M: 130, N: 130, K: 3 }], narrow: [{ M: 8, N: 8, K: 3 }] };
    const r = await tuneMatmul(gpu, {
      cache,
      force: true,
      shapes,
      candidates: ['register-vec4'],
      trials: 1,
      trialMs: 1,
    });
    expect(r.source).toBe('untuned');
    expect(r.error).toMatch(/register-vec4.*multiples of 4/);
    expect(describeTune(r)).toMatch(/tuning failed .*: defaults/);
    expect(matmulPlanOf(gpu.device)).toEqual({
      wide: { variant: 'register-vec4', splitK: false },
      narrow: { variant: 'register-vec4', splitK: false },
    });
    expect(cache.store.size).toBe(0);
  });
});
