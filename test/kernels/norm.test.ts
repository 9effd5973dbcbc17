import { describe, expect, it } from 'vitest';
import type { CommandList, Gpu } from '../../src/gpu/gpu';
import {
  layernormBackward,
  layernormForward,
  layernormParamGrad,
  rmsnormBackward,
  rmsnormForward,
  rmsnormWeightGrad,
  type NormVariant,
} from '../../src/kernels/norm';
import {
  layernormBackwardRef,
  layernormForwardRef,
  layernormParamGradRef,
  rmsnormBackwardRef,
  rmsnormForwardRef,
  rmsnormWeightGradRef,
} from '../../src/kernels/norm.ref';
import { resolveRows, rowStart, type RowView } from '../../src/kernels/views';
import { Rng } from '../../src/util/random';
import { dispatched, dot, expectClose, numericGrad, runOnce, testGpu, testGpuWithoutFeatures } from '../helpers/gpu';

/** Layout of a row view, as plain numbers, to build the tensor behind it. */
interface Layout {
  offset?: number;
  ld?: number;
  groups?: number;
}

/** A GPU tensor of random values behind a row view, and the dense rows it exposes. */
function viewTensor(gpu: Gpu, rng: Rng, layout: Layout, rows: number, width: number, label: string) {
  const r = resolveRows(layout as RowView, width);
  const size = rows === 0 ? r.offset : rowStart(r, width, rows - 1) + width + 3; // + a tail that must stay untouched
  const data = rng.normals(size);
  const t = gpu.tensorFrom(data, [size], label);
  const view: RowView = { t, ...layout };
  const dense = new Float64Array(rows * width);
  for (let i = 0; i < rows; i++) for (let c = 0; c < width; c++) dense[i * width + c] = data[rowStart(r, width, i) + c];
  /** The whole tensor as it should read after writing `rows` (dense) through the view. */
  const expectWritten = (values: ArrayLike<number>, accumulate: boolean) => {
    const want = Float64Array.from(data);
    for (let i = 0; i < rows; i++) {
      for (let c = 0; c < width; c++) {
        const idx = rowStart(r, width, i) + c;
        want[idx] = (accumulate ? data[idx] : 0) + values[i * width + c];
      }
    }
    return want;
  };
  return { t, view, dense, data, expectWritten };
}

interface Case {
  name: string;
  rows: number;
  width: number;
  x: Layout;
  out: Layout;
  dx: Layout;
}

const CASES: Case[] = [
  { name: '1x5 dense', rows: 1, width: 5, x: {}, out: {}, dx: {} },
  { name: '7x16 dense', rows: 7, width: 16, x: {}, out: {}, dx: {} },
  {
    name: '33x67 with ld and offsets',
    rows: 33,
    width: 67,
    x: { offset: 3, ld: 70 },
    out: { offset: 1, ld: 68 },
    dx: { offset: 5, ld: 71 },
  },
  { name: '4x300 (wider than a workgroup)', rows: 4, width: 300, x: {}, out: {}, dx: {} },
  // Per-head slices: 5 tokens x 3 heads of 16 inside rows of 70, as Qwen3's q/k norm reads a fused qkv buffer.
  {
    name: 'per-head groups',
    rows: 15,
    width: 16,
    x: { offset: 6, ld: 70, groups: 3 },
    out: { groups: 3 },
    dx: { offset: 2, ld: 50, groups: 3 },
  },
  { name: '130 wide, 2 groups', rows: 6, width: 130, x: { groups: 2 }, out: { groups: 2, ld: 261 }, dx: { groups: 2 } },
  { name: '5x1 (one column)', rows: 5, width: 1, x: {}, out: { offset: 2 }, dx: {} },
  {
    name: '2x1037 with ld (several strides per thread)',
    rows: 2,
    width: 1037,
    x: { offset: 1, ld: 1040 },
    out: {},
    dx: { ld: 1039 },
  },
];

describe('norm references', () => {
  it('rmsnorm backward matches finite differences', () => {
    const rng = new Rng(11);
    const rows = 3,
      width = 5,
      eps = 1e-5;
    const x = Float64Array.from(rng.normals(rows * width));
    const w = Float64Array.from(rng.normals(width));
    const g = Float64Array.from(rng.normals(rows * width));
    const { rstd } = rmsnormForwardRef(x, w, rows, width, eps);
    const loss = (xx: ArrayLike<number>, ww: ArrayLike<number>) =>
      dot(rmsnormForwardRef(xx, ww, rows, width, eps).out, g);
    expectClose(
      rmsnormBackwardRef(g, x, w, rstd, rows, width),
      numericGrad((xx) => loss(xx, w), x),
      'dx',
      { atol: 1e-7, rtol: 1e-6 },
    );
    expectClose(
      rmsnormWeightGradRef(g, x, rstd, rows, width),
      numericGrad((ww) => loss(x, ww), w),
      'dw',
      { atol: 1e-7, rtol: 1e-6 },
    );
  });

  it('layernorm backward matches finite differences', () => {
    const rng = new Rng(12);
    const rows = 3,
      width = 6,
      eps = 1e-5;
    const x = Float64Array.from(rng.normals(rows * width));
    const w = Float64Array.from(rng.normals(width));
    const b = Float64Array.from(rng.normals(width));
    const g = Float64Array.from(rng.normals(rows * width));
    const { mean, rstd } = layernormForwardRef(x, w, b, rows, width, eps);
    const loss = (xx: ArrayLike<number>, ww: ArrayLike<number>, bb: ArrayLike<number>) =>
      dot(layernormForwardRef(xx, ww, bb, rows, width, eps).out, g);
    const tol = { atol: 1e-7, rtol: 1e-6 };
    expectClose(
      layernormBackwardRef(g, x, w, mean, rstd, rows, width),
      numericGrad((xx) => loss(xx, w, b), x),
      'dx',
      tol,
    );
    const pg = layernormParamGradRef(g, x, mean, rstd, rows, width);
    expectClose(
      pg.dweight,
      numericGrad((ww) => loss(x, ww, b), w),
      'dw',
      tol,
    );
    expectClose(
      pg.dbias,
      numericGrad((bb) => loss(x, w, bb), b),
      'db',
      tol,
    );
  });
});

// Both kernel sets run on SwiftShader, whichever one the adapter would pick by default. The workgroup kernels
// run twice: with subgroup reductions (testGpu has subgroups) and with the shared-memory trees.
const CONFIGS: { name: string; variant: NormVariant; device: () => Promise<Gpu> }[] = [
  { name: 'workgroup kernels, subgroups', variant: 'workgroup', device: testGpu },
  { name: 'workgroup kernels, no subgroups', variant: 'workgroup', device: testGpuWithoutFeatures },
  { name: 'thread kernels', variant: 'thread', device: testGpu },
];

for (const { name, variant, device } of CONFIGS)
  describe(`rmsnorm (${name})`, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        const gpu = await device();
        const rng = new Rng(c.rows * 1000 + c.width);
        const { rows, width } = c;
        const eps = 1e-6;
        const x = viewTensor(gpu, rng, c.x, rows, width, 'x');
        const out = viewTensor(gpu, rng, c.out, rows, width, 'out');
        const dout = viewTensor(gpu, rng, c.x, rows, width, 'dout'); // same layout as x, as in a model
        const w = rng.normals(width);
        const weight = gpu.tensorFrom(w, [width], 'weight');
        const rstd = gpu.tensor([rows], 'rstd');
        await runOnce(gpu, (l) =>
          rmsnormForward(l, { x: x.view, out: out.view, weight, rstd, rows, width, eps, variant }),
        );
        const ref = rmsnormForwardRef(x.dense, w, rows, width, eps);
        expectClose(await gpu.read(out.t), out.expectWritten(ref.out, false), 'out');
        expectClose(await gpu.read(rstd), ref.rstd, 'rstd');

        for (const accumulate of [false, true]) {
          const dx = viewTensor(gpu, rng, c.dx, rows, width, 'dx');
          const dw0 = rng.normals(width);
          const dweight = gpu.tensorFrom(dw0, [width], 'dweight');
          await runOnce(gpu, (l) => {
            rmsnormBackward(l, {
              dout: dout.view,
              x: x.view,
              weight,
              rstd,
              dx: dx.view,
              rows,
              width,
              accumulate,
              variant,
            });
            rmsnormWeightGrad(l, { dout: dout.view, x: x.view, rstd, dweight, rows, width, accumulate, variant });
          });
          const wantDx = rmsnormBackwardRef(dout.dense, x.dense, w, ref.rstd, rows, width);
          expectClose(await gpu.read(dx.t), dx.expectWritten(wantDx, accumulate), `dx accumulate=${accumulate}`);
          const wantDw = rmsnormWeightGradRef(dout.dense, x.dense, ref.rstd, rows, width);
          if (accumulate) wantDw.forEach((v, i) => (wantDw[i] = v + dw0[i]));
          expectClose(await gpu.read(dweight), wantDw, `dweight accumulate=${accumulate}`);
        }
      });
    }
  });

for (const { name, variant, device } of CONFIGS)
  describe(`layernorm (${name})`, () => {
    for (const c of CASES) {
      it(c.name, async () => {
        const gpu = await device();
        const rng = new Rng(c.rows * 1000 + c.width + 1);
        const { rows, width } = c;
        const eps = 1e-5;
        const x = viewTensor(gpu, rng, c.x, rows, width, 'x');
        const out = viewTensor(gpu, rng, c.out, rows, width, 'out');
        const dout = viewTensor(gpu, rng, c.out, rows, width, 'dout');
        const w = rng.normals(width);
        const b = rng.normals(width);
        const weight = gpu.tensorFrom(w, [width], 'weight');
        const bias = gpu.tensorFrom(b, [width], 'bias');
        const mean = gpu.tensor([rows], 'mean');
        const rstd = gpu.tensor([rows], 'rstd');
        await runOnce(gpu, (l) =>
          layernormForward(l, { x: x.view, out: out.view, weight, bias, mean, rstd, rows, width, eps, variant }),
        );
        const ref = layernormForwardRef(x.dense, w, b, rows, width, eps);
        expectClose(await gpu.read(out.t), out.expectWritten(ref.out, false), 'out');
        expectClose(await gpu.read(mean), ref.mean, 'mean');
        expectClose(await gpu.read(rstd), ref.rstd, 'rstd');

        for (const accumulate of [false, true]) {
          const dx = viewTensor(gpu, rng, c.dx, rows, width, 'dx');
          const dw0 = rng.normals(width);
          const db0 = rng.normals(width);
          const dweight = gpu.tensorFrom(dw0, [width], 'dweight');
          const dbias = gpu.tensorFrom(db0, [width], 'dbias');
          await runOnce(gpu, (l) => {
            layernormBackward(l, {
              dout: dout.view,
              x: x.view,
              weight,
              mean,
              rstd,
              dx: dx.view,
              rows,
              width,
              accumulate,
              variant,
            });
            layernormParamGrad(l, {
              dout: dout.view,
              x: x.view,
              mean,
              rstd,
              dweight,
              dbias,
              rows,
              width,
              accumulate,
              variant,
            });
          });
          const wantDx = layernormBackwardRef(dout.dense, x.dense, w, ref.mean, ref.rstd, rows, width);
          expectClose(await gpu.read(dx.t), dx.expectWritten(wantDx, accumulate), `dx accumulate=${accumulate}`);
          const pg = layernormParamGradRef(dout.dense, x.dense, ref.mean, ref.rstd, rows, width);
          if (accumulate) {
            pg.dweight.forEach((v, i) => (pg.dweight[i] = v + dw0[i]));
            pg.dbias.forEach((v, i) => (pg.dbias[i] = v + db0[i]));
          }
          expectClose(await gpu.read(dweight), pg.dweight, `dweight accumulate=${accumulate}`);
          expectClose(await gpu.read(dbias), pg.dbias, `dbias accumulate=${accumulate}`);
        }
      });
    }

    it('many rows: the gradient kernels reduce over 300 rows', async () => {
      const gpu = await device();
      const rng = new Rng(5);
      const rows = 300,
        width = 37,
        eps = 1e-5;
      const xs = rng.normals(rows * width);
      const gs = rng.normals(rows * width);
      const w = rng.normals(width);
      const x = gpu.tensorFrom(xs, [rows * width], 'x');
      const dout = gpu.tensorFrom(gs, [rows * width], 'dout');
      const out = gpu.tensor([rows * width], 'out');
      const weight = gpu.tensorFrom(w, [width], 'weight');
      const bias = gpu.tensorFrom(rng.normals(width), [width], 'bias');
      const mean = gpu.tensor([rows], 'mean');
      const rstd = gpu.tensor([rows], 'rstd');
      const dweight = gpu.tensor([width], 'dweight');
      const dbias = gpu.tensor([width], 'dbias');
      await runOnce(gpu, (l) => {
        layernormForward(l, { x: { t: x }, out: { t: out }, weight, bias, mean, rstd, rows, width, eps, variant });
        layernormParamGrad(l, {
          dout: { t: dout },
          x: { t: x },
          mean,
          rstd,
          dweight,
          dbias,
          rows,
          width,
          accumulate: false,
          variant,
        });
      });
      const ref = layernormForwardRef(xs, w, new Float64Array(width), rows, width, eps);
      const pg = layernormParamGradRef(gs, xs, ref.mean, ref.rstd, rows, width);
      expectClose(await gpu.read(dweight), pg.dweight, 'dweight', { atol: 1e-4, rtol: 1e-4 });
      expectClose(await gpu.read(dbias), pg.dbias, 'dbias', { atol: 1e-4, rtol: 1e-4 });
    });
  });

describe('norm subgroup form', () => {
  // testGpu has subgroups on every machine these tests run on (SwiftShader included): were it to lose them,
  // the two workgroup configurations above would both test the tree.
  it('workgroup row kernels compile from norm+subgroups on a device with subgroups, from norm without', async () => {
    for (const [device, want] of [
      [testGpu, 'norm+subgroups'],
      [testGpuWithoutFeatures, 'norm'],
    ] as const) {
      const gpu = await device();
      const x = gpu.tensor([6], 'x');
      const weight = gpu.tensor([3], 'w');
      const rstd = gpu.tensor([2], 'rstd');
      const record = (variant: NormVariant) => (l: CommandList) =>
        rmsnormForward(l, {
          x: { t: x },
          out: { t: gpu.tensor([6], 'o') },
          weight,
          rstd,
          rows: 2,
          width: 3,
          eps: 1e-5,
          variant,
        });
      expect(await dispatched(gpu, record('workgroup'))).toEqual([`${want}.rmsnorm_forward`]);
      expect(await dispatched(gpu, record('thread'))).toEqual(['norm.rmsnorm_forward_thread']);
    }
  });
});

describe('norm argument checks', () => {
  it('rejects mismatched sizes and aliased outputs with errors naming the tensor', async () => {
    const gpu = await testGpu();
    const x = gpu.tensor([20], 'hidden');
    const small = gpu.tensor([3], 'ln.weight');
    const rstd = gpu.tensor([4], 'rstd');
    const list = gpu.list('bad');
    expect(() =>
      rmsnormForward(list, {
        x: { t: x },
        out: { t: gpu.tensor([20], 'o') },
        weight: small,
        rstd,
        rows: 4,
        width: 5,
        eps: 1e-5,
      }),
    ).toThrow(/weight \(ln\.weight\)/);
    expect(() =>
      rmsnormForward(list, {
        x: { t: x },
        out: { t: gpu.tensor([19], 'o') },
        weight: gpu.tensor([5], 'w'),
        rstd,
        rows: 4,
        width: 5,
        eps: 1e-5,
      }),
    ).toThrow(/out \(o\)/);
    expect(() =>
      rmsnormForward(list, {
        x: { t: x },
        out: { t: x },
        weight: gpu.tensor([5], 'w'),
        rstd,
        rows: 4,
        width: 5,
        eps: 1e-5,
      }),
    ).toThrow(/same tensor/);
    expect(() =>
      rmsnormForward(list, {
        x: { t: x, groups: 2, ld: 6 },
        out: { t: gpu.tensor([40], 'o') },
        weight: gpu.tensor([5], 'w'),
        rstd,
        rows: 4,
        width: 5,
        eps: 1e-5,
      }),
    ).toThrow(/overlap/);
  });
});

describe('rmsnorm grid folding', () => {
  // One workgroup per row folds past 65,535 rows; one thread per row (64 per workgroup) past 65,535 x 64.
  for (const [variant, rows] of [
    ['workgroup', 65_600],
    ['thread', 65_535 * 64 + 70],
  ] as const) {
    it(`${variant} kernels: more rows than one grid dimension holds (${rows} rows)`, async () => {
      const gpu = await testGpu();
      const rng = new Rng(8);
      const width = variant === 'workgroup' ? 3 : 1;
      const xs = rng.normals(rows * width);
      const w = rng.normals(width);
      const x = gpu.tensorFrom(xs, [rows * width], 'x');
      const out = gpu.tensor([rows * width], 'out');
      const weight = gpu.tensorFrom(w, [width], 'weight');
      const rstd = gpu.tensor([rows], 'rstd');
      await runOnce(gpu, (l) =>
        rmsnormForward(l, { x: { t: x }, out: { t: out }, weight, rstd, rows, width, eps: 1e-6, variant }),
      );
      const ref = rmsnormForwardRef(xs, w, rows, width, 1e-6);
      expectClose(await gpu.read(out), ref.out, 'out');
      expectClose(await gpu.read(rstd), ref.rstd, 'rstd', { atol: 1e-5, rtol: 2e-4 });
      for (const t of [x, out, weight, rstd]) t.buffer.destroy();
    });
  }
});
