import { describe, expect, it } from 'vitest';
import { geluBackward, geluForward, swigluBackward, swigluForward } from '../../src/kernels/activation';
import { geluBackwardRef, geluForwardRef, swigluBackwardRef, swigluForwardRef } from '../../src/kernels/activation.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

/** Derivative of an elementwise function by central differences, in float64. */
function numericSlope(f: (x: number) => number, x: number, h = 1e-6): number {
  return (f(x + h) - f(x - h)) / (2 * h);
}

/** Random values plus the extremes where naive formulas overflow or lose the limit. */
function inputs(rng: Rng, n: number): Float32Array {
  const x = rng.normals(n, 3);
  const extremes = [0, -0.5, 1e-7, -20, 20, -100, 100, -1e4, 1e4, -1e30, 1e30];
  for (let i = 0; i < Math.min(n, extremes.length); i++) x[(i * 7) % n] = extremes[i];
  return x;
}

const SIZES = [1, 7, 300, 1031];

describe('activation references', () => {
  it('backward references match finite differences', () => {
    const rng = new Rng(1);
    for (let k = 0; k < 40; k++) {
      const x = rng.normal() * 3;
      const u = rng.normal();
      const gelu = (v: number) => geluForwardRef([v], 1)[0];
      expect(geluBackwardRef([1], [x], 1)[0]).toBeCloseTo(numericSlope(gelu, x), 7);
      const { dgate, dup } = swigluBackwardRef([1], [x], [u], 1);
      expect(dgate[0]).toBeCloseTo(
        numericSlope((g) => swigluForwardRef([g], [u], 1)[0], x),
        7,
      );
      expect(dup[0]).toBeCloseTo(
        numericSlope((v) => swigluForwardRef([x], [v], 1)[0], u),
        7,
      );
    }
  });
});

describe('swiglu', () => {
  for (const n of SIZES) {
    it(`n=${n}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(n);
      const g = inputs(rng, n);
      const u = rng.normals(n);
      const d = rng.normals(n);
      const gate = gpu.tensorFrom(g, [n], 'gate');
      const up = gpu.tensorFrom(u, [n], 'up');
      const dout = gpu.tensorFrom(d, [n], 'dout');
      const out = gpu.tensor([n], 'out');
      const dgate = gpu.tensor([n], 'dgate');
      const dup = gpu.tensor([n], 'dup');
      await runOnce(gpu, (l) => {
        swigluForward(l, { gate, up, out, n });
        swigluBackward(l, { dout, gate, up, dgate, dup, n });
      });
      expectClose(await gpu.read(out), swigluForwardRef(g, u, n), 'out');
      const ref = swigluBackwardRef(d, g, u, n);
      expectClose(await gpu.read(dgate), ref.dgate, 'dgate');
      expectClose(await gpu.read(dup), ref.dup, 'dup');
    });
  }
});

describe('gelu', () => {
  for (const n of SIZES) {
    it(`n=${n}`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(n + 100);
      const xs = inputs(rng, n);
      const d = rng.normals(n);
      const x = gpu.tensorFrom(xs, [n], 'x');
      const dout = gpu.tensorFrom(d, [n], 'dout');
      const out = gpu.tensor([n], 'out');
      const dx = gpu.tensor([n], 'dx');
      await runOnce(gpu, (l) => {
        geluForward(l, { x, out, n });
        geluBackward(l, { dout, x, dx, n });
      });
      expectClose(await gpu.read(out), geluForwardRef(xs, n), 'out');
      expectClose(await gpu.read(dx), geluBackwardRef(d, xs, n), 'dx');
    });
  }

  it('rejects short and aliased tensors', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const x = gpu.tensor([10], 'mlp.fc');
    expect(() => geluForward(list, { x, out: gpu.tensor([9], 'act'), n: 10 })).toThrow(/out \(act\)/);
    expect(() => geluForward(list, { x, out: x, n: 10 })).toThrow(/same tensor/);
    expect(() =>
      swigluBackward(list, {
        dout: x,
        gate: x,
        up: x,
        dgate: gpu.tensor([10], 'a'),
        dup: gpu.tensor([10], 'a2'),
        n: 11,
      }),
    ).toThrow(/dout \(mlp\.fc\)/);
  });
});
