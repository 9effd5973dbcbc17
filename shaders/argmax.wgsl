// Row-wise argmax: out[r] = the index of the largest of x[off + r * ld + 0 .. vocab), the lowest index among
// equal maxima (as a CPU scan with `>` finds it). One workgroup of WG threads per row: each thread scans a
// strided share of the row, then the candidates merge in a fixed order: a shared-memory tree, or where the
// device has subgroups (argmax.ts picks) subgroupMax/subgroupMin per subgroup and one pass over the
// subgroups' winners. Greedy decoding reads back out[r], one u32, instead of the vocab-sized logits row.
// Logits are assumed finite.

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

// The merge of every thread's candidate in two forms, the shared-memory tree and then the subgroup one: the
// kernel source keeps one of them (see src/kernels/subgroups.ts). Entry points take an Invocation (declared by subgroups.ts for each form).
// subgroups:begin
// The best of every thread's candidate; valid in thread 0. Call from uniform control flow.
fn reduceBest(best: Best, inv: Invocation) -> Best {
  let lid = inv.lid;
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
  return Best(redValue[0], redIndex[0]);
}
// subgroups:alternative
const LOWEST = -0x1.fffffep+127f; // the lowest finite f32: empty threads never beat a (finite) logit

// Each subgroup's winner, the lowest index holding the subgroup's largest value (NONE where it saw no
// element), goes to slot subgroup_id (WG slots: enough for any subgroup size); thread 0 then merges the
// winners in subgroup order with `better`. Valid in thread 0. Call from uniform control flow.
fn reduceBest(best: Best, inv: Invocation) -> Best {
  let m = subgroupMax(select(best.value, LOWEST, best.index == NONE));
  let index = subgroupMin(select(NONE, best.index, best.index != NONE && best.value == m));
  if (inv.sgLane == 0u) {
    redValue[inv.sg] = m;
    redIndex[inv.sg] = index;
  }
  workgroupBarrier();
  var total = Best(0.0, NONE);
  if (inv.lid == 0u) {
    for (var i = 0u; i < inv.numSg; i++) {
      let other = Best(redValue[i], redIndex[i]);
      if (better(total, other)) { total = other; }
    }
  }
  return total;
}
// subgroups:end

@compute @workgroup_size(WG)
fn argmax_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, inv: Invocation) {
  let lid = inv.lid;
  let row = wg.x + wg.y * nwg.x;
  if (row >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.off + row * p.ld;
  var best = Best(0.0, NONE);
  // Increasing indices: the first of equal values stays.
  for (var i = lid; i < p.vocab; i += WG) {
    let v = x[base + i];
    if (best.index == NONE || v > best.value) { best = Best(v, i); }
  }
  best = reduceBest(best, inv);
  if (lid == 0u) { out[row] = best.index; }
}
