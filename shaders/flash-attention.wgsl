// Memory-efficient (FlashAttention-style) causal attention with grouped-query heads (GQA), tokens as rows
// (row = b * T + t), without materializing the [B, H, T, T] probabilities: the forward
// keeps one logsumexp per (b, h, query) and the backward recomputes the probabilities from it.
// Head h of q reads columns [h * HD, (h + 1) * HD) of its view; its kv head is h / (H / KVH).
// Query i of row b attends to keys j in [lo(i), i]: lo = 0, or i - min(pos_i, i) with packed rows.
//
// Forward:  s_ij = scale q_i·k_j; online softmax over key blocks (running max m, sum l, rescaled out)
//           out_i = sum_j exp(s_ij - m_i) v_j / l_i,  lse_i = m_i + log(l_i)          fwd_t / fwd_wg
// Backward: P_ij = exp(s_ij - lse_i)                                                (recomputed)
//           D_i  = dout_i · out_i  (= sum_j P_ij dp_ij)                                 bwd_delta
//           dS_ij = scale P_ij (dout_i·v_j - D_i)
//           dq_i = sum_j dS_ij k_j                                                    bwd_dq_t / bwd_dq_wg
//           dk_j = sum over the group's heads and i of dS_ij q_i,
//           dv_j = likewise of P_ij dout_i                                            bwd_dkv_t / bwd_dkv_wg
// Every output element has exactly one writer (dk/dv per kv head sum their group's query heads), so no
// atomics; outputs are overwritten, not accumulated.
//
// Every query row has at least its own key (lo <= i), so l >= 1 and lse is finite. Masked scores are the
// finite NEG, not -inf: a block whose keys are all masked for a row (a document that starts later) keeps
// m = NEG, l = 0 and adds exp(NEG - NEG) = 1 nowhere, because probabilities are select()ed to 0 by mask.
//
// Two formulations (the wrapper picks one per adapter):
//   thread     barrier-free, for CPU Vulkan drivers (SwiftShader): one thread per 4 query rows (fwd, dq) or
//              4 key rows (dkv) of one head, 4x4 register blocks of dot products, two blocks (8 keys or
//              queries) per update of the accumulator. The output view itself is the accumulator (read 4
//              rows, update, write 4 rows: rows past seq are clamped duplicates of the last, which then read
//              and write identical values); the other side's positions past seq are masked out.
//   (The dq kernel and the dk|dv kernel both recompute s and dout·v: the price of not storing P, and of
//   having no float atomics to give dq, dk and dv one pass.)
//   workgroup  for GPUs: a workgroup of 64 threads per 16 rows (4 threads per row, each owning every 4th
//              head dimension in registers), the other side's rows streamed through shared-memory tiles of
//              BK rows. HD and BK are pipeline constants (the wrapper sizes BK to the device's shared memory).
//
// Bindings: eight storage slots and the params; a slot an entry point does not use holds one of its inputs.
//   slot 0  q | saved out (bwd_delta)   slot 1  k        slot 2  v       slot 3  positions (u32, packed rows)
//   slot 4  dout                        slot 5  lse      slot 6  delta | lse (rw, forward)
//   slot 7  dst (rw): out (forward), delta (bwd_delta), dq, or dk and/or dv (flags)

struct Params {
  batch: u32, seq: u32, heads: u32, kvHeads: u32,
  headDim: u32, scale: f32, docMask: u32, flags: u32, // flags (bwd_dkv): 1 write dk (view x), 2 write dv (view y)
  qOff: u32, qLd: u32, kOff: u32, kLd: u32,
  vOff: u32, vLd: u32, oOff: u32, oLd: u32,           // o: the saved out that bwd_delta reads
  gOff: u32, gLd: u32, xOff: u32, xLd: u32,           // g: dout; x: dst (out, dq or dk)
  yOff: u32, yLd: u32, _p0: u32, _p1: u32,            // y: dst (dv)
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(0) var<storage, read> saved: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<u32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> lse: array<f32>;
@group(0) @binding(6) var<storage, read> delta: array<f32>;
@group(0) @binding(6) var<storage, read_write> lseOut: array<f32>;
@group(0) @binding(7) var<storage, read_write> dst: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;

const NEG = -3.0e38;    // a finite "minus infinity": NEG - NEG is 0, not NaN
const MIN_EXP = -88.0;  // exp() arguments below this are 0 for f32; clamped so no driver sees -3e38 * log2(e)
const THREAD_WG = 64u;  // threads per workgroup of the thread variant and bwd_delta

fn groupIndex(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

fn kvHeadOf(h: u32) -> u32 {
  return h / (p.heads / p.kvHeads);
}

// Index of (b, h, i) in lse and delta [B, H, T].
fn statAt(b: u32, h: u32, i: u32) -> u32 {
  return (b * p.heads + h) * p.seq + i;
}

// The first key query i of row b attends to: its document's start when rows are packed, else 0.
fn firstKey(b: u32, i: u32) -> u32 {
  return select(0u, i - min(positions[b * p.seq + i], i), p.docMask != 0u);
}

fn clampT(t: u32) -> u32 { return min(t, p.seq - 1u); }

// Positions t0..t0+3 clamped to the sequence: past its end they repeat the last one.
fn clamp4(t0: u32) -> vec4<u32> {
  return min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.seq - 1u));
}

// ------------------------------------------------------------------ D_i = dout_i · out_i (both variants)

// One thread per (b, h, i); delta [B, H, T] in dst.
@compute @workgroup_size(THREAD_WG)
fn bwd_delta(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * THREAD_WG + lid;
  if (e >= p.batch * p.heads * p.seq) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let i = e % T;
  let h = (e / T) % p.heads;
  let row = (e / (T * p.heads)) * T + i;
  let g = p.gOff + row * p.gLd + h * HD;
  let o = p.oOff + row * p.oLd + h * HD;
  var s = 0.0;
  for (var d = 0u; d < HD; d++) { s = fma(dout[g + d], saved[o + d], s); }
  dst[e] = s;
}

// ------------------------------------------------------------------ barrier-free (thread) variant

// Column c of the result: key keys[c]; component r: query rows[r] (positions within row b, already clamped).
// A 4x4 block costs 8 loads per head dimension instead of 32.
fn dotsQK(b: u32, h: u32, rows: vec4<u32>, keys: vec4<u32>) -> mat4x4<f32> {
  let T = p.seq;
  let HD = p.headDim;
  let a = vec4<u32>(p.qOff + h * HD) + (vec4<u32>(b * T) + rows) * p.qLd;
  let c = vec4<u32>(p.kOff + kvHeadOf(h) * HD) + (vec4<u32>(b * T) + keys) * p.kLd;
  var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
  for (var d = 0u; d < HD; d++) {
    let x = vec4<f32>(q[a.x + d], q[a.y + d], q[a.z + d], q[a.w + d]);
    s0 = fma(x, vec4<f32>(k[c.x + d]), s0);
    s1 = fma(x, vec4<f32>(k[c.y + d]), s1);
    s2 = fma(x, vec4<f32>(k[c.z + d]), s2);
    s3 = fma(x, vec4<f32>(k[c.w + d]), s3);
  }
  return mat4x4<f32>(s0, s1, s2, s3);
}

// The same block of dout_i · v_j.
fn dotsGV(b: u32, h: u32, rows: vec4<u32>, keys: vec4<u32>) -> mat4x4<f32> {
  let T = p.seq;
  let HD = p.headDim;
  let a = vec4<u32>(p.gOff + h * HD) + (vec4<u32>(b * T) + rows) * p.gLd;
  let c = vec4<u32>(p.vOff + kvHeadOf(h) * HD) + (vec4<u32>(b * T) + keys) * p.vLd;
  var s0 = vec4<f32>(0.0); var s1 = vec4<f32>(0.0); var s2 = vec4<f32>(0.0); var s3 = vec4<f32>(0.0);
  for (var d = 0u; d < HD; d++) {
    let x = vec4<f32>(dout[a.x + d], dout[a.y + d], dout[a.z + d], dout[a.w + d]);
    s0 = fma(x, vec4<f32>(v[c.x + d]), s0);
    s1 = fma(x, vec4<f32>(v[c.y + d]), s1);
    s2 = fma(x, vec4<f32>(v[c.z + d]), s2);
    s3 = fma(x, vec4<f32>(v[c.w + d]), s3);
  }
  return mat4x4<f32>(s0, s1, s2, s3);
}

fn firstKeys(b: u32, rows: vec4<u32>) -> vec4<u32> {
  return vec4<u32>(firstKey(b, rows.x), firstKey(b, rows.y), firstKey(b, rows.z), firstKey(b, rows.w));
}

// lse and delta of four query rows.
fn lse4(b: u32, h: u32, rows: vec4<u32>) -> vec4<f32> {
  let s = vec4<u32>(statAt(b, h, 0u)) + rows;
  return vec4<f32>(lse[s.x], lse[s.y], lse[s.z], lse[s.w]);
}

fn delta4(b: u32, h: u32, rows: vec4<u32>) -> vec4<f32> {
  let s = vec4<u32>(statAt(b, h, 0u)) + rows;
  return vec4<f32>(delta[s.x], delta[s.y], delta[s.z], delta[s.w]);
}

// Query-side mask of key j (unclamped, so a clamped duplicate key past seq is above every row) for rows.
fn keyMask(j: u32, rows: vec4<u32>, lo: vec4<u32>) -> vec4<bool> {
  return (vec4<u32>(j) <= rows) & (vec4<u32>(j) >= lo);
}

// Start of token row `row`, column `col` in the dst views x and y.
fn atX(row: u32, col: u32) -> u32 { return p.xOff + row * p.xLd + col; }
fn atY(row: u32, col: u32) -> u32 { return p.yOff + row * p.yLd + col; }

// Four rows of a dst view, element d (read all four before writing any: duplicates stay consistent).
fn load4(a: vec4<u32>, d: u32) -> vec4<f32> {
  return vec4<f32>(dst[a.x + d], dst[a.y + d], dst[a.z + d], dst[a.w + d]);
}

fn store4(a: vec4<u32>, d: u32, x: vec4<f32>) {
  dst[a.x + d] = x.x; dst[a.y + d] = x.y; dst[a.z + d] = x.z; dst[a.w + d] = x.w;
}

// Masked, scaled scores of the thread's rows against keys j0..j0+3 (column c: key j0 + c; NEG where masked).
fn scoreBlock(b: u32, h: u32, rows: vec4<u32>, lo: vec4<u32>, j0: u32) -> mat4x4<f32> {
  let s = dotsQK(b, h, rows, clamp4(j0));
  return mat4x4<f32>(
    select(vec4<f32>(NEG), s[0] * p.scale, keyMask(j0, rows, lo)), select(vec4<f32>(NEG), s[1] * p.scale, keyMask(j0 + 1u, rows, lo)),
    select(vec4<f32>(NEG), s[2] * p.scale, keyMask(j0 + 2u, rows, lo)), select(vec4<f32>(NEG), s[3] * p.scale, keyMask(j0 + 3u, rows, lo)));
}

fn maxColumn(s: mat4x4<f32>) -> vec4<f32> {
  return max(max(s[0], s[1]), max(s[2], s[3]));
}

// exp(s - m) of the unmasked scores, 0 for the masked.
fn probBlock(s: mat4x4<f32>, m: vec4<f32>) -> mat4x4<f32> {
  return mat4x4<f32>(
    select(vec4<f32>(0.0), exp(s[0] - m), s[0] > vec4<f32>(NEG)), select(vec4<f32>(0.0), exp(s[1] - m), s[1] > vec4<f32>(NEG)),
    select(vec4<f32>(0.0), exp(s[2] - m), s[2] > vec4<f32>(NEG)), select(vec4<f32>(0.0), exp(s[3] - m), s[3] > vec4<f32>(NEG)));
}

// One thread per (b, h, rows i0..i0+3): online softmax over 8 keys at a time from the rows' first key;
// out (view x) holds the unnormalized accumulator until the final division.
@compute @workgroup_size(THREAD_WG)
fn fwd_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * THREAD_WG + lid;
  let nt = (p.seq + 3u) / 4u;
  if (e >= p.batch * p.heads * nt) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let b = e / (nt * p.heads);
  let h = (e / nt) % p.heads;
  let rows = clamp4((e % nt) * 4u);
  let lo = firstKeys(b, rows);
  let o = vec4<u32>(atX(b * T + rows.x, h * HD), atX(b * T + rows.y, h * HD), atX(b * T + rows.z, h * HD), atX(b * T + rows.w, h * HD));
  let vCol = vec4<u32>(p.vOff + kvHeadOf(h) * HD + b * T * p.vLd);
  for (var d = 0u; d < HD; d++) { store4(o, d, vec4<f32>(0.0)); }
  var m = vec4<f32>(NEG);
  var l = vec4<f32>(0.0);
  for (var j0 = min(min(lo.x, lo.y), min(lo.z, lo.w)); j0 <= rows.w; j0 += 8u) {
    let sa = scoreBlock(b, h, rows, lo, j0);
    let sc = scoreBlock(b, h, rows, lo, j0 + 4u);
    let mNew = max(m, max(maxColumn(sa), maxColumn(sc)));
    // While m is NEG, l and out are still 0: alpha only has to be finite.
    let alpha = exp(max(m - mNew, vec4<f32>(MIN_EXP)));
    let pa = probBlock(sa, mNew);
    let pc = probBlock(sc, mNew);
    l = l * alpha + pa[0] + pa[1] + pa[2] + pa[3] + pc[0] + pc[1] + pc[2] + pc[3];
    m = mNew;
    let va = vCol + clamp4(j0) * p.vLd;
    let vc = vCol + clamp4(j0 + 4u) * p.vLd;
    for (var d = 0u; d < HD; d++) {
      let xa = vec4<f32>(v[va.x + d], v[va.y + d], v[va.z + d], v[va.w + d]);
      let xc = vec4<f32>(v[vc.x + d], v[vc.y + d], v[vc.z + d], v[vc.w + d]);
      store4(o, d, fma(load4(o, d), alpha, pa * xa + pc * xc));
    }
  }
  let inv = 1.0 / l;
  for (var d = 0u; d < HD; d++) { store4(o, d, load4(o, d) * inv); }
  let lseRows = m + log(l);
  lseOut[statAt(b, h, rows.x)] = lseRows.x;
  lseOut[statAt(b, h, rows.y)] = lseRows.y;
  lseOut[statAt(b, h, rows.z)] = lseRows.z;
  lseOut[statAt(b, h, rows.w)] = lseRows.w;
}

// dS for a 4x4 block: scale * P * (dp - D), P = exp(s - lse) where the mask allows, else 0.
fn dsColumn(s: vec4<f32>, dp: vec4<f32>, lseR: vec4<f32>, dR: vec4<f32>, ok: vec4<bool>) -> vec4<f32> {
  let pr = select(vec4<f32>(0.0), exp(min(s * p.scale - lseR, vec4<f32>(0.0))), ok);
  return pr * (dp - dR) * p.scale;
}

// dS of the thread's four query rows against keys j0..j0+3 (column c: key j0 + c).
fn queryBlock(b: u32, h: u32, rows: vec4<u32>, lo: vec4<u32>, lseR: vec4<f32>, dR: vec4<f32>, j0: u32) -> mat4x4<f32> {
  let keys = clamp4(j0);
  let s = dotsQK(b, h, rows, keys);
  let dp = dotsGV(b, h, rows, keys);
  return mat4x4<f32>(
    dsColumn(s[0], dp[0], lseR, dR, keyMask(j0, rows, lo)), dsColumn(s[1], dp[1], lseR, dR, keyMask(j0 + 1u, rows, lo)),
    dsColumn(s[2], dp[2], lseR, dR, keyMask(j0 + 2u, rows, lo)), dsColumn(s[3], dp[3], lseR, dR, keyMask(j0 + 3u, rows, lo)));
}

// One thread per (b, h, rows i0..i0+3): dq (view x) accumulated over 8 keys at a time (two 4x4 blocks per
// read-modify-write of the accumulator).
@compute @workgroup_size(THREAD_WG)
fn bwd_dq_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * THREAD_WG + lid;
  let nt = (p.seq + 3u) / 4u;
  if (e >= p.batch * p.heads * nt) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let b = e / (nt * p.heads);
  let h = (e / nt) % p.heads;
  let rows = clamp4((e % nt) * 4u);
  let lo = firstKeys(b, rows);
  let lseR = lse4(b, h, rows);
  let dR = delta4(b, h, rows);
  let o = vec4<u32>(atX(b * T + rows.x, h * HD), atX(b * T + rows.y, h * HD), atX(b * T + rows.z, h * HD), atX(b * T + rows.w, h * HD));
  let kCol = vec4<u32>(p.kOff + kvHeadOf(h) * HD + b * T * p.kLd);
  for (var d = 0u; d < HD; d++) { store4(o, d, vec4<f32>(0.0)); }
  for (var j0 = min(min(lo.x, lo.y), min(lo.z, lo.w)); j0 <= rows.w; j0 += 8u) {
    let da = queryBlock(b, h, rows, lo, lseR, dR, j0);
    let dc = queryBlock(b, h, rows, lo, lseR, dR, j0 + 4u);
    let ka = kCol + clamp4(j0) * p.kLd;
    let kc = kCol + clamp4(j0 + 4u) * p.kLd;
    for (var d = 0u; d < HD; d++) {
      let xa = vec4<f32>(k[ka.x + d], k[ka.y + d], k[ka.z + d], k[ka.w + d]);
      let xc = vec4<f32>(k[kc.x + d], k[kc.y + d], k[kc.z + d], k[kc.w + d]);
      store4(o, d, load4(o, d) + da * xa + dc * xc);
    }
  }
}

// P and dS of four queries (from i0; past seq masked out) against the thread's four keys (clamped, so a
// duplicate key computes the same column as the last one). Column c: key c; component r: query i0 + r.
struct KeyBlock { pm: mat4x4<f32>, ds: mat4x4<f32> }

fn keyBlock(b: u32, h: u32, i0: u32, keys: vec4<u32>) -> KeyBlock {
  let qi = vec4<u32>(i0) + vec4<u32>(0u, 1u, 2u, 3u);
  let rows = clamp4(i0);
  let lo = firstKeys(b, rows);
  let lseR = lse4(b, h, rows);
  let dR = delta4(b, h, rows);
  let s = dotsQK(b, h, rows, keys);
  let dp = dotsGV(b, h, rows, keys);
  let real = qi < vec4<u32>(p.seq);
  let ok0 = real & (vec4<u32>(keys.x) <= qi) & (vec4<u32>(keys.x) >= lo);
  let ok1 = real & (vec4<u32>(keys.y) <= qi) & (vec4<u32>(keys.y) >= lo);
  let ok2 = real & (vec4<u32>(keys.z) <= qi) & (vec4<u32>(keys.z) >= lo);
  let ok3 = real & (vec4<u32>(keys.w) <= qi) & (vec4<u32>(keys.w) >= lo);
  let pm = mat4x4<f32>(
    select(vec4<f32>(0.0), exp(min(s[0] * p.scale - lseR, vec4<f32>(0.0))), ok0),
    select(vec4<f32>(0.0), exp(min(s[1] * p.scale - lseR, vec4<f32>(0.0))), ok1),
    select(vec4<f32>(0.0), exp(min(s[2] * p.scale - lseR, vec4<f32>(0.0))), ok2),
    select(vec4<f32>(0.0), exp(min(s[3] * p.scale - lseR, vec4<f32>(0.0))), ok3));
  let ds = mat4x4<f32>((pm[0] * (dp[0] - dR)) * p.scale, (pm[1] * (dp[1] - dR)) * p.scale,
                       (pm[2] * (dp[2] - dR)) * p.scale, (pm[3] * (dp[3] - dR)) * p.scale);
  return KeyBlock(pm, ds);
}

// One thread per (b, kv head, keys j0..j0+3): dk (view x, flag 1) and dv (view y, flag 2) accumulated over
// the group's query heads and 8 queries at a time from j0 on (two 4x4 blocks per read-modify-write of the
// accumulators, which cost more than the dot products on a CPU driver).
@compute @workgroup_size(THREAD_WG)
fn bwd_dkv_t(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let e = groupIndex(wg, nwg) * THREAD_WG + lid;
  let nt = (p.seq + 3u) / 4u;
  if (e >= p.batch * p.kvHeads * nt) { return; }
  let T = p.seq;
  let HD = p.headDim;
  let b = e / (nt * p.kvHeads);
  let kvh = (e / nt) % p.kvHeads;
  let j0 = (e % nt) * 4u;
  let keys = clamp4(j0);
  let xk = vec4<u32>(atX(b * T + keys.x, kvh * HD), atX(b * T + keys.y, kvh * HD), atX(b * T + keys.z, kvh * HD), atX(b * T + keys.w, kvh * HD));
  let yv = vec4<u32>(atY(b * T + keys.x, kvh * HD), atY(b * T + keys.y, kvh * HD), atY(b * T + keys.z, kvh * HD), atY(b * T + keys.w, kvh * HD));
  let wantK = (p.flags & 1u) != 0u;
  let wantV = (p.flags & 2u) != 0u;
  if (wantK) { for (var d = 0u; d < HD; d++) { store4(xk, d, vec4<f32>(0.0)); } }
  if (wantV) { for (var d = 0u; d < HD; d++) { store4(yv, d, vec4<f32>(0.0)); } }
  let group = p.heads / p.kvHeads;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i0 = j0; i0 < T; i0 += 8u) {
      let a = keyBlock(b, h, i0, keys);
      let c = keyBlock(b, h, i0 + 4u, keys);
      let ra = vec4<u32>(b * T) + clamp4(i0);
      let rc = vec4<u32>(b * T) + clamp4(i0 + 4u);
      // x * M: component c is sum over the four queries r of x[r] * M[c][r].
      if (wantV) {
        let ga = vec4<u32>(p.gOff + h * HD) + ra * p.gLd;
        let gc = vec4<u32>(p.gOff + h * HD) + rc * p.gLd;
        for (var d = 0u; d < HD; d++) {
          let xa = vec4<f32>(dout[ga.x + d], dout[ga.y + d], dout[ga.z + d], dout[ga.w + d]);
          let xc = vec4<f32>(dout[gc.x + d], dout[gc.y + d], dout[gc.z + d], dout[gc.w + d]);
          store4(yv, d, load4(yv, d) + xa * a.pm + xc * c.pm);
        }
      }
      if (wantK) {
        let qa = vec4<u32>(p.qOff + h * HD) + ra * p.qLd;
        let qc = vec4<u32>(p.qOff + h * HD) + rc * p.qLd;
        for (var d = 0u; d < HD; d++) {
          let xa = vec4<f32>(q[qa.x + d], q[qa.y + d], q[qa.z + d], q[qa.w + d]);
          let xc = vec4<f32>(q[qc.x + d], q[qc.y + d], q[qc.z + d], q[qc.w + d]);
          store4(xk, d, load4(xk, d) + xa * a.ds + xc * c.ds);
        }
      }
    }
  }
}

// ------------------------------------------------------------------ workgroup variant (GPUs)
// Thread lid handles row r = lid / TPR of the block and head dimensions c, c + TPR, ... (c = lid % TPR).
// Tiles are stored with row stride HD + 1 (odd) so a warp reading one dimension of several rows hits
// different banks; score tiles likewise with stride BK + 1.

override HD: u32 = 64u;   // head dimension (the wrapper sets it; at most TPR * MAXU)
override BK: u32 = 16u;   // rows per streamed tile (the wrapper sizes it to the device's shared memory)
const BQ = 16u;           // rows per workgroup
const TPR = 4u;           // threads per row
const WG = 64u;           // BQ * TPR
const MAXU = 64u;         // head dimensions per thread: HD <= 256

var<workgroup> rowsA: array<f32, BQ * (HD + 1u)>;   // the block's rows: q (fwd, dq) or k (dkv)
var<workgroup> rowsB: array<f32, BQ * (HD + 1u)>;   // dout (dq) or v (dkv)
var<workgroup> tileA: array<f32, BK * (HD + 1u)>;   // streamed: k (fwd, dq) or q (dkv)
var<workgroup> tileB: array<f32, BK * (HD + 1u)>;   // streamed: v (fwd, dq) or dout (dkv)
var<workgroup> tileS: array<f32, BQ * (BK + 1u)>;   // scores (fwd), dS (dq), P (dkv)
var<workgroup> tileS2: array<f32, BQ * (BK + 1u)>;  // dS (dkv)
var<workgroup> tileLse: array<f32, BK>;             // the query tile's lse, delta and first key (dkv)
var<workgroup> tileDelta: array<f32, BK>;
var<workgroup> tileLo: array<u32, BK>;
var<workgroup> blockLo: u32;

fn hp() -> u32 { return HD + 1u; }
fn sp() -> u32 { return BK + 1u; }

// Head dimension u of thread column c, clamped for reads (dimensions past HD are never stored).
fn dimOf(c: u32, u: u32) -> u32 { return min(c + TPR * u, HD - 1u); }

fn dimsPerThread() -> u32 { return (HD + TPR - 1u) / TPR; }

// The block's rows t0.. (clamped) of q (and dout) for head h into rowsA (rowsB). No barrier.
fn stageQueryRows(b: u32, h: u32, t0: u32, withDout: bool) {
  for (var e = wgLid; e < BQ * HD; e += WG) {
    let r = e / HD;
    let d = e % HD;
    let row = b * p.seq + clampT(t0 + r);
    rowsA[r * hp() + d] = q[p.qOff + row * p.qLd + h * HD + d];
    if (withDout) { rowsB[r * hp() + d] = dout[p.gOff + row * p.gLd + h * HD + d]; }
  }
}

// The block's key rows t0.. of kv head kvh: k into rowsA, v into rowsB. No barrier.
fn stageKeyRows(b: u32, kvh: u32, t0: u32) {
  for (var e = wgLid; e < BQ * HD; e += WG) {
    let r = e / HD;
    let d = e % HD;
    let row = b * p.seq + clampT(t0 + r);
    rowsA[r * hp() + d] = k[p.kOff + row * p.kLd + kvh * HD + d];
    rowsB[r * hp() + d] = v[p.vOff + row * p.vLd + kvh * HD + d];
  }
}

// Keys t0..t0+BK-1 (clamped) of kv head kvh: k into tileA, v into tileB. No barrier.
fn stageKeyTile(b: u32, kvh: u32, t0: u32) {
  for (var e = wgLid; e < BK * HD; e += WG) {
    let r = e / HD;
    let d = e % HD;
    let row = b * p.seq + clampT(t0 + r);
    tileA[r * hp() + d] = k[p.kOff + row * p.kLd + kvh * HD + d];
    tileB[r * hp() + d] = v[p.vOff + row * p.vLd + kvh * HD + d];
  }
}

var<private> wgLid: u32;

// First key of the block's earliest-starting row (rows t0..t0+BQ-1), uniform across the workgroup.
fn blockFirstKey(b: u32, t0: u32) -> u32 {
  if (wgLid == 0u) {
    var lo = p.seq;
    for (var r = 0u; r < BQ; r++) { lo = min(lo, firstKey(b, clampT(t0 + r))); }
    blockLo = lo;
  }
  return workgroupUniformLoad(&blockLo);
}

// One workgroup per (b, h, 16 query rows); tiles of BK keys from the block's first key to its last row.
@compute @workgroup_size(WG)
fn fwd_wg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  wgLid = lid;
  let nb = (p.seq + BQ - 1u) / BQ;
  let blk = groupIndex(wg, nwg);
  if (blk >= p.batch * p.heads * nb) { return; }
  let T = p.seq;
  let b = blk / (nb * p.heads);
  let h = (blk / nb) % p.heads;
  let i0 = (blk % nb) * BQ;
  let r = lid / TPR;
  let c = lid % TPR;
  let i = clampT(i0 + r); // rows past seq repeat the last one and store nothing
  let lo = firstKey(b, i);
  stageQueryRows(b, h, i0, false);
  let jStart = blockFirstKey(b, i0); // (its workgroupUniformLoad is also the barrier after staging)
  let jEnd = clampT(i0 + BQ - 1u);
  var acc: array<f32, MAXU>;
  var m = NEG;
  var l = 0.0;
  for (var j0 = jStart; j0 <= jEnd; j0 += BK) {
    workgroupBarrier(); // the previous tile is consumed
    stageKeyTile(b, kvHeadOf(h), j0);
    workgroupBarrier();
    for (var jj = c; jj < BK; jj += TPR) {
      var s = 0.0;
      for (var d = 0u; d < HD; d++) { s = fma(rowsA[r * hp() + d], tileA[jj * hp() + d], s); }
      let j = j0 + jj;
      tileS[r * sp() + jj] = select(NEG, s * p.scale, (j <= i) & (j >= lo));
    }
    workgroupBarrier();
    // Each of the row's TPR threads folds the same scores into the same (m, l).
    var tileMax = NEG;
    for (var jj = 0u; jj < BK; jj++) { tileMax = max(tileMax, tileS[r * sp() + jj]); }
    let mNew = max(m, tileMax);
    let alpha = exp(max(m - mNew, MIN_EXP)); // while m is NEG, l and acc are 0
    l *= alpha;
    for (var u = 0u; u < dimsPerThread(); u++) { acc[u] *= alpha; }
    for (var jj = 0u; jj < BK; jj++) {
      let s = tileS[r * sp() + jj];
      let pj = select(0.0, exp(s - mNew), s > NEG);
      l += pj;
      for (var u = 0u; u < dimsPerThread(); u++) { acc[u] = fma(pj, tileB[jj * hp() + dimOf(c, u)], acc[u]); }
    }
    m = mNew;
  }
  if (i0 + r < T) {
    let base = p.xOff + (b * T + i) * p.xLd + h * HD;
    let inv = 1.0 / l;
    for (var u = 0u; u < dimsPerThread(); u++) {
      let d = c + TPR * u;
      if (d < HD) { dst[base + d] = acc[u] * inv; }
    }
    if (c == 0u) { lseOut[statAt(b, h, i)] = m + log(l); }
  }
}

// One workgroup per (b, h, 16 query rows): dq = sum_j dS_ij k_j over tiles of BK keys.
@compute @workgroup_size(WG)
fn bwd_dq_wg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  wgLid = lid;
  let nb = (p.seq + BQ - 1u) / BQ;
  let blk = groupIndex(wg, nwg);
  if (blk >= p.batch * p.heads * nb) { return; }
  let T = p.seq;
  let b = blk / (nb * p.heads);
  let h = (blk / nb) % p.heads;
  let i0 = (blk % nb) * BQ;
  let r = lid / TPR;
  let c = lid % TPR;
  let i = clampT(i0 + r);
  let lo = firstKey(b, i);
  let lseI = lse[statAt(b, h, i)];
  let dI = delta[statAt(b, h, i)];
  stageQueryRows(b, h, i0, true);
  let jStart = blockFirstKey(b, i0);
  let jEnd = clampT(i0 + BQ - 1u);
  var acc: array<f32, MAXU>;
  for (var j0 = jStart; j0 <= jEnd; j0 += BK) {
    workgroupBarrier();
    stageKeyTile(b, kvHeadOf(h), j0);
    workgroupBarrier();
    for (var jj = c; jj < BK; jj += TPR) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < HD; d++) {
        s = fma(rowsA[r * hp() + d], tileA[jj * hp() + d], s);
        dp = fma(rowsB[r * hp() + d], tileB[jj * hp() + d], dp);
      }
      let j = j0 + jj;
      let pj = select(0.0, exp(min(s * p.scale - lseI, 0.0)), (j <= i) & (j >= lo));
      tileS[r * sp() + jj] = pj * (dp - dI) * p.scale;
    }
    workgroupBarrier();
    for (var jj = 0u; jj < BK; jj++) {
      let ds = tileS[r * sp() + jj];
      for (var u = 0u; u < dimsPerThread(); u++) { acc[u] = fma(ds, tileA[jj * hp() + dimOf(c, u)], acc[u]); }
    }
  }
  if (i0 + r < T) {
    let base = p.xOff + (b * T + i) * p.xLd + h * HD;
    for (var u = 0u; u < dimsPerThread(); u++) {
      let d = c + TPR * u;
      if (d < HD) { dst[base + d] = acc[u]; }
    }
  }
}

// One workgroup per (b, kv head, 16 key rows): dk and dv summed over the group's query heads and tiles of
// BK queries from the block's first key to the end of the row.
@compute @workgroup_size(WG)
fn bwd_dkv_wg(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  wgLid = lid;
  let nb = (p.seq + BQ - 1u) / BQ;
  let blk = groupIndex(wg, nwg);
  if (blk >= p.batch * p.kvHeads * nb) { return; }
  let T = p.seq;
  let b = blk / (nb * p.kvHeads);
  let kvh = (blk / nb) % p.kvHeads;
  let j0 = (blk % nb) * BQ;
  let r = lid / TPR;
  let c = lid % TPR;
  let j = clampT(j0 + r); // keys past seq repeat the last one and store nothing
  stageKeyRows(b, kvh, j0);
  var dk: array<f32, MAXU>;
  var dv: array<f32, MAXU>;
  let group = p.heads / p.kvHeads;
  for (var h = kvh * group; h < (kvh + 1u) * group; h++) {
    for (var i0 = j0; i0 < T; i0 += BK) {
      workgroupBarrier(); // the previous tile is consumed (the first time: the key rows are staged)
      for (var e = lid; e < BK * HD; e += WG) {
        let rr = e / HD;
        let d = e % HD;
        let row = b * T + clampT(i0 + rr);
        tileA[rr * hp() + d] = q[p.qOff + row * p.qLd + h * HD + d];
        tileB[rr * hp() + d] = dout[p.gOff + row * p.gLd + h * HD + d];
      }
      for (var ii = lid; ii < BK; ii += WG) {
        let iq = clampT(i0 + ii);
        tileLse[ii] = lse[statAt(b, h, iq)];
        tileDelta[ii] = delta[statAt(b, h, iq)];
        tileLo[ii] = select(T, firstKey(b, iq), i0 + ii < T); // a query past seq attends to nothing
      }
      workgroupBarrier();
      for (var ii = c; ii < BK; ii += TPR) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < HD; d++) {
          s = fma(rowsA[r * hp() + d], tileA[ii * hp() + d], s);
          dp = fma(rowsB[r * hp() + d], tileB[ii * hp() + d], dp);
        }
        let pij = select(0.0, exp(min(s * p.scale - tileLse[ii], 0.0)), (j <= i0 + ii) & (j >= tileLo[ii]));
        tileS[r * sp() + ii] = pij;
        tileS2[r * sp() + ii] = pij * (dp - tileDelta[ii]) * p.scale;
      }
      workgroupBarrier();
      for (var ii = 0u; ii < BK; ii++) {
        let pij = tileS[r * sp() + ii];
        let ds = tileS2[r * sp() + ii];
        for (var u = 0u; u < dimsPerThread(); u++) {
          dv[u] = fma(pij, tileB[ii * hp() + dimOf(c, u)], dv[u]);
          dk[u] = fma(ds, tileA[ii * hp() + dimOf(c, u)], dk[u]);
        }
      }
    }
  }
  if (j0 + r < T) {
    let row = b * T + j;
    for (var u = 0u; u < dimsPerThread(); u++) {
      let d = c + TPR * u;
      if (((p.flags & 1u) != 0u) & (d < HD)) { dst[atX(row, kvh * HD + d)] = dk[u]; }
      if (((p.flags & 2u) != 0u) & (d < HD)) { dst[atY(row, kvh * HD + d)] = dv[u]; }
    }
  }
}
