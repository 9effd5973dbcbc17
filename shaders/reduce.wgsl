// Deterministic sums: every output is owned by one workgroup, which folds a fixed, strided share of the
// input per thread and then sums over its threads in a fixed order, so results do not depend on scheduling:
// a shared-memory tree, or where the device has subgroups (reduce.ts picks) a subgroupAdd per subgroup and
// one pass over the subgroups' partials in subgroup order.
//   reduce_single:   out[outIndex] = sum f(x[0..n))            one workgroup
//   reduce_partials: out[g] = sum f(x[i]) over workgroup g's share   (first stage of a two-stage sum)
//   clip_factor:     norm = sqrt(sum x[0..n)) from per-tensor sums of squares;
//                    out[outIndex] = norm, out[clipIndex] = maxNorm > 0 ? min(1, maxNorm / (norm + 1e-6)) : 1
//                    (0 when norm is NaN or Inf: the optimizer skips that step)
// f(x) = x * x when SQUARE, else x. Every entry point binds x (read) and out (read_write), params @2.

struct Params {
  n: u32, outIndex: u32, clipIndex: u32, maxNorm: f32,
}

override SQUARE: bool = false;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

const WG = 256u;

var<workgroup> red: array<f32, WG>;

fn term(i: u32) -> f32 {
  let v = x[i];
  if (SQUARE) { return v * v; }
  return v;
}

// The sum over a workgroup's threads in two forms, the shared-memory tree and then the subgroup one: the
// kernel source keeps one of them (see src/kernels/subgroups.ts). Entry points take an Invocation (declared by subgroups.ts for each form).
// subgroups:begin
// Sums every thread's value; the result is valid in thread 0. Call from uniform control flow.
fn workgroupSum(v: f32, inv: Invocation) -> f32 {
  let lid = inv.lid;
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  return red[0];
}
// subgroups:alternative
// Each subgroup's sum goes to red[subgroup] (WG slots: enough for any subgroup size); thread 0 adds them
// in subgroup order. The result is valid in thread 0. Call from uniform control flow.
fn workgroupSum(v: f32, inv: Invocation) -> f32 {
  let s = subgroupAdd(v);
  if (inv.sgLane == 0u) { red[inv.sg] = s; }
  workgroupBarrier();
  var total = 0.0;
  if (inv.lid == 0u) {
    for (var i = 0u; i < inv.numSg; i++) { total += red[i]; }
  }
  return total;
}
// subgroups:end

@compute @workgroup_size(WG)
fn reduce_single(inv: Invocation) {
  let lid = inv.lid;
  var acc = 0.0;
  for (var i = lid; i < p.n; i += WG) { acc += term(i); }
  let total = workgroupSum(acc, inv);
  if (lid == 0u) { out[p.outIndex] = total; }
}

@compute @workgroup_size(WG)
fn reduce_partials(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   inv: Invocation) {
  let lid = inv.lid;
  let stride = nwg.x * WG;
  var acc = 0.0;
  for (var i = wg.x * WG + lid; i < p.n; i += stride) { acc += term(i); }
  let total = workgroupSum(acc, inv);
  if (lid == 0u) { out[wg.x] = total; }
}

@compute @workgroup_size(WG)
fn clip_factor(inv: Invocation) {
  let lid = inv.lid;
  var acc = 0.0;
  for (var i = lid; i < p.n; i += WG) { acc += x[i]; }
  let total = workgroupSum(acc, inv);
  if (lid == 0u) {
    let norm = sqrt(total);
    out[p.outIndex] = norm;
    var clip = 1.0;
    if (p.maxNorm > 0.0) { clip = min(1.0, p.maxNorm / (norm + 1e-6)); }
    // A NaN or Inf gradient norm sets clip = 0, which tells adamw to skip the step: the parameters stay
    // those of the last good step. Tested on the bits: WGSL may assume floats are finite.
    if ((bitcast<u32>(norm) & 0x7f800000u) == 0x7f800000u) { clip = 0.0; }
    out[p.clipIndex] = clip;
  }
}
