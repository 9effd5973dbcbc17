/**
 * The studio's dataset: reading a file (or the demo), the user's format choice, the preview and its fit at the
 * configured run's length, and the tokenized examples cached for the preview and the runs.
 */
import {
  readRecordBatches,
  detectFormat,
  keepDetectionSample,
  DEFAULT_TRUNCATION,
  fitDataset,
  NoSupervisedTokensError,
  tokenizeRecords,
  type DatasetFile,
  type FormatSpec,
  type LoadedDataset,
  type LoadOptions,
  type RawRecord,
  type TokenizedDataset,
  type Truncation,
} from '../data/index';
import { blobDatasetFile, datasetFileSize } from '../data/dataset-file';
import { datasetDigest } from '../data/digest';
import { previewTokenizer, tokenizeModelDataset } from '../engine/load-model';
import { noSupervisedMessage, STUDIO_WORDING } from '../engine/wording';
import { fetchDemoDataset } from './demo';
import { dataFit, tokenizedPreview, untokenizedPreview, type DatasetInfo } from './dataset-preview';
import type { DatasetFormatOverride, DatasetPreview, DatasetSource } from './protocol';
import { messageOf, type DatasetState, type ModelState, type StudioState } from './studio-context';

const AUTO_DETECT: DatasetFormatOverride = { format: null, columns: {} };

/** A file dropped while another was still loading: the older load stops, and only the newest one may finish. */
class SupersededLoad extends Error {}

export class StudioDataset {
  private datasetSeq = 0;
  /** Counts loadDataset calls: a load that is no longer the latest neither reports nor replaces the dataset. */
  private loadSeq = 0;
  /** A load is under way; once its file is read, `loading` holds it (its tokenization's progress is shown). */
  private loadInFlight = false;
  private loading: DatasetState | null = null;
  /** Files whose load a newer one replaced: their tokenization stops at its next batch. */
  private readonly abandoned = new WeakSet<DatasetState>();
  /** The sequence length and truncation of the run being configured: the preview reports the data's fit at them. */
  private previewFit: { seq: number; truncation: Truncation } | null = null;

  constructor(private readonly studio: StudioState) {}

  async loadDataset(source: DatasetSource): Promise<void> {
    const name = source.kind === 'demo' ? 'tinyshakespeare.txt' : source.file.name;
    const load = ++this.loadSeq;
    if (this.loading) this.abandoned.add(this.loading);
    this.loadInFlight = true;
    this.loading = null;
    this.studio.post({ type: 'datasetProgress', name, stage: 'Reading' });
    try {
      // A dropped file is streamed (File.stream()) each time it is read, never held whole.
      const file: DatasetFile =
        source.kind === 'demo' ? await fetchDemoDataset() : blobDatasetFile(source.file, source.file.name);
      const candidate = await this.readDataset(file, source.kind === 'demo', load);
      this.loading = candidate;
      const preview = await this.preview(candidate);
      if (load !== this.loadSeq) return;
      // A failed file never replaces a good one, so only now does the candidate become the dataset.
      this.studio.dataset = candidate;
      this.studio.post({ type: 'dataset', preview });
    } catch (err) {
      if (err instanceof SupersededLoad || load !== this.loadSeq) return;
      this.studio.post({ type: 'error', scope: 'dataset', message: messageOf(err) });
    } finally {
      if (load === this.loadSeq) {
        this.loadInFlight = false;
        this.loading = null;
      }
    }
  }

  /**
   * Reads the file once, in batches, keeping what detection and the mapping UI need (the first rows) and counting
   * the rest; the tokenizer streams the file again itself. A preview of the first rows is posted after the first
   * batch, while the rest is read.
   */
  private async readDataset(file: DatasetFile, demo: boolean, load: number): Promise<DatasetState> {
    const digest = await datasetDigest(file);
    const sample: RawRecord[] = [];
    let rows = 0;
    let early = false;
    const read = await readRecordBatches(file, async (records, progress) => {
      if (load !== this.loadSeq) throw new SupersededLoad();
      rows += records.length;
      keepDetectionSample(sample, records);
      if (progress.done) return;
      const preview = !early && sample.length > 0 ? this.firstRowsPreview(file, digest, demo, sample, rows) : undefined;
      early ||= preview !== undefined;
      this.studio.post({
        type: 'datasetProgress',
        name: file.name,
        stage: 'Reading',
        done: progress.bytesRead,
        total: progress.totalBytes,
        ...(preview ? { preview } : {}),
      });
      // Lets the worker answer other messages between batches of a long file.
      await new Promise((resolve) => setTimeout(resolve, 0));
    });
    if (rows === 0) throw new Error(`${file.name}: no records found (the file is empty)`);
    return {
      id: ++this.datasetSeq,
      name: file.name,
      bytes: datasetFileSize(file),
      digest,
      demo,
      file,
      sample,
      rows,
      readWarnings: read.warnings,
      malformed: read.malformed,
      fields: fieldsOf(sample),
      override: AUTO_DETECT,
      cache: new Map(),
      fitted: new Map(),
    };
  }

  /**
   * What the panel shows while a large file is still being read: the format detected from its first rows and,
   * with a model loaded, those rows tokenized. Counts are of the rows read so far.
   */
  private firstRowsPreview(
    file: DatasetFile,
    digest: string,
    demo: boolean,
    sample: RawRecord[],
    rowsSoFar: number,
  ): DatasetPreview {
    const info: DatasetInfo = {
      name: file.name,
      bytes: datasetFileSize(file),
      digest,
      demo,
      fields: fieldsOf(sample),
      override: AUTO_DETECT,
      unmatched: null,
    };
    let spec: FormatSpec;
    try {
      spec = detectFormat(sample);
    } catch (err) {
      return untokenizedPreview({ ...info, unmatched: messageOf(err) }, rowsSoFar, null, {}, [], 0);
    }
    const model = this.studio.model;
    if (!model) return untokenizedPreview(info, rowsSoFar, spec.format, spec.columns, [], 0);
    try {
      const tokenized = tokenizeRecords(sample, spec, model.loaded.tokenizer);
      const whole: TokenizedDataset = {
        ...tokenized,
        file: file.name,
        format: spec.format,
        columns: spec.columns,
        rows: rowsSoFar,
        skipped: tokenized.skipped,
      };
      return tokenizedPreview(info, fitDataset(whole, model.loaded.tokenizer), previewTokenizer(model.loaded), null);
    } catch {
      // The first rows alone may not tokenize (no usable example yet): the full read will say why, if it persists.
      return untokenizedPreview(info, rowsSoFar, spec.format, spec.columns, [], 0);
    }
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
    const candidate: DatasetState = { ...ds, override, cache: new Map(), fitted: new Map() };
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
   * The examples at `seq` tokens (`seq` null: documents whole, for the preview). The file is streamed through the
   * tokenizer once per (model, format choice), with progress; each sequence length is fitted from that, and cached.
   */
  private async examples(
    ds: DatasetState,
    model: ModelState,
    seq: number | null,
    truncation: Truncation = DEFAULT_TRUNCATION,
  ): Promise<LoadedDataset> {
    const whole = await this.tokenized(ds, model);
    const key = `${model.epoch}:${seq ?? 'whole'}:${seq === null ? '' : truncation}`;
    let fitted = ds.fitted.get(key);
    if (!fitted) {
      fitted = fitDataset(whole, model.loaded.tokenizer, seq === null ? {} : { seqLen: seq, truncation });
      ds.fitted.set(key, fitted);
    }
    return fitted;
  }

  private tokenized(ds: DatasetState, model: ModelState): Promise<TokenizedDataset> {
    // One tokenizer's examples at a time: a large file's tokens are most of the memory it costs.
    for (const key of ds.cache.keys()) if (key !== model.epoch) ds.cache.delete(key);
    for (const key of ds.fitted.keys()) if (!key.startsWith(`${model.epoch}:`)) ds.fitted.delete(key);
    let p = ds.cache.get(model.epoch);
    if (!p) {
      p = tokenizeModelDataset(model.loaded, ds.file, {
        ...overrideOptions(ds.override),
        // Only the file being loaded, or the one in use while none is, has its progress shown.
        onProgress: (progress) => {
          if (this.abandoned.has(ds)) throw new SupersededLoad();
          const shown = this.loadInFlight ? this.loading : this.studio.dataset;
          if (ds !== shown) return;
          this.studio.post({
            type: 'datasetProgress',
            name: ds.name,
            stage: 'Tokenizing',
            done: progress.bytesRead,
            total: progress.totalBytes,
          });
        },
      });
      ds.cache.set(model.epoch, p);
      p.catch(() => ds.cache.delete(model.epoch));
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
