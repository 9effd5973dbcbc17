// DoRA (docs/METHODS.md, DoRA): y = b + g ⊙ (W x + s·B·A x), g = m / ‖W + s·B·A‖_row, the norm detached.
//   row_norms_sq: wn2[j] = Σ_k W[j, k]²                       one workgroup per output row, W read as stored
//   norm_scale:   n_j = sqrt(wn2[j] + Σ_r B[j, r]·E[r, j]),     one thread per output row; E = 2s·A·Wᵀ + s²·(A·Aᵀ)·Bᵀ
//                 ng = [n; m / n]                              (lowRank 0: n_j = sqrt(wn2[j]), a held norm)
//   combine:      y = beta·y + g ⊙ z                           z = x·Wᵀ + s·(x·Aᵀ)·Bᵀ, one thread per element
//   scale_grad:   dz = g ⊙ dy, dm_j = Σ_rows dy·z / n_j        COLS columns per workgroup, LANES lanes per column
//                                                               striding the rows, a fixed-order reduction

const WG = 256u;
const NORM_LANES = 64u;
const COLS = 32u;
const LANES = 8u;

// ---------------------------------------------------------------- row_norms_sq

struct RowParams {
  inDim: u32, outDim: u32, conv1d: u32, _p: u32,
}

// weight-storage:begin W 0
@group(0) @binding(0) var<storage, read> W: array<f32>;
@group(0) @binding(0) var<storage, read> W4: array<vec4<f32>>;
fn readW(i: u32) -> f32 { return W[i]; }
fn readW4(i: u32) -> vec4<f32> { return W4[i]; }
fn countW4() -> u32 { return arrayLength(&W4); }
// weight-storage:end
@group(0) @binding(1) var<storage, read_write> rn_out: array<f32>;
@group(0) @binding(2) var<uniform> rn_p: RowParams;

var<workgroup> rn_part: array<f32, 64>;

@compute @workgroup_size(NORM_LANES)
fn row_norms_sq(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let j = wg.x + wg.y * nwg.x;
  if (j >= rn_p.outDim) { return; }
  var acc = 0.0;
  for (var k = lid; k < rn_p.inDim; k += NORM_LANES) {
    // Linear W [out, in]; GPT-2's Conv1D stores [in, out].
    let w = readW(select(j * rn_p.inDim + k, k * rn_p.outDim + j, rn_p.conv1d != 0u));
    acc += w * w;
  }
  rn_part[lid] = acc;
  workgroupBarrier();
  for (var s = NORM_LANES / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { rn_part[lid] += rn_part[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { rn_out[j] = rn_part[0]; }
}

// ---------------------------------------------------------------- norm_scale

struct ScaleParams {
  outDim: u32, rank: u32, lowRank: u32, _p: u32,
}

@group(0) @binding(0) var<storage, read> ns_wn2: array<f32>;
@group(0) @binding(1) var<storage, read> ns_B: array<f32>;
@group(0) @binding(2) var<storage, read> ns_E: array<f32>;
@group(0) @binding(3) var<storage, read> ns_m: array<f32>;
@group(0) @binding(4) var<storage, read_write> ns_ng: array<f32>;
@group(0) @binding(5) var<uniform> ns_p: ScaleParams;

@compute @workgroup_size(WG)
fn norm_scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let j = (wg.x + wg.y * nwg.x) * WG + lid;
  if (j >= ns_p.outDim) { return; }
  var n2 = ns_wn2[j];
  if (ns_p.lowRank != 0u) {
    for (var r = 0u; r < ns_p.rank; r++) { n2 += ns_B[j * ns_p.rank + r] * ns_E[r * ns_p.outDim + j]; }
  }
  let n = sqrt(max(n2, 0.0));
  ns_ng[j] = n;
  ns_ng[ns_p.outDim + j] = ns_m[j] / n;
}

// ---------------------------------------------------------------- combine

struct CombineParams {
  rows: u32, outDim: u32, yOff: u32, yLd: u32,
  beta: u32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> cb_ng: array<f32>;
@group(0) @binding(1) var<storage, read> cb_z: array<f32>;
@group(0) @binding(2) var<storage, read_write> cb_y: array<f32>;
@group(0) @binding(3) var<uniform> cb_p: CombineParams;

@compute @workgroup_size(WG)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= cb_p.rows * cb_p.outDim) { return; }
  let r = i / cb_p.outDim;
  let c = i - r * cb_p.outDim;
  let k = cb_p.yOff + r * cb_p.yLd + c;
  let v = cb_ng[cb_p.outDim + c] * cb_z[i];
  // beta 0 never reads y (it may hold anything).
  if (cb_p.beta != 0u) { cb_y[k] = cb_y[k] + v; } else { cb_y[k] = v; }
}

// ---------------------------------------------------------------- scale_grad

struct GradParams {
  rows: u32, outDim: u32, dyOff: u32, dyLd: u32,
}

@group(0) @binding(0) var<storage, read> sg_dy: array<f32>;
@group(0) @binding(1) var<storage, read> sg_z: array<f32>;
@group(0) @binding(2) var<storage, read> sg_ng: array<f32>;
@group(0) @binding(3) var<storage, read_write> sg_dz: array<f32>;
@group(0) @binding(4) var<storage, read_write> sg_dm: array<f32>;
@group(0) @binding(5) var<uniform> sg_p: GradParams;

var<workgroup> sg_part: array<f32, 256>; // [LANES][COLS]

@compute @workgroup_size(COLS, LANES)
fn scale_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * COLS + lid.x;
  var acc = 0.0;
  if (c < sg_p.outDim) {
    let g = sg_ng[sg_p.outDim + c];
    for (var r = lid.y; r < sg_p.rows; r += LANES) {
      let d = sg_dy[sg_p.dyOff + r * sg_p.dyLd + c];
      let k = r * sg_p.outDim + c;
      sg_dz[k] = g * d;
      acc += d * sg_z[k];
    }
  }
  sg_part[lid.y * COLS + lid.x] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lid.y < s) { sg_part[lid.y * COLS + lid.x] += sg_part[(lid.y + s) * COLS + lid.x]; }
    workgroupBarrier();
  }
  if (lid.y == 0u && c < sg_p.outDim) { sg_dm[c] = sg_part[lid.x] / sg_ng[c]; }
}
