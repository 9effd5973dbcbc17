/** An experiment's report: CSV of runs, inline-SVG charts, Markdown and self-contained HTML, and the zip of all. */
export { budgetSweepSvg } from './budget-sweep-chart';
export { PALETTE } from './chart-frame';
export { experimentCliCommand, shellQuote } from './cli-command';
export { evidenceSentences } from './evidence';
export { RUNS_CSV_COLUMNS, runsCsv } from './csv';
export { formatLoss, formatLr, formatParams, formatPValue } from './format';
export { HTML_BEST_BADGE, reportHtml } from './html';
export { lossCurvesSvg } from './loss-curves-chart';
export { lrSensitivitySvg } from './lr-sensitivity-chart';
export { MARKDOWN_BEST_BADGE, reportMarkdown } from './markdown';
export { moduleCell, rankHeatmapSvg } from './rank-heatmap-chart';
export { linearScale, logScale } from './scales';
export { type SummaryRow, summaryRows } from './summary-rows';
export { type ReportZipOptions, reportZip } from './zip';
