/** A long dataset read reports on stderr as it goes: a 200 MB file takes minutes to tokenize. */
import { formatMiB } from '../data/dataset-file';
import type { TokenizeProgress } from '../data/index';
import { log } from './output';

/** Smaller files are done before a progress line would help. */
const LOGGED_FROM_BYTES = 16 * 2 ** 20;

/** A line at every tenth of the file, for files of 16 MB or more; examples only when tokenizing. */
export function dataProgressLog(
  path: string,
): (progress: Omit<TokenizeProgress, 'examples'> & { examples?: number }) => void {
  let nextTenth = 1;
  return (p) => {
    if (p.totalBytes < LOGGED_FROM_BYTES) return;
    const fraction = p.totalBytes === 0 ? 1 : p.bytesRead / p.totalBytes;
    if (fraction * 10 < nextTenth) return;
    nextTenth = Math.floor(fraction * 10) + 1;
    log(
      `data: ${path} ${Math.floor(fraction * 100)}% read (${formatMiB(p.bytesRead)} of ${formatMiB(p.totalBytes)}), ` +
        `${p.rows.toLocaleString('en')} rows${p.examples === undefined ? '' : `, ${p.examples.toLocaleString('en')} examples`} so far`,
    );
  };
}
