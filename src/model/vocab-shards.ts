/**
 * Vocabulary shards: the token embedding and lm_head split by rows into contiguous ranges, each its own GPU tensor
 * within one storage binding. A 151936 x 1536 embedding is 467 MB in bf16, against WebGPU's guaranteed 128 MiB per
 * binding (and some adapters' maxBufferSize); only these [vocab, hidden] tensors get that large, so only they are
 * split. The kernels that read them (the embedding gather, matmul's B operand in the lm head and its backward) run
 * once per shard over the shard's rows. Pure (the studio's estimate plans the same shards).
 */
import { storageBytes } from '../gpu/tensor';
import type { ModelSpec } from './config';
import type { WeightDType } from './weights';

/** One contiguous range of vocabulary rows. */
export interface ShardRange {
  /** The vocabulary id of the shard's first row. */
  rowStart: number;
  rows: number;
}

/**
 * GPU bytes of `rows` rows of a [*, width] weight in storage `dtype` (16-bit storage rounds up to whole words).
 * Shard planning sizes every shard with it: a storage format with its own layout (quantized blocks and their
 * scales) gives its size here.
 */
export function weightRowsBytes(rows: number, width: number, dtype: WeightDType): number {
  return storageBytes(rows * width, dtype, width);
}

/**
 * The most bytes one weight tensor may take on this device: the storage binding limit, and the buffer size limit
 * (buffers are created in 16-byte multiples).
 */
export function tensorByteLimit(
  limits: Pick<GPUSupportedLimits, 'maxBufferSize' | 'maxStorageBufferBindingSize'>,
): number {
  return Math.min(limits.maxStorageBufferBindingSize, Math.floor(limits.maxBufferSize / 16) * 16);
}

/**
 * Row ranges of a [vocab, width] tensor whose each range takes at most `limitBytes` (by `bytesOfRows`): one range
 * when the whole tensor fits, else ranges of the most rows that fit, rounded down to a multiple of 4 (vec4 reads
 * of a shard's column slice of the logits), and a last, shorter one.
 */
export function planVocabShards(
  vocab: number,
  limitBytes: number,
  bytesOfRows: (rows: number) => number,
  what = 'tensor',
): ShardRange[] {
  if (!Number.isInteger(vocab) || vocab < 1) throw new Error(`${what}: invalid row count ${vocab}`);
  if (bytesOfRows(vocab) <= limitBytes) return [{ rowStart: 0, rows: vocab }];
  if (!(bytesOfRows(1) <= limitBytes))
    throw new Error(
      `${what}: one row takes ${bytesOfRows(1)} bytes, more than the ${limitBytes}-byte limit per tensor`,
    );
  // The most rows that fit (bytesOfRows grows with rows).
  let lo = 1;
  let hi = vocab - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (bytesOfRows(mid) <= limitBytes) lo = mid;
    else hi = mid - 1;
  }
  const per = lo >= 4 ? lo - (lo % 4) : lo;
  const out: ShardRange[] = [];
  for (let rowStart = 0; rowStart < vocab; rowStart += per)
    out.push({ rowStart, rows: Math.min(per, vocab - rowStart) });
  return out;
}

/** The tensors stored in vocabulary shards when too large: the token embedding, and lm_head unless tied. */
export function vocabTensorNames(spec: ModelSpec): string[] {
  const embed = spec.family === 'gpt2' ? 'wte.weight' : 'model.embed_tokens.weight';
  return spec.tieWordEmbeddings ? [embed] : [embed, 'lm_head.weight'];
}

/** A shard's label: the tensor's name and its rows, as a Python slice ("model.embed_tokens.weight[0:4096]"). */
export function shardLabel(name: string, r: ShardRange, count: number): string {
  return count === 1 ? name : `${name}[${r.rowStart}:${r.rowStart + r.rows}]`;
}
