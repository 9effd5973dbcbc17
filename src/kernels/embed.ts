/** Token and learned-position embeddings: gather forward, deterministic scatter-add backward. */
import code from '../../shaders/embed.wgsl?raw';
import { grid1d, type CommandList, type KernelSpec } from '../gpu/gpu';
import { u32 } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';
import { checkCount, checkDistinct, checkTensor } from './views';
import { checkWeight, weightSource } from './weight-storage';

const source = { name: 'embed', code };
const WG = 64;

// The forward kernels compile per storage format of the token table (f32, or packed f16/bf16 when frozen).
const forward = (table: Tensor): KernelSpec => ({
  source: weightSource(source, table),
  entry: 'embed_forward',
  bindings: ['read', 'read', 'rw'],
});
const posForward = (table: Tensor): KernelSpec => ({
  source: weightSource(source, table),
  entry: 'embed_pos_forward',
  bindings: ['read', 'read', 'read', 'read', 'rw'],
});
const BACKWARD_ZERO: KernelSpec = { source, entry: 'embed_backward_zero', bindings: ['read', 'read', 'rw'] };
const BACKWARD: KernelSpec = { source, entry: 'embed_backward', bindings: ['read', 'read', 'rw'] };

export interface EmbedForwardArgs {
  /** u32 [rows]; ids >= vocab produce zero rows (never an out-of-bounds read). */
  tokens: Tensor;
  /** [vocab, width]: f32, or packed f16/bf16 (a frozen table). */
  table: Tensor;
  /** [rows, width] */
  out: Tensor;
  rows: number;
  width: number;
  /** Rows of the table. */
  vocab: number;
  /** The token id of the table's first row (a vocabulary shard): ids outside [rowStart, rowStart + vocab) read 0. Default 0. */
  rowStart?: number;
  /**
   * out[r] += the table's row for the rows whose id is in the table, others left as they are (the vocabulary shards
   * after the first; without positions). Default false: every row is written.
   */
  accumulate?: boolean;
  /** u32 [rows], with posTable: GPT-2 learned positions. */
  positions?: Tensor;
  /** [maxPos, width]: out += posTable[pos]; positions >= maxPos add nothing. */
  posTable?: Tensor;
}

/** out[r] = table[tokens[r]] (+ posTable[positions[r]]). */
export function embedForward(list: CommandList, a: EmbedForwardArgs): void {
  const k = 'embedForward';
  checkCount(k, 'rows', a.rows);
  checkCount(k, 'width', a.width);
  checkCount(k, 'vocab', a.vocab);
  checkTensor(k, 'tokens', a.tokens, a.rows, { ints: true });
  checkWeight(k, 'table', a.table);
  checkTensor(k, 'table', a.table, a.vocab * a.width);
  checkTensor(k, 'out', a.out, a.rows * a.width, { ints: false });
  if (!a.positions !== !a.posTable) throw new Error(`${k}: positions and posTable go together (got only one)`);
  const rowStart = a.rowStart ?? 0;
  if (!Number.isInteger(rowStart) || rowStart < 0) throw new Error(`${k}: rowStart must be a count, got ${rowStart}`);
  if (a.accumulate && a.posTable)
    throw new Error(`${k}: accumulate adds the table only (positions go with the first shard)`);
  checkDistinct(k, { out: a.out }, { tokens: a.tokens, table: a.table, positions: a.positions, posTable: a.posTable });
  const grid = grid1d(a.rows * a.width, WG);
  if (a.positions && a.posTable) {
    const maxPos = a.width === 0 ? 0 : Math.floor(a.posTable.size / a.width);
    checkTensor(k, 'positions', a.positions, a.rows, { ints: true });
    checkTensor(k, 'posTable', a.posTable, maxPos * a.width, { ints: false });
    list.dispatch(
      posForward(a.table),
      [a.tokens, a.table, a.positions, a.posTable, a.out],
      params(a.rows, a.width, a.vocab, maxPos, false, rowStart),
      grid,
    );
  } else {
    const p = params(a.rows, a.width, a.vocab, 0, !!a.accumulate, rowStart);
    list.dispatch(forward(a.table), [a.tokens, a.table, a.out], p, grid);
  }
}

export interface EmbedBackwardArgs {
  /** u32 [rows] */
  tokens: Tensor;
  /** [rows, width] */
  dout: Tensor;
  /** [vocab, width] */
  dtable: Tensor;
  rows: number;
  width: number;
  vocab: number;
  /** true: dtable += gradient; false: dtable = gradient (rows no token hits become 0). */
  accumulate: boolean;
}

/** dtable[v] (+)= sum of dout[r] over rows with tokens[r] == v; ids >= vocab are skipped. */
export function embedBackward(list: CommandList, a: EmbedBackwardArgs): void {
  scatter(list, 'embedBackward', a.tokens, 'tokens', a.dout, a.dtable, a.rows, a.width, a.vocab, a.accumulate);
}

export interface PositionEmbedBackwardArgs {
  /** u32 [rows] */
  positions: Tensor;
  /** [rows, width] */
  dout: Tensor;
  /** [maxPos, width] */
  dtable: Tensor;
  rows: number;
  width: number;
  maxPos: number;
  accumulate: boolean;
}

/** Gradient of GPT-2's learned position table: dtable[p] (+)= sum of dout[r] over rows at position p. */
export function positionEmbedBackward(list: CommandList, a: PositionEmbedBackwardArgs): void {
  scatter(
    list,
    'positionEmbedBackward',
    a.positions,
    'positions',
    a.dout,
    a.dtable,
    a.rows,
    a.width,
    a.maxPos,
    a.accumulate,
  );
}

function scatter(
  list: CommandList,
  k: string,
  ids: Tensor,
  idsName: string,
  dout: Tensor,
  dtable: Tensor,
  rows: number,
  width: number,
  tableRows: number,
  accumulate: boolean,
): void {
  checkCount(k, 'rows', rows);
  checkCount(k, 'width', width);
  checkCount(k, 'table rows', tableRows);
  checkTensor(k, idsName, ids, rows, { ints: true });
  checkTensor(k, 'dout', dout, rows * width, { ints: false });
  checkTensor(k, 'dtable', dtable, tableRows * width, { ints: false });
  checkDistinct(k, { dtable }, { [idsName]: ids, dout });
  const p = params(rows, width, tableRows, 0, accumulate);
  if (!accumulate) list.dispatch(BACKWARD_ZERO, [ids, dout, dtable], p, grid1d(tableRows * width, WG));
  list.dispatch(BACKWARD, [ids, dout, dtable], p, grid1d(width, WG));
}

function params(rows: number, width: number, vocab: number, maxPos: number, accumulate: boolean, rowStart = 0) {
  return [u32(rows), u32(width), u32(vocab), u32(maxPos), u32(accumulate ? 1 : 0), u32(rowStart), u32(0), u32(0)];
}
