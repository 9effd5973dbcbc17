// Distances to the two nearest neighbours of every point, from the Gram matrix G = X·Xᵀ (TwoNN, GeLoRA).
//   d²(i, j) = max(G_ii + G_jj − 2 G_ij, 0) for j ≠ i;  r1r2[2i] = √min,  r1r2[2i + 1] = √second smallest.
// One thread per point walks all n points; no barriers. G is symmetric, so thread i reads column i
// (G_ji): neighbouring threads read neighbouring addresses, and G_jj is the same for every thread.
// The two smallest distances are kept with min/max only: a branchy loop is slow to compile on SwiftShader.

struct Params {
  n: u32, _p0: u32, _p1: u32, _p2: u32,
}

const WG = 64u;
// Stands in for "no neighbour yet" (i itself): WGSL may assume floats are finite, so no infinity.
const FAR = 3.0e38;

@group(0) @binding(0) var<storage, read> gram: array<f32>;
@group(0) @binding(1) var<storage, read_write> r1r2: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn nearest_two(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let i = (wg.x + wg.y * nwg.x) * WG + lid;
  if (i >= p.n) { return; }
  let n = p.n;
  let gii = gram[i * n + i];
  var m1 = FAR;
  var m2 = FAR;
  for (var j = 0u; j < n; j++) {
    let d2 = max(gii + gram[j * n + j] - 2.0 * gram[j * n + i], 0.0);
    let d = select(d2, FAR, j == i);
    m2 = min(m2, max(m1, d));
    m1 = min(m1, d);
  }
  r1r2[2u * i] = sqrt(m1);
  r1r2[2u * i + 1u] = sqrt(m2);
}
