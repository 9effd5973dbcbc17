// GraLoRA block shuffle (docs/METHODS.md, GraLoRA): the k x k transpose of sr-wide column chunks, sr = rank / k.
//   src holds H_n   [k, rows, rank] (batch n: the input block that produced it)
//   dst holds H'_m  [k, rows, rank] (batch m: the output block that consumes it)
//   H'_m[t, n*sr + c] = H_n[t, m*sr + c]
// Swapping (m, n) gives back the input, so the same entry serves the backward pass (dH' -> dH).
// One thread per output element, no branches in the body: a gather.

struct Params {
  rows: u32, k: u32, rank: u32, sr: u32,
}

const WG = 256u;

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn shuffle(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  let plane = p.rows * p.rank;
  if (i >= p.k * plane) { return; }
  let m = i / plane;
  let inPlane = i - m * plane;     // t * rank + j
  let j = inPlane % p.rank;        // n * sr + c
  let n = j / p.sr;
  let c = j - n * p.sr;
  dst[i] = src[n * plane + (inPlane - j) + m * p.sr + c];
}
