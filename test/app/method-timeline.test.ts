/**
 * What a method changes while training, in the studio: snapshots in a run's analysis (one per step; the reducer's
 * part is in reducer.test.ts), and the Rank allocation panel's sections for AdaLoRA's ranks
 * over time, DoRA's magnitude drift and the singular values PiSSA / LoRA-GA start from.
 */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { describe, expect, test, vi } from 'vitest';
import { capturedSpectrum, kindLabel, snapshotsOf, withSnapshot } from '../../src/app/analysis';
import type { RunRecord } from '../../src/app/run-record';
import type { MethodAnalysis, ModuleAllocation } from '../../src/engine/methods';
import { config, record } from './fixtures';

const state: Record<string, unknown> = {};
vi.mock('../../src/app/store', () => ({ useStudio: (select: (s: unknown) => unknown) => select(state) }));

function module(layer: number, kind: string, patch: Partial<ModuleAllocation> = {}): ModuleAllocation {
  return {
    path: `model.layers.${layer}.self_attn.${kind}`,
    layer,
    kind,
    in: 8,
    out: 8,
    rank: 4,
    scale: 2,
    parameters: 64,
    ...patch,
  };
}

function analysis(patch: Partial<MethodAnalysis>): MethodAnalysis {
  return {
    method: 'lora',
    structure: 'dense',
    allocation: 'uniform',
    init: 'lora',
    modules: [module(0, 'q_proj'), module(1, 'q_proj')],
    trainableParameters: 128,
    loraEquivalentParameters: 128,
    preparationMs: 0,
    warnings: [],
    ...patch,
  };
}

describe('snapshots in the analysis', () => {
  test('withSnapshot keeps one per step, in step order', () => {
    let a = analysis({});
    a = withSnapshot(a, { step: 10, ranks: [3, 2] });
    a = withSnapshot(a, { step: 0, ranks: [6, 6] });
    a = withSnapshot(a, { step: 10, ranks: [4, 1] });
    expect(a.timeline).toEqual([
      { step: 0, ranks: [6, 6] },
      { step: 10, ranks: [4, 1] },
    ]);
    expect(snapshotsOf(a, 'ranks').map((s) => s.step)).toEqual([0, 10]);
    // The newest snapshot's ranks are the modules' ranks (AdaLoRA's rank heatmap shows what it keeps).
    expect(a.modules.map((m) => m.rank)).toEqual([4, 1]);
    expect(snapshotsOf(a, 'magnitudeDrift')).toEqual([]);
  });

  test('snapshotsOf ignores a snapshot whose length is not the module count', () => {
    const a = analysis({ timeline: [{ step: 0, ranks: [1] }] });
    expect(snapshotsOf(a, 'ranks')).toEqual([]);
  });

  test('capturedSpectrum sums the singular values a module starts from', () => {
    expect(capturedSpectrum(module(0, 'q_proj', { singularValues: [3, 2, 0.5] }))).toBe(5.5);
    expect(capturedSpectrum(module(0, 'q_proj'))).toBe(0);
  });
});

describe('the Rank allocation panel', () => {
  test("heatmap columns: Llama's short names, GPT-2's module names (its two c_proj with their block)", () => {
    expect(['q_proj', 'gate_proj', 'down_proj'].map(kindLabel)).toEqual(['q', 'gate', 'down']);
    expect(['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].map(kindLabel)).toEqual([
      'c_attn',
      'attn.c_proj',
      'c_fc',
      'mlp.c_proj',
    ]);
  });

  async function render(runs: RunRecord[]): Promise<string> {
    state.runs = Object.fromEntries(runs.map((r) => [r.config.id, r]));
    state.order = runs.map((r) => r.config.id);
    const { AnalysisPanel } = await import('../../src/app/components/AnalysisPanel');
    return renderToStaticMarkup(createElement(AnalysisPanel));
  }

  test('AdaLoRA: a heatmap of the newest snapshot’s ranks, with a slider over the snapshots', async () => {
    const a = analysis({
      method: 'adalora',
      structure: 'adalora',
      allocation: 'adalora',
      init: 'adalora',
      modules: [module(0, 'q_proj', { initRank: 6 }), module(1, 'q_proj', { initRank: 6 })],
      timeline: [
        { step: 0, ranks: [6, 6] },
        { step: 20, ranks: [5, 1] },
      ],
    });
    const html = await render([record('a', { config: config('a'), analysis: a })]);
    expect(html).toContain('AdaLoRA: rank over time');
    expect(html).toContain('step 20 · 6 triplets kept');
    const cells = [...html.matchAll(/data-testid="timeline-ranks-heatmap-cell"[^>]*data-value="(\d+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(cells).toEqual([5, 1]);
    expect(html).toMatch(/type="range"[^>]*max="1"/);
    expect(html).not.toContain('DoRA: magnitude drift');
  });

  test('DoRA: magnitude drift per module, as a percentage', async () => {
    const a = analysis({
      method: 'dora',
      structure: 'dora',
      modules: [module(0, 'q_proj', { weightNormMean: 1.2 }), module(1, 'q_proj')],
      timeline: [{ step: 40, magnitudeDrift: [0.0123, 0.5] }],
    });
    const html = await render([record('d', { config: config('d'), analysis: a })]);
    expect(html).toContain('DoRA: magnitude drift');
    expect(html).toContain('>1.23<');
    expect(html).toContain('>50.0<');
  });

  test('PiSSA: the singular values each module starts from; no timeline section without snapshots', async () => {
    const a = analysis({
      method: 'pissa',
      init: 'pissa',
      svd: 'exact',
      modules: [module(0, 'q_proj', { singularValues: [4, 2] }), module(1, 'q_proj', { singularValues: [1, 0.5] })],
    });
    const html = await render([record('p', { config: config('p'), analysis: a })]);
    expect(html).toContain('singular values captured');
    expect(html).toContain('SVD of W · exact');
    expect(html).toContain('σ 4.00, 2.00');
    expect(html).not.toContain('rank over time');
  });
});
