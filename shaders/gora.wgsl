// GoRA importance sums over a weight W and its accumulated gradient G (docs/METHODS.md, GoRA).
//   importance_columns: for column j of the [out, in] matrices, one thread sums over the rows i
//   (sums starts at outOff, so many matrices can share one output buffer)
//     sums[4j + 0] = sum_i |W_ij * G_ij|     (union_mean, before dividing by out*in)
//     sums[4j + 1] = sum_i (W_ij * G_ij)^2    (union_frobenius_norm, before the square root)
//     sums[4j + 2] = sum_i |G_ij|             (grad_mean)
//     sums[4j + 3] = sum_i G_ij^2             (‖G‖_F, for the studio and the init's size check)
//   G is always [out, in] row-major. W is [out, in] (nn.Linear) or, for GPT-2's Conv1D, W_c = Wᵀ stored
//   [in, out]: only the index changes. Adjacent threads read adjacent columns (coalesced for Linear).
//   The host adds the per-column sums in float64: no barriers, no atomics, deterministic.

struct Params {
  rows: u32, cols: u32, conv1d: u32, outOff: u32,
}

const WG = 64u;

// W is the frozen base weight: packed f16/bf16 storage swaps this block (kernels/weight-storage.ts).
// weight-storage:begin W 0
@group(0) @binding(0) var<storage, read> W: array<f32>;
fn readW(i: u32) -> f32 { return W[i]; }
// weight-storage:end
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn importance_columns(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= p.cols) { return; }
  // W's element (i, j) sits at i*cols + j (Linear) or j*rows + i (Conv1D).
  let wStart = select(j, j * p.rows, p.conv1d != 0u);
  let wStep = select(p.cols, 1u, p.conv1d != 0u);
  var absProd = 0.0;
  var sqProd = 0.0;
  var absGrad = 0.0;
  var sqGrad = 0.0;
  for (var i = 0u; i < p.rows; i++) {
    let gv = g[i * p.cols + j];
    let prod = readW(wStart + i * wStep) * gv;
    absProd += abs(prod);
    sqProd += prod * prod;
    absGrad += abs(gv);
    sqGrad += gv * gv;
  }
  let o = p.outOff + 4u * j;
  sums[o] = absProd;
  sums[o + 1u] = sqProd;
  sums[o + 2u] = absGrad;
  sums[o + 3u] = sqGrad;
}
