/** GeLoRA / TwoNN invariants (docs/METHODS.md, Tests that pin the math) and the hidden-state collection on tiny random models. */
import { describe, expect, it } from 'vitest';
import { analyzeGelora } from '../../src/adapters/gelora/analyze';
import { collectHiddenStates, pickPositions } from '../../src/adapters/gelora/collect';
import {
  GELORA_DEFAULTS,
  geloraScale,
  validateGeloraConfig,
  type GeloraConfig,
} from '../../src/adapters/gelora/config';
import { fitGeloraBudget, geloraRanks } from '../../src/adapters/gelora/ranks';
import { estimateIntrinsicDimension, twoNNFit } from '../../src/adapters/gelora/twonn';
import { packBatches, padBatches, type Batch } from '../../src/data/batches';
import type { Example } from '../../src/data/types';
import { twoNNRef } from '../../src/kernels/twonn.ref';
import { allLinearTargets } from '../../src/model/layout';
import { TransformerGraph } from '../../src/model/transformer';
import { ModelWeights } from '../../src/model/weights';
import { Rng } from '../../src/util/random';
import { testGpu } from '../helpers/gpu';
import { randomSource, tinySpec } from '../helpers/tiny-models';

// ------------------------------------------------------------------------------------------ helpers

/** A random D x D orthogonal matrix (Gram-Schmidt on Gaussian columns), row-major, float64. */
function randomOrthogonal(rng: Rng, D: number): Float64Array {
  const q = Float64Array.from(rng.normals(D * D)); // row k = k-th basis vector
  for (let k = 0; k < D; k++) {
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let c = 0; c < D; c++) dot += q[k * D + c] * q[j * D + c];
      for (let c = 0; c < D; c++) q[k * D + c] -= dot * q[j * D + c];
    }
    let norm = 0;
    for (let c = 0; c < D; c++) norm += q[k * D + c] ** 2;
    for (let c = 0; c < D; c++) q[k * D + c] /= Math.sqrt(norm);
  }
  return q;
}

/** n standard-Gaussian points of a random d-dimensional linear subspace of R^D, as f32 [n, D]. */
function subspacePoints(seed: number, n: number, D: number, d: number): Float32Array {
  const rng = new Rng(seed);
  const basis = randomOrthogonal(rng, D); // its first d rows span the subspace
  const out = new Float32Array(n * D);
  for (let i = 0; i < n; i++) {
    const z = rng.normals(d);
    for (let k = 0; k < d; k++) for (let c = 0; c < D; c++) out[i * D + c] += z[k] * basis[k * D + c];
  }
  return out;
}

/** Each row mapped by x -> f(x) (row in, row out, float64). */
function mapRows(points: Float32Array, D: number, f: (row: Float64Array) => Float64Array): Float32Array {
  const out = new Float32Array(points.length);
  for (let i = 0; i < points.length / D; i++) out.set(f(Float64Array.from(points.subarray(i * D, (i + 1) * D))), i * D);
  return out;
}

const N = 2000;
const D = 50;

// ------------------------------------------------------------------------------------------ TwoNN

describe('TwoNN intrinsic dimension (GPU path)', () => {
  const base = subspacePoints(11, N, D, 5);
  let baseDim = 0;

  // One draw at N = 2000 scatters by about 1%, 3.5% and 2.8% (d = 2, 5, 10; 40 float64 draws), and d = 10
  // sits about 3.5% low on average (TwoNN's known low bias): so the mean of 5 draws is checked.
  for (const d of [2, 5, 10]) {
    it(`Gaussian points in a random ${d}-dim subspace of R^${D}, N = ${N}: mean of 5 draws within 5%`, async () => {
      const gpu = await testGpu();
      const estimates: number[] = [];
      for (let draw = 0; draw < 5; draw++) {
        const points = d === 5 && draw === 0 ? base : subspacePoints(100 * d + draw, N, D, d);
        const est = await estimateIntrinsicDimension(gpu, points, N, D);
        expect(est).toMatchObject({ used: N, duplicatesRemoved: 0, skipped: 0 });
        estimates.push(est.dimension);
      }
      if (d === 5) baseDim = estimates[0];
      const mean = estimates.reduce((a, b) => a + b) / estimates.length;
      console.log(`TwoNN d=${d}: ${estimates.map((e) => e.toFixed(3)).join(', ')}; mean ${mean.toFixed(3)}`);
      expect(Math.abs(mean - d) / d).toBeLessThanOrEqual(0.05);
    });
  }

  it('agrees with the float64 reference estimator on the same points', async () => {
    const gpu = await testGpu();
    for (const [seed, d] of [
      [21, 3],
      [22, 8],
    ]) {
      const points = subspacePoints(seed, N, D, d);
      const gpuDim = (await estimateIntrinsicDimension(gpu, points, N, D)).dimension;
      const refDim = twoNNRef(points, N, D);
      expect(Math.abs(gpuDim - refDim) / refDim, `d=${d}: GPU ${gpuDim} vs float64 ${refDim}`).toBeLessThan(1e-4);
    }
  });

  it('is unchanged by scaling, rotation and translation', async () => {
    const gpu = await testGpu();
    const est = async (p: Float32Array) => (await estimateIntrinsicDimension(gpu, p, N, D)).dimension;
    baseDim ||= await est(base);
    const rng = new Rng(3);
    const Q = randomOrthogonal(rng, D);
    const shift = Float64Array.from(rng.normals(D, 5));
    const transforms: Record<string, (x: Float64Array) => Float64Array> = {
      'scale 4 (exact in fp32)': (x) => x.map((v) => 4 * v),
      'scale 3.7': (x) => x.map((v) => 3.7 * v),
      'scale 1e-3': (x) => x.map((v) => 1e-3 * v),
      rotation: (x) => Q.subarray(0, D).map((_, r) => x.reduce((s, v, c) => s + Q[r * D + c] * v, 0)),
      translation: (x) => x.map((v, c) => v + shift[c]),
    };
    for (const [name, f] of Object.entries(transforms)) {
      const d = await est(mapRows(base, D, f));
      expect(Math.abs(d - baseDim) / baseDim, `${name}: ${d} vs ${baseDim}`).toBeLessThan(
        name.includes('exact') ? 1e-12 : 1e-5,
      );
    }
  });

  it('exact duplicates are removed: no inf/NaN, same dimension', async () => {
    const gpu = await testGpu();
    const n = 1500;
    const distinct = base.subarray(0, n * D);
    const baseEst = await estimateIntrinsicDimension(gpu, distinct, n, D);
    // 500 copies (some rows copied several times), each inserted after its original.
    const rng = new Rng(9);
    const copies = new Map<number, number>();
    for (let k = 0; k < 500; k++) {
      const r = rng.int(n);
      copies.set(r, (copies.get(r) ?? 0) + 1);
    }
    const rows: number[] = [];
    for (let r = 0; r < n; r++) for (let c = 0; c <= (copies.get(r) ?? 0); c++) rows.push(r);
    const withCopies = new Float32Array(rows.length * D);
    rows.forEach((r, i) => withCopies.set(distinct.subarray(r * D, (r + 1) * D), i * D));
    const est = await estimateIntrinsicDimension(gpu, withCopies, rows.length, D);
    expect(Number.isFinite(est.dimension)).toBe(true);
    expect(est).toMatchObject({ used: n, duplicatesRemoved: 500, skipped: 0 });
    // The same distinct rows in the same order: the same numbers, bit for bit.
    expect(est.dimension).toBe(baseEst.dimension);
  });

  it('the CPU fit skips points whose r1 is 0 or whose ratio is not finite', () => {
    const pairs = [0, 1, 1, 2, 2, 3, 3, 5, 1, Infinity, NaN, 1, 4, 9, 1, 1.5];
    const fit = twoNNFit(pairs);
    expect(fit.skipped).toBe(3);
    expect(fit.used).toBe(5);
    expect(Number.isFinite(fit.dimension)).toBe(true);
    // The same five usable pairs alone give the same fit.
    expect(twoNNFit([1, 2, 2, 3, 3, 5, 4, 9, 1, 1.5]).dimension).toBe(fit.dimension);
  });

  it('rejects fewer than 3 distinct points and non-finite coordinates', async () => {
    const gpu = await testGpu();
    const twoDistinct = Float32Array.from([1, 2, 1, 2, 3, 4, 1, 2]);
    await expect(estimateIntrinsicDimension(gpu, twoDistinct, 4, 2)).rejects.toThrow(
      /at least 3 distinct points, got 2/,
    );
    await expect(estimateIntrinsicDimension(gpu, Float32Array.from([1, 2, NaN, 0, 5, 6]), 3, 2)).rejects.toThrow(
      /point 1 has a non-finite/,
    );
    await expect(estimateIntrinsicDimension(gpu, new Float32Array(5), 3, 2)).rejects.toThrow(/5 values for 3 points/);
  });
});

// ------------------------------------------------------------------------------------------ ranks

describe('GeLoRA ranks', () => {
  it('d = [5, 9, 8, 12] -> r = [5, 1, 5]', () => {
    expect(geloraRanks([5, 9, 8, 12])).toEqual([5, 1, 5]);
    expect(geloraRanks([5, 9, 8, 12], 'round')).toEqual([5, 1, 5]);
  });

  it('constant d gives rank 1 everywhere', () => {
    expect(geloraRanks([7.3, 7.3, 7.3, 7.3])).toEqual([1, 1, 1]);
  });

  it('ceil vs round on fractional growth', () => {
    expect(geloraRanks([1, 2.4, 4.0, 3.1])).toEqual([3, 3, 1]);
    expect(geloraRanks([1, 2.4, 4.0, 3.1], 'round')).toEqual([2, 3, 1]);
  });

  it('ranks are integers >= 1 for any dimensions', () => {
    const rng = new Rng(1);
    for (let t = 0; t < 200; t++) {
      const dims = Array.from({ length: 2 + rng.int(10) }, () => rng.uniform(0, 30));
      for (const rounding of ['ceil', 'round'] as const) {
        const r = geloraRanks(dims, rounding);
        expect(r.length).toBe(dims.length - 1);
        for (const x of r) expect(Number.isInteger(x) && x >= 1).toBe(true);
      }
    }
    expect(() => geloraRanks([3])).toThrow(/at least 2/);
    expect(() => geloraRanks([3, NaN])).toThrow(/stream 1 is not finite/);
  });
});

describe('GeLoRA budget fit', () => {
  const total = (ranks: number[], widths: number[]) => ranks.reduce((s, r, l) => s + r * widths[l], 0);

  it('never exceeds the budget, keeps 1 <= r <= rMax, and no feasible factor gives more parameters', () => {
    const rng = new Rng(2);
    for (let t = 0; t < 100; t++) {
      const L = 1 + rng.int(8);
      const ranks = Array.from({ length: L }, () => 1 + rng.int(6));
      const widths = Array.from({ length: L }, () => 16 * (1 + rng.int(20)));
      const rMax = 1 + rng.int(40);
      const budget = Math.floor(rng.uniform(0.5, 3) * total(ranks, widths) * (1 + rng.int(8)));
      const fit = fitGeloraBudget(ranks, widths, budget, rMax);
      expect(fit.params).toBe(total(fit.ranks, widths));
      for (const r of fit.ranks) expect(r >= 1 && r <= rMax).toBe(true);
      if (!fit.withinBudget) continue;
      expect(fit.params).toBeLessThanOrEqual(budget);
      // Largest c: scanning factors finely finds no feasible one with a bigger parameter count.
      for (let c = 0; c <= (rMax + 1) / Math.min(...ranks); c += 0.01) {
        const p = total(
          ranks.map((r) => Math.min(Math.max(Math.round(c * r), 1), rMax)),
          widths,
        );
        if (p <= budget) expect(p).toBeLessThanOrEqual(fit.params);
      }
    }
  });

  it('equal raw ranks fitted to a rank-8 LoRA budget give rank 8 everywhere', () => {
    const widths = [48, 48, 48];
    const fit = fitGeloraBudget([1, 1, 1], widths, 8 * 144, 32);
    expect(fit.ranks).toEqual([8, 8, 8]);
    expect(fit.params).toBe(8 * 144);
  });

  it('keeps proportions and caps at rMax', () => {
    expect(fitGeloraBudget([1, 2, 4], [10, 10, 10], 140, 32).ranks).toEqual([2, 4, 8]);
    expect(fitGeloraBudget([1, 2, 4], [10, 10, 10], 10_000, 6).ranks).toEqual([6, 6, 6]);
  });

  it('a budget below rank 1 everywhere gives all 1 and says so', () => {
    const fit = fitGeloraBudget([3, 1, 5], [100, 100, 100], 250, 16);
    expect(fit).toMatchObject({ ranks: [1, 1, 1], withinBudget: false, params: 300 });
  });
});

// ------------------------------------------------------------------------------------------ config

describe('GeLoRA config', () => {
  const ok: GeloraConfig = { ...GELORA_DEFAULTS, rankRef: 8, alpha: 16, targets: ['q_proj'] };

  it('accepts the defaults and warns on few samples', () => {
    expect(validateGeloraConfig(ok)).toEqual([]);
    expect(validateGeloraConfig({ ...ok, samples: 100 }).join()).toMatch(/GeLoRA samples \(100\) is below 512/);
  });

  it('refuses what would break the analysis (options are checked and worded by the registry)', () => {
    expect(() => validateGeloraConfig({ ...ok, samples: 2 })).toThrow(
      'GeLoRA samples must be an integer from 3 to 4096 (got 2)',
    );
    expect(() => validateGeloraConfig({ ...ok, targets: [] })).toThrow('GeLoRA needs at least one target module');
  });

  it('scale: alpha / r_ref (uniform) or 32 (paper)', () => {
    expect(geloraScale(ok)).toBe(2);
    expect(geloraScale({ ...ok, scaleMode: 'paper32' })).toBe(32);
  });
});

// ------------------------------------------------------------------------------------------ hidden states

/** Random examples of the given lengths (token ids 1..vocab-1; 0 is the pad id). */
function examples(rng: Rng, vocab: number, lengths: number[]): Example[] {
  return lengths.map((n) => {
    const ids = Array.from({ length: n }, () => 1 + rng.int(vocab - 1));
    return { inputIds: ids, labels: ids.slice() };
  });
}

describe('GeLoRA hidden-state sampling', () => {
  it('pickPositions: never position 0 or padding, at most perSequence per sequence', () => {
    // Row 0: two packed documents (positions 0..4, 0..2); row 1: 3 tokens then padding (token 0, target -100).
    const batch: Batch = {
      batch: 2,
      seq: 8,
      supervised: 0,
      tokens: Uint32Array.from([5, 6, 7, 8, 9, 10, 11, 12, 5, 6, 7, 0, 0, 0, 0, 0]),
      targets: Int32Array.from([6, 7, 8, 9, -100, 11, 12, -100, 6, 7, -100, -100, -100, -100, -100, -100]),
      positions: Uint32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4, 5, 6, 7]),
    };
    expect(pickPositions(batch, 8, new Rng(1), 0)).toEqual([1, 2, 3, 4, 6, 7, 9, 10]);
    // Without a pad id the trailing -100 run is padding, including row 1's last real token.
    expect(pickPositions(batch, 8, new Rng(1))).toEqual([1, 2, 3, 4, 6, 9]);
    const two = pickPositions(batch, 2, new Rng(1), 0);
    expect(two.filter((i) => i < 5).length).toBe(2);
    expect(two.filter((i) => i >= 5 && i < 8)).toEqual([6, 7]);
    expect(two.filter((i) => i >= 8)).toEqual([9, 10]);
    expect(pickPositions(batch, 2, new Rng(1), 0)).toEqual(two); // seeded
  });

  it('tiny llama: same tokens in every layer, row k of h_0 is the embedding of the picked token', async () => {
    const gpu = await testGpu();
    const spec = tinySpec('llama');
    const source = randomSource(spec, 4);
    const weights = await ModelWeights.upload(gpu, spec, source);
    const rng = new Rng(6);
    const batches = [
      ...padBatches(examples(rng, spec.vocabSize, [5, 12, 1, 9, 16, 3]), { batch: 2, seq: 12, padId: 0 }),
      ...packBatches(examples(rng, spec.vocabSize, [7, 4, 10, 6, 9]), {
        batch: 2,
        seq: 12,
        padId: 0,
        separatorId: null,
      }),
    ];
    const graph = new TransformerGraph(gpu, weights, { batch: 2, seq: 12, train: 'none' });
    const samples = 24; // of 30 candidates: the last batch is cut short
    const states = await collectHiddenStates(gpu, graph, batches, { samples, perSequence: 3, seed: 7, padId: 0 });
    expect(states.count).toBe(samples);
    expect(states.layers.length).toBe(spec.layers + 1);
    for (const h of states.layers) expect(h.length).toBe(samples * spec.hidden);

    const embed = await source.load('model.embed_tokens.weight');
    const perSequence = new Map<string, number>();
    for (const [k, { batch: b, index }] of states.picks.entries()) {
      const batch = batches[b];
      expect(batch.positions[index], 'never position 0').toBeGreaterThan(0);
      expect(batch.tokens[index], 'never padding').not.toBe(0);
      const token = batch.tokens[index];
      expect(Array.from(states.layers[0].subarray(k * spec.hidden, (k + 1) * spec.hidden))).toEqual(
        Array.from(embed.subarray(token * spec.hidden, (token + 1) * spec.hidden)),
      );
      const seqKey = `${b}:${Math.floor(index / batch.seq)}:${index - batch.positions[index]}`;
      perSequence.set(seqKey, (perSequence.get(seqKey) ?? 0) + 1);
    }
    for (const n of perSequence.values()) expect(n).toBeLessThanOrEqual(3);

    // Every layer's row k comes from the same forward pass as its token: re-run the first and the last
    // sampled batch and compare every stream at every index picked from it.
    const sampled = states.picks.map((p) => p.batch);
    for (const b of [sampled[0], sampled[sampled.length - 1]]) {
      graph.setBatch(batches[b]);
      graph.forwardList.run();
      for (let l = 0; l <= spec.layers; l++) {
        const h = await gpu.read(graph.residualStream(l));
        for (const [k, p] of states.picks.entries()) {
          if (p.batch !== b) continue;
          const want = Array.from(h.subarray(p.index * spec.hidden, (p.index + 1) * spec.hidden));
          expect(
            Array.from(states.layers[l].subarray(k * spec.hidden, (k + 1) * spec.hidden)),
            `layer ${l}, sample ${k}`,
          ).toEqual(want);
        }
      }
    }

    // The same seed picks the same tokens; fewer candidates than samples returns what there is.
    const again = await collectHiddenStates(gpu, graph, batches, { samples, perSequence: 3, seed: 7, padId: 0 });
    expect(again.picks).toEqual(states.picks);
    const all = await collectHiddenStates(gpu, graph, batches, {
      samples: 10_000,
      perSequence: 100,
      seed: 7,
      padId: 0,
    });
    const nonPadNonFirst = batches.reduce(
      (s, b) => s + b.tokens.filter((t, i) => t !== 0 && b.positions[i] !== 0).length,
      0,
    );
    expect(all.count).toBe(nonPadNonFirst);
  });
});

// ------------------------------------------------------------------------------------------ end to end

describe('analyzeGelora end to end', () => {
  for (const family of ['llama', 'gpt2'] as const) {
    it(`tiny ${family}: one rank >= 1 per block, a rank for every target module`, async () => {
      const gpu = await testGpu();
      const spec = tinySpec(family);
      const weights = await ModelWeights.upload(gpu, spec, randomSource(spec, 8));
      const rng = new Rng(12);
      const lengths = Array.from({ length: 48 }, () => 6 + rng.int(18));
      const batches = padBatches(examples(rng, spec.vocabSize, lengths), { batch: 4, seq: 24, padId: 0 });
      const targets = family === 'llama' ? allLinearTargets(spec) : ['c_attn', 'mlp.c_proj'];
      const cfg: GeloraConfig = { ...GELORA_DEFAULTS, samples: 300, rankRef: 4, rankMax: 16, alpha: 8, targets };
      const phases: string[] = [];
      const a = await analyzeGelora(gpu, weights, batches, cfg, {
        seed: 1,
        padId: 0,
        onProgress: (p) => phases.push(p),
      });
      console.log(
        `${family}: dims ${a.dims.map((d) => d.toFixed(2)).join(', ')}; raw ranks ${a.rawRanks}; fitted ${a.ranks} (c = ${a.budgetFactor.toFixed(3)})`,
      );

      expect(a.dims.length).toBe(spec.layers + 1);
      for (const d of a.dims) expect(Number.isFinite(d) && d > 0).toBe(true);
      expect(a.samples).toBe(300);
      expect(a.rawRanks).toEqual(a.dims.slice(1).map((d, l) => Math.max(Math.ceil(d - a.dims[l]), 0) + 1));
      expect(a.ranks.length).toBe(spec.layers);
      for (const r of a.ranks) expect(Number.isInteger(r) && r >= 1 && r <= 16).toBe(true);
      expect(a.params).toBeLessThanOrEqual(a.budget);
      expect(a.scale).toBe(2);
      expect(a.warnings.join()).toMatch(/GeLoRA samples \(300\) is below 512/);
      expect(phases).toContain('collect');
      expect(phases.filter((p) => p === 'estimate').length).toBe(spec.layers + 1);
      // Layer 0 of a model without position embeddings has one point per distinct token.
      if (family === 'llama') expect(a.estimates[0].duplicatesRemoved).toBeGreaterThan(0);

      const modules = (family === 'llama' ? 7 : 2) * spec.layers;
      expect(a.ranksByModule.size).toBe(modules);
      for (const [path, r] of a.ranksByModule) {
        const layer = Number(/\.(\d+)\./.exec(path)![1]);
        expect(r, path).toBe(a.ranks[layer]);
      }

      const raw = await analyzeGelora(gpu, weights, batches, { ...cfg, budget: 'raw' }, { seed: 1, padId: 0 });
      expect(raw.ranks).toEqual(raw.rawRanks);
      expect(raw.dims).toEqual(a.dims);
      expect(raw.budgetFactor).toBe(1);
    });
  }
});
