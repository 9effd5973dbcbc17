/**
 * The report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no link, no URL, so it
 * opens the same offline, from a zip, or attached to an email. Every user string is escaped.
 */
import type { ExperimentResults } from '../types';
import { budgetSweepSvg } from './budget-sweep-chart';
import { emptyChartSvg } from './chart-frame';
import { escapeHtml } from './escape';
import { evidenceSentences } from './evidence';
import { formatLr } from './format';
import { lossCurvesSvg } from './loss-curves-chart';
import { lrSensitivitySvg } from './lr-sensitivity-chart';
import { rankHeatmapSvg } from './rank-heatmap-chart';
import { failedRuns } from './selection';
import { CONFIG_HEADERS, configRows, setupItems } from './setup';
import { BUDGET_WARNING, hasExactMatch, summaryHeaders, type SummaryRow, summaryRows } from './summary-rows';

export const HTML_BEST_BADGE = '<span class="badge">best</span>';

const STYLE = `
body { margin: 0; background: #f9fafb; color: #111827; font: 14px/1.5 system-ui, -apple-system, 'Segoe UI', sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 16px; }
h2 { font-size: 18px; margin: 32px 0 12px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0 0 16px; }
dt { font-weight: 600; }
dd { margin: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f4f6; }
td.verdict { min-width: 14em; }
td.num.wrap { white-space: normal; min-width: 12em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { background: #f8fafc; }
.badge { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; background: #16a34a; color: #fff; font-size: 11px; font-weight: 600; }
.warn { color: #b45309; white-space: nowrap; }
.muted { color: #6b7280; }
figure { margin: 16px 0; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; border: 1px solid #e5e7eb; border-radius: 6px; }
figcaption { color: #6b7280; font-size: 13px; }
pre { background: #111827; color: #f9fafb; padding: 12px; border-radius: 6px; overflow-x: auto; }
`;

function cell(text: string, className = ''): string {
  return `<td${className ? ` class="${className}"` : ''}>${escapeHtml(text)}</td>`;
}

function summaryTable(rows: readonly SummaryRow[]): string {
  const exact = hasExactMatch(rows);
  const headers = summaryHeaders(exact);
  const body = rows.map((r) => {
    const name =
      escapeHtml(r.name) +
      (r.best ? ` ${HTML_BEST_BADGE}` : '') +
      (r.isBaseline ? ' <span class="muted">(baseline)</span>' : '');
    const budget = escapeHtml(r.budget) + (r.budgetOutside ? ` <span class="warn">${BUDGET_WARNING}</span>` : '');
    const cells = [
      `<td>${name}</td>`,
      cell(r.method),
      cell(r.params, 'num'),
      `<td class="num">${budget}</td>`,
      cell(r.bestLr, 'num'),
      cell(r.valLoss, 'num'),
      cell(r.testLoss, 'num'),
      cell(r.seeds, 'num'),
      ...(exact ? [cell(r.exactMatch ?? '–', 'num')] : []),
      cell(r.vsBaseline, 'num wrap'),
      cell(r.verdict, 'verdict'),
    ];
    return `<tr${r.isBaseline ? ' class="baseline"' : ''}>${cells.join('')}</tr>`;
  });
  return tableHtml(headers, body);
}

function tableHtml(headers: readonly string[], rows: readonly string[]): string {
  const head = headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  return `<div class="table-wrap"><table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** A chart that fails to draw (a bug, or data no test foresaw) must not cost the whole report. */
function safeChart(title: string, draw: () => string | null): string | null {
  try {
    return draw();
  } catch (error) {
    return emptyChartSvg(title, `This chart could not be drawn: ${error instanceof Error ? error.message : error}`);
  }
}

function figure(svg: string, caption: string): string {
  return `<figure>${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
}

function figures(results: ExperimentResults): string[] {
  const lr = safeChart('Learning-rate sensitivity', () => lrSensitivitySvg(results));
  const loss = safeChart('Training loss', () => lossCurvesSvg(results));
  const budget = safeChart('Budget sweep', () => budgetSweepSvg(results));
  const ranks = safeChart('Rank per module', () => rankHeatmapSvg(results));
  return [
    lr && figure(lr, 'Final validation loss at each learning rate: mean over seeds and 95% band; dot: chosen rate.'),
    loss && figure(loss, 'Training loss per step at the chosen rate: mean over seeds and 95% band.'),
    budget && figure(budget, 'Test loss against trainable parameters: mean and 95% interval per configuration.'),
    ranks && figure(ranks, 'Rank per adapted module of each configuration’s chosen run (lowest seed).'),
  ].filter((f): f is string => f !== null);
}

export function reportHtml(results: ExperimentResults, opts: { command: string }): string {
  const setup = setupItems(results)
    .map((item) => `<dt>${escapeHtml(item.label)}</dt><dd>${escapeHtml(item.value)}</dd>`)
    .join('');
  const configs = configRows(results).map(
    (c) =>
      `<tr>${[c.name, c.method, c.rank, c.alpha, c.targets, c.options, c.lrs, c.seeds].map((t) => cell(t)).join('')}</tr>`,
  );
  const failed = failedRuns(results);
  const failedList = failed.length
    ? `<ul>${failed
        .map(
          (r) =>
            `<li>${escapeHtml(r.name)}, lr ${escapeHtml(formatLr(r.lr))}, seed ${r.seed}: ${escapeHtml(r.error ?? 'no error recorded')}</li>`,
        )
        .join('')}</ul>`
    : '<p>None.</p>';
  const title = escapeHtml(results.experiment.name);
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${title}</title><style>${STYLE}</style></head><body><main>`,
    `<h1>${title}</h1>`,
    '<h2>Setup</h2>',
    `<dl>${setup}</dl>`,
    tableHtml(Object.values(CONFIG_HEADERS), configs),
    '<h2>Results</h2>',
    summaryTable(summaryRows(results)),
    '<p class="muted">Test loss is the mean over seeds at the rate chosen on validation, ± the half-width of its 95% ' +
      'interval; Δ is the paired difference to the baseline (negative: lower loss).</p>',
    '<h2>What the evidence says</h2>',
    `<p>${escapeHtml(evidenceSentences(results).join(' '))}</p>`,
    '<h2>Figures</h2>',
    ...figures(results),
    '<h2>Failed runs</h2>',
    failedList,
    '<h2>Reproduce</h2>',
    `<pre><code>${escapeHtml(opts.command)}</code></pre>`,
    '</main></body></html>',
    '',
  ].join('\n');
}
