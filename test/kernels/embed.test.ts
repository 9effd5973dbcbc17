import { describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/gpu/gpu';
import { embedBackward, embedForward, positionEmbedBackward } from '../../src/kernels/embed';
import { embedBackwardRef, embedForwardRef } from '../../src/kernels/embed.ref';
import { Rng } from '../../src/util/random';
import { roundToHalf } from '../../src/gpu/half';
import { dot, expectClose, numericGrad, runOnce, testGpu } from '../helpers/gpu';

function ids(gpu: Gpu, values: number[], label: string) {
  const t = gpu.tensor([values.length], label, 'u32');
  gpu.upload(t, Uint32Array.from(values));
  return t;
}

const plus = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);

interface Case {
  name: string;
  tokens: number[];
  width: number;
  vocab: number;
  /** With positions: GPT-2 learned position embeddings. */
  positions?: number[];
  maxPos?: number;
}

const CASES: Case[] = [
  { name: '1 token, width 1', tokens: [0], width: 1, vocab: 1 },
  // Repeated ids (the scatter-add must sum them) and an id past the vocabulary (must read zeros).
  { name: 'repeats and an out-of-range id', tokens: [1, 3, 1, 1, 0, 3, 9], width: 5, vocab: 4 },
  { name: 'width 67 (two column blocks)', tokens: [2, 2, 0, 4, 2, 1000000, 1, 2, 3], width: 67, vocab: 5 },
  {
    name: 'GPT-2 positions, packed, 33 rows x 130',
    tokens: Array.from({ length: 33 }, (_, i) => (i * 5) % 11),
    positions: Array.from({ length: 33 }, (_, i) => (i % 6) + (i === 20 ? 100 : 0)), // one position past the table
    width: 130,
    vocab: 11,
    maxPos: 7,
  },
];

describe('embed', () => {
  it('reference backward matches finite differences of the forward', () => {
    const rng = new Rng(2);
    const rows = 5,
      width = 3,
      vocab = 4,
      maxPos = 3;
    const tokens = [1, 3, 1, 7, 0];
    const positions = [0, 1, 2, 0, 1];
    const table = Float64Array.from(rng.normals(vocab * width));
    const posTable = Float64Array.from(rng.normals(maxPos * width));
    const g = rng.normals(rows * width);
    const tol = { atol: 1e-8, rtol: 1e-7 };
    const byTable = (t: Float64Array) =>
      dot(embedForwardRef(tokens, t, rows, width, vocab, positions, posTable, maxPos), g);
    expectClose(embedBackwardRef(tokens, g, rows, width, vocab), numericGrad(byTable, table), 'dtable', tol);
    const byPos = (p: Float64Array) => dot(embedForwardRef(tokens, table, rows, width, vocab, positions, p, maxPos), g);
    expectClose(embedBackwardRef(positions, g, rows, width, maxPos), numericGrad(byPos, posTable), 'dposTable', tol);
  });

  for (const c of CASES) {
    it(c.name, async () => {
      const gpu = await testGpu();
      const rng = new Rng(c.width * 7 + c.vocab);
      const rows = c.tokens.length;
      const { width, vocab } = c;
      const maxPos = c.maxPos ?? 0;
      const tableData = rng.normals(vocab * width);
      const posData = rng.normals(maxPos * width);
      const tokens = ids(gpu, c.tokens, 'tokens');
      const positions = c.positions ? ids(gpu, c.positions, 'positions') : undefined;
      const table = gpu.tensorFrom(tableData, [vocab, width], 'table');
      const posTable = c.positions ? gpu.tensorFrom(posData, [maxPos, width], 'posTable') : undefined;
      const out = gpu.tensorFrom(rng.normals(rows * width), [rows, width], 'out'); // garbage: must be overwritten
      await runOnce(gpu, (l) => embedForward(l, { tokens, table, out, rows, width, vocab, positions, posTable }));
      const want = embedForwardRef(c.tokens, tableData, rows, width, vocab, c.positions, posData, maxPos);
      expectClose(await gpu.read(out), want, 'out', { atol: 0, rtol: 1e-6 });

      const doutData = rng.normals(rows * width);
      const dout = gpu.tensorFrom(doutData, [rows, width], 'dout');
      for (const accumulate of [false, true]) {
        const d0 = rng.normals(vocab * width);
        const p0 = rng.normals(maxPos * width);
        const dtable = gpu.tensorFrom(d0, [vocab, width], 'dtable');
        const dpos = c.positions ? gpu.tensorFrom(p0, [maxPos, width], 'dposTable') : undefined;
        await runOnce(gpu, (l) => {
          embedBackward(l, { tokens, dout, dtable, rows, width, vocab, accumulate });
          if (positions && dpos)
            positionEmbedBackward(l, { positions, dout, dtable: dpos, rows, width, maxPos, accumulate });
        });
        const wantTable = embedBackwardRef(c.tokens, doutData, rows, width, vocab);
        expectClose(
          await gpu.read(dtable),
          accumulate ? plus(wantTable, d0) : wantTable,
          `dtable accumulate=${accumulate}`,
        );
        if (c.positions && dpos) {
          const wantPos = embedBackwardRef(c.positions, doutData, rows, width, maxPos);
          expectClose(
            await gpu.read(dpos),
            accumulate ? plus(wantPos, p0) : wantPos,
            `dposTable accumulate=${accumulate}`,
          );
        }
      }
    });
  }

  // A frozen token table stored as packed 16-bit floats (odd widths: rows start in either half of a word).
  for (const dtype of ['f16', 'bf16'] as const) {
    for (const c of CASES.slice(1)) {
      it(`${c.name}: table stored as ${dtype}`, async () => {
        const gpu = await testGpu();
        const rng = new Rng(c.width * 3 + c.vocab);
        const rows = c.tokens.length;
        const { width, vocab } = c;
        const maxPos = c.maxPos ?? 0;
        const tableData = rng.normals(vocab * width);
        const posData = rng.normals(maxPos * width);
        const table = gpu.tensorFrom(tableData, [vocab, width], 'table', dtype);
        const positions = c.positions ? ids(gpu, c.positions, 'positions') : undefined;
        const posTable = c.positions ? gpu.tensorFrom(posData, [maxPos, width], 'posTable') : undefined;
        const out = gpu.tensor([rows, width], 'out');
        await runOnce(gpu, (l) =>
          embedForward(l, {
            tokens: ids(gpu, c.tokens, 'tokens'),
            table,
            out,
            rows,
            width,
            vocab,
            positions,
            posTable,
          }),
        );
        const want = embedForwardRef(
          c.tokens,
          roundToHalf(tableData, dtype),
          rows,
          width,
          vocab,
          c.positions,
          posData,
          maxPos,
        );
        expectClose(await gpu.read(out), want, 'out', { atol: 0, rtol: 1e-6 });
      });
    }
  }

  it('rejects bad arguments with errors naming the tensor', async () => {
    const gpu = await testGpu();
    const list = gpu.list('bad');
    const tokens = ids(gpu, [0, 1, 2], 'tok');
    const table = gpu.tensor([4, 8], 'wte');
    const out = gpu.tensor([3, 8], 'h');
    expect(() =>
      embedForward(list, { tokens: out, table, out: gpu.tensor([3, 8], 'o'), rows: 3, width: 8, vocab: 4 }),
    ).toThrow(/tokens \(h\).*u32/);
    expect(() => embedForward(list, { tokens, table, out, rows: 3, width: 8, vocab: 5 })).toThrow(/table \(wte\)/);
    expect(() => embedForward(list, { tokens, table, out, rows: 3, width: 8, vocab: 4, posTable: table })).toThrow(
      /positions and posTable/,
    );
    expect(() =>
      embedBackward(list, { tokens, dout: out, dtable: out, rows: 3, width: 8, vocab: 3, accumulate: true }),
    ).toThrow(/same tensor/);
  });
});
