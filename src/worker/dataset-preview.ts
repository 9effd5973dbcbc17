/** What the Dataset panel shows: counts, warnings, a token-length histogram and a few decoded examples. */
import { supervisedTargets, type LoadedDataset, type Truncation } from '../data/index';
import { IGNORE_INDEX, type Example } from '../data/types';
import type { TextTokenizer } from '../tokenizer/tokenizer';
import type { DataFit, DatasetFormatOverride, DatasetPreview, PreviewSegment } from './protocol';

const SAMPLE_COUNT = 3;
/** Long documents are cut in the preview; the panel says how many tokens the example has. */
const SAMPLE_TOKENS = 200;
const MAX_BINS = 24;

/** What every preview carries besides the counts: the file, its fields and the user's format choice. */
export interface DatasetInfo {
  name: string;
  bytes: number;
  /** Size and SHA-256 of the file (src/data/digest.ts): a resumed run must see the same bytes, not just the same name. */
  digest: string;
  demo: boolean;
  fields: string[];
  override: DatasetFormatOverride;
  unmatched: string | null;
}

/** What a run at `seq` tokens trains on: the examples kept, truncated and dropped (or why none is left). */
export function dataFit(seq: number, truncation: Truncation, atSeq: LoadedDataset | { problem: string }): DataFit {
  if ('problem' in atSeq) return { seq, truncation, examples: 0, truncated: 0, dropped: 0, problem: atSeq.problem };
  const { truncated, dropped } = atSeq.stats;
  // What a run trains on excludes padding and prompts: the studio estimates it from these.
  let tokens = 0;
  let supervisedTokens = 0;
  for (const ex of atSeq.examples) {
    tokens += ex.inputIds.length;
    supervisedTokens += supervisedTargets(ex);
  }
  return {
    seq,
    truncation,
    examples: atSeq.examples.length,
    truncated,
    dropped,
    tokens,
    supervisedTokens,
    problem: null,
  };
}

export function tokenizedPreview(
  info: DatasetInfo,
  ds: LoadedDataset,
  tokenizer: TextTokenizer,
  fit: DataFit | null,
): DatasetPreview {
  const supervisedTokens = ds.examples.reduce((n, ex) => n + supervisedTargets(ex), 0);
  return {
    ...info,
    format: ds.format,
    columns: stringColumns(ds.columns),
    rows: ds.stats.rows,
    examples: ds.examples.length,
    tokens: ds.stats.tokens,
    supervisedTokens,
    skipped: ds.stats.skipped,
    fit,
    assistantTurns: ds.stats.assistantTurns,
    emptyTurns: ds.stats.emptyTurns,
    warnings: ds.warnings,
    samples: ds.examples.slice(0, SAMPLE_COUNT).map((ex) => ({
      segments: decodeSegments(ex, tokenizer),
      tokens: ex.inputIds.length,
      supervised: supervisedTargets(ex),
    })),
    histogram: histogram(ds.examples.map((ex) => ex.inputIds.length)),
    tokenized: true,
  };
}

/** Before a model is loaded there is no tokenizer: rows and format only. */
export function untokenizedPreview(
  info: DatasetInfo,
  rows: number,
  format: DatasetPreview['format'],
  columns: Record<string, string | undefined>,
  warnings: string[],
  skipped: number,
): DatasetPreview {
  return {
    ...info,
    format,
    columns: stringColumns(columns),
    rows,
    examples: 0,
    tokens: 0,
    supervisedTokens: 0,
    skipped,
    fit: null,
    assistantTurns: 0,
    emptyTurns: 0,
    warnings,
    samples: [],
    histogram: [],
    tokenized: false,
  };
}

function stringColumns(columns: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [role, field] of Object.entries(columns)) if (field) out[role] = field;
  return out;
}

/**
 * Splits an example where supervision switches. Each piece is decoded as the difference between the
 * decoded prefixes, so word-boundary spaces come out as they would in the whole text.
 */
export function decodeSegments(ex: Example, tokenizer: TextTokenizer): PreviewSegment[] {
  const n = Math.min(ex.inputIds.length, SAMPLE_TOKENS);
  const isSupervised = (i: number) => ex.labels[i] !== IGNORE_INDEX;
  const segments: PreviewSegment[] = [];
  let start = 0;
  let decoded = '';
  for (let i = 1; i <= n; i++) {
    if (i < n && isSupervised(i) === isSupervised(start)) continue;
    const prefix = tokenizer.decode(Array.from(ex.inputIds.slice(0, i)));
    const text = prefix.startsWith(decoded)
      ? prefix.slice(decoded.length)
      : tokenizer.decode(Array.from(ex.inputIds.slice(start, i)));
    segments.push({ text, supervised: isSupervised(start) });
    decoded = prefix;
    start = i;
  }
  if (ex.inputIds.length > n) segments.push({ text: ' …', supervised: false });
  return segments;
}

/** Equal-width bins with a round width (1, 2 or 5 times a power of ten). */
export function histogram(lengths: number[]): DatasetPreview['histogram'] {
  if (lengths.length === 0) return [];
  const max = lengths.reduce((a, b) => Math.max(a, b), 0);
  const width = niceStep(Math.max(1, max / MAX_BINS));
  const bins = Math.floor(max / width) + 1;
  const counts = new Array<number>(bins).fill(0);
  for (const len of lengths) counts[Math.floor(len / width)]++;
  return counts.map((count, i) => ({ from: i * width, to: (i + 1) * width, count }));
}

function niceStep(x: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 5, 10]) if (m * p >= x) return Math.max(1, m * p);
  return 10 * p;
}
