import { describe, expect, it } from 'vitest';
import { ADAMW_HP, ADAMW_HP_SIZE, adamw } from '../../src/kernels/adamw';
import { adamwStepRef, type AdamwHyper } from '../../src/kernels/adamw.ref';
import { clipFactor, sumSquares } from '../../src/kernels/reduce';
import { clipFactorRef, sumSquaresRef } from '../../src/kernels/reduce.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu, validated } from '../helpers/gpu';

/** The hp tensor's contents for a 1-based step, as the trainer writes them. */
function hpValues(hp: AdamwHyper, step: number): Float32Array {
  const out = new Float32Array(ADAMW_HP_SIZE);
  out[ADAMW_HP.lr] = hp.lr;
  out[ADAMW_HP.beta1] = hp.beta1;
  out[ADAMW_HP.beta2] = hp.beta2;
  out[ADAMW_HP.eps] = hp.eps;
  out[ADAMW_HP.weightDecay] = hp.weightDecay;
  out[ADAMW_HP.bias1] = 1 - Math.pow(hp.beta1, step);
  out[ADAMW_HP.bias2] = 1 - Math.pow(hp.beta2, step);
  return out;
}

const HYPER: AdamwHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.5 };

describe('adamw reference', () => {
  it('first step from zero moments moves each weight by lr * sign(g) (bias correction undoes the betas)', () => {
    const param = Float64Array.from([1, -2, 0.5]);
    const grad = [0.3, -4, 1e-3];
    adamwStepRef(param, grad, new Float64Array(3), new Float64Array(3), HYPER, 1);
    const want = [1, -2, 0.5].map((p, i) => p - (HYPER.lr * grad[i]) / (Math.abs(grad[i]) + HYPER.eps));
    expectClose(param, want, 'param', { atol: 1e-12, rtol: 1e-12 });
  });

  it('decay is decoupled: p *= 1 - lr * wd before the Adam update, with the group lr', () => {
    const noDecay = Float64Array.from([2]);
    const decay = Float64Array.from([2]);
    adamwStepRef(noDecay, [1], new Float64Array(1), new Float64Array(1), HYPER, 1, { lrScale: 4 });
    adamwStepRef(decay, [1], new Float64Array(1), new Float64Array(1), HYPER, 1, { lrScale: 4, applyDecay: true });
    expect(noDecay[0] - decay[0]).toBeCloseTo(2 * 4 * HYPER.lr * HYPER.weightDecay, 12);
  });
});

describe('adamw', () => {
  // [maxNorm, lrScale, applyDecay]: maxNorm 0.5 clips (the gradient norm is ~10), 0 and 1e6 do not.
  const configs: [number, number, boolean][] = [
    [0.5, 1, true],
    [0, 16, false],
    [1e6, 16, true],
    [0.5, 0.5, false],
  ];
  for (const [maxNorm, lrScale, applyDecay] of configs) {
    it(`3 steps after sumSquares + clipFactor: maxNorm ${maxNorm}, lrScale ${lrScale}, decay ${applyDecay}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(41 + lrScale);
      const n = 300; // more than one workgroup, not a multiple of 256
      const param = Float64Array.from(rng.normals(n));
      const m = new Float64Array(n);
      const v = new Float64Array(n);
      const grads = [0, 1, 2].map(() => rng.normals(n, 0.6));

      const tParam = gpu.tensorFrom(Float32Array.from(param), [n], 'param');
      const tGrad = gpu.tensor([n], 'grad');
      const tM = gpu.tensor([n], 'm');
      const tV = gpu.tensor([n], 'v');
      const hp = gpu.tensor([ADAMW_HP_SIZE], 'hp');
      const sq = gpu.tensor([1], 'sq');
      const state = gpu.tensor([2], 'state');
      await validated(gpu, async () => {
        const list = gpu.list('step');
        sumSquares(list, { x: tGrad, n, out: sq, outIndex: 0 });
        clipFactor(list, { sq, count: 1, state, normIndex: 0, clipIndex: 1, maxNorm });
        adamw(list, { param: tParam, grad: tGrad, m: tM, v: tV, n, hp, state, clipIndex: 1, lrScale, applyDecay });
        for (let step = 1; step <= 3; step++) {
          const g = grads[step - 1];
          gpu.upload(tGrad, g);
          gpu.upload(hp, hpValues(HYPER, step));
          list.run();
          const clip = clipFactorRef([sumSquaresRef(g)], 1, maxNorm).clip;
          if (maxNorm === 0.5) expect(clip).toBeLessThan(0.2);
          else expect(clip).toBe(1);
          adamwStepRef(param, g, m, v, HYPER, step, { clip, lrScale, applyDecay });
          expectClose(await gpu.read(state, 1, 1), [clip], `step ${step} clip`);
        }
        expectClose(await gpu.read(tParam), param, 'param');
        expectClose(await gpu.read(tM), m, 'm');
        expectClose(await gpu.read(tV), v, 'v');
      });
    });
  }

  it('updates only the first n elements', async () => {
    const gpu = await testGpu();
    const param = gpu.tensorFrom(new Float32Array(10).fill(1), [10], 'param');
    const grad = gpu.tensorFrom(new Float32Array(10).fill(1), [10], 'grad');
    const [m, v] = [gpu.tensor([10], 'm'), gpu.tensor([10], 'v')];
    const hp = gpu.tensorFrom(hpValues(HYPER, 1), [ADAMW_HP_SIZE], 'hp');
    const state = gpu.tensorFrom(new Float32Array([1]), [1], 'state');
    await validated(gpu, async () => {
      const list = gpu.list('partial');
      adamw(list, { param, grad, m, v, n: 7, hp, state, clipIndex: 0 });
      list.run();
      const moved = 1 - HYPER.lr / (1 + HYPER.eps);
      expectClose(await gpu.read(param), [...Array(7).fill(moved), 1, 1, 1], 'param');
    });
  });

  it('rejects bad sizes and aliasing with clear errors', async () => {
    const gpu = await testGpu();
    const t = (n: number, label: string) => gpu.tensor([n], label);
    const base = {
      param: t(8, 'param'),
      grad: t(8, 'grad'),
      m: t(8, 'm'),
      v: t(8, 'v'),
      n: 8,
      hp: t(7, 'hp'),
      state: t(2, 'state'),
      clipIndex: 1,
    };
    const list = gpu.list('errors');
    expect(() => adamw(list, { ...base, m: t(7, 'small') })).toThrow(/m \(small\)/);
    expect(() => adamw(list, { ...base, hp: t(6, 'hp6') })).toThrow(/hp \(hp6\)/);
    expect(() => adamw(list, { ...base, clipIndex: 2 })).toThrow(/state/);
    expect(() => adamw(list, { ...base, grad: base.param })).toThrow(/same tensor/);
  });
});

describe('adamw with a non-finite gradient', () => {
  it('skips the update and keeps parameters and moments when the gradient norm is NaN or Inf', async () => {
    const gpu = await testGpu();
    for (const bad of [NaN, Infinity]) {
      const n = 37;
      const rng = new Rng(11);
      const p0 = rng.normals(n);
      const g0 = rng.normals(n);
      g0[5] = bad;
      const param = gpu.tensorFrom(p0, [n], 'param');
      const grad = gpu.tensorFrom(g0, [n], 'grad');
      const m = gpu.tensorFrom(new Float32Array(n).fill(0.25), [n], 'm');
      const v = gpu.tensorFrom(new Float32Array(n).fill(0.5), [n], 'v');
      const hp = gpu.tensorFrom(Float32Array.from([1e-2, 0.9, 0.999, 1e-8, 0.1, 0.1, 0.001, 0]), [8], 'hp');
      const sq = gpu.tensor([1], 'sq');
      const state = gpu.tensor([2], 'state');
      await runOnce(gpu, (l) => {
        sumSquares(l, { x: grad, n, out: sq, outIndex: 0 });
        clipFactor(l, { sq, count: 1, state, normIndex: 0, clipIndex: 1, maxNorm: 1 });
        adamw(l, { param, grad, m, v, n, hp, state, clipIndex: 1, applyDecay: true });
      });
      const st = await gpu.read(state);
      expect(st[1]).toBe(0);
      expectClose(await gpu.read(param), p0, `param kept (${bad})`, { atol: 0, rtol: 0 });
      expectClose(await gpu.read(m), new Float32Array(n).fill(0.25), `m kept (${bad})`, { atol: 0, rtol: 0 });
    }
  });
});
