/** The report as Markdown: the same sections as the HTML, tables instead of charts (those are in report.html). */
import type { ExperimentResults } from '../types';
import { escapeMarkdown, markdownCodeBlock } from './escape';
import { evidenceSentences } from './evidence';
import { formatLr } from './format';
import { failedRuns } from './selection';
import { CONFIG_HEADERS, configRows, setupItems } from './setup';
import { BUDGET_WARNING, hasExactMatch, summaryHeaders, type SummaryRow, summaryRows } from './summary-rows';

export const MARKDOWN_BEST_BADGE = '★ best';

/** A pipe table of cells that are already Markdown (escaped user text plus our own markup). */
function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(headers), `|${headers.map(() => ' --- |').join('')}`, ...rows.map(line)].join('\n');
}

const escapeAll = (cells: readonly string[]) => cells.map(escapeMarkdown);

/** User text escaped; the badge and the budget warning are added after escaping (they are our own markup). */
function summaryTable(rows: readonly SummaryRow[]): string {
  const exact = hasExactMatch(rows);
  const headers = summaryHeaders(exact);
  const lines = rows.map((r) => {
    const cells = [
      escapeMarkdown(r.name) + (r.best ? ` **${MARKDOWN_BEST_BADGE}**` : '') + (r.isBaseline ? ' (baseline)' : ''),
      escapeMarkdown(r.method),
      r.params,
      r.budget + (r.budgetOutside ? ` ${BUDGET_WARNING}` : ''),
      r.bestLr,
      r.valLoss,
      r.testLoss,
      r.seeds,
      ...(exact ? [r.exactMatch ?? '–'] : []),
      r.vsBaseline, // numbers and brackets of our own: no user text to escape
      escapeMarkdown(r.verdict),
    ];
    return cells;
  });
  return table(escapeAll(headers), lines);
}

export function reportMarkdown(results: ExperimentResults, opts: { command: string }): string {
  const configs = configRows(results);
  const failed = failedRuns(results);
  const sections = [
    `# ${escapeMarkdown(results.experiment.name)}`,
    '## Setup',
    setupItems(results)
      .map((item) => `- **${escapeMarkdown(item.label)}:** ${escapeMarkdown(item.value)}`)
      .join('\n'),
    table(
      escapeAll(Object.values(CONFIG_HEADERS)),
      configs.map((c) => escapeAll([c.name, c.method, c.rank, c.alpha, c.targets, c.options, c.lrs, c.seeds])),
    ),
    '## Results',
    summaryTable(summaryRows(results)),
    'Test loss is the mean over seeds at the rate chosen on validation, ± the half-width of its 95% interval; ' +
      'Δ is the paired difference to the baseline (negative: lower loss).',
    '## What the evidence says',
    escapeMarkdown(evidenceSentences(results).join(' ')),
    '## Failed runs',
    failed.length
      ? failed
          .map(
            (r) =>
              `- ${escapeMarkdown(r.name)}, lr ${formatLr(r.lr)}, seed ${r.seed}: ${escapeMarkdown(r.error ?? 'no error recorded')}`,
          )
          .join('\n')
      : 'None.',
    '## Figures',
    'The learning-rate sensitivity, training-loss, budget and rank charts are in report.html; every run is in runs.csv.',
    '## Reproduce',
    markdownCodeBlock(opts.command, 'sh'),
  ];
  return `${sections.join('\n\n')}\n`;
}
