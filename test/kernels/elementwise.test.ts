import { describe, expect, it } from 'vitest';
import { add, addInPlace, scale } from '../../src/kernels/elementwise';
import { addInPlaceRef, addRef, scaleRef } from '../../src/kernels/elementwise.ref';
import { Rng } from '../../src/util/random';
import { expectClose, runOnce, testGpu } from '../helpers/gpu';

// Sizes around the 256-thread workgroup; tensors are 3 longer than n to check the tail is untouched.
const SIZES = [1, 7, 255, 257, 1000];

/** want[0..n) replaced, the rest of the tensor as it was. */
const withTail = (head: Float64Array, whole: Float32Array) =>
  Float64Array.from(whole, (v, i) => (i < head.length ? head[i] : v));

describe('elementwise', () => {
  for (const n of SIZES) {
    it(`n=${n}: add, addInPlace (alpha default and -0.5), scale`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(n);
      const len = n + 3;
      const [av, bv, xv, yv, zv] = [0, 1, 2, 3, 4].map(() => rng.normals(len));
      const a = gpu.tensorFrom(av, [len], 'a');
      const b = gpu.tensorFrom(bv, [len], 'b');
      const out = gpu.tensorFrom(zv, [len], 'out');
      const x = gpu.tensorFrom(xv, [len], 'x');
      const x2 = gpu.tensorFrom(xv, [len], 'x2');
      const y = gpu.tensorFrom(yv, [len], 'y');
      const s = gpu.tensorFrom(yv, [len], 's');
      await runOnce(gpu, (l) => {
        add(l, { a, b, out, n });
        addInPlace(l, { x, y, n });
        addInPlace(l, { x: x2, y, n, alpha: -0.5 });
        scale(l, { x: s, n, alpha: 3.25 });
      });
      expectClose(await gpu.read(out), withTail(addRef(av, bv, n), zv), 'add');
      expectClose(await gpu.read(x), withTail(addInPlaceRef(xv, yv, n), xv), 'addInPlace');
      expectClose(await gpu.read(x2), withTail(addInPlaceRef(xv, yv, n, -0.5), xv), 'addInPlace alpha');
      expectClose(await gpu.read(s), withTail(scaleRef(yv, n, 3.25), yv), 'scale');
    });
  }

  it('a + a: both inputs may be one tensor', async () => {
    const gpu = await testGpu();
    const v = new Rng(9).normals(20);
    const a = gpu.tensorFrom(v, [20], 'a');
    const out = gpu.tensor([20], 'out');
    await runOnce(gpu, (l) => add(l, { a, b: a, out, n: 20 }));
    expectClose(await gpu.read(out), addRef(v, v, 20), 'a + a');
  });

  it('rejects short and aliased tensors', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const a = gpu.tensor([8], 'resid');
    const b = gpu.tensor([7], 'attn_out');
    expect(() => add(list, { a, b, out: gpu.tensor([8], 'o'), n: 8 })).toThrow(/b \(attn_out\)/);
    expect(() => add(list, { a, b: a, out: a, n: 8 })).toThrow(/same tensor/);
    expect(() => addInPlace(list, { x: a, y: a, n: 8 })).toThrow(/same tensor/);
    expect(() => scale(list, { x: b, n: 8, alpha: 2 })).toThrow(/x \(attn_out\)/);
    expect(() => scale(list, { x: b, n: 2.5, alpha: 2 })).toThrow(/integer/);
  });
});
