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
// Two formulations (the wrapper picks one per adapter):
//   workgroup  fwd_probs / bwd_dscores run one workgroup per score row with tree reductions; the four
//              products run one thread per output element. The layout real GPUs like.
//   thread     no barriers, for CPU Vulkan drivers (SwiftShader), which run a workgroup's threads as
//              coroutines and pay a switch per thread at every barrier. rows_probs / rows_dscores give
//              each thread four query rows of one (b, h), walked serially over the keys in 4x4 blocks;
//              the products run as 4x4 register blocks (prod_scores: out, dq; prod_scores_t: dv, dk).
//
// Bindings: three read-only slots and one output. Each slot carries a different tensor per entry point,
// so it is declared once per role; WGSL allows that because no entry point uses two names of one slot.
// The wrapper fills a slot an entry point does not use with another of its read-only inputs.
//   slot 0: probs | dscores (dense) | positions (the probs kernels, u32 [B*T])
//   slot 1: k | v (view 1)     slot 2: q | dout (view 2)
//   slot 3: dst (probs, dscores, or the view dst)                  slot 4: params

struct Params {
  batch: u32, seq: u32, heads: u32, kvHeads: u32,
  headDim: u32, off1: u32, ld1: u32, off2: u32,
  ld2: u32, offDst: u32, ldDst: u32, scale: f32,
  // 1: packed rows; a query at position p attends only to the p keys before it (its own document).
  docMask: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> probs: array<f32>;
@group(0) @binding(0) var<storage, read> dscores: array<f32>;
@group(0) @binding(0) var<storage, read> positions: array<u32>;
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

// The first key query i of row b attends to: its document's start when rows are packed, else 0.
fn firstKey(b: u32, i: u32) -> u32 {
  return select(0u, i - min(positions[b * p.seq + i], i), p.docMask != 0u);
}

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

  let lo = firstKey(b, i);
  var localMax = -3.0e38;
  for (var j = lo + lid; j <= i; j += ROW_WG) {
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
  for (var j = lo + lid; j <= i; j += ROW_WG) {
    let e = exp(dst[base + j] - rowMax);
    dst[base + j] = e;
    localSum += e;
  }
  let inv = 1.0 / workgroupSum(localSum, lid);
  for (var j = lid; j < T; j += ROW_WG) {
    if (j >= lo && j <= i) { dst[base + j] *= inv; } else { dst[base + j] = 0.0; }
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

// ------------------------------------------------------------------ barrier-free (thread) variant
// These entry points name the slots by role: slot 0 a score matrix (probs or dscores), slot 1 a view-1
// matrix (k or v), slot 2 a view-2 matrix (q or dout). So one row kernel shape serves q·k and dout·v,
// one product serves out = probs v and dq = dscores k, another dv = probsᵀ dout and dk = dscoresᵀ q.
@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read> view1: array<f32>;
@group(0) @binding(2) var<storage, read> view2: array<f32>;

const THREAD_WG = 64u;

fn threadIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return groupIndex(wg, nwg) * THREAD_WG + lid;
}

// The row kernels give each thread four query rows i0..i0+3 of one (b, h) and walk the keys four at a
// time: a 4x4 block of dot products costs 8 loads per head dimension instead of 32.
struct RowBlock { b: u32, h: u32, i0: u32 }

fn rowBlockOf(e: u32) -> RowBlock {
  let nt = (p.seq + 3u) / 4u;
  return RowBlock(e / (nt * p.heads), (e / nt) % p.heads, (e % nt) * 4u);
}

// dots[c][r] = view2[row i0 + r, h*HD + ..] · view1[row j0 + c, kvh*HD + ..]  (q·k forward, dout·v backward).
fn dots(rb: RowBlock, j0: u32) -> mat4x4<f32> {
  let T = p.seq;
  let HD = p.headDim;
  let a0 = at2(rb.b * T + clampT(rb.i0), rb.h * HD);
  let a1 = at2(rb.b * T + clampT(rb.i0 + 1u), rb.h * HD);
  let a2 = at2(rb.b * T + clampT(rb.i0 + 2u), rb.h * HD);
  let a3 = at2(rb.b * T + clampT(rb.i0 + 3u), rb.h * HD);
  let col = kvHeadOf(rb.h) * HD;
  let b0 = at1(rb.b * T + clampT(j0), col);
  let b1 = at1(rb.b * T + clampT(j0 + 1u), col);
  let b2 = at1(rb.b * T + clampT(j0 + 2u), col);
  let b3 = at1(rb.b * T + clampT(j0 + 3u), col);
  var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
  for (var d = 0u; d < HD; d++) {
    let x = vec4<f32>(view2[a0 + d], view2[a1 + d], view2[a2 + d], view2[a3 + d]);
    s0 = fma(x, vec4<f32>(view1[b0 + d]), s0);
    s1 = fma(x, vec4<f32>(view1[b1 + d]), s1);
    s2 = fma(x, vec4<f32>(view1[b2 + d]), s2);
    s3 = fma(x, vec4<f32>(view1[b3 + d]), s3);
  }
  return mat4x4<f32>(s0, s1, s2, s3);
}

// The score loops stay branch-free (CPU drivers compile branchy loop bodies slowly): rows and keys past
// seq are clamped onto the last ones, so a write they duplicate carries the same value as the original.
// Entries above the diagonal get a placeholder that the row's final pass overwrites with zero.
fn putColumn(rb: RowBlock, j: u32, v: vec4<f32>) {
  let jc = clampT(j);
  dst[scoreRow(rb.b, rb.h, clampT(rb.i0)) + jc] = v.x;
  dst[scoreRow(rb.b, rb.h, clampT(rb.i0 + 1u)) + jc] = v.y;
  dst[scoreRow(rb.b, rb.h, clampT(rb.i0 + 2u)) + jc] = v.z;
  dst[scoreRow(rb.b, rb.h, clampT(rb.i0 + 3u)) + jc] = v.w;
}

// Scaled scores of key j for the block's rows, -3e38 above the diagonal and before the row's document
// start (exp() makes those 0).
fn maskedScores(rb: RowBlock, j: u32, dot: vec4<f32>, lo: vec4<u32>) -> vec4<f32> {
  let rows = vec4<u32>(rb.i0) + vec4<u32>(0u, 1u, 2u, 3u);
  let jc = vec4<u32>(clampT(j));
  return select(vec4<f32>(-3.0e38), dot * p.scale, (jc <= rows) & (jc >= lo));
}

// Scores with a clamped duplicate key (j >= seq) removed from the softmax.
fn realKey(j: u32, s: vec4<f32>) -> vec4<f32> {
  return select(vec4<f32>(-3.0e38), s, j < p.seq);
}

// Row i of probs from its raw scores: exp(s - rowMax) / sum on and below the diagonal, zeros above.
fn normalizeRow(rb: RowBlock, i: u32, rowMax: f32, sum: f32) {
  if (i >= p.seq) { return; }
  let base = scoreRow(rb.b, rb.h, i);
  let inv = 1.0 / sum;
  for (var j = 0u; j <= i; j++) { dst[base + j] = exp(dst[base + j] - rowMax) * inv; }
  for (var j = i + 1u; j < p.seq; j++) { dst[base + j] = 0.0; }
}

// Softmax rows with a running max and sum (online softmax) over the raw scores the thread writes,
// then one normalizing pass per row.
@compute @workgroup_size(THREAD_WG)
fn rows_probs(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let e = threadIndex(wg, nwg, lid);
  if (e >= p.batch * p.heads * ((p.seq + 3u) / 4u)) { return; }
  let rb = rowBlockOf(e);
  let lo = vec4<u32>(firstKey(rb.b, clampT(rb.i0)), firstKey(rb.b, clampT(rb.i0 + 1u)),
                     firstKey(rb.b, clampT(rb.i0 + 2u)), firstKey(rb.b, clampT(rb.i0 + 3u)));
  var rowMax = vec4<f32>(-3.0e38);
  var sum = vec4<f32>(0.0);
  for (var j0 = 0u; j0 <= clampT(rb.i0 + 3u); j0 += 4u) {
    let d = dots(rb, j0);
    let s0 = maskedScores(rb, j0, d[0], lo);
    let s1 = maskedScores(rb, j0 + 1u, d[1], lo);
    let s2 = maskedScores(rb, j0 + 2u, d[2], lo);
    let s3 = maskedScores(rb, j0 + 3u, d[3], lo);
    putColumn(rb, j0, s0); putColumn(rb, j0 + 1u, s1); putColumn(rb, j0 + 2u, s2); putColumn(rb, j0 + 3u, s3);
    let u0 = realKey(j0, s0); let u1 = realKey(j0 + 1u, s1); let u2 = realKey(j0 + 2u, s2); let u3 = realKey(j0 + 3u, s3);
    let newMax = max(rowMax, max(max(u0, u1), max(u2, u3)));
    sum = sum * exp(rowMax - newMax) + exp(u0 - newMax) + exp(u1 - newMax) + exp(u2 - newMax) + exp(u3 - newMax);
    rowMax = newMax;
  }
  for (var r = 0u; r < 4u; r++) { normalizeRow(rb, rb.i0 + r, rowMax[r], sum[r]); }
}

// probs[i, j] for the block's rows (zero above the diagonal, as stored); zero for a clamped duplicate key.
fn probsColumn(rb: RowBlock, j: u32) -> vec4<f32> {
  let jc = clampT(j);
  let v = vec4<f32>(
    scores[scoreRow(rb.b, rb.h, clampT(rb.i0)) + jc], scores[scoreRow(rb.b, rb.h, clampT(rb.i0 + 1u)) + jc],
    scores[scoreRow(rb.b, rb.h, clampT(rb.i0 + 2u)) + jc], scores[scoreRow(rb.b, rb.h, clampT(rb.i0 + 3u)) + jc]);
  return select(vec4<f32>(0.0), v, j < p.seq);
}

// Row i of dscores from its stored dp: scale * probs * (dp - rowDot) on and below the diagonal, zeros above.
fn softmaxBackwardRow(rb: RowBlock, i: u32, rowDot: f32) {
  if (i >= p.seq) { return; }
  let base = scoreRow(rb.b, rb.h, i);
  for (var j = 0u; j <= i; j++) { dst[base + j] = p.scale * scores[base + j] * (dst[base + j] - rowDot); }
  for (var j = i + 1u; j < p.seq; j++) { dst[base + j] = 0.0; }
}

// dp_ij = dout_i · v_j stored, rowDot_i = sum_j probs_ij dp_ij accumulated, then the rescale per row.
@compute @workgroup_size(THREAD_WG)
fn rows_dscores(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let e = threadIndex(wg, nwg, lid);
  if (e >= p.batch * p.heads * ((p.seq + 3u) / 4u)) { return; }
  let rb = rowBlockOf(e);
  var rowDot = vec4<f32>(0.0);
  for (var j0 = 0u; j0 <= clampT(rb.i0 + 3u); j0 += 4u) {
    let dp = dots(rb, j0);
    putColumn(rb, j0, dp[0]); putColumn(rb, j0 + 1u, dp[1]); putColumn(rb, j0 + 2u, dp[2]); putColumn(rb, j0 + 3u, dp[3]);
    rowDot = fma(probsColumn(rb, j0), dp[0], rowDot);
    rowDot = fma(probsColumn(rb, j0 + 1u), dp[1], rowDot);
    rowDot = fma(probsColumn(rb, j0 + 2u), dp[2], rowDot);
    rowDot = fma(probsColumn(rb, j0 + 3u), dp[3], rowDot);
  }
  for (var r = 0u; r < 4u; r++) { softmaxBackwardRow(rb, rb.i0 + r, rowDot[r]); }
}

// Block coordinates of the products: 4 sequence positions (t0..t0+3) by 4 head dimensions (d0..d0+3).
// Positions past seq and dimensions past headDim are clamped for loads and skipped for stores.
struct Block { b: u32, head: u32, t0: u32, d0: u32 }

fn blockOf(e: u32, heads: u32) -> Block {
  let nd = (p.headDim + 3u) / 4u;
  let nt = (p.seq + 3u) / 4u;
  let d0 = (e % nd) * 4u;
  let t0 = ((e / nd) % nt) * 4u;
  let head = (e / (nd * nt)) % heads;
  return Block(e / (nd * nt * heads), head, t0, d0);
}

fn blockCount(heads: u32) -> u32 {
  return p.batch * heads * ((p.seq + 3u) / 4u) * ((p.headDim + 3u) / 4u);
}

fn clampT(t: u32) -> u32 { return min(t, p.seq - 1u); }

// Four head dimensions d0.. of row `row` in view 1 / view 2, starting at column `col` (= head * HD).
fn dims1(row: u32, col: u32, d0: u32) -> vec4<f32> {
  let last = p.headDim - 1u;
  let base = at1(row, col);
  return vec4<f32>(view1[base + min(d0, last)], view1[base + min(d0 + 1u, last)], view1[base + min(d0 + 2u, last)], view1[base + min(d0 + 3u, last)]);
}

fn dims2(row: u32, col: u32, d0: u32) -> vec4<f32> {
  let last = p.headDim - 1u;
  let base = at2(row, col);
  return vec4<f32>(view2[base + min(d0, last)], view2[base + min(d0 + 1u, last)], view2[base + min(d0 + 2u, last)], view2[base + min(d0 + 3u, last)]);
}

// Writes a 4x4 block (acc[r] = position t0 + r, dimensions d0..) at column `col` of the dst view.
fn storeBlock(bk: Block, col: u32, acc: array<vec4<f32>, 4>) {
  for (var r = 0u; r < 4u; r++) {
    let t = bk.t0 + r;
    if (t >= p.seq) { return; }
    for (var c = 0u; c < 4u; c++) {
      let d = bk.d0 + c;
      if (d < p.headDim) { dst[atDst(bk.b * p.seq + t, col + d)] = acc[r][c]; }
    }
  }
}

// dst[b*T + i, h*HD + d] = sum_{j <= i} scores[b, h, i, j] view1[b*T + j, kvh*HD + d]
// (out = probs v, dq = dscores k). Scores are zero above the diagonal, so a block runs j up to its last row.
@compute @workgroup_size(THREAD_WG)
fn prod_scores(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let e = threadIndex(wg, nwg, lid);
  if (e >= blockCount(p.heads)) { return; }
  let bk = blockOf(e, p.heads);
  let T = p.seq;
  let s0 = scoreRow(bk.b, bk.head, clampT(bk.t0));
  let s1 = scoreRow(bk.b, bk.head, clampT(bk.t0 + 1u));
  let s2 = scoreRow(bk.b, bk.head, clampT(bk.t0 + 2u));
  let s3 = scoreRow(bk.b, bk.head, clampT(bk.t0 + 3u));
  let col = kvHeadOf(bk.head) * p.headDim;
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  let jEnd = clampT(bk.t0 + 3u);
  for (var j = 0u; j <= jEnd; j++) {
    let x = dims1(bk.b * T + j, col, bk.d0);
    acc0 = fma(vec4<f32>(scores[s0 + j]), x, acc0);
    acc1 = fma(vec4<f32>(scores[s1 + j]), x, acc1);
    acc2 = fma(vec4<f32>(scores[s2 + j]), x, acc2);
    acc3 = fma(vec4<f32>(scores[s3 + j]), x, acc3);
  }
  storeBlock(bk, bk.head * p.headDim, array<vec4<f32>, 4>(acc0, acc1, acc2, acc3));
}

// dst[b*T + j, kvh*HD + d] = sum over the group's heads h and i >= j of scores[b, h, i, j] view2[b*T + i, h*HD + d]
// (dv = probsᵀ dout, dk = dscoresᵀ q). One thread per block of 4 key positions j0.. by 4 dimensions.
@compute @workgroup_size(THREAD_WG)
fn prod_scores_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let e = threadIndex(wg, nwg, lid);
  if (e >= blockCount(p.kvHeads)) { return; }
  let bk = blockOf(e, p.kvHeads);
  let T = p.seq;
  let j0 = clampT(bk.t0); let j1 = clampT(bk.t0 + 1u); let j2 = clampT(bk.t0 + 2u); let j3 = clampT(bk.t0 + 3u);
  let group = p.heads / p.kvHeads;
  var acc0 = vec4<f32>(0.0); var acc1 = vec4<f32>(0.0); var acc2 = vec4<f32>(0.0); var acc3 = vec4<f32>(0.0);
  for (var h = bk.head * group; h < (bk.head + 1u) * group; h++) {
    for (var i = bk.t0; i < T; i++) {
      let x = dims2(bk.b * T + i, h * p.headDim, bk.d0);
      let s = scoreRow(bk.b, h, i);
      acc0 = fma(vec4<f32>(scores[s + j0]), x, acc0);
      acc1 = fma(vec4<f32>(scores[s + j1]), x, acc1);
      acc2 = fma(vec4<f32>(scores[s + j2]), x, acc2);
      acc3 = fma(vec4<f32>(scores[s + j3]), x, acc3);
    }
  }
  storeBlock(bk, bk.head * p.headDim, array<vec4<f32>, 4>(acc0, acc1, acc2, acc3));
}
