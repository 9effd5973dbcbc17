/** The experiment's report bundle: both reports, the runs table, the experiment and results files, the command. */
import { strToU8, type Zippable, zipSync } from 'fflate';
import type { ExperimentResults } from '../types';
import { runsCsv } from './csv';
import { reportHtml } from './html';
import { reportMarkdown } from './markdown';

export interface ReportZipOptions {
  command: string;
  /** The experiment file and the results as the caller serialized them (kept verbatim). */
  experimentJson: string;
  resultsJson: string;
  /** The files' modification time (default: now); fix it for byte-identical zips. */
  mtime?: Date;
}

export function reportZip(results: ExperimentResults, opts: ReportZipOptions): Uint8Array {
  const files: Zippable = {
    'report.html': strToU8(reportHtml(results, opts)),
    'report.md': strToU8(reportMarkdown(results, opts)),
    'runs.csv': strToU8(runsCsv(results)),
    'experiment.json': strToU8(opts.experimentJson),
    'results.json': strToU8(opts.resultsJson),
    'command.txt': strToU8(`${opts.command}\n`),
  };
  return zipSync(files, { level: 6, mtime: opts.mtime ?? new Date() });
}
