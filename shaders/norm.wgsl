// RMSNorm (Hugging Face Llama) and LayerNorm (torch, biased variance) over strided row views.
//   rmsnorm:   y = x * rstd * w,                  rstd = 1 / sqrt(mean(x^2) + eps)
//   layernorm: y = (x - mean) * rstd * w + b,     rstd = 1 / sqrt(mean((x - mean)^2) + eps)
// Row r of a view starts at off + (r / groups) * ld + (r % groups) * width, so one kernel serves
// token rows and per-head slices inside them (Qwen3's q/k norm).
// Row kernels: one workgroup per row (linear index over a 2-D grid), WG threads striding its columns,
// deterministic reductions: a shared-memory tree, or where the device has subgroups (subgroups.ts picks)
// a subgroupAdd per subgroup and one fixed-order pass over the subgroups' partials.
// Parameter-gradient kernels: one workgroup per block of COLS columns, LANES lanes per column striding
// the rows, then a fixed-order reduction over the lanes (a column's lanes are COLS threads apart, not in
// one subgroup, so this one stays a tree).
// Each entry point has its own binding list; variables sharing a binding number belong to
// different entry points (WGSL allows that).
//
// The *_thread entry points compute the same values without barriers, for CPU Vulkan drivers
// (SwiftShader) that run a workgroup's threads as coroutines and pay a switch per thread at every
// barrier: one thread per row walks its columns serially (row kernels), one thread per column walks
// the rows (parameter-gradient kernels). They share the binding lists of their workgroup twins.

struct View { off: u32, ld: u32, groups: u32, _pad: u32 }

struct Params {
  rows: u32, width: u32, eps: f32, accumulate: u32,
  a: View,  // x (forward) or dout (backward)
  b: View,  // out (forward) or x (backward)
  c: View,  // dx (backward)
}

const WG = 128u;
const COLS = 32u;
const LANES = 8u;

var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;
var<workgroup> colRed: array<f32, 256>; // [LANES][COLS]
var<workgroup> colRed2: array<f32, 256>;

fn rowStart(v: View, width: u32, r: u32) -> u32 {
  return v.off + (r / v.groups) * v.ld + (r % v.groups) * width;
}

fn rowIndex(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wg.x + wg.y * nwg.x;
}

// The row reductions in two forms, the shared-memory tree and then the subgroup one: the kernel source
// keeps one of them (see src/kernels/subgroups.ts). Entry points take an Invocation (declared by subgroups.ts for each form) and pass it on.
// subgroups:begin
// Sum of one value per thread, in a fixed order; every thread gets the result.
fn sumWorkgroup(v: f32, inv: Invocation) -> f32 {
  let lid = inv.lid;
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier(); // red is reused by the next reduction
  return total;
}

// Two sums at once (one barrier sequence).
fn sumWorkgroup2(u: f32, v: f32, inv: Invocation) -> vec2<f32> {
  let lid = inv.lid;
  red[lid] = u;
  red2[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red[lid] += red[lid + s];
      red2[lid] += red2[lid + s];
    }
    workgroupBarrier();
  }
  let total = vec2<f32>(red[0], red2[0]);
  workgroupBarrier();
  return total;
}
// subgroups:alternative
// Each subgroup's sum goes to red[subgroup]; every thread then adds the partials in subgroup order.
// red has WG slots: enough for any subgroup size.
fn sumWorkgroup(v: f32, inv: Invocation) -> f32 {
  let s = subgroupAdd(v);
  if (inv.sgLane == 0u) { red[inv.sg] = s; }
  workgroupBarrier();
  var total = 0.0;
  for (var i = 0u; i < inv.numSg; i++) { total += red[i]; }
  workgroupBarrier(); // red is reused by the next reduction
  return total;
}

fn sumWorkgroup2(u: f32, v: f32, inv: Invocation) -> vec2<f32> {
  let s = vec2<f32>(subgroupAdd(u), subgroupAdd(v));
  if (inv.sgLane == 0u) {
    red[inv.sg] = s.x;
    red2[inv.sg] = s.y;
  }
  workgroupBarrier();
  var total = vec2<f32>(0.0);
  for (var i = 0u; i < inv.numSg; i++) { total += vec2<f32>(red[i], red2[i]); }
  workgroupBarrier();
  return total;
}
// subgroups:end

// Column sums over LANES lanes: lane 0 of each column ends up with the total.
fn sumLanes(u: f32, v: f32, col: u32, lane: u32) -> vec2<f32> {
  colRed[lane * COLS + col] = u;
  colRed2[lane * COLS + col] = v;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lane < s) {
      colRed[lane * COLS + col] += colRed[(lane + s) * COLS + col];
      colRed2[lane * COLS + col] += colRed2[(lane + s) * COLS + col];
    }
    workgroupBarrier();
  }
  return vec2<f32>(colRed[col], colRed2[col]);
}

// ------------------------------------------------------------------ RMSNorm forward
@group(0) @binding(0) var<storage, read> rf_x: array<f32>;
@group(0) @binding(1) var<storage, read> rf_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> rf_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> rf_rstd: array<f32>;
@group(0) @binding(4) var<uniform> rf_p: Params;

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   inv: Invocation) {
  let lid = inv.lid;
  let p = rf_p;
  let r = rowIndex(wg, nwg);
  if (r >= p.rows) { return; }
  let xs = rowStart(p.a, p.width, r);
  var ss = 0.0;
  for (var c = lid; c < p.width; c += WG) { let v = rf_x[xs + c]; ss = fma(v, v, ss); }
  let rstd = inverseSqrt(sumWorkgroup(ss, inv) / f32(p.width) + p.eps);
  let os = rowStart(p.b, p.width, r);
  for (var c = lid; c < p.width; c += WG) { rf_out[os + c] = rf_x[xs + c] * rstd * rf_w[c]; }
  if (lid == 0u) { rf_rstd[r] = rstd; }
}

// ------------------------------------------------------------------ RMSNorm backward (input)
// dx = rstd * (w*g - x * rstd^2 * mean(w*g*x))
@group(0) @binding(0) var<storage, read> rb_dout: array<f32>;
@group(0) @binding(1) var<storage, read> rb_x: array<f32>;
@group(0) @binding(2) var<storage, read> rb_w: array<f32>;
@group(0) @binding(3) var<storage, read> rb_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> rb_dx: array<f32>;
@group(0) @binding(5) var<uniform> rb_p: Params;

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    inv: Invocation) {
  let lid = inv.lid;
  let p = rb_p;
  let r = rowIndex(wg, nwg);
  if (r >= p.rows) { return; }
  let gs = rowStart(p.a, p.width, r);
  let xs = rowStart(p.b, p.width, r);
  var dot = 0.0;
  for (var c = lid; c < p.width; c += WG) { dot += rb_dout[gs + c] * rb_w[c] * rb_x[xs + c]; }
  let rstd = rb_rstd[r];
  let k = sumWorkgroup(dot, inv) / f32(p.width) * rstd * rstd;
  let ds = rowStart(p.c, p.width, r);
  for (var c = lid; c < p.width; c += WG) {
    let v = rstd * (rb_dout[gs + c] * rb_w[c] - rb_x[xs + c] * k);
    if (p.accumulate != 0u) { rb_dx[ds + c] += v; } else { rb_dx[ds + c] = v; }
  }
}

// ------------------------------------------------------------------ RMSNorm weight gradient
// dw[c] = sum_r dout[r,c] * x[r,c] * rstd[r]
@group(0) @binding(0) var<storage, read> rw_dout: array<f32>;
@group(0) @binding(1) var<storage, read> rw_x: array<f32>;
@group(0) @binding(2) var<storage, read> rw_rstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> rw_dw: array<f32>;
@group(0) @binding(4) var<uniform> rw_p: Params;

@compute @workgroup_size(COLS, LANES)
fn rmsnorm_weight_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = rw_p;
  let c = wg.x * COLS + lid.x;
  var acc = 0.0;
  if (c < p.width) {
    for (var r = lid.y; r < p.rows; r += LANES) {
      acc += rw_dout[rowStart(p.a, p.width, r) + c] * rw_x[rowStart(p.b, p.width, r) + c] * rw_rstd[r];
    }
  }
  let total = sumLanes(acc, 0.0, lid.x, lid.y).x;
  if (lid.y == 0u && c < p.width) {
    if (p.accumulate != 0u) { rw_dw[c] += total; } else { rw_dw[c] = total; }
  }
}

// ------------------------------------------------------------------ LayerNorm forward
@group(0) @binding(0) var<storage, read> lf_x: array<f32>;
@group(0) @binding(1) var<storage, read> lf_w: array<f32>;
@group(0) @binding(2) var<storage, read> lf_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> lf_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> lf_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> lf_rstd: array<f32>;
@group(0) @binding(6) var<uniform> lf_p: Params;

@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                     inv: Invocation) {
  let lid = inv.lid;
  let p = lf_p;
  let r = rowIndex(wg, nwg);
  if (r >= p.rows) { return; }
  let xs = rowStart(p.a, p.width, r);
  var s = 0.0;
  for (var c = lid; c < p.width; c += WG) { s += lf_x[xs + c]; }
  let mean = sumWorkgroup(s, inv) / f32(p.width);
  // Second pass over centred values: no cancellation when |mean| >> std.
  var ss = 0.0;
  for (var c = lid; c < p.width; c += WG) { let d = lf_x[xs + c] - mean; ss = fma(d, d, ss); }
  let rstd = inverseSqrt(sumWorkgroup(ss, inv) / f32(p.width) + p.eps);
  let os = rowStart(p.b, p.width, r);
  for (var c = lid; c < p.width; c += WG) {
    lf_out[os + c] = (lf_x[xs + c] - mean) * rstd * lf_w[c] + lf_b[c];
  }
  if (lid == 0u) {
    lf_mean[r] = mean;
    lf_rstd[r] = rstd;
  }
}

// ------------------------------------------------------------------ LayerNorm backward (input)
// xhat = (x - mean) * rstd, g = dout * w:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
@group(0) @binding(0) var<storage, read> lb_dout: array<f32>;
@group(0) @binding(1) var<storage, read> lb_x: array<f32>;
@group(0) @binding(2) var<storage, read> lb_w: array<f32>;
@group(0) @binding(3) var<storage, read> lb_mean: array<f32>;
@group(0) @binding(4) var<storage, read> lb_rstd: array<f32>;
@group(0) @binding(5) var<storage, read_write> lb_dx: array<f32>;
@group(0) @binding(6) var<uniform> lb_p: Params;

@compute @workgroup_size(WG)
fn layernorm_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                      inv: Invocation) {
  let lid = inv.lid;
  let p = lb_p;
  let r = rowIndex(wg, nwg);
  if (r >= p.rows) { return; }
  let gs = rowStart(p.a, p.width, r);
  let xs = rowStart(p.b, p.width, r);
  let mean = lb_mean[r];
  let rstd = lb_rstd[r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = lid; c < p.width; c += WG) {
    let g = lb_dout[gs + c] * lb_w[c];
    sg += g;
    sgx += g * (lb_x[xs + c] - mean) * rstd;
  }
  let sums = sumWorkgroup2(sg, sgx, inv) / f32(p.width);
  let ds = rowStart(p.c, p.width, r);
  for (var c = lid; c < p.width; c += WG) {
    let xhat = (lb_x[xs + c] - mean) * rstd;
    let v = rstd * (lb_dout[gs + c] * lb_w[c] - sums.x - xhat * sums.y);
    if (p.accumulate != 0u) { lb_dx[ds + c] += v; } else { lb_dx[ds + c] = v; }
  }
}

// ------------------------------------------------------------------ LayerNorm weight and bias gradients
// dw[c] = sum_r dout[r,c] * xhat[r,c],  db[c] = sum_r dout[r,c]
@group(0) @binding(0) var<storage, read> lp_dout: array<f32>;
@group(0) @binding(1) var<storage, read> lp_x: array<f32>;
@group(0) @binding(2) var<storage, read> lp_mean: array<f32>;
@group(0) @binding(3) var<storage, read> lp_rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> lp_dw: array<f32>;
@group(0) @binding(5) var<storage, read_write> lp_db: array<f32>;
@group(0) @binding(6) var<uniform> lp_p: Params;

@compute @workgroup_size(COLS, LANES)
fn layernorm_param_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let p = lp_p;
  let c = wg.x * COLS + lid.x;
  var dw = 0.0;
  var db = 0.0;
  if (c < p.width) {
    for (var r = lid.y; r < p.rows; r += LANES) {
      let g = lp_dout[rowStart(p.a, p.width, r) + c];
      dw += g * (lp_x[rowStart(p.b, p.width, r) + c] - lp_mean[r]) * lp_rstd[r];
      db += g;
    }
  }
  let total = sumLanes(dw, db, lid.x, lid.y);
  if (lid.y == 0u && c < p.width) {
    if (p.accumulate != 0u) {
      lp_dw[c] += total.x;
      lp_db[c] += total.y;
    } else {
      lp_dw[c] = total.x;
      lp_db[c] = total.y;
    }
  }
}

// ------------------------------------------------------------------ barrier-free (thread) variants
const THREAD_WG = 64u;

fn threadIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * THREAD_WG + lid;
}

@compute @workgroup_size(THREAD_WG)
fn rmsnorm_forward_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                          @builtin(local_invocation_index) lid: u32) {
  let p = rf_p;
  let r = threadIndex(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let xs = rowStart(p.a, p.width, r);
  var ss = 0.0;
  for (var c = 0u; c < p.width; c++) { let v = rf_x[xs + c]; ss = fma(v, v, ss); }
  let rstd = inverseSqrt(ss / f32(p.width) + p.eps);
  let os = rowStart(p.b, p.width, r);
  for (var c = 0u; c < p.width; c++) { rf_out[os + c] = rf_x[xs + c] * rstd * rf_w[c]; }
  rf_rstd[r] = rstd;
}

@compute @workgroup_size(THREAD_WG)
fn rmsnorm_backward_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                           @builtin(local_invocation_index) lid: u32) {
  let p = rb_p;
  let r = threadIndex(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let gs = rowStart(p.a, p.width, r);
  let xs = rowStart(p.b, p.width, r);
  var dot = 0.0;
  for (var c = 0u; c < p.width; c++) { dot += rb_dout[gs + c] * rb_w[c] * rb_x[xs + c]; }
  let rstd = rb_rstd[r];
  let k = dot / f32(p.width) * rstd * rstd;
  let ds = rowStart(p.c, p.width, r);
  for (var c = 0u; c < p.width; c++) {
    let v = rstd * (rb_dout[gs + c] * rb_w[c] - rb_x[xs + c] * k);
    if (p.accumulate != 0u) { rb_dx[ds + c] += v; } else { rb_dx[ds + c] = v; }
  }
}

@compute @workgroup_size(THREAD_WG)
fn rmsnorm_weight_grad_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                              @builtin(local_invocation_index) lid: u32) {
  let p = rw_p;
  let c = threadIndex(wg, nwg, lid);
  if (c >= p.width) { return; }
  var acc = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    acc += rw_dout[rowStart(p.a, p.width, r) + c] * rw_x[rowStart(p.b, p.width, r) + c] * rw_rstd[r];
  }
  if (p.accumulate != 0u) { rw_dw[c] += acc; } else { rw_dw[c] = acc; }
}

@compute @workgroup_size(THREAD_WG)
fn layernorm_forward_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                            @builtin(local_invocation_index) lid: u32) {
  let p = lf_p;
  let r = threadIndex(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let xs = rowStart(p.a, p.width, r);
  var s = 0.0;
  for (var c = 0u; c < p.width; c++) { s += lf_x[xs + c]; }
  let mean = s / f32(p.width);
  var ss = 0.0;
  for (var c = 0u; c < p.width; c++) { let d = lf_x[xs + c] - mean; ss = fma(d, d, ss); }
  let rstd = inverseSqrt(ss / f32(p.width) + p.eps);
  let os = rowStart(p.b, p.width, r);
  for (var c = 0u; c < p.width; c++) { lf_out[os + c] = (lf_x[xs + c] - mean) * rstd * lf_w[c] + lf_b[c]; }
  lf_mean[r] = mean;
  lf_rstd[r] = rstd;
}

@compute @workgroup_size(THREAD_WG)
fn layernorm_backward_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                             @builtin(local_invocation_index) lid: u32) {
  let p = lb_p;
  let r = threadIndex(wg, nwg, lid);
  if (r >= p.rows) { return; }
  let gs = rowStart(p.a, p.width, r);
  let xs = rowStart(p.b, p.width, r);
  let mean = lb_mean[r];
  let rstd = lb_rstd[r];
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = 0u; c < p.width; c++) {
    let g = lb_dout[gs + c] * lb_w[c];
    sg += g;
    sgx += g * (lb_x[xs + c] - mean) * rstd;
  }
  let meanG = sg / f32(p.width);
  let meanGX = sgx / f32(p.width);
  let ds = rowStart(p.c, p.width, r);
  for (var c = 0u; c < p.width; c++) {
    let xhat = (lb_x[xs + c] - mean) * rstd;
    let v = rstd * (lb_dout[gs + c] * lb_w[c] - meanG - xhat * meanGX);
    if (p.accumulate != 0u) { lb_dx[ds + c] += v; } else { lb_dx[ds + c] = v; }
  }
}

@compute @workgroup_size(THREAD_WG)
fn layernorm_param_grad_thread(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                               @builtin(local_invocation_index) lid: u32) {
  let p = lp_p;
  let c = threadIndex(wg, nwg, lid);
  if (c >= p.width) { return; }
  var dw = 0.0;
  var db = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    let g = lp_dout[rowStart(p.a, p.width, r) + c];
    dw += g * (lp_x[rowStart(p.b, p.width, r) + c] - lp_mean[r]) * lp_rstd[r];
    db += g;
  }
  if (p.accumulate != 0u) {
    lp_dw[c] += dw;
    lp_db[c] += db;
  } else {
    lp_dw[c] = dw;
    lp_db[c] = db;
  }
}
