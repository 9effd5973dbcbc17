/**
 * The studio's dataset: reading a file (or the demo), the user's format choice, the preview and its fit at the
 * configured run's length, and the tokenized examples cached for the preview and the runs.
 */
import {
  readRecords,
  detectFormat,
  DEFAULT_TRUNCATION,
  NoSupervisedTokensError,
  type FormatSpec,
  type LoadedDataset,
  type LoadOptions,
  type RawRecord,
  type Truncation,
} from '../data/index';
import { fileDigest } from '../data/digest';
import { loadModelDataset, previewTokenizer } from '../engine/load-model';
import { noSupervisedMessage, STUDIO_WORDING } from '../engine/wording';
import { fetchDemoDataset } from './demo';
import { dataFit, tokenizedPreview, untokenizedPreview, type DatasetInfo } from './dataset-preview';
import type { DatasetFormatOverride, DatasetPreview, DatasetSource } from './protocol';
import { messageOf, type DatasetState, type ModelState, type StudioState } from './studio-context';

/** detectFormat only inspects this many rows (SAMPLE_ROWS in data/detect.ts). */
const DETECTION_SAMPLE_ROWS = 100;
const AUTO_DETECT: DatasetFormatOverride = { format: null, columns: {} };

export class StudioDataset {
  private datasetSeq = 0;
  /** The sequence length and truncation of the run being configured: the preview reports the data's fit at them. */
  private previewFit: { seq: number; truncation: Truncation } | null = null;

  constructor(private readonly studio: StudioState) {}

  async loadDataset(source: DatasetSource): Promise<void> {
    const name = source.kind === 'demo' ? 'tinyshakespeare.txt' : source.file.name;
    this.studio.post({ type: 'datasetProgress', name, stage: 'Reading' });
    try {
      const file =
        source.kind === 'demo'
          ? await fetchDemoDataset()
          : { name: source.file.name, bytes: new Uint8Array(await source.file.arrayBuffer()) };
      this.studio.post({ type: 'datasetProgress', name, stage: 'Parsing' });
      const candidate = await this.readDataset(file, source.kind === 'demo');
      if (this.studio.model) this.studio.post({ type: 'datasetProgress', name, stage: 'Tokenizing' });
      const preview = await this.preview(candidate);
      // A failed file never replaces a good one, so only now does the candidate become the dataset.
      this.studio.dataset = candidate;
      this.studio.post({ type: 'dataset', preview });
    } catch (err) {
      this.studio.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  /** Parses the file once, keeping what detection and the mapping UI need (the tokenizer reads the file itself). */
  private async readDataset(file: { name: string; bytes: Uint8Array }, demo: boolean): Promise<DatasetState> {
    const read = await readRecords(file);
    if (read.records.length === 0) throw new Error(`${file.name}: no records found (the file is empty)`);
    const sample = read.records.slice(0, DETECTION_SAMPLE_ROWS);
    return {
      id: ++this.datasetSeq,
      name: file.name,
      bytes: file.bytes.length,
      digest: await fileDigest(file.bytes),
      demo,
      file,
      sample,
      rows: read.records.length,
      readWarnings: read.warnings,
      malformed: read.malformed,
      fields: fieldsOf(sample),
      override: AUTO_DETECT,
      cache: new Map(),
    };
  }

  /**
   * A new format choice for the current dataset. It only replaces the current choice once its preview
   * worked, so a wrong mapping reports its error and leaves the previous preview in use.
   */
  async setDatasetFormat(override: DatasetFormatOverride): Promise<void> {
    const ds = this.studio.dataset;
    if (!ds)
      return this.studio.post({
        type: 'error',
        scope: 'dataset',
        message: 'Load a dataset before choosing its format.',
      });
    const candidate: DatasetState = { ...ds, override, cache: new Map() };
    this.studio.post({ type: 'datasetProgress', name: ds.name, stage: this.studio.model ? 'Tokenizing' : 'Checking' });
    try {
      const preview = await this.preview(candidate);
      if (this.studio.dataset !== ds) return; // another file was loaded meanwhile
      this.studio.dataset = candidate;
      this.studio.post({ type: 'dataset', preview });
    } catch (err) {
      this.studio.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  setPreviewFit(seq: number, truncation: Truncation): Promise<void> {
    this.previewFit = { seq, truncation };
    return this.refreshDatasetPreview();
  }

  async refreshDatasetPreview(): Promise<void> {
    const ds = this.studio.dataset;
    if (!ds) return;
    try {
      const preview = await this.preview(ds);
      if (this.studio.dataset === ds) this.studio.post({ type: 'dataset', preview });
    } catch (err) {
      this.studio.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    }
  }

  /**
   * Auto-detection finding no format is not a failure: the preview says why (`unmatched`) and lists the
   * fields so the user can map them. A mapping the user chose that does not fit throws its specific error.
   */
  private async preview(ds: DatasetState): Promise<DatasetPreview> {
    const info: DatasetInfo = {
      name: ds.name,
      bytes: ds.bytes,
      digest: ds.digest,
      demo: ds.demo,
      fields: ds.fields,
      override: ds.override,
      unmatched: null,
    };
    let spec: FormatSpec;
    try {
      spec = detectFormat(ds.sample, overrideOptions(ds.override));
    } catch (err) {
      const message = messageOf(err).startsWith(ds.name) ? messageOf(err) : `${ds.name}: ${messageOf(err)}`;
      if (!isAutoDetect(ds.override)) throw new Error(message);
      return untokenizedPreview({ ...info, unmatched: message }, ds.rows, null, {}, ds.readWarnings, ds.malformed);
    }
    const model = this.studio.model;
    if (!model) return untokenizedPreview(info, ds.rows, spec.format, spec.columns, ds.readWarnings, ds.malformed);
    const loaded = await this.examples(ds, model, null);
    const fit = this.previewFit;
    return tokenizedPreview(
      info,
      loaded,
      previewTokenizer(model.loaded),
      fit && dataFit(fit.seq, fit.truncation, await this.fitted(ds, model, fit.seq, fit.truncation)),
    );
  }

  /** The examples at a run's length, or why none is left, worded for the studio. */
  async fitted(
    ds: DatasetState,
    model: ModelState,
    seq: number,
    truncation: Truncation,
  ): Promise<LoadedDataset | { problem: string }> {
    try {
      return await this.examples(ds, model, seq, truncation);
    } catch (err) {
      if (err instanceof NoSupervisedTokensError)
        return { problem: noSupervisedMessage(err, STUDIO_WORDING, model.card.maxPositions) };
      throw err;
    }
  }

  /**
   * Tokenized once per (model, sequence length, truncation, format choice); `seq` null keeps documents whole (for
   * the preview).
   */
  private examples(
    ds: DatasetState,
    model: ModelState,
    seq: number | null,
    truncation: Truncation = DEFAULT_TRUNCATION,
  ): Promise<LoadedDataset> {
    const key = `${model.epoch}:${seq ?? 'whole'}:${seq === null ? '' : truncation}:${JSON.stringify(ds.override)}`;
    let p = ds.cache.get(key);
    if (!p) {
      p = loadModelDataset(model.loaded, ds.file, {
        ...overrideOptions(ds.override),
        ...(seq === null ? {} : { seqLen: seq, truncation }),
      });
      ds.cache.set(key, p);
      p.catch(() => ds.cache.delete(key));
    }
    return p;
  }
}

/** The override as data/ takes it: absent fields mean "detect". */
function overrideOptions(override: DatasetFormatOverride): Pick<LoadOptions, 'format' | 'columns' | 'promptJoin'> {
  return {
    ...(override.format ? { format: override.format } : {}),
    columns: override.columns,
    ...(override.promptJoin ? { promptJoin: override.promptJoin } : {}),
  };
}

function isAutoDetect(override: DatasetFormatOverride): boolean {
  return override.format === null && Object.values(override.columns).every((field) => !field);
}

/** Every field name of the records, in first-seen order. */
function fieldsOf(records: RawRecord[]): string[] {
  const fields = new Set<string>();
  for (const record of records) for (const key of Object.keys(record)) fields.add(key);
  return [...fields];
}
