// Batched GEMM on strided views:  C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]
//   op(A) is M x K: A[b] stored M x K (lda) or, with TRANS_A, K x M.
//   op(B) is K x N: B[b] stored K x N (ldb) or, with TRANS_B, N x K.
// Views (offset, leading dimension, batch stride) let one kernel serve column slices of fused
// buffers (q|k|v), GraLoRA's blocks and every transpose the backward pass needs.
//
// Two formulations of the same product (the wrapper picks one per adapter):
//   main, main_v4,  shared-memory tiles: a BM x BN output tile per workgroup of 16x16 threads, each thread
//   main_g4         a TM x TN register block, A and B staged through shared memory BK deep; main_v4 keeps
//                   the block as vec4s and reads the staged tiles 16 bytes at a time; main_g4 also loads
//                   A and B from memory as vec4s, one tile ahead. The tile constants below are the 64x64 tile; the
//                   wrapper swaps the `tile:` block for the 128x128 and 128x64 tiles (kernels/matmul.ts),
//                   and an autotune at load picks the fastest per adapter (kernels/matmul-tune.ts).
//   reg, reg_vec4   no shared memory and no barriers: each thread owns a 16x16 block of C (sixteen 4x4
//                   chunks) and reads A and B straight from memory, 4 k at a time as 4x4 matrices.
//                   CPU Vulkan drivers (SwiftShader) run a workgroup's threads as coroutines, so every
//                   barrier is a full context switch there; this form does none. A load costs far more
//                   than a multiply-add there, hence the large block (8 loads feed 64 multiply-adds).
//                   reg_vec4 loads vec4s along each operand's contiguous axis and needs 4-aligned
//                   views; reg loads scalars.

// Split-K: with splits > 1, workgroup z = split * batch + b computes the partial product over
// k in [split * kChunk, split * kChunk + kChunk) into its own slice of C (strideSplit apart), and
// split_sum adds the slices into the real C. Narrow products with a long K (LoRA's dA = dHᵀ·x over
// every token) otherwise leave most of a GPU idle: their M x N output is only a few tiles.
struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  lda: u32, ldb: u32, ldc: u32, splits: u32,
  offA: u32, offB: u32, offC: u32, kChunk: u32,
  strideA: u32, strideB: u32, strideC: u32, strideSplit: u32,
  alpha: f32, beta: f32, _p3: u32, _p4: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;

// B may be a frozen weight stored as packed f16/bf16: kernels/weight-storage.ts replaces this block
// (the same functions, reading two values per u32 word) for those tensors.
// weight-storage:begin B 1
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(1) var<storage, read> B4: array<vec4<f32>>;
fn readB(i: u32) -> f32 { return B[i]; }
fn readB4(i: u32) -> vec4<f32> { return B4[i]; }
fn countB4() -> u32 { return arrayLength(&B4); }
// weight-storage:end
@group(0) @binding(3) var<uniform> p: Params;

// A workgroup's batch entry, K range and output base, from workgroup_id.z. Returned as a value (not kept
// in private variables) so the loops over it stay uniform control flow for the barriers.
struct Slice { b: u32, kBegin: u32, kEnd: u32, cBase: u32 }

fn sliceOf(z: u32) -> Slice {
  let b = z % p.batch;
  let split = z / p.batch;
  let kBegin = split * p.kChunk;
  return Slice(b, kBegin, min(p.K, kBegin + p.kChunk), p.offC + b * p.strideC + split * p.strideSplit);
}

var<private> kEnd: u32; // the slice's end, for the element loaders (zero past it)

// tile:begin
const BM = 64u;
const BN = 64u;
const BK = 16u;
const STAGES = 1u; // staged tiles in shared memory: 2 lets main_g4 fill one while multiplying the other
// tile:end
const TM = BM / 16u; // rows of C per thread
const TN = BN / 16u; // columns of C per thread
const LOADS_A = BM * BK / 256u; // elements of the A tile each thread stages
const LOADS_B = BK * BN / 256u;

// The staged tiles, [BK][BM] and [BK][BN], as vec4s (STAGES of each): main reads them a scalar at a time,
// main_v4 and main_g4 a vec4.
const A_STAGE = BK * BM / 4u; // vec4s of one staged tile
const B_STAGE = BK * BN / 4u;
var<workgroup> As4: array<vec4<f32>, STAGES * A_STAGE>;
var<workgroup> Bs4: array<vec4<f32>, STAGES * B_STAGE>;

fn loadA(b: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= kEnd) { return 0.0; }
  let base = p.offA + b * p.strideA;
  if (TRANS_A) { return A[base + k * p.lda + m]; }
  return A[base + m * p.lda + k];
}

fn loadB(b: u32, k: u32, n: u32) -> f32 {
  if (k >= kEnd || n >= p.N) { return 0.0; }
  let base = p.offB + b * p.strideB;
  if (TRANS_B) { return readB(base + n * p.ldb + k); }
  return readB(base + k * p.ldb + n);
}

// Cooperative loads of the A and B tiles at depth k0; the index order follows the stored layout so reads
// coalesce. BM and BN are multiples of 4, so element (k, m) sits in component m % 4.
fn stageTiles(b: u32, row0: u32, col0: u32, k0: u32, li: u32) {
  for (var i = 0u; i < LOADS_A; i++) {
    let e = li + i * 256u;
    var m: u32; var k: u32;
    if (TRANS_A) { k = e / BM; m = e % BM; } else { m = e / BK; k = e % BK; }
    As4[(k * BM + m) / 4u][m % 4u] = loadA(b, row0 + m, k0 + k);
  }
  for (var i = 0u; i < LOADS_B; i++) {
    let e = li + i * 256u;
    var n: u32; var kb: u32;
    if (TRANS_B) { n = e / BK; kb = e % BK; } else { kb = e / BN; n = e % BN; }
    Bs4[(kb * BN + n) / 4u][n % 4u] = loadB(b, k0 + kb, col0 + n);
  }
}

// A tiled workgroup's batch entry and K range, and the origin of its output tile; sets kEnd for the loaders.
struct Tile { sl: Slice, row0: u32, col0: u32 }

fn tileOf(wg: vec3<u32>) -> Tile {
  let sl = sliceOf(wg.z);
  kEnd = sl.kEnd;
  return Tile(sl, wg.y * BM, wg.x * BN);
}

// C[r, c] = alpha * v + beta * C[r, c], inside the M x N bounds.
fn storeC(cbase: u32, r: u32, c: u32, v: f32) {
  if (r >= p.M || c >= p.N) { return; }
  let idx = cbase + r * p.ldc + c;
  var out = p.alpha * v;
  if (p.beta != 0.0) { out += p.beta * C[idx]; }
  C[idx] = out;
}

// Thread (x, y) owns rows y + 16i and columns x + 16j: neighbouring threads read neighbouring words.
@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let t = tileOf(wg);
  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) { for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; } }

  for (var k0 = t.sl.kBegin; k0 < t.sl.kEnd; k0 += BK) {
    stageTiles(t.sl.b, t.row0, t.col0, k0, li);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var a: array<f32, TM>;
      var bv: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { let m = lid.y + 16u * i; a[i] = As4[(k * BM + m) / 4u][m % 4u]; }
      for (var j = 0u; j < TN; j++) { let n = lid.x + 16u * j; bv[j] = Bs4[(k * BN + n) / 4u][n % 4u]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(a[i], bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) { storeC(t.sl.cBase, t.row0 + lid.y + 16u * i, t.col0 + lid.x + 16u * j, acc[i][j]); }
  }
}

// The same tile with vec4 register blocks: thread (x, y) owns rows 4y + 64i + e and columns 4x + 64j + f
// (e, f < 4), whole vec4s of the staged tiles, so each k step is TM/4 + TN/4 16-byte shared loads feeding
// TM x TN multiply-adds (main: TM + TN scalar loads). Needs BM and BN multiples of 64.
const TM4 = TM / 4u;
const TN4 = TN / 4u;

// Row 4i + e, column group j of a thread's block at [(4i + e) * TN4 + j].
alias Block4 = array<vec4<f32>, TM * TN4>;

// acc += the rows of staged A tile `s` times the columns of staged B tile `s` that this thread owns.
fn multiplyStaged(acc: ptr<function, Block4>, lid: vec3<u32>, s: u32) {
  for (var k = 0u; k < BK; k++) {
    var a: array<vec4<f32>, TM4>;
    var bv: array<vec4<f32>, TN4>;
    for (var i = 0u; i < TM4; i++) { a[i] = As4[s * A_STAGE + k * BM / 4u + lid.y + 16u * i]; }
    for (var j = 0u; j < TN4; j++) { bv[j] = Bs4[s * B_STAGE + k * BN / 4u + lid.x + 16u * j]; }
    for (var i = 0u; i < TM4; i++) {
      for (var e = 0u; e < 4u; e++) {
        for (var j = 0u; j < TN4; j++) {
          let t = (4u * i + e) * TN4 + j;
          (*acc)[t] = fma(vec4<f32>(a[i][e]), bv[j], (*acc)[t]);
        }
      }
    }
  }
}

fn storeBlock4(cbase: u32, row0: u32, col0: u32, lid: vec3<u32>, acc: ptr<function, Block4>) {
  for (var i = 0u; i < TM4; i++) {
    for (var e = 0u; e < 4u; e++) {
      let r = row0 + 4u * lid.y + 64u * i + e;
      for (var j = 0u; j < TN4; j++) {
        let v = (*acc)[(4u * i + e) * TN4 + j];
        for (var f = 0u; f < 4u; f++) { storeC(cbase, r, col0 + 4u * lid.x + 64u * j + f, v[f]); }
      }
    }
  }
}

@compute @workgroup_size(16, 16, 1)
fn main_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let t = tileOf(wg);
  var acc: Block4;
  for (var k0 = t.sl.kBegin; k0 < t.sl.kEnd; k0 += BK) {
    stageTiles(t.sl.b, t.row0, t.col0, k0, li);
    workgroupBarrier();
    multiplyStaged(&acc, lid, 0u);
    workgroupBarrier();
  }
  storeBlock4(t.sl.cBase, t.row0, t.col0, lid, &acc);
}

// main_v4 with vec4 global loads, fetched one tile ahead: while the workgroup multiplies the staged tile,
// each thread's loads of the next one are already in flight (registers, then shared memory after the
// barrier). With STAGES = 2 (the wrapper's g4 tiles) shared memory is double-buffered: one barrier per tile. Every view 4-aligned and K % 4 == 0 (the wrapper checks), so a vec4 along k is wholly inside
// or outside the slice; lanes past M or N feed only outputs that are never stored.
const A4_PER_THREAD = (A_STAGE + 255u) / 256u;
const B4_PER_THREAD = (B_STAGE + 255u) / 256u;

struct Fetched { a: array<vec4<f32>, A4_PER_THREAD>, b: array<vec4<f32>, B4_PER_THREAD> }

// vec4 number e4 of the A tile at depth k0: along m when A is stored K x M, else along k.
fn fetchA4(base: u32, row0: u32, k0: u32, e4: u32) -> vec4<f32> {
  let last = arrayLength(&A4) - 1u;
  if (TRANS_A) {
    let k = k0 + e4 / (BM / 4u);
    if (k >= kEnd) { return vec4<f32>(0.0); }
    return A4[min((base + k * p.lda + row0 + 4u * (e4 % (BM / 4u))) / 4u, last)];
  }
  let k = k0 + 4u * (e4 % (BK / 4u));
  if (k >= kEnd) { return vec4<f32>(0.0); }
  return A4[min((base + min(row0 + e4 / (BK / 4u), p.M - 1u) * p.lda + k) / 4u, last)];
}

// vec4 number e4 of the B tile at depth k0: along n when B is stored K x N, else along k.
fn fetchB4(base: u32, col0: u32, k0: u32, e4: u32) -> vec4<f32> {
  let last = countB4() - 1u;
  if (TRANS_B) {
    let k = k0 + 4u * (e4 % (BK / 4u));
    if (k >= kEnd) { return vec4<f32>(0.0); }
    return readB4(min((base + min(col0 + e4 / (BK / 4u), p.N - 1u) * p.ldb + k) / 4u, last));
  }
  let k = k0 + e4 / (BN / 4u);
  if (k >= kEnd) { return vec4<f32>(0.0); }
  return readB4(min((base + k * p.ldb + col0 + 4u * (e4 % (BN / 4u))) / 4u, last));
}

fn fetchTiles(baseA: u32, baseB: u32, row0: u32, col0: u32, k0: u32, li: u32) -> Fetched {
  var f: Fetched;
  for (var i = 0u; i < A4_PER_THREAD; i++) {
    let e4 = li + 256u * i;
    if (e4 < A_STAGE) { f.a[i] = fetchA4(baseA, row0, k0, e4); }
  }
  for (var i = 0u; i < B4_PER_THREAD; i++) {
    let e4 = li + 256u * i;
    if (e4 < B_STAGE) { f.b[i] = fetchB4(baseB, col0, k0, e4); }
  }
  return f;
}

// Into staged tile `s`, [BK][BM] and [BK][BN]: a vec4 along m or n is one shared vec4, one along k four scalars.
fn stageFetched(f: ptr<function, Fetched>, li: u32, s: u32) {
  for (var i = 0u; i < A4_PER_THREAD; i++) {
    let e4 = li + 256u * i;
    if (e4 >= A_STAGE) { continue; }
    let v = (*f).a[i];
    if (TRANS_A) { As4[s * A_STAGE + e4] = v; continue; }
    let m = e4 / (BK / 4u);
    let k = 4u * (e4 % (BK / 4u));
    for (var c = 0u; c < 4u; c++) { As4[s * A_STAGE + ((k + c) * BM + m) / 4u][m % 4u] = v[c]; }
  }
  for (var i = 0u; i < B4_PER_THREAD; i++) {
    let e4 = li + 256u * i;
    if (e4 >= B_STAGE) { continue; }
    let v = (*f).b[i];
    if (!TRANS_B) { Bs4[s * B_STAGE + e4] = v; continue; }
    let n = e4 / (BK / 4u);
    let k = 4u * (e4 % (BK / 4u));
    for (var c = 0u; c < 4u; c++) { Bs4[s * B_STAGE + ((k + c) * BN + n) / 4u][n % 4u] = v[c]; }
  }
}

@compute @workgroup_size(16, 16, 1)
fn main_g4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
           @builtin(local_invocation_index) li: u32) {
  let t = tileOf(wg);
  let baseA = p.offA + t.sl.b * p.strideA;
  let baseB = p.offB + t.sl.b * p.strideB;
  var acc: Block4;
  var next = fetchTiles(baseA, baseB, t.row0, t.col0, t.sl.kBegin, li);
  var stage = 0u;
  for (var k0 = t.sl.kBegin; k0 < t.sl.kEnd; k0 += BK) {
    stageFetched(&next, li, stage);
    workgroupBarrier();
    next = fetchTiles(baseA, baseB, t.row0, t.col0, k0 + BK, li); // zeros past the slice
    multiplyStaged(&acc, lid, stage);
    // Two stages: the next tile goes to the other buffer, and the barrier after staging it also orders
    // these reads before this buffer is written again. One stage: wait for every thread here.
    if (STAGES == 1u) { workgroupBarrier(); }
    stage = (stage + 1u) % STAGES;
  }
  storeBlock4(t.sl.cBase, t.row0, t.col0, lid, &acc);
}

// ------------------------------------------------------------------ barrier-free register blocking
// Threads form a WX x WY grid (pipeline constants sized to the problem); thread (x, y) owns rows
// [16y, 16y + 16) and columns [16x, 16x + 16) of its workgroup's tile. A 4x4 chunk is held as a mat4x4
// whose column j is output column j, so a chunk product is one matrix multiply.
override WX: u32 = 4u;
override WY: u32 = 4u;

@group(0) @binding(0) var<storage, read> A4: array<vec4<f32>>;

// Element (m, k) of op(A) and (k, n) of op(B), zero past the slice's K so a partial last chunk adds nothing.
// Rows past M and columns past N are clamped: they feed only outputs that are never stored.
fn elemA(base: u32, m: u32, k: u32) -> f32 {
  let mc = min(m, p.M - 1u);
  let kc = min(k, p.K - 1u);
  var i = base + mc * p.lda + kc;
  if (TRANS_A) { i = base + kc * p.lda + mc; }
  return select(0.0, A[i], k < kEnd);
}

fn elemB(base: u32, k: u32, n: u32) -> f32 {
  let kc = min(k, p.K - 1u);
  let nc = min(n, p.N - 1u);
  var i = base + kc * p.ldb + nc;
  if (TRANS_B) { i = base + nc * p.ldb + kc; }
  return select(0.0, readB(i), k < kEnd);
}

// 4x4 chunks of op(A) (rows m0.., columns k0..) and op(B) (rows k0.., columns n0..) from scalars.
// Written out rather than looped: CPU drivers keep indexed matrices in memory.
fn colA(base: u32, m0: u32, k: u32) -> vec4<f32> {
  return vec4<f32>(elemA(base, m0, k), elemA(base, m0 + 1u, k), elemA(base, m0 + 2u, k), elemA(base, m0 + 3u, k));
}

fn colB(base: u32, k0: u32, n: u32) -> vec4<f32> {
  return vec4<f32>(elemB(base, k0, n), elemB(base, k0 + 1u, n), elemB(base, k0 + 2u, n), elemB(base, k0 + 3u, n));
}

fn chunkA(base: u32, m0: u32, k0: u32) -> mat4x4<f32> {
  return mat4x4<f32>(colA(base, m0, k0), colA(base, m0, k0 + 1u), colA(base, m0, k0 + 2u), colA(base, m0, k0 + 3u));
}

fn chunkB(base: u32, k0: u32, n0: u32) -> mat4x4<f32> {
  return mat4x4<f32>(colB(base, k0, n0), colB(base, k0, n0 + 1u), colB(base, k0, n0 + 2u), colB(base, k0, n0 + 3u));
}

// The same chunks from four vec4 loads along the stored rows (every view 4-aligned, K % 4 == 0).
// Four consecutive stored rows starting at vec4 index i, stepping ld / 4: either the chunk's columns
// or its rows, depending on the transpose. Indices past the buffer are clamped (those lanes are unused).
fn rowsA(i: u32) -> mat4x4<f32> {
  let s = p.lda / 4u;
  let last = arrayLength(&A4) - 1u;
  return mat4x4<f32>(A4[min(i, last)], A4[min(i + s, last)], A4[min(i + 2u * s, last)], A4[min(i + 3u * s, last)]);
}

fn rowsB(i: u32) -> mat4x4<f32> {
  let s = p.ldb / 4u;
  let last = countB4() - 1u;
  return mat4x4<f32>(readB4(min(i, last)), readB4(min(i + s, last)), readB4(min(i + 2u * s, last)), readB4(min(i + 3u * s, last)));
}

fn chunkA4(base: u32, m0: u32, k0: u32) -> mat4x4<f32> {
  // Stored K x M: rows k0.. hold columns of the chunk. Stored M x K: rows m0.. hold its rows.
  if (TRANS_A) { return rowsA((base + k0 * p.lda + m0) / 4u); }
  return transpose(rowsA((base + min(m0, p.M - 1u) * p.lda + k0) / 4u));
}

fn chunkB4(base: u32, k0: u32, n0: u32) -> mat4x4<f32> {
  if (TRANS_B) { return rowsB((base + min(n0, p.N - 1u) * p.ldb + k0) / 4u); }
  return transpose(rowsB((base + k0 * p.ldb + n0) / 4u));
}

// A thread's 16x16 block of C: chunk (i, j) covers rows 4i.., columns 4j.., at c[4i + j].
struct Block { c: array<mat4x4<f32>, 16> }

// acc += [a0; a1; a2; a3] [b0 b1 b2 b3]: one k-step of four.
fn accumulate(acc: ptr<function, Block>, a0: mat4x4<f32>, a1: mat4x4<f32>, a2: mat4x4<f32>, a3: mat4x4<f32>,
              b0: mat4x4<f32>, b1: mat4x4<f32>, b2: mat4x4<f32>, b3: mat4x4<f32>) {
  (*acc).c[0] += a0 * b0; (*acc).c[1] += a0 * b1; (*acc).c[2] += a0 * b2; (*acc).c[3] += a0 * b3;
  (*acc).c[4] += a1 * b0; (*acc).c[5] += a1 * b1; (*acc).c[6] += a1 * b2; (*acc).c[7] += a1 * b3;
  (*acc).c[8] += a2 * b0; (*acc).c[9] += a2 * b1; (*acc).c[10] += a2 * b2; (*acc).c[11] += a2 * b3;
  (*acc).c[12] += a3 * b0; (*acc).c[13] += a3 * b1; (*acc).c[14] += a3 * b2; (*acc).c[15] += a3 * b3;
}

// C[r0 + i, c0 + j] = alpha * block + beta * C, inside the M x N bounds.
fn storeBlock(cbase: u32, r0: u32, c0: u32, acc: ptr<function, Block>) {
  for (var n = 0u; n < 16u; n++) {
    let c = c0 + n;
    if (c >= p.N) { return; }
    for (var m = 0u; m < 16u; m++) {
      let r = r0 + m;
      if (r >= p.M) { break; }
      storeC(cbase, r, c, (*acc).c[(m / 4u) * 4u + n / 4u][n % 4u][m % 4u]);
    }
  }
}

@compute @workgroup_size(WX, WY, 1)
fn reg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let sl = sliceOf(wg.z);
  kEnd = sl.kEnd;
  let r0 = (wg.y * WY + lid.y) * 16u;
  let c0 = (wg.x * WX + lid.x) * 16u;
  let baseA = p.offA + sl.b * p.strideA;
  let baseB = p.offB + sl.b * p.strideB;
  var acc: Block;
  for (var k = sl.kBegin; k < sl.kEnd; k += 4u) {
    accumulate(&acc, chunkA(baseA, r0, k), chunkA(baseA, r0 + 4u, k), chunkA(baseA, r0 + 8u, k), chunkA(baseA, r0 + 12u, k),
               chunkB(baseB, k, c0), chunkB(baseB, k, c0 + 4u), chunkB(baseB, k, c0 + 8u), chunkB(baseB, k, c0 + 12u));
  }
  storeBlock(sl.cBase, r0, c0, &acc);
}

@compute @workgroup_size(WX, WY, 1)
fn reg_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let sl = sliceOf(wg.z);
  kEnd = sl.kEnd;
  let r0 = (wg.y * WY + lid.y) * 16u;
  let c0 = (wg.x * WX + lid.x) * 16u;
  let baseA = p.offA + sl.b * p.strideA;
  let baseB = p.offB + sl.b * p.strideB;
  var acc: Block;
  for (var k = sl.kBegin; k < sl.kEnd; k += 4u) {
    accumulate(&acc, chunkA4(baseA, r0, k), chunkA4(baseA, r0 + 4u, k), chunkA4(baseA, r0 + 8u, k), chunkA4(baseA, r0 + 12u, k),
               chunkB4(baseB, k, c0), chunkB4(baseB, k, c0 + 4u), chunkB4(baseB, k, c0 + 8u), chunkB4(baseB, k, c0 + 12u));
  }
  storeBlock(sl.cBase, r0, c0, &acc);
}

// ------------------------------------------------------------------ split-K sum
// C = alpha * (sum of the splits' partial products) + beta * C. The partials sit in A's binding (the
// scratch buffer, [batch][split][M][N]); B's binding is unused. One thread per element of C.
@compute @workgroup_size(64, 1, 1)
fn split_sum(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = gid.x;
  let m = gid.y;
  let b = gid.z;
  if (n >= p.N || m >= p.M) { return; }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) { sum += A[(b * p.splits + s) * p.M * p.N + m * p.N + n]; }
  let idx = p.offC + b * p.strideC + m * p.ldc + n;
  var v = p.alpha * sum;
  if (p.beta != 0.0) { v += p.beta * C[idx]; }
  C[idx] = v;
}
