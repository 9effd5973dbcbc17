// AdaLoRA (PEFT ADALORA, docs/METHODS.md): the SVD-like triplet P·Λ·Q of each module, its orthogonal regularizer,
// and the rank allocator's importance scores and budget masks. Float64 references: src/kernels/adalora.ref.ts.
//   lora_A = P [r, in], lora_E = Λ [r, 1], lora_B = Q [out, r];   ΔW = B·(A ⊙ E)·alpha/(init_r + 1e-5)
// The schedule buffer (written by the host before each step) is [update_ipt, compute_mask, apply_mask, k]: the
// allocator's flags for this step and k = init_bgt − budget, the rank of the mask threshold.

const WG = 256u;
const RWG = 64u;

// ------------------------------------------------------------------------------------ A ⊙ E and its gradient

struct ScaleParams { total: u32, cols: u32, }

@group(0) @binding(0) var<storage, read> rs_a: array<f32>;
@group(0) @binding(1) var<storage, read> rs_e: array<f32>;
@group(0) @binding(2) var<storage, read_write> rs_out: array<f32>;
@group(0) @binding(3) var<uniform> rs: ScaleParams;

// AE[k, c] = A[k, c] · E[k]
@compute @workgroup_size(WG)
fn row_scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= rs.total) { return; }
  rs_out[i] = rs_a[i] * rs_e[i / rs.cols];
}

struct GradParams { cols: u32, }

@group(0) @binding(0) var<storage, read_write> sg_da: array<f32>;
@group(0) @binding(1) var<storage, read> sg_a: array<f32>;
@group(0) @binding(2) var<storage, read> sg_e: array<f32>;
@group(0) @binding(3) var<storage, read_write> sg_de: array<f32>;
@group(0) @binding(4) var<uniform> sg: GradParams;

var<workgroup> sg_sum: array<f32, RWG>;

// In place, one workgroup per row k: dA holds d(A ⊙ E) on entry; dE[k] = Σ_c dAE[k, c]·A[k, c], dA[k, c] = dAE[k, c]·E[k].
// Each element is read and written by the same thread, so the overwrite is safe.
@compute @workgroup_size(RWG)
fn scale_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let k = wg.x;
  let base = k * sg.cols;
  let e = sg_e[k];
  var acc = 0.0;
  for (var c = lid; c < sg.cols; c += RWG) {
    let g = sg_da[base + c];
    acc += g * sg_a[base + c];
    sg_da[base + c] = g * e;
  }
  sg_sum[lid] = acc;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { sg_sum[lid] += sg_sum[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sg_de[k] = sg_sum[0]; }
}

// ------------------------------------------------------------------------------- orthogonal regularizer
// R = w·(‖A·Aᵀ − I‖_F + ‖Bᵀ·B − I‖_F) per module, w = orth_reg_weight / num_param. Both factors are seen as
// M [r, n] (A: n = in; B: n = out, M[k, c] = B[c, k]); workgroup row y = 0 is A's, y = 1 is B's.
// D holds [2][r, r] (M·Mᵀ − I) followed by the two gradient coefficients 2w/‖D‖.

struct OrthParams { r: u32, in_dim: u32, out_dim: u32, weight: f32, }

@group(0) @binding(0) var<storage, read> og_a: array<f32>;
@group(0) @binding(1) var<storage, read> og_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> og_d: array<f32>;
@group(0) @binding(3) var<uniform> og: OrthParams;

var<workgroup> og_sum: array<f32, RWG>;

fn m_at(which: u32, k: u32, c: u32) -> f32 {
  if (which == 0u) { return og_a[k * og.in_dim + c]; }
  return og_b[c * og.r + k];
}

// One workgroup per (i, j, factor): D[i, j] = Σ_c M[i, c]·M[j, c] − δ_ij.
@compute @workgroup_size(RWG)
fn orth_gram(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let which = wg.y;
  let i = wg.x / og.r;
  let j = wg.x % og.r;
  let n = select(og.out_dim, og.in_dim, which == 0u);
  var acc = 0.0;
  for (var c = lid; c < n; c += RWG) { acc += m_at(which, i, c) * m_at(which, j, c); }
  og_sum[lid] = acc;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { og_sum[lid] += og_sum[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { og_d[which * og.r * og.r + wg.x] = og_sum[0] - select(0.0, 1.0, i == j); }
}

@group(0) @binding(0) var<storage, read_write> oc_d: array<f32>;
@group(0) @binding(1) var<uniform> oc: OrthParams;

var<workgroup> oc_sum: array<f32, RWG>;

// One workgroup per factor: the coefficient 2w/‖D‖_F of d‖D‖_F (0 where D = 0: torch's subgradient there).
@compute @workgroup_size(RWG)
fn orth_coef(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rr = oc.r * oc.r;
  let base = wg.x * rr;
  var acc = 0.0;
  for (var t = lid; t < rr; t += RWG) { let v = oc_d[base + t]; acc += v * v; }
  oc_sum[lid] = acc;
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { oc_sum[lid] += oc_sum[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(oc_sum[0]);
    oc_d[2u * rr + wg.x] = select(0.0, 2.0 * oc.weight / norm, norm > 0.0);
  }
}

@group(0) @binding(0) var<storage, read> ogr_a: array<f32>;
@group(0) @binding(1) var<storage, read> ogr_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> ogr_da: array<f32>;
@group(0) @binding(3) var<storage, read_write> ogr_db: array<f32>;
@group(0) @binding(4) var<storage, read> ogr_d: array<f32>;
@group(0) @binding(5) var<uniform> ogr: OrthParams;

// d‖M·Mᵀ − I‖_F / dM = 2·D·M/‖D‖: dA[k, c] += coef·Σ_j D[k, j]·A[j, c];  dB[o, k] += coef·Σ_j B[o, j]·D[j, k].
@compute @workgroup_size(WG)
fn orth_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = ogr.r;
  let rr = r * r;
  let i = wg.x * WG + lid;
  if (wg.y == 0u) {
    if (i >= r * ogr.in_dim) { return; }
    let k = i / ogr.in_dim;
    let c = i - k * ogr.in_dim;
    var acc = 0.0;
    for (var j = 0u; j < r; j++) { acc += ogr_d[k * r + j] * ogr_a[j * ogr.in_dim + c]; }
    ogr_da[i] += ogr_d[2u * rr] * acc;
  } else {
    if (i >= ogr.out_dim * r) { return; }
    let o = i / r;
    let k = i - o * r;
    var acc = 0.0;
    for (var j = 0u; j < r; j++) { acc += ogr_b[o * r + j] * ogr_d[rr + j * r + k]; }
    ogr_db[i] += ogr_d[2u * rr + 1u] * acc;
  }
}

// ------------------------------------------------------------------------------------- rank allocator

struct IptParams { n: u32, clip_index: u32, beta1: f32, beta2: f32, }

@group(0) @binding(0) var<storage, read> ip_p: array<f32>;
@group(0) @binding(1) var<storage, read> ip_g: array<f32>;
@group(0) @binding(2) var<storage, read_write> ip_ema: array<f32>;
@group(0) @binding(3) var<storage, read> ip_state: array<f32>;
@group(0) @binding(4) var<storage, read> ip_sched: array<u32>;
@group(0) @binding(5) var<uniform> ip: IptParams;

// PEFT's update_ipt on the clipped gradient: ipt = |p·g|; ema holds [exp_avg_ipt (n) | exp_avg_unc (n)].
@compute @workgroup_size(WG)
fn ipt_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= ip.n || ip_sched[0] == 0u) { return; }
  let ipt = abs(ip_p[i] * ip_g[i] * ip_state[ip.clip_index]);
  let avg = ip.beta1 * ip_ema[i] + (1.0 - ip.beta1) * ipt;
  ip_ema[i] = avg;
  ip_ema[ip.n + i] = ip.beta2 * ip_ema[ip.n + i] + (1.0 - ip.beta2) * abs(ipt - avg);
}

struct ScoreParams { r: u32, in_dim: u32, out_dim: u32, offset: u32, }

@group(0) @binding(0) var<storage, read> sc_a: array<f32>;
@group(0) @binding(1) var<storage, read> sc_b: array<f32>;
@group(0) @binding(2) var<storage, read> sc_e: array<f32>;
@group(0) @binding(3) var<storage, read_write> sc_scores: array<f32>;
@group(0) @binding(4) var<storage, read> sc_sched: array<u32>;
@group(0) @binding(5) var<uniform> sc: ScoreParams;

var<workgroup> sc_sum: array<f32, RWG>;

// One workgroup per triplet k: score = s_E[k] + mean_c s_A[k, c] + mean_o s_B[o, k], with s = exp_avg_ipt·exp_avg_unc.
@compute @workgroup_size(RWG)
fn triplet_score(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  if (sc_sched[1] == 0u) { return; }
  let k = wg.x;
  let na = sc.r * sc.in_dim;
  let nb = sc.out_dim * sc.r;
  var a = 0.0;
  for (var c = lid; c < sc.in_dim; c += RWG) { let t = k * sc.in_dim + c; a += sc_a[t] * sc_a[na + t]; }
  var b = 0.0;
  for (var o = lid; o < sc.out_dim; o += RWG) { let t = o * sc.r + k; b += sc_b[t] * sc_b[nb + t]; }
  sc_sum[lid] = a / f32(sc.in_dim) + b / f32(sc.out_dim);
  workgroupBarrier();
  for (var s = RWG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { sc_sum[lid] += sc_sum[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { sc_scores[sc.offset + k] = sc_e[k] * sc_e[sc.r + k] + sc_sum[0]; }
}

struct SelectParams { total: u32, }

@group(0) @binding(0) var<storage, read> sel_scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> sel_mask: array<f32>;
@group(0) @binding(2) var<storage, read> sel_sched: array<u32>;
@group(0) @binding(3) var<uniform> sel: SelectParams;

// mask_to_budget without sorting: with v the k-th smallest score (torch.kthvalue), s_i <= v exactly when fewer than
// k scores are smaller than s_i. So triplet i is pruned iff #{j : s_j < s_i} < k (ties at v are all pruned, as in PEFT).
@compute @workgroup_size(WG)
fn select_mask(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = wg.x * WG + lid;
  if (i >= sel.total || sel_sched[1] == 0u) { return; }
  let s = sel_scores[i];
  var smaller = 0u;
  for (var j = 0u; j < sel.total; j++) { smaller += select(0u, 1u, sel_scores[j] < s); }
  sel_mask[i] = select(1.0, 0.0, smaller < sel_sched[3]);
}

struct ApplyParams { r: u32, offset: u32, }

@group(0) @binding(0) var<storage, read_write> am_e: array<f32>;
@group(0) @binding(1) var<storage, read> am_mask: array<f32>;
@group(0) @binding(2) var<storage, read> am_sched: array<u32>;
@group(0) @binding(3) var<uniform> am: ApplyParams;

// lora_E.masked_fill_(pruned, 0): at a masking step, and every step after total_step − tfinal (the fixed pattern).
@compute @workgroup_size(RWG)
fn apply_mask(@builtin(local_invocation_index) lid: u32) {
  if (am_sched[2] == 0u) { return; }
  for (var k = lid; k < am.r; k += RWG) {
    if (am_mask[am.offset + k] == 0.0) { am_e[k] = 0.0; }
  }
}
