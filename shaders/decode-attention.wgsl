// Attention for incremental decoding: query rows at known positions against a KV cache, with grouped-query
// heads (GQA). Key/value row j of the cache holds the token at position j, after RoPE / qk-norm, exactly as
// the training attention reads k and v (head h of a query row reads columns [h * HD, (h + 1) * HD) of its
// view; its kv head is h / (H / KVH)).
//
//   cache_store:  dst[positions[r]] = src[r] for each of `rows` rows of `width` values; a position at or past
//                 keyRows is skipped (padding rows of a partial prefill chunk).
//   attend_*:     out[r, h] = softmax_j(scale * q[r, h] · k[j, kvh]) v[j, kvh] over keys j = 0 .. positions[r]
//                 (clamped to keyRows - 1): a query sees its own key and every earlier one.
//
// Two formulations compute the same values (the wrapper picks one per adapter):
//   attend_thread     one thread per (row, head), an online softmax walked serially over the keys with the
//                     output accumulated in registers: no barriers, for CPU Vulkan drivers (SwiftShader),
//                     which run a workgroup's threads as coroutines and pay a switch per thread at a barrier.
//   attend_workgroup  one workgroup per (row, head): each tile of TILE keys gets one score per thread, then
//                     every thread folds the tile into the output dimensions it owns. For real GPUs.
// Both keep a running max, so the sums never overflow; headDim is at most MAX_HEAD_DIM.

struct Params {
  rows: u32, heads: u32, kvHeads: u32, headDim: u32,
  qOff: u32, qLd: u32, kOff: u32, kLd: u32,
  vOff: u32, vLd: u32, outOff: u32, outLd: u32,
  keyRows: u32, scale: f32, _p0: u32, _p1: u32,
}

struct StoreParams {
  rows: u32, width: u32, srcOff: u32, srcLd: u32,
  dstOff: u32, dstLd: u32, keyRows: u32, _p0: u32,
}

// attend_*:    positions, q, k, v, out, params @5
// cache_store: positions, src, dst, params @3
@group(0) @binding(0) var<storage, read> positions: array<u32>;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<uniform> sp: StoreParams;

const STORE_WG = 64u;
const THREAD_WG = 64u;
const TILE = 64u;            // keys per tile = threads per workgroup of attend_workgroup
const MAX_HEAD_DIM = 256u;
const DIMS_PER_THREAD = 4u;  // MAX_HEAD_DIM / TILE: the output dimensions one attend_workgroup thread owns
const NEG_BIG = -3.0e38;     // a finite "minus infinity" (WGSL may assume floats are finite)

fn linearIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32, size: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * size + lid;
}

@compute @workgroup_size(STORE_WG)
fn cache_store(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid, STORE_WG);
  if (i >= sp.rows * sp.width) { return; }
  let r = i / sp.width;
  let c = i % sp.width;
  let pos = positions[r];
  if (pos >= sp.keyRows) { return; }
  dst[sp.dstOff + pos * sp.dstLd + c] = src[sp.srcOff + r * sp.srcLd + c];
}

// Keys row r attends to: 0 ..= its position, within the cache.
fn keyCount(r: u32) -> u32 {
  return min(positions[r], p.keyRows - 1u) + 1u;
}

fn score(qBase: u32, kBase: u32) -> f32 {
  var s = 0.0;
  for (var x = 0u; x < p.headDim; x++) { s += q[qBase + x] * k[kBase + x]; }
  return s * p.scale;
}

@compute @workgroup_size(THREAD_WG)
fn attend_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid, THREAD_WG);
  if (i >= p.rows * p.heads) { return; }
  let r = i / p.heads;
  let h = i % p.heads;
  let kvh = h / (p.heads / p.kvHeads);
  let hd = p.headDim;
  let qBase = p.qOff + r * p.qLd + h * hd;
  var acc: array<f32, MAX_HEAD_DIM>;
  var m = NEG_BIG; // running max of the scores
  var l = 0.0;     // running sum of exp(score - m)
  let keys = keyCount(r);
  for (var j = 0u; j < keys; j++) {
    let s = score(qBase, p.kOff + j * p.kLd + kvh * hd);
    let vBase = p.vOff + j * p.vLd + kvh * hd;
    if (s > m) {
      // A new max: rescale what was summed so far (the first key zeroes the empty sum).
      let c = exp(m - s);
      l = l * c + 1.0;
      for (var x = 0u; x < hd; x++) { acc[x] = acc[x] * c + v[vBase + x]; }
      m = s;
    } else {
      let e = exp(s - m);
      l += e;
      for (var x = 0u; x < hd; x++) { acc[x] += e * v[vBase + x]; }
    }
  }
  let outBase = p.outOff + r * p.outLd + h * hd;
  for (var x = 0u; x < hd; x++) { out[outBase + x] = acc[x] / l; }
}

var<workgroup> tileScores: array<f32, TILE>;
var<workgroup> keysShared: u32;

@compute @workgroup_size(TILE)
fn attend_workgroup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
  let i = wg.x + wg.y * nwg.x;
  if (i >= p.rows * p.heads) { return; } // uniform: the whole workgroup leaves together
  let r = i / p.heads;
  let h = i % p.heads;
  let kvh = h / (p.heads / p.kvHeads);
  let hd = p.headDim;
  let qBase = p.qOff + r * p.qLd + h * hd;
  // Loaded so that every thread provably sees the same count (the tile loop holds barriers).
  if (lid == 0u) { keysShared = keyCount(r); }
  let keys = workgroupUniformLoad(&keysShared);
  // Thread lid owns output dimensions lid, lid + TILE, ... (< hd).
  var acc: array<f32, DIMS_PER_THREAD>;
  var m = NEG_BIG;
  var l = 0.0;
  for (var t0 = 0u; t0 < keys; t0 += TILE) {
    let n = min(TILE, keys - t0);
    var s = NEG_BIG;
    if (lid < n) { s = score(qBase, p.kOff + (t0 + lid) * p.kLd + kvh * hd); }
    tileScores[lid] = s;
    workgroupBarrier();
    var tileMax = NEG_BIG;
    for (var j = 0u; j < n; j++) { tileMax = max(tileMax, tileScores[j]); }
    let mNew = max(m, tileMax);
    let c = exp(m - mNew);
    l *= c;
    for (var d = 0u; d < DIMS_PER_THREAD; d++) { acc[d] *= c; }
    for (var j = 0u; j < n; j++) {
      let e = exp(tileScores[j] - mNew);
      l += e;
      let vBase = p.vOff + (t0 + j) * p.vLd + kvh * hd;
      for (var d = 0u; d < DIMS_PER_THREAD; d++) {
        let x = lid + d * TILE;
        if (x < hd) { acc[d] += e * v[vBase + x]; }
      }
    }
    m = mNew;
    workgroupBarrier(); // every thread has read the tile before the next one overwrites it
  }
  let outBase = p.outOff + r * p.outLd + h * hd;
  for (var d = 0u; d < DIMS_PER_THREAD; d++) {
    let x = lid + d * TILE;
    if (x < hd) { out[outBase + x] = acc[d] / l; }
  }
}
