/** Strided views shared by the row-wise kernels (norms, RoPE, bias), and the size checks their wrappers use. */
import { u32, type ParamValue } from '../gpu/params';
import type { Tensor } from '../gpu/tensor';

/**
 * A strided set of rows: row r starts at offset + floor(r / groups) * ld + (r % groups) * width.
 * groups > 1 addresses per-head slices inside token rows (Qwen3's per-head q/k RMSNorm).
 * Defaults: offset 0, groups 1, ld = groups * width (dense; equals width when groups is 1).
 */
export interface RowView {
  t: Tensor;
  offset?: number;
  ld?: number;
  groups?: number;
}

/** Rows of a matrix stored with leading dimension ld, starting at offset (the column slice is the caller's). */
export interface StridedView {
  t: Tensor;
  offset?: number;
  ld: number;
}

/** A RowView with its defaults filled in. */
export interface ResolvedRows {
  offset: number;
  ld: number;
  groups: number;
}

export function resolveRows(v: RowView, width: number): ResolvedRows {
  const groups = v.groups ?? 1;
  return { offset: v.offset ?? 0, ld: v.ld ?? groups * width, groups };
}

/** Element index of row r, column 0 (the same formula the shaders use). */
export function rowStart(v: ResolvedRows, width: number, r: number): number {
  return v.offset + Math.floor(r / v.groups) * v.ld + (r % v.groups) * width;
}

/** The four u32 params (offset, ld, groups, pad) that every shader's row-view struct fields expect. */
export function rowParams(v: RowView, width: number): ParamValue[] {
  const r = resolveRows(v, width);
  return [u32(r.offset), u32(r.ld), u32(r.groups), u32(0)];
}

/** Throws unless `rows` rows of `width` fit inside the view's tensor without overlapping each other. */
export function checkRows(kernel: string, name: string, v: RowView, rows: number, width: number): void {
  const r = resolveRows(v, width);
  const label = `${kernel} ${name} (${v.t.label})`;
  for (const [k, x] of [
    ['offset', r.offset],
    ['ld', r.ld],
    ['groups', r.groups],
  ] as const) {
    if (!Number.isInteger(x) || x < 0) throw new Error(`${label}: ${k} must be a non-negative integer, got ${x}`);
  }
  if (r.groups < 1) throw new Error(`${label}: groups must be >= 1`);
  if (rows === 0 || width === 0) return;
  if (rows > r.groups && r.ld < r.groups * width) {
    throw new Error(`${label}: ld ${r.ld} < groups ${r.groups} x width ${width}: rows would overlap`);
  }
  const end = rowStart(r, width, rows - 1) + width;
  if (end > v.t.size) {
    throw new Error(
      `${label}: ${rows} rows of ${width} (offset ${r.offset}, ld ${r.ld}, groups ${r.groups}) reach element ${end} of ${v.t.size}`,
    );
  }
}

/** Throws unless a rows x cols block of a strided view fits inside its tensor. */
export function checkStrided(kernel: string, name: string, v: StridedView, rows: number, cols: number): void {
  checkRows(kernel, name, { t: v.t, offset: v.offset, ld: v.ld }, rows, cols);
}

/** Throws unless the tensor holds at least `need` elements (at `offset`) of the expected kind. */
export function checkTensor(
  kernel: string,
  name: string,
  t: Tensor,
  need: number,
  opts: { offset?: number; ints?: boolean } = {},
): void {
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0)
    throw new Error(`${kernel} ${name} (${t.label}): offset must be a non-negative integer, got ${offset}`);
  if (offset + need > t.size) {
    throw new Error(
      `${kernel} ${name} (${t.label}): needs ${need} elements${offset ? ` at offset ${offset}` : ''}, has ${t.size}`,
    );
  }
  if (opts.ints && t.dtype === 'f32') throw new Error(`${kernel} ${name} (${t.label}): expected a u32 tensor, got f32`);
  if (opts.ints === false && t.dtype !== 'f32')
    throw new Error(`${kernel} ${name} (${t.label}): expected an f32 tensor, got ${t.dtype}`);
}

/** Throws unless `n` is a non-negative integer (a count of rows, columns or elements). */
export function checkCount(kernel: string, name: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`${kernel}: ${name} must be a non-negative integer, got ${n}`);
}

/**
 * Throws if a tensor that the dispatch writes is also bound elsewhere in it: WebGPU rejects a
 * buffer that is writable in one binding and bound again in another, and the failure would
 * otherwise surface only as an asynchronous validation error.
 */
export function checkDistinct(
  kernel: string,
  written: Record<string, Tensor>,
  others: Record<string, Tensor | undefined>,
): void {
  const w = Object.entries(written);
  for (let i = 0; i < w.length; i++) {
    for (const [name, t] of [...w.slice(i + 1), ...Object.entries(others)]) {
      if (t && t.buffer === w[i][1].buffer) {
        throw new Error(
          `${kernel}: ${w[i][0]} and ${name} are the same tensor (${t.label}); the output must be a distinct tensor`,
        );
      }
    }
  }
}
