/**
 * What the studio's jobs share: the channel to the page, the GPU queue, the loaded model and dataset, and what
 * finished runs left behind. studio.ts builds one and hands it to every job module.
 */
import type { DatasetFile, LoadedDataset, RawRecord, TokenizedDataset } from '../data/index';
import type { LoadedModel } from '../engine/load-model';
import type { DirSource } from '../model/formats/source';
import type { ModelWeights } from '../model/weights';
import type { GpuQueue } from './gpu-queue';
import type { AdapterSnapshot, DatasetFormatOverride, MethodId, ModelCard, WorkerEvent } from './protocol';
import type { BufferScope } from './scoped-gpu';

export type Post = (event: WorkerEvent, transfer?: Transferable[]) => void;

export interface ModelState {
  epoch: number;
  loaded: LoadedModel;
  card: ModelCard;
  dir: DirSource;
  /** Null until the upload job has run (or when it failed). */
  weights: ModelWeights | null;
  scope: BufferScope | null;
  uploadError: string | null;
}

export interface DatasetState {
  id: number;
  name: string;
  bytes: number;
  digest: string;
  demo: boolean;
  /** Streamed again for each tokenization (a browser File), or bytes (the demo). */
  file: DatasetFile;
  /** The first records, all that format detection looks at: re-detecting with a new mapping needs no re-read. */
  sample: RawRecord[];
  rows: number;
  readWarnings: string[];
  malformed: number;
  fields: string[];
  override: DatasetFormatOverride;
  /** The whole examples per model epoch (this dataset's format choice), and each sequence length fitted from them. */
  cache: Map<number, Promise<TokenizedDataset>>;
  fitted: Map<string, LoadedDataset>;
}

/** What a finished run leaves behind for export and generation. */
export interface TrainedRun {
  method: MethodId;
  adapter: AdapterSnapshot | null;
  /** Full fine-tuning: the trained copy of the model, alive until the run is deleted or another model loads. */
  full: { weights: ModelWeights; scope: BufferScope | null; modelEpoch: number } | null;
}

export interface StudioState {
  readonly post: Post;
  /** One GPU, one job at a time (gpu-queue.ts). */
  readonly queue: GpuQueue;
  model: ModelState | null;
  dataset: DatasetState | null;
  /** By run id. */
  readonly trained: Map<string, TrainedRun>;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
