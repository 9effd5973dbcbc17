import { describe, expect, it } from 'vitest';
import { ropeBackward, ropeForward, ropeInvFreq } from '../../src/kernels/rope';
import { ropeRef } from '../../src/kernels/rope.ref';
import { Rng } from '../../src/util/random';
import { expectClose, numericGrad, runOnce, testGpu } from '../helpers/gpu';

interface Case {
  name: string;
  positions: number[];
  heads: number;
  headDim: number;
  rotaryDim?: number;
  /** Where the rotated block sits inside wider token rows (e.g. q inside a fused q|k|v row). */
  offset: number;
  ld: number;
  atol?: number;
}

const CASES: Case[] = [
  {
    name: 'packed positions, partial rotary, strided rows',
    positions: [0, 1, 2, 0, 1],
    heads: 3,
    headDim: 8,
    rotaryDim: 4,
    offset: 5,
    ld: 40,
  },
  { name: 'packed positions, full rotary', positions: [0, 1, 2, 0, 1], heads: 3, headDim: 8, offset: 0, ld: 24 },
  { name: 'one token, one head of 2', positions: [7], heads: 1, headDim: 2, offset: 0, ld: 2 },
  {
    name: '33 tokens, partial rotary 6 of 10',
    positions: Array.from({ length: 33 }, (_, i) => (i * 7) % 19),
    heads: 2,
    headDim: 10,
    rotaryDim: 6,
    offset: 3,
    ld: 23,
  },
  // Large positions: the kernel reduces the angle to [-pi, pi] before sin/cos.
  { name: 'large positions', positions: [4095, 32767, 100000, 12345], heads: 2, headDim: 16, offset: 0, ld: 32 },
];

describe('rope', () => {
  it('reference backward matches finite differences of the forward', () => {
    const rng = new Rng(3);
    const tokens = 3,
      heads = 2,
      headDim = 6,
      rotaryDim = 4;
    const pos = [0, 5, 2];
    const inv = ropeInvFreq(10000, rotaryDim);
    const x = rng.normals(tokens * heads * headDim);
    const g = rng.normals(x.length);
    const loss = (xx: ArrayLike<number>) =>
      ropeRef(xx, pos, inv, tokens, heads, headDim, rotaryDim).reduce((s, v, i) => s + v * g[i], 0);
    expectClose(ropeRef(g, pos, inv, tokens, heads, headDim, rotaryDim, -1), numericGrad(loss, x), 'dx', {
      atol: 1e-8,
      rtol: 1e-7,
    });
  });

  it('ropeInvFreq matches theta^(-2i/d) in f32', () => {
    expectClose(ropeInvFreq(10000, 8), [1, 0.1, 0.01, 0.001], 'theta 1e4', { atol: 0, rtol: 2e-7 });
    const d = 64;
    const want = Array.from({ length: d / 2 }, (_, i) => 1e6 ** ((-2 * i) / d));
    expectClose(ropeInvFreq(1e6, d), want, 'theta 1e6', { atol: 0, rtol: 1e-6 });
    expect(() => ropeInvFreq(10000, 5)).toThrow(/even/);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const rng = new Rng(c.ld * 31 + c.headDim);
      const tokens = c.positions.length;
      const { heads, headDim, offset, ld } = c;
      const rotaryDim = c.rotaryDim ?? headDim;
      const width = heads * headDim;
      const size = offset + (tokens - 1) * ld + width + 2;
      const data = rng.normals(size);
      const inv = ropeInvFreq(10000, rotaryDim);
      const positions = gpu.tensor([tokens], 'positions', 'u32');
      gpu.upload(positions, Uint32Array.from(c.positions));
      const invFreq = gpu.tensorFrom(inv, [inv.length], 'invFreq');
      const x = gpu.tensorFrom(data, [size], 'x');
      const grad = gpu.tensorFrom(data, [size], 'grad');
      const args = { positions, invFreq, tokens, heads, headDim, rotaryDim };
      await runOnce(gpu, (l) => {
        ropeForward(l, { x: { t: x, offset, ld }, ...args });
        ropeBackward(l, { x: { t: grad, offset, ld }, ...args });
      });

      const dense = new Float64Array(tokens * width);
      for (let t = 0; t < tokens; t++) for (let j = 0; j < width; j++) dense[t * width + j] = data[offset + t * ld + j];
      const scatter = (rows: Float64Array) => {
        const want = Float64Array.from(data);
        for (let t = 0; t < tokens; t++)
          for (let j = 0; j < width; j++) want[offset + t * ld + j] = rows[t * width + j];
        return want;
      };
      const tol = { atol: c.atol ?? 1e-5, rtol: 1e-4 };
      const fwd = ropeRef(dense, c.positions, inv, tokens, heads, headDim, rotaryDim, 1);
      const bwd = ropeRef(dense, c.positions, inv, tokens, heads, headDim, rotaryDim, -1);
      expectClose(await gpu.read(x), scatter(fwd), 'forward', tol);
      expectClose(await gpu.read(grad), scatter(bwd), 'backward', tol);

      // Backward undoes forward.
      await runOnce(gpu, (l) => ropeBackward(l, { x: { t: x, offset, ld }, ...args }));
      expectClose(await gpu.read(x), data, 'round trip', tol);
    });
  }

  it('rejects bad shapes with clear errors', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const positions = gpu.tensor([4], 'pos', 'u32');
    const invFreq = gpu.tensor([4], 'inv');
    const x = gpu.tensor([4 * 16], 'q');
    expect(() =>
      ropeForward(list, { x: { t: x, ld: 16 }, positions, invFreq, tokens: 4, heads: 2, headDim: 8, rotaryDim: 5 }),
    ).toThrow(/rotaryDim/);
    expect(() =>
      ropeForward(list, { x: { t: x, ld: 16 }, positions, invFreq, tokens: 5, heads: 2, headDim: 8 }),
    ).toThrow(/x \(q\)/);
    expect(() =>
      ropeForward(list, { x: { t: x, ld: 16 }, positions: invFreq, invFreq, tokens: 4, heads: 2, headDim: 8 }),
    ).toThrow(/u32/);
    expect(() =>
      ropeForward(list, {
        x: { t: x, ld: 16 },
        positions,
        invFreq: gpu.tensor([3], 'inv3'),
        tokens: 4,
        heads: 2,
        headDim: 8,
      }),
    ).toThrow(/invFreq \(inv3\)/);
  });
});
