// Elementwise MLP activations, one thread per element.
//   swiglu:   out = silu(gate) * up,  silu(g) = g * sigmoid(g)          (Llama / Qwen MLP)
//   gelu_new: out = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)   (GPT-2)

struct Params { n: u32, _p0: u32, _p1: u32, _p2: u32 }

const WG = 256u;
const SQRT_2_OVER_PI = 0.7978845608028654;
const GELU_C = 0.044715;
// tanh(10) is 1 in f32; clamping keeps drivers that compute tanh through exp() away from inf/inf.
const TANH_CLAMP = 10.0;

fn linearIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lid;
}

// exp() only of non-positive values: no overflow for any x.
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// ------------------------------------------------------------------ SwiGLU
@group(0) @binding(0) var<storage, read> sf_gate: array<f32>;
@group(0) @binding(1) var<storage, read> sf_up: array<f32>;
@group(0) @binding(2) var<storage, read_write> sf_out: array<f32>;
@group(0) @binding(3) var<uniform> sf_p: Params;

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                  @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= sf_p.n) { return; }
  let g = sf_gate[i];
  sf_out[i] = g * sigmoid(g) * sf_up[i];
}

// dgate = dout * up * s * (1 + g * (1 - s)),  dup = dout * g * s
@group(0) @binding(0) var<storage, read> sb_dout: array<f32>;
@group(0) @binding(1) var<storage, read> sb_gate: array<f32>;
@group(0) @binding(2) var<storage, read> sb_up: array<f32>;
@group(0) @binding(3) var<storage, read_write> sb_dgate: array<f32>;
@group(0) @binding(4) var<storage, read_write> sb_dup: array<f32>;
@group(0) @binding(5) var<uniform> sb_p: Params;

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= sb_p.n) { return; }
  let g = sb_gate[i];
  let d = sb_dout[i];
  let s = sigmoid(g);
  sb_dgate[i] = d * sb_up[i] * s * (1.0 + g * (1.0 - s));
  sb_dup[i] = d * g * s;
}

// ------------------------------------------------------------------ GELU (tanh approximation)
@group(0) @binding(0) var<storage, read> gf_x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gf_out: array<f32>;
@group(0) @binding(2) var<uniform> gf_p: Params;

fn geluInner(x: f32) -> f32 {
  return clamp(SQRT_2_OVER_PI * (x + GELU_C * x * x * x), -TANH_CLAMP, TANH_CLAMP);
}

@compute @workgroup_size(WG)
fn gelu_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= gf_p.n) { return; }
  let x = gf_x[i];
  gf_out[i] = 0.5 * x * (1.0 + tanh(geluInner(x)));
}

// d/dx = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
@group(0) @binding(0) var<storage, read> gb_dout: array<f32>;
@group(0) @binding(1) var<storage, read> gb_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gb_dx: array<f32>;
@group(0) @binding(3) var<uniform> gb_p: Params;

@compute @workgroup_size(WG)
fn gelu_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i >= gb_p.n) { return; }
  let x = gb_x[i];
  let u = geluInner(x);
  let t = tanh(u);
  var slope = 0.5 * (1.0 + t);
  // Where u is clamped tanh is flat; skipping the term also avoids 0 * inf for huge |x|.
  if (abs(u) < TANH_CLAMP) {
    slope += 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_C * x * x);
  }
  gb_dx[i] = gb_dout[i] * slope;
}
