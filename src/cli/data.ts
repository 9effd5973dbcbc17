/**
 * `data`: a dataset file read exactly as `train` reads it (streamed, so a file of any size costs about a megabyte
 * of text at a time), reporting what training would see. Without --model: format, columns, rows and warnings. With
 * --model: the tokenizer too, and the examples, tokens and supervised tokens at --seq-len. Progress on stderr; one
 * JSON line on stdout at the end, with the time and the process's peak memory.
 */
import {
  detectFormat,
  fitDataset,
  keepDetectionSample,
  readRecordBatches,
  supervisedTargets,
  type RawRecord,
} from '../data/index';
import { defaultSeqLen } from '../engine/run-spec';
import { loadModelDir, tokenizeModelDataset } from '../engine/load-model';
import type { OptionSpec } from './args';
import { dataProgressLog } from './data-progress';
import { openDataFile, openModelPath } from './node-files';
import { log, out } from './output';
import { PROMPT_JOIN, promptJoinOption, TRAIN_OPTS, truncationOption } from './train-options';

export const DATA_OPTS: Record<string, OptionSpec> = {
  data: {
    kind: 'string',
    help: 'dataset file (.txt, .jsonl, .json, .csv, .tsv, .parquet; .jsonl.gz, .csv.gz, .tsv.gz, .txt.gz)',
    required: true,
  },
  model: {
    kind: 'string',
    help: 'model folder (Hugging Face) or llama2.c .bin whose tokenizer to use; without it the file is only read',
  },
  'seq-len': {
    kind: 'int',
    help: 'with --model: tokens per sequence, as for train (default: 128, or the model maximum if smaller)',
  },
  truncation: TRAIN_OPTS.truncation,
  'prompt-join': PROMPT_JOIN,
};

export async function cmdData(o: Record<string, unknown>): Promise<void> {
  const started = performance.now();
  const path = o.data as string;
  const truncation = truncationOption(o);
  const promptJoin = promptJoinOption(o);
  const file = await openDataFile(path);
  const report: Record<string, unknown> = { file: path, bytes: file.size };
  if (o.model === undefined) {
    if (o['seq-len'] !== undefined) throw new Error('--seq-len needs --model: sequences are counted in its tokens');
    const sample: RawRecord[] = [];
    const progress = dataProgressLog(path);
    let rows = 0;
    const read = await readRecordBatches(file, (records, p) => {
      rows += records.length;
      keepDetectionSample(sample, records);
      progress({ bytesRead: p.bytesRead, totalBytes: p.totalBytes, rows });
    });
    if (read.rows === 0) throw new Error(`${path}: no records found (the file is empty)`);
    const spec = detectFormat(sample);
    for (const w of read.warnings) log(`warning: ${w}`);
    Object.assign(report, {
      rows: read.rows,
      malformed: read.malformed,
      format: spec.format,
      columns: spec.columns,
      warnings: read.warnings,
    });
  } else {
    const model = await loadModelDir(await openModelPath(o.model as string));
    const seq = (o['seq-len'] as number | undefined) ?? defaultSeqLen(model.spec.maxPositions);
    if (seq > model.spec.maxPositions)
      throw new Error(`--seq-len ${seq} exceeds the model's maximum of ${model.spec.maxPositions} positions`);
    const whole = await tokenizeModelDataset(model, file, { promptJoin, onProgress: dataProgressLog(path) });
    const fitted = fitDataset(whole, model.tokenizer, { seqLen: seq, truncation });
    for (const w of fitted.warnings) log(`warning: ${w}`);
    let supervised = 0;
    for (const ex of fitted.examples) supervised += supervisedTargets(ex);
    Object.assign(report, {
      rows: whole.rows,
      format: whole.format,
      columns: whole.columns,
      skipped: whole.skipped,
      seqLen: seq,
      truncation,
      examples: fitted.examples.length,
      tokens: fitted.stats.tokens,
      supervisedTokens: supervised,
      truncated: fitted.stats.truncated,
      dropped: fitted.stats.dropped,
      warnings: fitted.warnings,
    });
  }
  const seconds = (performance.now() - started) / 1000;
  // maxRSS is in kilobytes: the most memory the process held at once, file and all.
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  log(`data: ${path}: read in ${seconds.toFixed(1)} s, peak memory ${(peakRssBytes / 2 ** 20).toFixed(0)} MB`);
  out({ done: true, ...report, seconds: Math.round(seconds * 100) / 100, peakRssBytes });
}
