import { describe, expect, it } from 'vitest';
import { doraCombine, doraNorm, doraRowNormsSq, doraScaleGrad } from '../../src/kernels/dora';
import {
  doraBackwardRef,
  doraForwardRef,
  doraNormRef,
  doraRowNormsSqRef,
  type DoraRefParams,
} from '../../src/kernels/dora.ref';
import { Rng } from '../../src/util/random';
import { dot, expectClose, numericGrad, runOnce, testGpu } from '../helpers/gpu';

/** Linear layout [out, in] → GPT-2 Conv1D layout [in, out]. */
function transpose(W: ArrayLike<number>, out: number, inDim: number): Float32Array {
  const t = new Float32Array(out * inDim);
  for (let j = 0; j < out; j++) for (let k = 0; k < inDim; k++) t[k * out + j] = W[j * inDim + k];
  return t;
}

function params(rng: Rng, inDim: number, outDim: number, rank: number, scale = 1.7): DoraRefParams {
  return {
    inDim,
    outDim,
    rank,
    scale,
    W: rng.normals(outDim * inDim, 0.5),
    A: rng.normals(rank * inDim, 0.3),
    B: rng.normals(outDim * rank, 0.3),
    m: rng.normals(outDim).map((v) => 1 + 0.3 * v),
  };
}

describe('dora reference', () => {
  it('backward with the norm held matches finite differences of the forward with that norm', () => {
    const rng = new Rng(3);
    const rows = 3;
    const p = params(rng, 5, 4, 2);
    const n = doraNormRef(p);
    const x = rng.normals(rows * p.inDim);
    const dy = rng.normals(rows * p.outDim);
    const loss = (q: DoraRefParams, xx: ArrayLike<number>) => dot(doraForwardRef(xx, rows, q, n), dy);
    const g = doraBackwardRef(x, dy, rows, p);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(
      g.dx,
      numericGrad((v) => loss(p, v), x),
      'dx',
      tol,
    );
    expectClose(
      g.dA,
      numericGrad((v) => loss({ ...p, A: v }, x), p.A),
      'dA',
      tol,
    );
    expectClose(
      g.dB,
      numericGrad((v) => loss({ ...p, B: v }, x), p.B),
      'dB',
      tol,
    );
    expectClose(
      g.dm,
      numericGrad((v) => loss({ ...p, m: v }, x), p.m),
      'dm',
      tol,
    );
  });

  it('the norm is the dense row norm of W + s·B·A', () => {
    const p = params(new Rng(4), 3, 2, 1, 2);
    const n = doraNormRef(p);
    for (let j = 0; j < 2; j++) {
      let acc = 0;
      for (let k = 0; k < 3; k++) acc += (p.W[j * 3 + k] + 2 * p.B[j] * p.A[k]) ** 2;
      expect(n[j]).toBeCloseTo(Math.sqrt(acc), 12);
    }
  });
});

describe('dora kernels', () => {
  for (const dtype of ['f32', 'bf16'] as const) {
    for (const conv1d of [false, true]) {
      it(`row norms and g = m / ‖W + s·B·A‖ (W ${dtype}${conv1d ? ', Conv1D layout' : ''}, out 37, in 29, r 3)`, async () => {
        const gpu = await testGpu();
        const rng = new Rng(dtype === 'f32' ? 5 : 6);
        const p = params(rng, 29, 37, 3);
        const stored = conv1d ? transpose(p.W, p.outDim, p.inDim) : Float32Array.from(p.W);
        const shape = conv1d ? [p.inDim, p.outDim] : [p.outDim, p.inDim];
        const W = gpu.tensorFrom(stored, shape, 'W', dtype);
        // The reference sees W as stored (bf16-rounded).
        const back = await gpu.read(W);
        const Wref = conv1d ? transpose(back, p.inDim, p.outDim) : back;
        const q = { ...p, W: Wref };
        const t = (d: ArrayLike<number>, s: number[], l: string) => gpu.tensorFrom(Float32Array.from(d), s, l);
        const A = t(p.A, [3, 29], 'A');
        const B = t(p.B, [37, 3], 'B');
        const m = t(p.m, [37], 'm');
        const wn2 = gpu.tensor([37], 'wn2');
        const wn2Only = gpu.tensor([37], 'wn2Only');
        const E = gpu.tensor([3, 37], 'E');
        const G = gpu.tensor([3, 3], 'G');
        const ng = gpu.tensor([2, 37], 'ng');
        const base = { W, inDim: 29, outDim: 37, conv1d };
        await runOnce(gpu, (list) => {
          doraRowNormsSq(list, { ...base, out: wn2Only });
          doraNorm(list, { ...base, rank: 3, scale: p.scale, A, B, m, wn2, E, G, ng });
        });
        expectClose(await gpu.read(wn2Only), doraRowNormsSqRef(Wref, 37, 29), 'wn2', { atol: 1e-6, rtol: 1e-6 });
        const n = doraNormRef(q);
        const got = await gpu.read(ng);
        expectClose(got.subarray(0, 37), n, 'n', { atol: 1e-6, rtol: 2e-6 });
        expectClose(
          got.subarray(37),
          Array.from(n, (v, j) => p.m[j] / v),
          'g',
          { atol: 1e-6, rtol: 2e-6 },
        );
        // A held n² replaces the live norm.
        const heldValues = rng.uniforms(37, 0.5, 2);
        const held = t(heldValues, [37], 'held');
        await runOnce(gpu, (list) =>
          doraNorm(list, { ...base, rank: 3, scale: p.scale, A, B, m, wn2, E, G, ng, held }),
        );
        expectClose((await gpu.read(ng)).subarray(0, 37), Array.from(heldValues, Math.sqrt), 'held n', {
          atol: 0,
          rtol: 1e-6,
        });
        await gpu.freeTensors([W, A, B, m, wn2, wn2Only, E, G, ng, held]);
      });
    }
  }

  it('combine (beta 0 and 1, a column slice of y) and scale_grad against float64 (rows 13, out 37)', async () => {
    const gpu = await testGpu();
    const rng = new Rng(7);
    const rows = 13;
    const out = 37;
    const ld = 45;
    const off = 5;
    const n = rng.uniforms(out, 0.5, 2);
    const g = rng.normals(out);
    const z = rng.normals(rows * out);
    const y0 = rng.normals(rows * ld + off);
    const dy = rng.normals(rows * ld + off);
    const ngT = gpu.tensorFrom(Float32Array.from([...n, ...g]), [2, out], 'ng');
    const zT = gpu.tensorFrom(z, [rows, out], 'z');
    const y1 = gpu.tensorFrom(y0, [y0.length], 'y1');
    const y2 = gpu.tensorFrom(y0, [y0.length], 'y2');
    const dyT = gpu.tensorFrom(dy, [dy.length], 'dy');
    const dz = gpu.tensor([rows, out], 'dz');
    const dm = gpu.tensorFrom(rng.normals(out), [out], 'dm');
    await runOnce(gpu, (list) => {
      doraCombine(list, { ng: ngT, z: zT, y: { t: y1, ld, offset: off }, rows, outDim: out, beta: 0 });
      doraCombine(list, { ng: ngT, z: zT, y: { t: y2, ld, offset: off }, rows, outDim: out, beta: 1 });
      doraScaleGrad(list, { dy: { t: dyT, ld, offset: off }, z: zT, ng: ngT, dz, dm, rows, outDim: out });
    });
    const want0 = Float64Array.from(y0);
    const want1 = Float64Array.from(y0);
    const wantDz = new Float64Array(rows * out);
    const wantDm = new Float64Array(out);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < out; j++) {
        const k = off + i * ld + j;
        want0[k] = g[j] * z[i * out + j];
        want1[k] = y0[k] + g[j] * z[i * out + j];
        wantDz[i * out + j] = g[j] * dy[k];
        wantDm[j] += (dy[k] * z[i * out + j]) / n[j];
      }
    }
    expectClose(await gpu.read(y1), want0, 'y (beta 0)');
    expectClose(await gpu.read(y2), want1, 'y (beta 1)');
    expectClose(await gpu.read(dz), wantDz, 'dz');
    expectClose(await gpu.read(dm), wantDm, 'dm');
    await gpu.freeTensors([ngT, zT, y1, y2, dyT, dz, dm]);
  });
});
