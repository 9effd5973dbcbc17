// Batched GEMM on strided views:  C[b] = alpha * op(A[b]) * op(B[b]) + beta * C[b]
//   op(A) is M x K: A[b] stored M x K (lda) or, with TRANS_A, K x M.
//   op(B) is K x N: B[b] stored K x N (ldb) or, with TRANS_B, N x K.
// Views (offset, leading dimension, batch stride) let one kernel serve column slices of fused
// buffers (q|k|v), GraLoRA's blocks and every transpose the backward pass needs.
// 64x64 output tile per workgroup, 16x16 threads, 4x4 register block per thread, BK = 16.

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  lda: u32, ldb: u32, ldc: u32, _p0: u32,
  offA: u32, offB: u32, offC: u32, _p1: u32,
  strideA: u32, strideB: u32, strideC: u32, _p2: u32,
  alpha: f32, beta: f32, _p3: u32, _p4: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;

@group(0) @binding(0) var<storage, read> A: array<f32>;
@group(0) @binding(1) var<storage, read> B: array<f32>;
@group(0) @binding(2) var<storage, read_write> C: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const BM = 64u;
const BN = 64u;
const BK = 16u;

var<workgroup> As: array<f32, 1024>; // [BK][BM]
var<workgroup> Bs: array<f32, 1024>; // [BK][BN]

fn loadA(b: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  let base = p.offA + b * p.strideA;
  if (TRANS_A) { return A[base + k * p.lda + m]; }
  return A[base + m * p.lda + k];
}

fn loadB(b: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  let base = p.offB + b * p.strideB;
  if (TRANS_B) { return B[base + n * p.ldb + k]; }
  return B[base + k * p.ldb + n];
}

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let b = wg.z;
  let row0 = wg.y * BM;
  let col0 = wg.x * BN;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < 4u; i++) { for (var j = 0u; j < 4u; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < p.K; k0 += BK) {
    // Cooperative loads; the index order follows the stored layout so reads coalesce.
    for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      var m: u32; var k: u32;
      if (TRANS_A) { k = e / BM; m = e % BM; } else { m = e / BK; k = e % BK; }
      As[k * BM + m] = loadA(b, row0 + m, k0 + k);
      var n: u32; var kb: u32;
      if (TRANS_B) { n = e / BK; kb = e % BK; } else { kb = e / BN; n = e % BN; }
      Bs[kb * BN + n] = loadB(b, k0 + kb, col0 + n);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var a: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) { a[i] = As[k * BM + lid.y + 16u * i]; }
      for (var j = 0u; j < 4u; j++) { bv[j] = Bs[k * BN + lid.x + 16u * j]; }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) { acc[i][j] = fma(a[i], bv[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let cbase = p.offC + b * p.strideC;
  for (var i = 0u; i < 4u; i++) {
    let r = row0 + lid.y + 16u * i;
    if (r >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let c = col0 + lid.x + 16u * j;
      if (c >= p.N) { continue; }
      let idx = cbase + r * p.ldc + c;
      var v = p.alpha * acc[i][j];
      if (p.beta != 0.0) { v += p.beta * C[idx]; }
      C[idx] = v;
    }
  }
}
