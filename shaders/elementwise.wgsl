// Elementwise vector ops, one thread per element: residual adds and scaling.
//   add:          out = a + b
//   add_in_place: x += alpha * y
//   scale:        x *= alpha

struct Params { n: u32, alpha: f32, _p0: u32, _p1: u32 }

const WG = 256u;

fn linearIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lid;
}

@group(0) @binding(0) var<storage, read> add_a: array<f32>;
@group(0) @binding(1) var<storage, read> add_b: array<f32>;
@group(0) @binding(2) var<storage, read_write> add_out: array<f32>;
@group(0) @binding(3) var<uniform> add_p: Params;

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i < add_p.n) { add_out[i] = add_a[i] + add_b[i]; }
}

@group(0) @binding(0) var<storage, read> axpy_y: array<f32>;
@group(0) @binding(1) var<storage, read_write> axpy_x: array<f32>;
@group(0) @binding(2) var<uniform> axpy_p: Params;

@compute @workgroup_size(WG)
fn add_in_place(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i < axpy_p.n) { axpy_x[i] = fma(axpy_p.alpha, axpy_y[i], axpy_x[i]); }
}

@group(0) @binding(0) var<storage, read_write> scale_x: array<f32>;
@group(0) @binding(1) var<uniform> scale_p: Params;

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = linearIndex(wg, nwg, lid);
  if (i < scale_p.n) { scale_x[i] = scale_x[i] * scale_p.alpha; }
}
