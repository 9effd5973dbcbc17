/**
 * Examples -> fixed-shape GPU batches. Every batch has exactly `batch` rows of `seq` tokens
 * (GPU buffers have one shape); rows and positions that carry nothing have target -100.
 *
 * Targets are the labels shifted by one: targets[t] = labels[t + 1] of the same example within
 * the same row, -100 at the last real position of a row, at example ends and on padding.
 * Positions count from 0 at each example start and at each row start, so they are always < seq.
 */
import { Rng } from '../util/random';
import { IGNORE_INDEX, type Example } from './types';

export interface Batch {
  tokens: Uint32Array;
  targets: Int32Array;
  positions: Uint32Array;
  batch: number;
  seq: number;
  /** Targets that are not -100 (the loss is averaged over these). */
  supervised: number;
}

export interface BatchShape {
  batch: number;
  seq: number;
  padId: number;
}

export interface PackOptions extends BatchShape {
  /** Inserted after each example (e.g. EOS) unless it already ends with it; null: none. */
  separatorId: number | null;
}

/** One row before padding: parallel arrays of at most `seq` entries. */
interface Row {
  tokens: number[];
  targets: number[];
  positions: number[];
}

export function truncate(ex: Example, seqLen: number): Example {
  if (ex.inputIds.length <= seqLen) return ex;
  return { inputIds: ex.inputIds.slice(0, seqLen), labels: ex.labels.slice(0, seqLen) };
}

/** One example per row, truncated to seq, padded with padId. */
export function padBatches(examples: Example[], opts: BatchShape): Batch[] {
  checkShape(opts);
  return toBatches(
    examples.map((ex) => exampleRow(truncate(ex, opts.seq))),
    opts,
  );
}

/**
 * Concatenates the examples (each followed by the separator, which is supervised as the end of
 * its example) and cuts the stream into rows of seq tokens. An example may continue on the next
 * row; it restarts there at position 0 and nothing crosses a row or an example boundary.
 */
export function packBatches(examples: Example[], opts: PackOptions): Batch[] {
  checkShape(opts);
  const rows: Row[] = [];
  let row: Row = { tokens: [], targets: [], positions: [] };
  for (const ex of examples) {
    const { inputIds, labels } = withSeparator(ex, opts.separatorId);
    for (let i = 0; i < inputIds.length; i++) {
      if (row.tokens.length === opts.seq) {
        rows.push(row);
        row = { tokens: [], targets: [], positions: [] };
      }
      const rowStart = row.tokens.length === 0;
      const lastInRow = row.tokens.length === opts.seq - 1;
      row.tokens.push(inputIds[i]);
      row.positions.push(i === 0 || rowStart ? 0 : row.positions[row.positions.length - 1] + 1);
      row.targets.push(i + 1 < inputIds.length && !lastInRow ? labels[i + 1] : IGNORE_INDEX);
    }
  }
  if (row.tokens.length > 0) rows.push(row);
  return toBatches(rows, opts);
}

function withSeparator(ex: Example, separatorId: number | null): Example {
  const ids = ex.inputIds;
  if (separatorId === null || ids.length === 0 || ids[ids.length - 1] === separatorId) return ex;
  return { inputIds: [...ids, separatorId], labels: [...ex.labels, separatorId] };
}

/** Tokens a packed epoch holds, separators included: the same whatever the order. */
function packedLength(examples: Example[], separatorId: number | null): number {
  let total = 0;
  for (const ex of examples) total += withSeparator(ex, separatorId).inputIds.length;
  return total;
}

function exampleRow(ex: Example): Row {
  const n = ex.inputIds.length;
  return {
    tokens: Array.from(ex.inputIds),
    targets: Array.from({ length: n }, (_, t) => (t + 1 < n ? ex.labels[t + 1] : IGNORE_INDEX)),
    positions: Array.from({ length: n }, (_, t) => t),
  };
}

/**
 * Groups rows into batches of exactly `batch` rows. Padding continues the last position count
 * (so positions stay < seq and padding looks like the end of the last example to RoPE); a
 * missing row is all padding with positions 0..seq-1; padding targets are -100.
 */
function toBatches(rows: Row[], { batch, seq, padId }: BatchShape): Batch[] {
  const batches: Batch[] = [];
  for (let first = 0; first < rows.length; first += batch) {
    const tokens = new Uint32Array(batch * seq).fill(padId);
    const targets = new Int32Array(batch * seq).fill(IGNORE_INDEX);
    const positions = new Uint32Array(batch * seq);
    let supervised = 0;
    for (let b = 0; b < batch; b++) {
      const row = rows[first + b];
      const n = row ? row.tokens.length : 0;
      const base = b * seq;
      for (let t = 0; t < n; t++) {
        tokens[base + t] = row.tokens[t];
        targets[base + t] = row.targets[t];
        positions[base + t] = row.positions[t];
        if (row.targets[t] !== IGNORE_INDEX) supervised++;
      }
      const next = n > 0 ? row.positions[n - 1] + 1 : 0;
      for (let t = n; t < seq; t++) positions[base + t] = next + (t - n);
    }
    batches.push({ tokens, targets, positions, batch, seq, supervised });
  }
  return batches;
}

function checkShape({ batch, seq, padId }: BatchShape): void {
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer, got ${batch}`);
  if (!Number.isInteger(seq) || seq < 2) throw new Error(`seq must be an integer >= 2, got ${seq}`);
  if (!Number.isInteger(padId) || padId < 0) throw new Error(`padId must be a token id, got ${padId}`);
}

/**
 * Deterministic split: a seeded shuffle picks round(n * fraction) validation items (at least one
 * when the fraction is positive and there are two or more items, and never all of them); both
 * parts keep the original order.
 */
export function splitTrainValidation<T>(
  items: T[],
  validationFraction: number,
  seed: number,
): { train: T[]; validation: T[] } {
  if (!(validationFraction >= 0 && validationFraction < 1)) {
    throw new Error(`validationFraction must be in [0, 1), got ${validationFraction}`);
  }
  const n = items.length;
  let count = Math.min(Math.round(n * validationFraction), Math.max(n - 1, 0));
  if (validationFraction > 0 && n >= 2) count = Math.max(count, 1);
  const picked = new Set(new Rng(seed).shuffle([...Array(n).keys()]).slice(0, count));
  return {
    train: items.filter((_, i) => !picked.has(i)),
    validation: items.filter((_, i) => picked.has(i)),
  };
}

export interface BatchStreamOptions extends BatchShape {
  separatorId?: number | null;
  shuffle: boolean;
  seed: number;
  mode: 'pad' | 'pack';
}

/**
 * Endless batches: epoch after epoch over the examples, reshuffled each epoch. Epoch e's order
 * depends only on (seed, e), so a resumed run can rebuild it without replaying earlier epochs.
 */
export class BatchStream {
  readonly stepsPerEpoch: number;
  /** Zero-based epoch of the batch the last next() returned (0 before the first call). */
  epoch = 0;
  /** Batches already returned from the current epoch. */
  stepInEpoch = 0;
  private readonly examples: Example[];
  private readonly opts: BatchStreamOptions;
  private order: number[] = [];
  private packed: Batch[] = [];

  constructor(examples: Example[], opts: BatchStreamOptions) {
    if (examples.length === 0) throw new Error('BatchStream needs at least one example');
    checkShape(opts);
    this.examples = examples;
    this.opts = opts;
    const rows =
      opts.mode === 'pack' ? Math.ceil(packedLength(examples, opts.separatorId ?? null) / opts.seq) : examples.length;
    this.stepsPerEpoch = Math.ceil(rows / opts.batch);
    this.startEpoch(0);
  }

  next(): Batch {
    if (this.stepInEpoch === this.stepsPerEpoch) this.startEpoch(this.epoch + 1);
    const step = this.stepInEpoch++;
    if (this.opts.mode === 'pack') return this.packed[step];
    const { batch } = this.opts;
    const rows = this.order.slice(step * batch, (step + 1) * batch).map((i) => this.examples[i]);
    return padBatches(rows, this.opts)[0];
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.stepInEpoch = 0;
    this.order = [...this.examples.keys()];
    // Mixing the epoch into the seed keeps each epoch's order independent of the others.
    if (this.opts.shuffle) new Rng((this.opts.seed + Math.imul(epoch, 0x9e3779b1)) >>> 0).shuffle(this.order);
    if (this.opts.mode === 'pack') {
      const ordered = this.order.map((i) => this.examples[i]);
      this.packed = packBatches(ordered, { ...this.opts, separatorId: this.opts.separatorId ?? null });
    }
  }
}
