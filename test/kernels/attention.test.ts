/**
 * The float64 attention reference (src/kernels/attention.ref.ts) that the flash-attention and decode-attention
 * tests compare against: its backward against finite differences, its probabilities a causal (packed) softmax.
 */
import { describe, expect, it } from 'vitest';
import { attentionBackwardRef, attentionForwardRef, type AttentionDims } from '../../src/kernels/attention.ref';
import { Rng } from '../../src/util/random';
import { expectClose, numericGrad } from '../helpers/gpu';

describe('attention reference', () => {
  it('backward matches finite differences of the forward (float64)', () => {
    const rng = new Rng(11);
    const d: AttentionDims = { batch: 2, seq: 4, heads: 4, kvHeads: 2, headDim: 3, scale: 0.7 };
    const rows = d.batch * d.seq;
    const q = Float64Array.from(rng.normals(rows * d.heads * d.headDim));
    const k = Float64Array.from(rng.normals(rows * d.kvHeads * d.headDim));
    const v = Float64Array.from(rng.normals(rows * d.kvHeads * d.headDim));
    const w = Float64Array.from(rng.normals(rows * d.heads * d.headDim));
    // loss = sum(out * w), so dout = w.
    const loss = () => attentionForwardRef(q, k, v, d).out.reduce((s, o, i) => s + o * w[i], 0);
    const grads = attentionBackwardRef(q, k, v, w, d);
    const eps = 1e-6;
    for (const [name, x, g] of [
      ['q', q, grads.dq],
      ['k', k, grads.dk],
      ['v', v, grads.dv],
    ] as const) {
      const fd = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const x0 = x[i];
        x[i] = x0 + eps;
        const up = loss();
        x[i] = x0 - eps;
        const down = loss();
        x[i] = x0;
        fd[i] = (up - down) / (2 * eps);
      }
      expectClose(g, fd, `d${name} vs finite differences`, { atol: 1e-7, rtol: 1e-6 });
    }
  });

  it("packed rows: probabilities before a document's start are zero, the backward still matches finite differences", () => {
    const rng = new Rng(13);
    const positions = [0, 1, 2, 0, 1, 0, 1, 2];
    const d: AttentionDims = { batch: 1, seq: 8, heads: 2, kvHeads: 1, headDim: 3, scale: 0.8, positions };
    const q = Float64Array.from(rng.normals(8 * 6)),
      k = Float64Array.from(rng.normals(8 * 3)),
      v = Float64Array.from(rng.normals(8 * 3));
    const { probs } = attentionForwardRef(q, k, v, d);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 8; i++) {
        const row = (h * 8 + i) * 8;
        let sum = 0;
        for (let j = 0; j < 8; j++) {
          if (j < i - positions[i] || j > i) expect(probs[row + j]).toBe(0);
          else expect(probs[row + j]).toBeGreaterThan(0);
          sum += probs[row + j];
        }
        expect(sum).toBeCloseTo(1, 12);
      }
    }
    const w = Float64Array.from(rng.normals(8 * 6));
    const loss = (qq: ArrayLike<number>, kk: ArrayLike<number>, vv: ArrayLike<number>) =>
      attentionForwardRef(qq, kk, vv, d).out.reduce((s, o, i) => s + o * w[i], 0);
    const grads = attentionBackwardRef(q, k, v, w, d);
    expectClose(
      grads.dq,
      numericGrad((x) => loss(x, k, v), q),
      'dq (packed)',
      { atol: 1e-7, rtol: 1e-6 },
    );
    expectClose(
      grads.dk,
      numericGrad((x) => loss(q, x, v), k),
      'dk (packed)',
      { atol: 1e-7, rtol: 1e-6 },
    );
    expectClose(
      grads.dv,
      numericGrad((x) => loss(q, k, x), v),
      'dv (packed)',
      { atol: 1e-7, rtol: 1e-6 },
    );
  });

  it('probs are a causal softmax: rows sum to 1, zeros above the diagonal', () => {
    const rng = new Rng(12);
    const d: AttentionDims = { batch: 1, seq: 5, heads: 2, kvHeads: 1, headDim: 2, scale: 1 };
    const { probs } = attentionForwardRef(rng.normals(20), rng.normals(10), rng.normals(10), d);
    for (let r = 0; r < d.heads * d.seq; r++) {
      const i = r % d.seq;
      let sum = 0;
      for (let j = 0; j < d.seq; j++) {
        if (j > i) expect(probs[r * d.seq + j]).toBe(0);
        sum += probs[r * d.seq + j];
      }
      expect(sum).toBeCloseTo(1, 12);
    }
  });
});
