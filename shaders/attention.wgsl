// Causal multi-head attention with grouped-query heads (GQA), tokens as rows (row = b * T + t).
// Head h of q reads columns [h * HD, (h + 1) * HD) of its view; its kv head is h / (H / KVH).
// probs / dscores are dense [B, H, T, T] and hold zeros above the diagonal.
//
// Forward:  probs = softmax(scale * q kᵀ) (causal)           fwd_probs
//           out   = probs v                                  fwd_out
// Backward: dv      = probsᵀ dout  (summed over the group)   bwd_dv
//           dscores = scale * probs * (dout vᵀ - rowsum)     bwd_dscores  (gradient of the raw q·k)
//           dq      = dscores k                              bwd_dq
//           dk      = dscoresᵀ q   (summed over the group)   bwd_dk
// Each entry point writes one buffer (dst), so dq, dk and dv may be column slices of one fused buffer.
//
// Bindings: three read-only slots and one output. Each slot carries a different tensor per entry point,
// so it is declared once per role; WGSL allows that because no entry point uses two names of one slot.
// The wrapper fills a slot an entry point does not use with another of its read-only inputs.
//   slot 0: probs | dscores (dense)     slot 1: k | v (view 1)     slot 2: q | dout (view 2)
//   slot 3: dst (probs, dscores, or the view dst)                  slot 4: params

struct Params {
  batch: u32, seq: u32, heads: u32, kvHeads: u32,
  headDim: u32, off1: u32, ld1: u32, off2: u32,
  ld2: u32, offDst: u32, ldDst: u32, scale: f32,
}

@group(0) @binding(0) var<storage, read> probs: array<f32>;
@group(0) @binding(0) var<storage, read> dscores: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const ROW_WG = 128u;  // threads per (b, h, query row) in the row kernels
const ELEM_WG = 256u; // threads per workgroup in the one-output-per-thread kernels

var<workgroup> red: array<f32, ROW_WG>;

// Tree reductions over the workgroup; call from uniform control flow only.
fn workgroupMax(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = ROW_WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier(); // everyone has read red[0] before the next reduction reuses it
  return r;
}

fn workgroupSum(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = ROW_WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn groupIndex(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

fn kvHeadOf(h: u32) -> u32 {
  return h / (p.heads / p.kvHeads);
}

// Start of (b, h, i)'s row of probs / dscores.
fn scoreRow(b: u32, h: u32, i: u32) -> u32 {
  return ((b * p.heads + h) * p.seq + i) * p.seq;
}

// Element (token row, column) of view 1, view 2 and the destination view.
fn at1(row: u32, col: u32) -> u32 { return p.off1 + row * p.ld1 + col; }
fn at2(row: u32, col: u32) -> u32 { return p.off2 + row * p.ld2 + col; }
fn atDst(row: u32, col: u32) -> u32 { return p.offDst + row * p.ldDst + col; }

// One workgroup per (b, h, i): causal softmax of scale * q_i · k_j, zeros above the diagonal.
@compute @workgroup_size(ROW_WG)
fn fwd_probs(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let r = groupIndex(wg, nwg);
  if (r >= p.batch * p.heads * p.seq) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let i = r % T;
  let h = (r / T) % p.heads;
  let b = r / (T * p.heads);
  let qBase = at2(b * T + i, h * HD);
  let kCol = kvHeadOf(h) * HD;
  let base = r * T;

  var localMax = -3.0e38;
  for (var j = lid; j <= i; j += ROW_WG) {
    let kBase = at1(b * T + j, kCol);
    var s = 0.0;
    for (var d = 0u; d < HD; d++) { s = fma(q[qBase + d], k[kBase + d], s); }
    s *= p.scale;
    dst[base + j] = s;
    localMax = max(localMax, s);
  }
  let rowMax = workgroupMax(localMax, lid);

  // Each thread rereads only the entries it wrote itself: no barrier needed between the passes.
  var localSum = 0.0;
  for (var j = lid; j <= i; j += ROW_WG) {
    let e = exp(dst[base + j] - rowMax);
    dst[base + j] = e;
    localSum += e;
  }
  let inv = 1.0 / workgroupSum(localSum, lid);
  for (var j = lid; j < T; j += ROW_WG) {
    if (j <= i) { dst[base + j] *= inv; } else { dst[base + j] = 0.0; }
  }
}

// out[b*T + i, h*HD + d] = sum_{j <= i} probs[b, h, i, j] v[b*T + j, kvh*HD + d]; one thread per output.
@compute @workgroup_size(ELEM_WG)
fn fwd_out(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * ELEM_WG + lid;
  let HD = p.headDim;
  let T = p.seq;
  if (e >= p.batch * T * p.heads * HD) { return; }
  let d = e % HD;
  let h = (e / HD) % p.heads;
  let row = e / (HD * p.heads);
  let i = row % T;
  let b = row / T;
  let pBase = scoreRow(b, h, i);
  let vCol = kvHeadOf(h) * HD + d;
  var s = 0.0;
  for (var j = 0u; j <= i; j++) { s = fma(probs[pBase + j], v[at1(b * T + j, vCol)], s); }
  dst[atDst(row, h * HD + d)] = s;
}

// dv[b*T + j, kvh*HD + d] = sum over the group's heads h and i >= j of probs[b, h, i, j] dout[b*T + i, h*HD + d].
@compute @workgroup_size(ELEM_WG)
fn bwd_dv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * ELEM_WG + lid;
  let HD = p.headDim;
  let T = p.seq;
  if (e >= p.batch * T * p.kvHeads * HD) { return; }
  let d = e % HD;
  let kvh = (e / HD) % p.kvHeads;
  let row = e / (HD * p.kvHeads);
  let j = row % T;
  let b = row / T;
  let group = p.heads / p.kvHeads;
  var s = 0.0;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i = j; i < T; i++) {
      s = fma(probs[scoreRow(b, h, i) + j], dout[at2(b * T + i, h * HD + d)], s);
    }
  }
  dst[atDst(row, kvh * HD + d)] = s;
}

// One workgroup per (b, h, i): softmax backward. With dp_j = dout_i · v_j,
// dscores_ij = scale * probs_ij * (dp_j - sum_j' probs_ij' dp_j'), zeros above the diagonal.
@compute @workgroup_size(ROW_WG)
fn bwd_dscores(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let r = groupIndex(wg, nwg);
  if (r >= p.batch * p.heads * p.seq) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let i = r % T;
  let h = (r / T) % p.heads;
  let b = r / (T * p.heads);
  let doBase = at2(b * T + i, h * HD);
  let vCol = kvHeadOf(h) * HD;
  let base = r * T;

  var localDot = 0.0;
  for (var j = lid; j <= i; j += ROW_WG) {
    let vBase = at1(b * T + j, vCol);
    var dp = 0.0;
    for (var d = 0u; d < HD; d++) { dp = fma(dout[doBase + d], v[vBase + d], dp); }
    dst[base + j] = dp;
    localDot = fma(probs[base + j], dp, localDot);
  }
  let rowDot = workgroupSum(localDot, lid);
  for (var j = lid; j < T; j += ROW_WG) {
    if (j <= i) {
      dst[base + j] = p.scale * probs[base + j] * (dst[base + j] - rowDot);
    } else {
      dst[base + j] = 0.0;
    }
  }
}

// dq[b*T + i, h*HD + d] = sum_{j <= i} dscores[b, h, i, j] k[b*T + j, kvh*HD + d].
@compute @workgroup_size(ELEM_WG)
fn bwd_dq(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * ELEM_WG + lid;
  let HD = p.headDim;
  let T = p.seq;
  if (e >= p.batch * T * p.heads * HD) { return; }
  let d = e % HD;
  let h = (e / HD) % p.heads;
  let row = e / (HD * p.heads);
  let i = row % T;
  let b = row / T;
  let sBase = scoreRow(b, h, i);
  let kCol = kvHeadOf(h) * HD + d;
  var s = 0.0;
  for (var j = 0u; j <= i; j++) { s = fma(dscores[sBase + j], k[at1(b * T + j, kCol)], s); }
  dst[atDst(row, h * HD + d)] = s;
}

// dk[b*T + j, kvh*HD + d] = sum over the group's heads h and i >= j of dscores[b, h, i, j] q[b*T + i, h*HD + d].
@compute @workgroup_size(ELEM_WG)
fn bwd_dk(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * ELEM_WG + lid;
  let HD = p.headDim;
  let T = p.seq;
  if (e >= p.batch * T * p.kvHeads * HD) { return; }
  let d = e % HD;
  let kvh = (e / HD) % p.kvHeads;
  let row = e / (HD * p.kvHeads);
  let j = row % T;
  let b = row / T;
  let group = p.heads / p.kvHeads;
  var s = 0.0;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i = j; i < T; i++) {
      s = fma(dscores[scoreRow(b, h, i) + j], q[at2(b * T + i, h * HD + d)], s);
    }
  }
  dst[atDst(row, kvh * HD + d)] = s;
}
