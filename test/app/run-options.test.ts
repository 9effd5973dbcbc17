/**
 * A run's method options in the studio: the form's validation messages, what a run sends to the worker, and the
 * scale rule the Runs panel shows, checked against the scale of every adapter the engine builds for that run (the
 * demo model, stories260K, on the test device). Moved from e2e/helpers.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import { GraloraLayer } from '../../src/adapters/gralora/layer';
import { LoraLayer } from '../../src/adapters/lora/layer';
import { runnableConfig, scaleRule } from '../../src/app/methods';
import { demoRuns } from '../../src/app/presets';
import type { Batch } from '../../src/data/index';
import { loadModelDir } from '../../src/engine/load-model';
import { buildMethod, type MethodOptions } from '../../src/engine/methods';
import { nodeDir } from '../../src/model/formats/node-source';
import { ModelWeights } from '../../src/model/weights';
import type { ModelCard, RunConfig } from '../../src/worker/protocol';
import { configProblem } from '../../src/worker/validate';
import { testGpu } from '../helpers/gpu';
import { randomBatch } from '../helpers/tiny-models';

const DEMO = 'public/demo/model';
const [lora, gora, gralora, gelora] = demoRuns();

describe('validation: specific messages for method options', () => {
  it('accepts the demo runs and names what is wrong with the others', async () => {
    const { spec } = await loadModelDir(await nodeDir(DEMO));
    const card = { maxPositions: spec.maxPositions, spec } as ModelCard;
    const problem = (c: RunConfig) => configProblem(c, card);
    for (const c of demoRuns()) expect(problem(c)).toBeNull();
    expect(problem({ ...gora, extras: { rankMin: 20, rankMax: 16 } })).toBe(
      'GoRA r_min (20) is larger than r_max (16): no rank fits both bounds.',
    );
    // Each names the method, the field and the value, in the form's words (the method registry's, never a CLI flag).
    expect(problem({ ...gralora, rank: 6, extras: { graloraK: 4 } })).toBe(
      'GraLoRA rank 6 must be divisible by k 4: each of the k x k blocks gets rank r/k.',
    );
    expect(problem({ ...gralora, extras: { hybridRank: -2 } })).toBe(
      'GraLoRA hybrid r must be a whole number of at least 0 (got -2).',
    );
    expect(problem({ ...gora, extras: { goraSteps: 0 } })).toBe(
      'GoRA N batches must be a whole number of at least 1 (got 0).',
    );
    expect(problem({ ...gora, extras: { goraGamma: -1 } })).toContain('GoRA γ must be a number of at least 0 (got -1)');
    expect(problem({ ...gelora, extras: { geloraSamples: 2 } })).toBe(
      'GeLoRA samples must be a whole number from 3 to 4096 (got 2).',
    );
    expect(problem({ ...gelora, extras: { geloraSamples: 5000 } })).toContain('(got 5000)');
    // GoRA with GraLoRA blocks rounds its ranks to multiples of k itself: no divisibility error.
    expect(problem({ ...gora, rank: 7, extras: { structure: 'gralora', graloraK: 2 } })).toBeNull();
  });
});

describe('a run sends only its own method options', () => {
  it("drops the options of other methods and keeps the method's own", () => {
    const draft: RunConfig = { ...lora, extras: { graloraK: 4, goraSteps: 3, structure: 'gralora' } };
    expect(runnableConfig(draft).extras).toBeUndefined();
    expect(runnableConfig({ ...draft, method: 'gralora' }).extras).toEqual({ graloraK: 4 });
    expect(runnableConfig({ ...draft, method: 'gora' }).extras).toEqual({
      structure: 'gralora',
      goraSteps: 3,
      graloraK: 4,
    });
  });
});

describe('scale rules: what the Runs panel shows is the scale of every adapter the engine builds', () => {
  it('LoRA α/r, rsLoRA α/√r, GraLoRA α/(r+h), GoRA α/√r_l per module, GeLoRA α/r_ref', async () => {
    const gpu = await testGpu();
    const start = gpu.mark();
    try {
      const model = await loadModelDir(await nodeDir(DEMO));
      const weights = await ModelWeights.upload(gpu, model.spec, model.source);
      const cases: [RunConfig, { formula: string; perModule: boolean }][] = [
        [lora, { formula: 'α/r', perModule: false }],
        [
          { ...lora, method: 'rslora' },
          { formula: 'α/√r', perModule: false },
        ],
        [gralora, { formula: 'α/r', perModule: false }],
        [
          { ...gralora, extras: { hybridRank: 8 } },
          { formula: 'α/(r+h)', perModule: false },
        ],
        [gora, { formula: 'α/√r_l per module', perModule: true }],
        [gelora, { formula: 'α/r_ref (every module)', perModule: false }],
      ];
      for (const [c, want] of cases) {
        const label = `${c.method} ${JSON.stringify(c.extras ?? {})}`;
        const rule = scaleRule(c);
        expect(rule, label).toMatchObject(want);
        const mark = gpu.mark();
        let seed = 100;
        const state = await buildMethod(
          gpu,
          weights,
          {
            ...c.extras,
            method: c.method,
            rank: c.rank,
            alpha: c.alpha,
            seed: c.seed,
            targets: ['all-linear'],
          } as MethodOptions,
          {
            nextBatch: (): Batch => ({
              ...randomBatch(model.spec, c.batch, c.seq, seed++),
              batch: c.batch,
              seq: c.seq,
            }),
            shape: { batch: c.batch, seq: c.seq },
          },
        );
        expect(state.adapters.size, label).toBe(state.analysis.modules.length);
        const ranks = new Set<number>();
        for (const m of state.analysis.modules) {
          const layer = state.adapters.get(m.path);
          expect(layer instanceof LoraLayer || layer instanceof GraloraLayer, `${label} ${m.path}`).toBe(true);
          const built = layer as LoraLayer | GraloraLayer;
          // A per-module rule evaluated at the module's own rank; otherwise the one value.
          const want = rule.perModule ? scaleRule({ ...c, rank: built.rank }).value : rule.value;
          expect(built.scale, `${label} ${m.path}`).toBeCloseTo(want!, 12);
          expect(m.scale, `${label} ${m.path} (analysis)`).toBeCloseTo(built.scale, 12);
          ranks.add(built.rank);
        }
        // GoRA's rule is per module because its ranks differ; GeLoRA's ranks differ too, its scale does not.
        if (c === gora) expect(ranks.size).toBeGreaterThan(1);
        await gpu.freeSince(mark);
      }
      expect(scaleRule(lora).value).toBe(2);
      expect(scaleRule({ ...lora, method: 'rslora' }).value).toBeCloseTo(16 / Math.sqrt(8));
      expect(scaleRule({ ...gralora, extras: { hybridRank: 8 } }).value).toBe(1);
      expect(scaleRule(gelora).value).toBe(2);
    } finally {
      await gpu.freeSince(start);
    }
  });
});
