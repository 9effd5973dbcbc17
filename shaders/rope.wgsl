// Rotary position embedding (Hugging Face rotate_half convention), in place on a strided view of
// token rows that hold `heads` heads of headDim each. For pair i < half = rotaryDim / 2:
//   x1 = x[i], x2 = x[i + half], angle = pos * invFreq[i]
//   forward:  x[i] = x1*cos - x2*sin,  x[i + half] = x2*cos + x1*sin
//   backward: the same with -angle (the transpose of a rotation), applied to the gradient.
// Dims >= rotaryDim are untouched. One thread per (token, head, pair).

struct Params {
  n: u32,        // tokens * heads * half
  heads: u32, headDim: u32, half: u32,
  off: u32, ld: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<storage, read> positions: array<u32>;
@group(0) @binding(1) var<storage, read> invFreq: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

const WG = 64u;
// pi/2 split in two: PIO2_HI has 8 significant bits, so k * PIO2_HI is exact for k < 2^16
// (angles up to ~100,000 radians, i.e. positions up to ~100k).
const PIO2_HI = 1.5703125;
const PIO2_LO = 4.8382679489661923e-4;
const TWO_OVER_PI = 0.63661977236758134;

// sin and cos to f32 accuracy. The built-ins are not enough: WGSL only bounds their error inside
// [-pi, pi] (SwiftShader's are off by ~2e-4 even there) and positions reach thousands of radians.
// Reduce to r in [-pi/4, pi/4] and a quadrant, then Taylor series (truncation error < 2e-9 there).
fn sinCos(a: f32) -> vec2<f32> {
  let k = round(a * TWO_OVER_PI);
  let r = fma(-k, PIO2_LO, fma(-k, PIO2_HI, a));
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0)))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0)))));
  switch (bitcast<u32>(i32(k)) & 3u) {
    case 0u: { return vec2<f32>(s, c); }
    case 1u: { return vec2<f32>(c, -s); }
    case 2u: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

fn rotate(idx: u32, sign: f32) {
  if (idx >= p.n) { return; }
  let i = idx % p.half;
  let th = idx / p.half;        // token * heads + head
  let token = th / p.heads;
  let head = th % p.heads;
  let base = p.off + token * p.ld + head * p.headDim + i;
  // f32 product, as Hugging Face computes the angle.
  let sc = sinCos(f32(positions[token]) * invFreq[i]);
  let c = sc.y;
  let s = sign * sc.x;
  let x1 = x[base];
  let x2 = x[base + p.half];
  x[base] = x1 * c - x2 * s;
  x[base + p.half] = x2 * c + x1 * s;
}

fn linearIndex(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.x + wg.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn rope_forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  rotate(linearIndex(wg, nwg, lid), 1.0);
}

@compute @workgroup_size(WG)
fn rope_backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  rotate(linearIndex(wg, nwg, lid), -1.0);
}
