// Bias over a column slice of a strided matrix (Qwen2's q|k|v bias, GPT-2 Conv1D biases).
//   bias_add:  y[off + r*ld + c] += bias[biasOff + c]           one thread per element
//   bias_grad: dbias[biasOff + c] (+)= sum_r dy[off + r*ld + c]  COLS columns per workgroup, LANES
//              lanes per column striding the rows, then a fixed-order reduction (deterministic).

struct Params {
  rows: u32, cols: u32, off: u32, ld: u32,
  biasOff: u32, accumulate: u32, _p0: u32, _p1: u32,
}

const WG = 256u;
const COLS = 32u;
const LANES = 8u;

@group(0) @binding(0) var<storage, read> a_bias: array<f32>;
@group(0) @binding(1) var<storage, read_write> a_y: array<f32>;
@group(0) @binding(2) var<uniform> a_p: Params;

@compute @workgroup_size(WG)
fn bias_add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= a_p.rows * a_p.cols) { return; }
  let r = i / a_p.cols;
  let c = i % a_p.cols;
  let k = a_p.off + r * a_p.ld + c;
  a_y[k] = a_y[k] + a_bias[a_p.biasOff + c];
}

@group(0) @binding(0) var<storage, read> g_dy: array<f32>;
@group(0) @binding(1) var<storage, read_write> g_dbias: array<f32>;
@group(0) @binding(2) var<uniform> g_p: Params;

var<workgroup> partial: array<f32, 256>; // [LANES][COLS]

@compute @workgroup_size(COLS, LANES)
fn bias_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wg.x * COLS + lid.x;
  var acc = 0.0;
  if (c < g_p.cols) {
    for (var r = lid.y; r < g_p.rows; r += LANES) { acc += g_dy[g_p.off + r * g_p.ld + c]; }
  }
  partial[lid.y * COLS + lid.x] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (lid.y < s) { partial[lid.y * COLS + lid.x] += partial[(lid.y + s) * COLS + lid.x]; }
    workgroupBarrier();
  }
  if (lid.y == 0u && c < g_p.cols) {
    let k = g_p.biasOff + c;
    if (g_p.accumulate != 0u) { g_dbias[k] += partial[lid.x]; } else { g_dbias[k] = partial[lid.x]; }
  }
}
