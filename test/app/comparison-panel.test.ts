/** The comparison table and the chart legend as rendered (server-side markup, the store replaced by a plain state). */
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { RunRecord } from '../../src/app/run-record';
import type { RunSummary } from '../../src/worker/protocol';
import { point, record } from './fixtures';

const state: Record<string, unknown> = {};
vi.mock('../../src/app/store', () => ({ useStudio: (select: (s: unknown) => unknown) => select(state) }));

function summary(finalValLoss: number, trainableParams = 10_000): RunSummary {
  return {
    steps: 3,
    stopReason: 'done',
    message: null,
    initialValLoss: 5,
    finalValLoss,
    trainableParams,
    elapsedMs: 1000,
    tokensPerSecond: 10,
    tokens: 100,
    trainExamples: 10,
    validationExamples: 2,
    peakGpuBytes: 1,
  };
}

function finished(id: string, patch: Partial<RunRecord>): RunRecord {
  return record(id, {
    status: 'done',
    modelKey: 'stories:llama',
    modelName: 'stories260K',
    datasetName: 'tiny.txt',
    datasetDigest: '1:sha256:ab',
    points: [point(0), point(1)],
    ...patch,
  });
}

const failure = `The loss stopped being finite at step 2 (learning rate too high?) ${'and a long explanation '.repeat(8)}`;
const runs = [
  finished('a', { summary: summary(2.0) }),
  finished('b', { summary: summary(2.4) }),
  finished('c', { status: 'failed', message: failure, summary: { ...summary(Number.NaN), stopReason: 'non-finite' } }),
  finished('d', { modelKey: 'gpt2:gpt2', modelName: 'gpt2', summary: summary(1.0) }),
  finished('e', { modelKey: 'gpt2:gpt2', modelName: 'gpt2', summary: summary(0.5, 8_400) }),
];

let comparison = '';
let charts = '';
beforeAll(async () => {
  const { initialStudioData } = await vi.importActual<typeof import('../../src/app/store')>('../../src/app/store');
  Object.assign(state, initialStudioData(), {
    setChart: () => {},
    runs: Object.fromEntries(runs.map((r) => [r.config.id, r])),
    order: runs.map((r) => r.config.id),
  });
  const { ComparisonPanel } = await import('../../src/app/components/ComparisonPanel');
  const { ChartsPanel } = await import('../../src/app/components/ChartsPanel');
  comparison = renderToStaticMarkup(createElement(ComparisonPanel));
  charts = renderToStaticMarkup(createElement(ChartsPanel));
});

describe('comparison panel', () => {
  it('has one section per model and dataset, each with its own best', () => {
    const titles = [...comparison.matchAll(/data-testid="comparison-group-title">(.*?)<\/h3>/g)].map((m) =>
      m[1].replace(/<[^>]+>/g, ''),
    );
    expect(titles).toEqual(['stories260K on tiny.txt', 'gpt2 on tiny.txt']);
    const sections = comparison.split('data-testid="comparison-group"').slice(1);
    // Run a is best among the stories260K runs, although d and e (another model) have lower losses.
    expect(sections[0]).toMatch(/data-testid="final-val-loss">2\.000<span class="badge badge-ok[^>]*>best</);
    // e leads d by far, on 84% of its budget: no best, and the table says why.
    expect(sections[1]).not.toMatch(/>best</);
    expect(sections[1]).toContain('>not comparable: budget differs<');
  });

  it('shows a failed run as its (cut) message, never NaN', () => {
    expect(comparison).not.toContain('NaN');
    const cell = /<td colSpan="3" class="error-text" data-testid="comparison-failure" title="([^"]*)">([^<]*)</.exec(
      comparison,
    );
    expect(cell).not.toBeNull();
    expect(cell![1]).toBe(failure);
    expect(cell![2].length).toBeLessThanOrEqual(80);
    expect(cell![2]).toMatch(/^The loss stopped being finite at step 2 .*…$/);
    expect(comparison).toContain('badge-status-failed">failed<');
  });
});

describe('chart legend', () => {
  it('lists every run as a pressed toggle button in its own colour', () => {
    const buttons = [
      ...charts.matchAll(/<button type="button" class="legend-item legend-toggle" aria-pressed="(\w+)"/g),
    ];
    expect(buttons.map((b) => b[1])).toEqual(['true', 'true', 'true', 'true', 'true']);
  });
});
