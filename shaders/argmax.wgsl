// Row-wise argmax: out[r] = the index of the largest of x[off + r * ld + 0 .. vocab), the lowest index among
// equal maxima (as a CPU scan with `>` finds it). One workgroup of WG threads per row: each thread scans a
// strided share of the row, then a fixed-order tree merges the candidates. Greedy decoding reads back out[r],
// one u32, instead of the vocab-sized logits row. Logits are assumed finite.

struct Params {
  rows: u32, vocab: u32, off: u32, ld: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

// Threads per row: 256 on GPUs; small on software adapters, where every barrier is costly (argmax.ts decides).
override WG: u32 = 256u;
const NONE = 0xffffffffu; // a thread that saw no element yet

var<workgroup> redValue: array<f32, WG>;
var<workgroup> redIndex: array<u32, WG>;

struct Best {
  value: f32,
  index: u32,
}

// b beats a when a is empty, b is larger, or b ties a at a lower index.
fn better(a: Best, b: Best) -> bool {
  if (b.index == NONE) { return false; }
  if (a.index == NONE) { return true; }
  return b.value > a.value || (b.value == a.value && b.index < a.index);
}

@compute @workgroup_size(WG)
fn argmax_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.off + row * p.ld;
  var best = Best(0.0, NONE);
  // Increasing indices: the first of equal values stays.
  for (var i = lid; i < p.vocab; i += WG) {
    let v = x[base + i];
    if (best.index == NONE || v > best.value) { best = Best(v, i); }
  }
  redValue[lid] = best.value;
  redIndex[lid] = best.index;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let other = Best(redValue[lid + s], redIndex[lid + s]);
      if (better(Best(redValue[lid], redIndex[lid]), other)) {
        redValue[lid] = other.value;
        redIndex[lid] = other.index;
      }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { out[row] = redIndex[0]; }
}
