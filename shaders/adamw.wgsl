// AdamW with decoupled weight decay, as torch.optim.AdamW, one thread per parameter.
// Hyperparameters come from the small storage tensor hp, which the trainer rewrites each step
// (learning-rate schedule, bias corrections) without touching uniforms or pipelines:
//   hp = [lr, beta1, beta2, eps, weightDecay, 1 - beta1^t, 1 - beta2^t]
// The clip factor is state[clipIndex], written on the GPU by reduce's clip_factor.
//   g = grad * clip
//   m = beta1 m + (1 - beta1) g ;  v = beta2 v + (1 - beta2) g^2
//   p *= 1 - lr * weightDecay            (only when applyDecay)
//   p -= lr * (m / bias1) / (sqrt(v / bias2) + eps)
// lr is hp's lr times lrScale, the parameter group's multiplier (LoRA+ trains B with 16x lr).

struct Params {
  n: u32, clipIndex: u32, applyDecay: u32, lrScale: f32,
}

@group(0) @binding(0) var<storage, read_write> param: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<storage, read> hp: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

const WG = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= p.n) { return; }
  let lr = hp[0] * p.lrScale;
  let beta1 = hp[1];
  let beta2 = hp[2];
  let eps = hp[3];
  let clip = state[p.clipIndex];
  if (clip == 0.0) { return; } // non-finite gradient norm: keep the last good parameters and moments
  let g = grad[i] * clip;
  let mi = beta1 * m[i] + (1.0 - beta1) * g;
  let vi = beta2 * v[i] + (1.0 - beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  var w = param[i];
  if (p.applyDecay != 0u) { w *= 1.0 - lr * hp[4]; }
  param[i] = w - lr * (mi / hp[5]) / (sqrt(vi / hp[6]) + eps);
}
