/**
 * Archived runs leave the charts, the comparison, the analysis and the playground's sources, and stay exportable
 * under the export panel's folded "Archived runs (n)" (server-side markup, the store replaced by a plain state).
 */
import { createElement, type FunctionComponent } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { runColor } from '../src/app/palette';
import type { RunRecord } from '../src/app/run-record';
import { record } from './app/fixtures';
import { trained as trainedRun } from './helpers/trained-runs';

const state: Record<string, unknown> = {};
vi.mock('../src/app/store', () => ({
  useStudio: (select?: (s: unknown) => unknown) => (select ? select(state) : state),
}));

/** A done run (helpers/trained-runs.ts) named as the panels show it: "Run A" for id 'a'. */
const trained = (id: string, loss: number, patch: Partial<RunRecord> = {}) =>
  trainedRun(id, loss, { config: { ...record(id).config, name: `Run ${id.toUpperCase()}` }, ...patch });

async function render(runs: RunRecord[], component: () => Promise<FunctionComponent>): Promise<string> {
  const { initialStudioData } = await vi.importActual<typeof import('../src/app/store')>('../src/app/store');
  for (const key of Object.keys(state)) delete state[key];
  Object.assign(state, initialStudioData(), {
    setChart: () => {},
    setPlayground: () => {},
    exportRun: () => {},
    model: {
      card: { key: 'stories:llama', name: 'stories260K' },
      ready: true,
      loading: null,
      error: null,
      gpuBytes: 0,
    },
    runs: Object.fromEntries(runs.map((r) => [r.config.id, r])),
    order: runs.map((r) => r.config.id),
  });
  return renderToStaticMarkup(createElement(await component()));
}

// B is archived and has the lowest loss: it must not show, nor be "best".
const mixed = [trained('a', 2.0), trained('b', 1.0, { archived: true }), trained('c', 2.5)];
const onlyArchived = [trained('b', 1.0, { archived: true, analysis: { modules: [{}] } as never })];

const charts = () => import('../src/app/components/ChartsPanel').then((m) => m.ChartsPanel);
const comparison = () => import('../src/app/components/ComparisonPanel').then((m) => m.ComparisonPanel);
const analysis = () => import('../src/app/components/AnalysisPanel').then((m) => m.AnalysisPanel);
const exports = () => import('../src/app/components/ExportPanel').then((m) => m.ExportPanel);
const sources = () => import('../src/app/components/PlaygroundSources').then((m) => m.PlaygroundSourcePicks);

const legendIds = (html: string) =>
  [...html.matchAll(/data-testid="loss-legend" data-run-id="(\w+)"/g)].map((m) => m[1]);

describe('archived runs outside the run list', () => {
  let html: Record<string, string> = {};
  beforeAll(async () => {
    html = {
      charts: await render(mixed, charts),
      comparison: await render(mixed, comparison),
      exports: await render(mixed, exports),
      sources: await render(mixed, sources),
      chartsOnlyArchived: await render(onlyArchived, charts),
      comparisonOnlyArchived: await render(onlyArchived, comparison),
      analysisOnlyArchived: await render(onlyArchived, analysis),
      exportsOnlyArchived: await render(onlyArchived, exports),
    };
  });

  it('the charts: no legend entry for it, a note saying so; colours stay those of the whole list', () => {
    expect(legendIds(html.charts)).toEqual(['a', 'c']);
    expect(html.charts).toContain(`background:${runColor(2)}`);
    expect(html.charts).toContain('data-testid="charts-archived-note">1 archived run not drawn<');
    expect(html.chartsOnlyArchived).toContain('Every run with metrics is archived (1)');
  });

  it('the comparison: no row, no "best"; a note says one run is left out', () => {
    const rows = [...html.comparison.matchAll(/data-testid="comparison-row"/g)];
    expect(rows).toHaveLength(2);
    expect(html.comparison).not.toContain('Run B');
    expect(html.comparison).toContain('best: Run A');
    expect(html.comparison).toContain('1 archived run is left out.');
    expect(html.comparisonOnlyArchived).toContain('Every finished run is archived (1)');
  });

  it('the analysis: an archived run has no heatmap', () => {
    expect(html.analysisOnlyArchived).toContain('data-testid="allocation-empty"');
    expect(html.analysisOnlyArchived).toContain('Every analyzed run is archived (1)');
  });

  it('the playground offers only unarchived runs', () => {
    expect(html.sources).toContain('Run A');
    expect(html.sources).toContain('Run C');
    expect(html.sources).not.toContain('Run B');
  });

  it('the export panel lists it under a folded "Archived runs (n)", in its own colour', () => {
    const [current, archived] = html.exports.split('data-testid="export-archived"');
    expect([...current.matchAll(/data-testid="export-card" data-run-id="(\w+)"/g)].map((m) => m[1])).toEqual([
      'a',
      'c',
    ]);
    expect(archived).toMatch(/^><summary>Archived runs \(1\)<\/summary>/);
    expect(archived).toContain('data-run-id="b"');
    expect(archived).toContain(`background:${runColor(1)}`);
    expect(html.exportsOnlyArchived).toContain('data-testid="export-only-archived"');
  });
});
